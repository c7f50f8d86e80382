r"""python launch/main.py --config=configs/mixing_mnist.py --workdir=workdirs/mixing_mnist
python launch/main.py --config=configs/mixing_mnist.py:runlocal --workdir=workdirs/mixing_mnist_local

The mixing autoencoder (Hu, Szabó, Portenier, Favaro, Zwicker, CVPR 2018) on the offline MNIST
stand-in `procedural_digits` (32×32×1 handwritten scans; factors digit 10, rotation 7, stroke 5,
instance 174; train / test over disjoint scans). The paper reports three MNIST chunks that carry
the digit class, the rotation and the stroke width: the retrieval mAP per chunk and factor measures
that without inspection. --config.data.name=mnist trains on the real MNIST (TFDS-prepared, no
factors: evaluate against the digit label).

8 chunks (the paper's MNIST count) of 8 values (our choice, the paper does not give d); DCGAN
networks at 32 px (maps 16, 8, 4, 2); the small AlexNet-BN classifier ('alexnet_bn_small', the
8×8/2 first layer would shrink 32 px to nothing); the released Sprites code's optimizers and
weights; 10 epochs of the train split. `variant=` picks an ablation row as for Sprites.
`runlocal`: the small grid, 16 pairs per step, 600 steps, lr 1e-3.
"""

from configs import _mixing


def get_config(arg=None):
  c, args = _mixing.mixing_config(arg, data_name='procedural_digits', num_chunks=8,
                                  chunk_size=8)
  c.model.classifier = 'alexnet_bn_small'
  c.data.eval_split = 'test'
  chunks = c.objective.num_chunks
  if args.runlocal:
    small = {'num_train': 1_000, 'num_test': 1_000}
    c.evaluators = {'retrieval': {**small, 'num_validation': 1_000, 'num_chunks': chunks},
                    'mig': dict(small)}
    c.total_steps = 600
  else:
    c.evaluators = {'retrieval': {'num_train': 2_000, 'num_test': 5_000,
                                  'num_validation': 2_000, 'num_chunks': chunks},
                    'mig': {}, 'sap': {}, 'dci_lasso': {}, 'modularity_explicitness': {}}
    c.total_steps = args.epochs * _mixing.epoch_steps(c.data, c.batch_size // 2)
    c.image_every = 2_000
    c.checkpoint_every = 2_000
    c.eval_every = c.total_steps
  return c

r"""python launch/main.py --config=configs/mixing_sprites.py:variant=mix_c_g --workdir=workdirs/mixing_sprites_mix_c_g
python launch/main.py --config=configs/mixing_sprites.py:runlocal,variant=mix_c_g --workdir=workdirs/mixing_sprites_local

The mixing autoencoder (Hu, Szabó, Portenier, Favaro, Zwicker, CVPR 2018) on the Sprites-equivalent
`procedural_sprites` (64×64×3; body 2, skin 4, vest 3, hair 6, arm 2, leg 2, pose 168; train /
validation / test over disjoint characters), one row of the paper's Sprites table per run:
`variant=` ae | c_g | ae_c_g | mix | mix_c | mix_g | mix_c_g (AE, C+G, AE+C+G, MIX, MIX+C, MIX+G,
MIX+C+G; the default is the full model). `bench/reproduce_mixing_table.py` trains them all and
prints the table.

As the released Sprites code: 8 chunks of 64 (a 512-d feature), DCGAN encoder / decoder /
discriminator, AlexNet-BN chunk classifier, Adam(2e-4, β1 0.5) ×0.9 every 20k steps for each
group, 64 pairs per step (batch 128), λ_M = λ_AE = 10, λ_G = λ_C = 1, 10 epochs of the train split
(steps derived from its size: `epochs=` changes the count). Our images are 64 px where the
released code's are 60 (the same layers with 32, 16, 8, 4, 2 maps; --config.data.image_size=60
gives the released sizes exactly).
Evaluation: retrieval mAP per chunk and factor (chunks chosen on one sample, reported on another;
the table's protocol with the validation and test splits is the bench script's), and the standard
scores on the ground truth (MIG, SAP, DCI with Lasso, modularity/explicitness, BetaVAE, FactorVAE).
`runlocal` (the README's first command; also the CPU budget of `bench/reproduce_mixing_table.py`,
on the full grid): the small grid (84 poses) resized to 32×32, the networks at half width (DCGAN
32…256 maps, the small AlexNet-BN with 256-unit dense layers; 0.5 s a step on a free 2-core CPU
where the paper's networks at 64×64 take 2.3 s), 16 pairs per step, 400 steps, lr 1e-3, small
evaluation.
"""

from configs import _mixing


def evaluators(runlocal: bool, num_chunks: int):
  if runlocal:
    small = {'num_train': 1_000, 'num_test': 1_000}
    return {'retrieval': {**small, 'num_validation': 1_000, 'num_chunks': num_chunks},
            'mig': dict(small)}
  return {'retrieval': {'num_train': 2_000, 'num_test': 5_000, 'num_validation': 2_000,
                        'num_chunks': num_chunks},
          'mig': {}, 'sap': {}, 'dci_lasso': {}, 'modularity_explicitness': {}, 'betavae': {},
          'factorvae': {}}


#: The `runlocal` model: the paper's layers at half width, for 32×32 images.
RUNLOCAL_MODEL = {
    'classifier': 'alexnet_bn_small',
    'encoder_kwargs': {'base_features': 32, 'max_features': 256},
    'decoder_kwargs': {'top_features': 256, 'bottom_features': 32},
    'discriminator_kwargs': {'base_features': 32, 'top_features': 256},
    'classifier_kwargs': {'dense_features': 256},
}
RUNLOCAL_IMAGE_SIZE = 32


def get_config(arg=None):
  c, args = _mixing.mixing_config(arg, data_name='procedural_sprites', num_chunks=8,
                                  chunk_size=64)
  c.data.eval_split = 'validation'
  c.evaluators = evaluators(args.runlocal, c.objective.num_chunks)
  if args.runlocal:
    c.data.image_size = RUNLOCAL_IMAGE_SIZE
    c.model.update(RUNLOCAL_MODEL)
    c.total_steps = 400
    c.image_every = 200
    c.checkpoint_every = 200
    c.eval_every = 400
  else:
    c.total_steps = args.epochs * _mixing.epoch_steps(c.data, c.batch_size // 2)
    c.log_every = 100
    c.image_every = 2_000
    c.checkpoint_every = 2_000
    c.eval_every = c.total_steps
  return c

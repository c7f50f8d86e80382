r"""python launch/main.py --config=configs/mixing_celeba.py --workdir=workdirs/mixing_celeba
python launch/main.py --config=configs/mixing_celeba.py:runlocal --workdir=workdirs/mixing_celeba_local

The mixing autoencoder (Hu, Szabó, Portenier, Favaro, Zwicker, CVPR 2018) on 64×64 CelebA, the full
model (MIX+C+G; `variant=` picks another row). Prepare the data once (no TensorFlow):
python launch/prepare_celeba.py --source_dir=<directory holding img_align_celeba.zip,
list_attr_celeba.txt and list_eval_partition.txt>; --config.data.name=celeb_a reads TFDS's copy
instead. Without the data the run stops at once, naming the dataset, where it looked and how to
prepare it.

64 chunks (the paper's CelebA count: fewer rendered worse) of 8 values (our choice, keeping the
512-d feature); a larger mixing weight than Sprites (the paper: "the mixing loss had a greater
weight"; λ_M = 30 is our value); DCGAN networks at 64 px, AlexNet-BN classifier with one logit per
chunk; the released Sprites code's optimizers; 25,000 steps of 64 pairs (about 10 epochs of the
official train split). There are no ground-truth factors: codes are scored against the 40
attributes by a logistic-regression probe on the whole feature (the paper's CelebA evaluation),
retrieval mAP per chunk and dlib's unsupervised scores, on encoded train and test samples.
`runlocal`: 16 pairs per step, 600 steps, lr 1e-3, small evaluation samples.
"""

from configs import _celeba
from configs import _mixing


def get_config(arg=None):
  c, args = _mixing.mixing_config(arg, data_name='celeb_a64', num_chunks=64, chunk_size=8,
                                  lambda_mix=30.0)
  c.data.builder_config = None  # celeb_a64's default (crop178); it has no 'small'
  c.evaluators = _celeba.evaluators(args.runlocal)
  c.evaluators.retrieval.num_chunks = c.objective.num_chunks
  if args.runlocal:
    c.total_steps = 600
  else:
    c.total_steps = 25_000
    c.image_every = 2_500
    c.checkpoint_every = 2_500
    c.eval_every = c.total_steps
  return c

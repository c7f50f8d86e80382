"""What the CelebA configs share (not a config itself): data, networks, evaluators, run length.

CelebA (Liu, Luo, Wang, Tang, ICCV 2015) at the field's 64×64: the aligned faces centre-cropped to
178×178 and resized (`celeb_a64`, built without TensorFlow by `launch/prepare_celeba.py`; or
--config.data.name=celeb_a for the TFDS-prepared copy), the official train / validation / test
split, 40 binary attributes as labels. There are no ground-truth factors, so representations are
scored against the attributes: a logistic-regression probe per attribute on the whole code
(`linear_probe`), nearest-neighbour retrieval mAP per code dimension (`retrieval`) and dlib's
unsupervised scores, on encoded train and test samples.
"""

import ml_collections

from configs import common

IMAGE_SIZE = 64
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3
LATENT_DIM = 64  # the seed's CelebA VAE


def evaluators(runlocal: bool) -> ml_collections.ConfigDict:
  """Metrics of codes against the 40 attributes; dlib's 10,000 / 5,000 samples (fewer under
  runlocal)."""
  sizes = {'num_train': 2_000, 'num_test': 1_000} if runlocal else {}
  return ml_collections.ConfigDict(
      {name: dict(sizes) for name in ('linear_probe', 'retrieval', 'unsupervised')})


def base_config(arg, objective: str) -> ml_collections.ConfigDict:
  """The run, data, networks and evaluators of a CelebA config for `objective`."""
  c = common.base_config(arg)
  c.data.name = 'celeb_a64'
  # celeb_a64's default builder config (crop178); base_config's runlocal picks the procedural
  # datasets' 'small', which CelebA does not have.
  c.data.builder_config = None

  c.objective.name = objective
  c.objective.latent_dim = LATENT_DIM
  c.objective.likelihood = 'bernoulli'

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  c.evaluators = evaluators(c.runlocal)
  c.total_steps = 100_000
  c.image_every = 5_000
  c.eval_every = 25_000

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
    c.total_steps = 1_000
    c.image_every = 500
    c.checkpoint_every = 500
    c.eval_every = 1_000
  return c

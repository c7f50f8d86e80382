r"""python launch/main.py --config=configs/cvae_dsprites.py --workdir=workdirs/cvae_dsprites
python launch/main.py --config=configs/cvae_dsprites.py:runlocal --workdir=workdirs/cvae_dsprites_local

The conditional VAE (Sohn, Lee, Yan, NeurIPS 2015) on the procedural dSprites, conditioned on the
one-hot of the shape factor: encoder q(z | x, shape), decoder p(x | z, shape), prior N(0, I).

Training as disentanglement_lib's VAEs: 10 latents, batch 64, 300k steps, Adam(1e-4, 0.9, 0.999),
Bernoulli likelihood with logits, conv encoder 'conv_k2' and deconv decoder 'conv'.

Variants:
  --config.objective.condition_on=shape,scale     condition on several factors (one-hots joined)
  --config.data.name=dsprites                     the real dSprites (prepared once with TFDS)
Evaluation: a conditional model's code needs each image's condition, so it is scored on encoded
samples against their factors (MIG, DCI, the linear probe, dlib's unsupervised scores), not by the
metrics that render images by factors (BetaVAE, FactorVAE score). The shape is given to the model,
so a good CVAE leaves it out of z: low scores for shape are expected.
Pictures: reconstructions, prior samples and traversals (each with the example's shape), and
`condition_manipulation`: the same z decoded as each of the three shapes.
`runlocal` trains on the small procedural dSprites for a few CPU minutes with a larger learning rate.
"""

import ml_collections

from configs import common


def labelled_evaluators(runlocal: bool) -> ml_collections.ConfigDict:
  """Metrics of codes against factors, at dlib's sample sizes (small ones under runlocal)."""
  if runlocal:
    small = {'num_train': 2_000, 'num_test': 1_000}
    return ml_collections.ConfigDict(
        {'mig': small, 'dci_lasso': small, 'linear_probe': small, 'unsupervised': small})
  return ml_collections.ConfigDict(
      {name: {} for name in ('mig', 'dci', 'linear_probe', 'unsupervised')})


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'cvae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.condition_on = 'shape'  # factor names joined by ',', or 'labels'
  c.objective.picture_rows = 6

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  c.evaluators = labelled_evaluators(c.runlocal)

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
    c.total_steps = 2_000
    c.image_every = 1_000
    c.checkpoint_every = 500
    c.eval_every = 2_000
  return c

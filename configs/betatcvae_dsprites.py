r"""python launch/main.py --config=configs/betatcvae_dsprites.py --workdir=workdirs/betatcvae_dsprites
python launch/main.py --config=configs/betatcvae_dsprites.py:runlocal --workdir=workdirs/betatcvae_local

β-TCVAE on dSprites (Chen et al., NeurIPS 2018) with disentanglement_lib's defaults.

dlib's form: `recon + KL + (β − 1)·TC`, the TC by minibatch weighted sampling without its
constants; β = 6 (the official code's example; the dlib study sweeps 1, 2, 4, 6, 8, 10).
The paper's form: --config.objective.variant=chen (α·MI + β·TC + γ·DWKL, stratified sampling
with the intended weight matrix; the dataset size N comes from the data, and `mss_legacy_bug=True`
reproduces the official code's mis-indexed matrix).
Training as dlib: 10 latents, batch 64, 300k steps, Adam(1e-4), conv encoder/decoder.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'betatcvae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.beta = 6.0
  c.objective.variant = 'dlib'
  # None: the variant's own, 'mws' (dlib) or 'mss' (chen).
  c.objective.estimator = ml_collections.config_dict.placeholder(str)
  c.objective.mss_legacy_bug = False
  c.objective.alpha = 1.0
  c.objective.gamma = 1.0
  c.objective.beta_schedule = ml_collections.config_dict.placeholder(str)

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
  return c

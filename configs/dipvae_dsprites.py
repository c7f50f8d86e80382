r"""python launch/main.py --config=configs/dipvae_dsprites.py --workdir=workdirs/dipvae_dsprites
python launch/main.py --config=configs/dipvae_dsprites.py:runlocal --workdir=workdirs/dipvae_local

DIP-VAE on dSprites (Kumar et al., ICLR 2018) with disentanglement_lib's defaults.

Type I by default (the covariance of the posterior means), λ_od = 10 and dlib's λ_d = 10·λ_od
(the study sweeps λ_od over 1, 2, 5, 10, 20, 50). Type II: --config.objective.dip_type=ii (then
λ_d = λ_od unless --config.objective.lambda_d is set).
Training as dlib: 10 latents, batch 64, 300k steps, Adam(1e-4), conv encoder/decoder.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'dipvae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.dip_type = 'i'
  c.objective.lambda_od = 10.0
  # None: dlib's 10·λ_od for type I, λ_od for type II.
  c.objective.lambda_d = ml_collections.config_dict.placeholder(float)

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
  return c

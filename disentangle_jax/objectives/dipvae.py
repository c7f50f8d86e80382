"""DIP-VAE-I / -II (Kumar et al., ICLR 2018): push the aggregate posterior's covariance
to the identity.

Config (`config.objective`), on top of the VAE's (`latent_dim`, `likelihood`):
  name:       'dipvae'
  dip_type:   'i' (covariance of the posterior means) | 'ii' (plus the mean posterior variance)
  lambda_od:  off-diagonal weight (dlib sweep 1, 2, 5, 10, 20, 50)
  lambda_d:   diagonal weight; None gives dlib's 10·λ_od (type I) or λ_od (type II)
Metrics: 'dip' (the penalty), plus the VAE's.
"""

from __future__ import annotations

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses.dipvae import DIP_TYPES
from disentangle_jax.objectives import register
from disentangle_jax.objectives._vae_core import VAECore


@register('dipvae')
class DIPVAE(VAECore):
  name = 'dipvae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.dip_type = str(self.hparam('dip_type')).lower()
    if self.dip_type not in DIP_TYPES:
      raise ValueError(
          f'config.objective.dip_type must be one of {DIP_TYPES}, got {self.dip_type!r}'
      )
    self.lambda_od = float(self.hparam('lambda_od'))
    lambda_d = self.hparam('lambda_d', None)
    self.lambda_d = None if lambda_d is None else float(lambda_d)

  def vae_loss(self, images, logits, z, mean, logvar, step, rng):
    del z, step, rng
    return loss_lib.dip_vae_loss(
        logits, images, mean, logvar, lambda_od=self.lambda_od, lambda_d=self.lambda_d,
        dip_type=self.dip_type, likelihood=self.likelihood,
    )

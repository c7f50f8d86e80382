"""AnnealedVAE (Burgess et al. 2018; §3): `NLL + γ·|E_b[KL] − C(t)|`.

The target KL C(t) = min(C_max, C_max·t/T) grows linearly, so the code gains capacity slowly.

Config (`config.objective`), on top of the VAE's (`latent_dim`, `likelihood`):
  name:          'annealedvae'
  gamma:         γ (dlib and the paper: 1000)
  max_capacity:  C_max in nats (dlib sweep 5, 10, 25, 50, 75, 100; the paper's dSprites: 25)
  anneal_steps:  T (dlib: 100,000)
Metrics: 'capacity' (C(t)), 'capacity_term', plus the VAE's.
"""

from __future__ import annotations

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses import schedules
from disentangle_jax.objectives import register
from disentangle_jax.objectives._vae_core import VAECore


@register('annealedvae')
class AnnealedVAE(VAECore):
  name = 'annealedvae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.gamma = float(self.hparam('gamma'))
    self.max_capacity = float(self.hparam('max_capacity'))
    self.anneal_steps = int(self.hparam('anneal_steps'))

  def vae_loss(self, images, logits, z, mean, logvar, step, rng):
    del z, rng
    capacity = schedules.capacity(
        step, max_capacity=self.max_capacity, anneal_steps=self.anneal_steps
    )
    loss, terms = loss_lib.annealed_vae_loss(
        logits, images, mean, logvar, capacity=capacity, gamma=self.gamma,
        likelihood=self.likelihood,
    )
    return loss, {**terms, 'capacity': capacity}

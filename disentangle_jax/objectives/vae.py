"""The VAE and β-VAE objectives (Kingma & Welling 2014; Higgins et al., ICLR 2017).

Config (`config.objective`), on top of the VAE core's (`latent_dim`, `likelihood`):
  name:        'vae' | 'betavae'
  beta:        ('betavae') the KL weight; β_norm when beta_mode is 'normalized'
  beta_mode:   ('betavae') 'raw' (sums, dlib) | 'normalized' (per-pixel and per-latent means)
  beta_schedule: ('betavae', optional) {'name': <schedule>, **kwargs} from
               `disentangle_jax.losses.schedules`, or the same as text for the command line,
               'linear_warmup,warmup_steps=10000'; a schedule's `value` defaults to `beta`
Networks, optimizer and representation: see `objectives._vae_core`.
"""

from __future__ import annotations

import jax.numpy as jnp

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses.vae import BETA_MODES
from disentangle_jax.objectives import register
from disentangle_jax.objectives._vae_core import VAECore, optional_schedule


@register('vae')
class VAE(VAECore):
  """The VAE (Kingma & Welling 2014): the negative ELBO with one posterior sample."""


@register('betavae')
class BetaVAE(VAECore):
  """β-VAE (Higgins et al. 2017), raw or normalised β (their §2, β_norm = β·M/N), optionally
  scheduled."""

  name = 'betavae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.beta = float(self.hparam('beta'))
    self.beta_mode = self.hparam('beta_mode', 'raw')
    if self.beta_mode not in BETA_MODES:
      raise ValueError(
          f'config.objective.beta_mode must be one of {BETA_MODES}, got {self.beta_mode!r}'
      )
    self.beta_fn = optional_schedule(self, 'beta_schedule', self.beta)

  def beta_at(self, step):
    return self.beta if self.beta_fn is None else self.beta_fn(step)

  def vae_loss(self, images, logits, z, mean, logvar, step, rng):
    del z, rng
    beta = self.beta_at(step)
    loss, terms = loss_lib.beta_vae_loss(
        logits, images, mean, logvar, beta=beta, beta_mode=self.beta_mode,
        likelihood=self.likelihood,
    )
    return loss, {**terms, 'beta': jnp.asarray(beta, jnp.float32)}

"""β-TCVAE (Chen et al., NeurIPS 2018): penalise the total correlation of the code.

Config (`config.objective`), on top of the VAE's (`latent_dim`, `likelihood`):
  name:           'betatcvae'
  beta:           the TC weight β (dlib sweep 1, 2, 4, 6, 8, 10; the official code's example: 6)
  variant:        'dlib' (default: recon + KL + (β − 1)·TC, TC by MWS without constants) |
                  'chen' (recon + α·MI + β·TC + γ·DWKL, all minibatch estimates)
  estimator:      None (the variant's: 'mws' for dlib, 'mss' for chen) | 'mws' | 'mss'
  dataset_size:   N; MSS needs it and takes the training split's size from the data by default;
                  MWS keeps its constants only when it is set (dlib: unset)
  mss_legacy_bug: False; True reproduces the official code's mis-indexed MSS weight matrix
  alpha, gamma:   ('chen') the MI and dimension-wise-KL weights (default 1)
  beta_schedule:  optional, as in 'betavae' (e.g. the official code's warm-up
                  {'name': 'linear_warmup', 'warmup_steps': 7000})
Metrics: 'tc' (and 'mi', 'dwkl' for 'chen'), 'beta', plus the VAE's.
"""

from __future__ import annotations

import jax.numpy as jnp

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses.betatcvae import ESTIMATORS, VARIANTS
from disentangle_jax.objectives import register
from disentangle_jax.objectives._vae_core import VAECore, optional_schedule


@register('betatcvae')
class BetaTCVAE(VAECore):
  name = 'betatcvae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.beta = float(self.hparam('beta'))
    self.variant = self.hparam('variant', 'dlib')
    if self.variant not in VARIANTS:
      raise ValueError(f'config.objective.variant must be one of {VARIANTS}, got {self.variant!r}')
    self.estimator = self.hparam('estimator', None)
    if self.estimator is None:
      self.estimator = 'mss' if self.variant == 'chen' else 'mws'
    if self.estimator not in ESTIMATORS:
      raise ValueError(
          f'config.objective.estimator must be one of {ESTIMATORS}, got {self.estimator!r}'
      )
    # N, the training split's size: MSS takes it from the data unless the config overrides it;
    # MWS keeps its constants only when the config asks (dlib drops them).
    size = self.hparam('dataset_size', None)
    if self.estimator == 'mss' and size is None:
      size = self.data.num_examples or None
    if self.estimator == 'mss' and size is None:
      raise ValueError("estimator 'mss' needs the dataset size: build the objective with the "
                       'DatasetInfo of its data or set config.objective.dataset_size')
    self.dataset_size = None if size is None else int(size)
    self.mss_legacy_bug = bool(self.hparam('mss_legacy_bug', False))
    self.alpha = float(self.hparam('alpha', 1.0))
    self.gamma = float(self.hparam('gamma', 1.0))
    self.beta_fn = optional_schedule(self, 'beta_schedule', self.beta)

  def vae_loss(self, images, logits, z, mean, logvar, step, rng):
    del rng
    beta = self.beta if self.beta_fn is None else self.beta_fn(step)
    loss, terms = loss_lib.beta_tcvae_loss(
        logits, images, mean, logvar, z, beta=beta, alpha=self.alpha, gamma=self.gamma,
        variant=self.variant, estimator=self.estimator, dataset_size=self.dataset_size,
        mss_legacy_bug=self.mss_legacy_bug, likelihood=self.likelihood,
    )
    return loss, {**terms, 'beta': jnp.asarray(beta, jnp.float32)}

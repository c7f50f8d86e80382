"""InfoVAE and MMD-VAE (Zhao, Song, Ermon, "InfoVAE: Balancing Learning and Inference in
Variational Autoencoders", AAAI 2019): a VAE whose aggregate posterior q(z) is pulled to the prior
by a maximum mean discrepancy.

    L = E_b[ −log p(x | z) ] + (1 − α) · E_b[ KL(q(z|x) ‖ N(0, I)) ] + (α + λ − 1) · MMD²(q(z), p(z))

(Zhao et al., the InfoVAE objective with the MMD divergence). The MMD² is estimated between the
batch's posterior samples z [B, M] and as many prior samples z' ~ N(0, I), drawn from the step's
named RNG stream 'prior_samples' (Gretton et al., JMLR 2012; RBF or inverse-multiquadratic
kernel, see `disentangle_jax.losses.mmd`). Pixels and latents are summed per example, then
averaged over the batch (disentanglement_lib's convention), so λ is on the scale of summed nats.

  'infovae'  α and λ free (α = 0, λ = 1 is the plain VAE);
  'mmdvae'   α = 1: no KL term, `recon + λ · MMD²` (Zhao et al.'s MMD-VAE).

Config (`config.objective`), on top of the VAE core's (`latent_dim`, `likelihood`):
  name:        'infovae' | 'mmdvae'
  alpha:       ('infovae') α (default 0)
  lambda_mmd:  λ (default 1000: the MMD weight is α + λ − 1)
  kernel:      'rbf' (default) | 'imq'
  bandwidth:   the kernel scale σ (default None: σ² = M, the code dimension)
  estimator:   'unbiased' (default, Gretton et al.'s MMD²_u) | 'biased'
Metrics: 'recon', 'kl' ('infovae'), 'mmd' (the raw MMD² estimate), 'mmd_weight', plus the
posterior diagnostics of the VAE core.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from disentangle_jax.losses.mmd import ESTIMATORS, KERNELS, info_vae_loss, mmd_vae_loss
from disentangle_jax.objectives import register
from disentangle_jax.objectives._vae_core import VAECore
from disentangle_jax.objectives.base import rng_stream

DEFAULT_LAMBDA = 1000.0


@register('infovae')
class InfoVAE(VAECore):
  """InfoVAE with an MMD divergence (Zhao et al. 2019)."""

  name = 'infovae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.alpha = self._alpha()
    self.lambda_mmd = float(self.hparam('lambda_mmd', DEFAULT_LAMBDA))
    self.kernel = str(self.hparam('kernel', 'rbf'))
    if self.kernel not in KERNELS:
      raise ValueError(f'config.objective.kernel must be one of {KERNELS}, '
                       f'got {self.kernel!r}')
    self.estimator = str(self.hparam('estimator', 'unbiased'))
    if self.estimator not in ESTIMATORS:
      raise ValueError(f'config.objective.estimator must be one of {ESTIMATORS}, '
                       f'got {self.estimator!r}')
    bandwidth = self.hparam('bandwidth', None)
    self.bandwidth = None if bandwidth is None else float(bandwidth)
    if self.bandwidth is not None and self.bandwidth <= 0:
      raise ValueError(f'config.objective.bandwidth must be > 0 (or None for sqrt(latent_dim)),'
                       f' got {self.bandwidth}')

  def _alpha(self) -> float:
    return float(self.hparam('alpha', 0.0))

  @property
  def mmd_weight(self) -> float:
    return self.alpha + self.lambda_mmd - 1.0

  def mmd_loss(self, images, logits, z, mean, logvar, prior_samples):
    """`(scalar, {term: scalar})` for one batch and its prior samples [B, M]."""
    options = dict(likelihood=self.likelihood, kernel=self.kernel, bandwidth=self.bandwidth,
                   estimator=self.estimator)
    return info_vae_loss(logits, images, mean, logvar, z, prior_samples,
                                 alpha=self.alpha, lambda_=self.lambda_mmd, **options)

  def vae_loss(self, images, logits, z, mean, logvar, step, rng):
    del step
    prior_samples = jax.random.normal(rng_stream(rng, 'prior_samples'), z.shape, jnp.float32)
    loss, terms = self.mmd_loss(images, logits, z, mean, logvar, prior_samples)
    return loss, {**terms, 'mmd_weight': jnp.asarray(self.mmd_weight, jnp.float32)}


@register('mmdvae')
class MMDVAE(InfoVAE):
  """MMD-VAE (Zhao et al. 2019): InfoVAE at α = 1, reconstruction plus λ · MMD², no KL."""

  name = 'mmdvae'

  def _alpha(self) -> float:
    alpha = self.hparam('alpha', None)
    if alpha is not None and float(alpha) != 1.0:
      raise ValueError(f"objective 'mmdvae' is InfoVAE at alpha = 1, got "
                       f"config.objective.alpha={alpha}; use name='infovae' for another alpha")
    return 1.0

  def mmd_loss(self, images, logits, z, mean, logvar, prior_samples):
    del mean, logvar
    return mmd_vae_loss(
        logits, images, z, prior_samples, lambda_=self.lambda_mmd, likelihood=self.likelihood,
        kernel=self.kernel, bandwidth=self.bandwidth, estimator=self.estimator)

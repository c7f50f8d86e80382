"""DIP-VAE-I and -II (Kumar et al., ICLR 2018, §3): match the covariance of the aggregate
posterior to the identity.

  DIP-VAE-I:  Cov = Cov_b[μ(x)]                               (biased batch covariance)
  DIP-VAE-II: Cov = E_b[diag(exp(logvar(x)))] + Cov_b[μ(x)]   (the aggregate posterior's)
  penalty = λ_od · Σ_{i≠j} Cov_ij² + λ_d · Σ_i (Cov_ii − 1)²

dlib's weights: λ_d = 10·λ_od for type I and λ_d = λ_od for type II. (disent 0.9.3's type II adds
one scalar variance to every entry, off-diagonals included; this follows the definition.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common
from disentangle_jax.losses.reconstruction import reconstruction_loss
from disentangle_jax.losses.vae import add_batch_term

Array = jax.Array

DIP_TYPES = ('i', 'ii')


def dip_covariance(
    mean: ArrayLike, logvar: ArrayLike | None = None, *, dip_type: str = 'i'
) -> Array:
  """The covariance that DIP-VAE pushes to the identity.

  Args:
    mean: [batch, latents] posterior means.
    logvar: [batch, latents] posterior log-variances (type 'ii' only).
    dip_type: 'i' or 'ii'.

  Returns:
    [latents, latents].
  """
  cov = common.batch_cov(mean)
  if dip_type == 'i':
    return cov
  if dip_type == 'ii':
    if logvar is None:
      raise ValueError("dip_type='ii' needs logvar")
    return cov + jnp.diag(jnp.mean(jnp.exp(jnp.asarray(logvar)), axis=0))
  raise ValueError(f'dip_type must be one of {DIP_TYPES}, got {dip_type!r}')


def dip_regularizer(cov: ArrayLike, *, lambda_od: ArrayLike, lambda_d: ArrayLike) -> Array:
  """`λ_od · Σ_{i≠j} cov_ij² + λ_d · Σ_i (cov_ii − 1)²`.

  Args:
    cov: [latents, latents].
    lambda_od: weight of the off-diagonal entries.
    lambda_d: weight of the diagonal entries' distance to 1.

  Returns:
    A scalar.
  """
  cov = jnp.asarray(cov)
  diag = jnp.diagonal(cov)
  off_diag = cov - jnp.diag(diag)
  off_diag_sq = jnp.sum(jnp.square(off_diag))
  return lambda_od * off_diag_sq + lambda_d * jnp.sum(jnp.square(diag - 1.0))


def dip_vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    lambda_od: ArrayLike = 10.0,
    lambda_d: ArrayLike | None = None,
    dip_type: str = 'i',
    likelihood: str = 'bernoulli',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """DIP-VAE: `E_b[NLL + KL] + penalty(Cov)`; the penalty is one batch-level scalar.

  Args:
    logits: [batch, H, W, C] decoder outputs for one sample z ~ q(z|x).
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [batch, latents].
    logvar: [batch, latents].
    lambda_od: off-diagonal weight.
    lambda_d: diagonal weight; None gives dlib's `10·λ_od` (type I) or `λ_od` (type II).
    dip_type: 'i' or 'ii'.
    likelihood: 'bernoulli', 'gaussian' or 'mse'.
    reduction: over the batch: 'mean', 'sum' or 'none' (the penalty is charged once per
      example, see `vae.add_batch_term`).

  Returns:
    `(loss, {'recon', 'kl', 'dip'})`: recon and kl reduced like the loss, dip the scalar penalty.
  """
  if lambda_d is None:
    lambda_d = (10.0 if dip_type == 'i' else 1.0) * lambda_od
  recon = reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction='sum')
  kl = common.gaussian_kl(mean, logvar, event_reduction='sum')
  penalty = dip_regularizer(
      dip_covariance(mean, logvar, dip_type=dip_type), lambda_od=lambda_od, lambda_d=lambda_d
  )
  loss = add_batch_term(recon + kl, penalty, reduction)
  return loss, {
      'recon': common.reduce_batch(recon, reduction),
      'kl': common.reduce_batch(kl, reduction),
      'dip': penalty,
  }

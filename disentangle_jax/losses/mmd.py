"""Maximum mean discrepancy and the InfoVAE / MMD-VAE losses (Zhao, Song, Ermon, AAAI 2019).

MMD (Gretton, Borgwardt, Rasch, Schölkopf, Smola, "A Kernel Two-Sample Test", JMLR 2012): for a
kernel k, `MMD²(p, q) = E k(x, x') + E k(y, y') − 2 E k(x, y)` with x, x' ~ p and y, y' ~ q. Two
estimators from samples x [N, D] and y [M, D]:

  * 'unbiased' (Gretton et al.'s MMD²_u, the default): the x–x and y–y means leave out the
    diagonal pairs (i = j). Its expectation is exactly MMD², so a regulariser built on it has no
    constant, batch-size dependent bias; it can be slightly negative when p = q.
  * 'biased' (MMD²_b, a V-statistic): plain means over all pairs, diagonals included. Always ≥ 0
    and exactly 0 for y = x, but biased upwards by O(1/N).

Kernels, with one scale σ (`bandwidth`) or several (a tuple: the kernels are summed, as the
Wasserstein autoencoder of Tolstikhin et al. 2018 sums inverse multiquadratics over scales):
  * 'rbf':  `exp(−‖a − b‖² / (2σ²))`;
  * 'imq':  `C / (C + ‖a − b‖²)` with C = 2σ² (the inverse multiquadratic of Tolstikhin et al.
    2018, §4, who use C = 2·D·σ_z² for a N(0, σ_z² I) prior).
Default σ² = D, the code dimension, so that 2σ² = 2D is the WAE's choice for a unit-variance
prior (`nmichlo/disent`'s InfoVAE uses 2σ² = 4D: `bandwidth=sqrt(2·D)`).

InfoVAE (Zhao et al. 2019, the InfoVAE objective; the "MMD-VAE" is the case α = 1):

    L = E_b[NLL(x | z)] + (1 − α) · E_b[KL(q(z|x) ‖ p(z))] + (α + λ − 1) · MMD²(q(z), p(z)),

the MMD being estimated between the batch's posterior samples z and as many prior samples
z' ~ N(0, I), which the caller draws (no global RNG).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common
from disentangle_jax.losses.reconstruction import reconstruction_loss

Array = jax.Array

KERNELS = ('rbf', 'imq')
ESTIMATORS = ('unbiased', 'biased')


def _squared_distances(a: Array, b: Array) -> Array:
  """[N, M] `‖a_i − b_j‖²`, from the Gram matrix at full float32 matmul precision, clipped at 0."""
  gram = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  sq_a = jnp.sum(jnp.square(a), axis=1)
  sq_b = jnp.sum(jnp.square(b), axis=1)
  return jnp.maximum(sq_a[:, None] + sq_b[None, :] - 2.0 * gram, 0.0)


def kernel_matrix(
    a: ArrayLike,
    b: ArrayLike,
    *,
    kernel: str = 'rbf',
    bandwidth: float | Sequence[float] | None = None,
) -> Array:
  """The kernel between every row of a [N, D] and every row of b [M, D]: [N, M].

  Args:
    a: [N, D].
    b: [M, D].
    kernel: 'rbf' or 'imq' (see the module docstring).
    bandwidth: σ, or a tuple of σs whose kernels are summed; None means σ = sqrt(D).

  Returns:
    [N, M], at least float32.
  """
  a, b = common.as_float(a), common.as_float(b)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f'samples must be [N, D] and [M, D] with one D, got {a.shape} and {b.shape}')
  if kernel not in KERNELS:
    raise ValueError(f'kernel must be one of {KERNELS}, got {kernel!r}')
  if bandwidth is None:
    scales = (float(a.shape[1]) ** 0.5,)
  elif isinstance(bandwidth, (tuple, list)):
    scales = tuple(bandwidth)
  else:
    scales = (bandwidth,)
  d2 = _squared_distances(a, b)
  total = jnp.zeros_like(d2)
  for sigma in scales:
    two_var = 2.0 * jnp.square(jnp.asarray(sigma, d2.dtype))
    if kernel == 'rbf':
      total = total + jnp.exp(-d2 / two_var)
    else:
      total = total + two_var / (two_var + d2)
  return total


def _mean_off_diagonal(k: Array) -> Array:
  n = k.shape[0]
  return (jnp.sum(k) - jnp.sum(jnp.diagonal(k))) / (n * (n - 1))


def mmd(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: str = 'rbf',
    bandwidth: float | Sequence[float] | None = None,
    estimator: str = 'unbiased',
) -> Array:
  """The squared maximum mean discrepancy MMD²(p, q) between samples x ~ p and y ~ q.

  Symmetric in x and y. See the module docstring for the kernels and estimators; the default
  'unbiased' estimator (Gretton et al. 2012, MMD²_u) has expectation exactly MMD² and can be
  slightly negative; 'biased' (MMD²_b) is ≥ 0 and exactly 0 for y = x.

  Args:
    x: [N, D] samples (e.g. posterior samples z), N ≥ 2 for 'unbiased'.
    y: [M, D] samples (e.g. prior samples), M ≥ 2 for 'unbiased'.
    kernel: 'rbf' (default) or 'imq'.
    bandwidth: σ, a tuple of σs (kernels summed), or None for σ = sqrt(D).
    estimator: 'unbiased' (default) or 'biased'.

  Returns:
    A scalar, at least float32.
  """
  if estimator not in ESTIMATORS:
    raise ValueError(f'estimator must be one of {ESTIMATORS}, got {estimator!r}')
  options = dict(kernel=kernel, bandwidth=bandwidth)
  k_xx = kernel_matrix(x, x, **options)
  k_yy = kernel_matrix(y, y, **options)
  k_xy = kernel_matrix(x, y, **options)
  if estimator == 'biased':
    return jnp.mean(k_xx) + jnp.mean(k_yy) - 2.0 * jnp.mean(k_xy)
  if k_xx.shape[0] < 2 or k_yy.shape[0] < 2:
    raise ValueError(
        f"the unbiased MMD needs at least 2 samples on each side, got {k_xx.shape[0]} and"
        f" {k_yy.shape[0]}: use more samples or estimator='biased'"
    )
  return _mean_off_diagonal(k_xx) + _mean_off_diagonal(k_yy) - 2.0 * jnp.mean(k_xy)


def info_vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    z: ArrayLike,
    prior_samples: ArrayLike,
    *,
    alpha: ArrayLike = 0.0,
    lambda_: ArrayLike = 1000.0,
    likelihood: str = 'bernoulli',
    kernel: str = 'rbf',
    bandwidth: float | Sequence[float] | None = None,
    estimator: str = 'unbiased',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """InfoVAE (Zhao et al. 2019): `NLL + (1 − α)·KL + (α + λ − 1)·MMD²(q(z), p(z))`.

  Pixels and latents are summed per example (dlib's convention), then the batch is reduced. The
  MMD² is one batch-level scalar: it is charged once per example, so 'sum' is B × 'mean' and the
  'none' values average to 'mean'. α = 0, λ = 1 is the plain VAE; α = 1 is the MMD-VAE
  (`mmd_vae_loss`). The defaults α = 0, λ = 1000 (MMD weight 999 against summed nats) are ours.

  Args:
    logits: [B, H, W, C] decoder outputs for the posterior sample z.
    targets: [B, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [B, D] posterior means.
    logvar: [B, D] posterior log-variances.
    z: [B, D] the posterior samples the decoder saw.
    prior_samples: [M, D] samples of the prior N(0, I) (e.g. `jax.random.normal(rng, z.shape)`).
    alpha: α.
    lambda_: λ.
    likelihood: 'bernoulli', 'gaussian' or 'mse' (see `reconstruction_loss`).
    kernel, bandwidth, estimator: as in `mmd`.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, {'recon', 'kl', 'mmd'})`: 'recon' and 'kl' reduced like the loss; 'mmd' the raw
    (unweighted) MMD² estimate.
  """
  common.check_reduction(reduction)
  recon = reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction='sum')
  kl = common.gaussian_kl(mean, logvar, event_reduction='sum')
  divergence = mmd(z, prior_samples, kernel=kernel, bandwidth=bandwidth, estimator=estimator)
  per_example = recon + (1.0 - alpha) * kl + (alpha + lambda_ - 1.0) * divergence
  return common.reduce_batch(per_example, reduction), {
      'recon': common.reduce_batch(recon, reduction),
      'kl': common.reduce_batch(kl, reduction),
      'mmd': divergence,
  }


def mmd_vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    z: ArrayLike,
    prior_samples: ArrayLike,
    *,
    lambda_: ArrayLike = 1000.0,
    likelihood: str = 'bernoulli',
    kernel: str = 'rbf',
    bandwidth: float | Sequence[float] | None = None,
    estimator: str = 'unbiased',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """MMD-VAE, InfoVAE with α = 1 (Zhao et al. 2019): `NLL + λ·MMD²(q(z), p(z))`, no KL term.

  The encoder may be deterministic (z its output) or stochastic (z a posterior sample).

  Args:
    logits: [B, H, W, C] decoder outputs for z.
    targets: [B, H, W, C] images.
    z: [B, D] codes the decoder saw.
    prior_samples: [M, D] samples of N(0, I).
    lambda_: λ, the MMD weight.
    likelihood, kernel, bandwidth, estimator, reduction: as in `info_vae_loss`.

  Returns:
    `(loss, {'recon', 'mmd'})`, as `info_vae_loss`.
  """
  common.check_reduction(reduction)
  recon = reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction='sum')
  divergence = mmd(z, prior_samples, kernel=kernel, bandwidth=bandwidth, estimator=estimator)
  return common.reduce_batch(recon + lambda_ * divergence, reduction), {
      'recon': common.reduce_batch(recon, reduction),
      'mmd': divergence,
  }

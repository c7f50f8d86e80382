"""β-TCVAE (Chen et al., NeurIPS 2018, §3-4): the KL split into index-code MI, total
correlation and dimension-wise KL, each estimated on the minibatch.

With one sample z_i ~ q(z|x_i) per example and `Lq[i, j, d] = log q(z_id | x_j)`:
  log q(z_i)    ≈ logsumexp_j (log w_ij + Σ_d Lq[i, j, d])
  log q(z_id)   ≈ logsumexp_j (log w_ij + Lq[i, j, d])
  MI_i   = log q(z_i|x_i) − log q(z_i)
  TC_i   = log q(z_i) − Σ_d log q(z_id)
  DWKL_i = Σ_d log q(z_id) − log p(z_i)
The weights w are those of minibatch weighted sampling (MWS, `w_ij = 1/(N·B)`) or of minibatch
stratified sampling (MSS, `log_importance_weight_matrix`), N being the dataset size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.losses import common
from disentangle_jax.losses.reconstruction import reconstruction_loss

Array = jax.Array

ESTIMATORS = ('mws', 'mss')
VARIANTS = ('chen', 'dlib')


def importance_weight_matrix(
    batch_size: int, dataset_size: int, *, legacy_bug: bool = False
) -> np.ndarray:
  """The MSS weights w [batch, batch]: row i weighs the batch's posteriors q(·|x_j) for sample i.

  The intended matrix, with M = batch − 1: `w_ii = 1/N` (the sample's own posterior),
  `w_{i,(i+1) mod B} = (N − M)/(N·M)` (one stratum stands for the rest of the dataset), and
  `1/M` elsewhere. Every row sums to 1.

  `legacy_bug=True` reproduces the matrix of the official code and its copies, whose flattened
  stride fills columns 0 and 1 instead of the diagonal and super-diagonal (rtqichen/beta-tcvae
  PR #1; YannDubs/disentangling-vae #58). Use it only to reproduce old numbers bit for bit.

  Args:
    batch_size: B ≥ 2.
    dataset_size: N ≥ B.

  Returns:
    A float64 numpy array [batch, batch] (a constant, so it folds into the compiled step).
  """
  if batch_size < 2:
    raise ValueError(f'MSS needs batch_size >= 2, got {batch_size}')
  if dataset_size < batch_size:
    raise ValueError(f'dataset_size {dataset_size} must be at least batch_size {batch_size}')
  n, m = float(dataset_size), float(batch_size - 1)
  strat_weight = (n - m) / (n * m)
  w = np.full((batch_size, batch_size), 1.0 / m)
  rows = np.arange(batch_size)
  if legacy_bug:
    w[:, 0] = 1.0 / n
    w[:, 1] = strat_weight
    w[batch_size - 2, 0] = strat_weight
  else:
    w[rows, rows] = 1.0 / n
    w[rows, (rows + 1) % batch_size] = strat_weight
  return w


def log_importance_weight_matrix(
    batch_size: int, dataset_size: int, *, legacy_bug: bool = False
) -> np.ndarray:
  """`log` of `importance_weight_matrix`, [batch, batch]."""
  return np.log(importance_weight_matrix(batch_size, dataset_size, legacy_bug=legacy_bug))


class MinibatchDensities(NamedTuple):
  """Per-example log-densities at the sampled codes, each [batch]."""

  log_qz_given_x: Array  # log q(z_i | x_i)
  log_qz: Array  # log q(z_i), minibatch estimate
  log_prod_qz: Array  # Σ_d log q(z_id), minibatch estimate
  log_pz: Array  # log N(z_i; 0, I)


def minibatch_log_densities(
    z: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    estimator: str = 'mss',
    dataset_size: int | None = None,
    mss_legacy_bug: bool = False,
) -> MinibatchDensities:
  """Minibatch estimates of the aggregate-posterior densities at each sampled code.

  Args:
    z: [batch, latents] one sample per example from q(z|x).
    mean: [batch, latents] posterior means.
    logvar: [batch, latents] posterior log-variances.
    estimator: 'mss' (stratified; needs `dataset_size`) or 'mws' (weighted).
    dataset_size: N. For 'mws' it may be None: the constant −log(N·B) is then dropped, which
      shifts log q(z) by log(N·B) and the TC by (latents − 1)·log(N·B) but no gradient (dlib).
    mss_legacy_bug: use the official code's mis-indexed MSS matrix (see
      `importance_weight_matrix`).

  Returns:
    A `MinibatchDensities` of [batch] arrays.
  """
  z, mean, logvar = common.as_float(z), common.as_float(mean), common.as_float(logvar)
  batch_size = z.shape[0]
  # pairwise[i, j, d] = log q(z_id | x_j)
  pairwise = common.gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])
  if estimator == 'mws':
    log_w = 0.0 if dataset_size is None else -math.log(dataset_size * batch_size)
    log_w = jnp.full((batch_size, batch_size), log_w, z.dtype)
  elif estimator == 'mss':
    if dataset_size is None:
      raise ValueError("estimator='mss' needs dataset_size")
    log_w = jnp.asarray(
        log_importance_weight_matrix(batch_size, dataset_size, legacy_bug=mss_legacy_bug), z.dtype
    )
  else:
    raise ValueError(f'estimator must be one of {ESTIMATORS}, got {estimator!r}')
  log_qz = jax.nn.logsumexp(log_w + jnp.sum(pairwise, axis=-1), axis=1)
  log_prod_qz = jnp.sum(jax.nn.logsumexp(log_w[:, :, None] + pairwise, axis=1), axis=-1)
  log_qz_given_x = jnp.sum(common.gaussian_log_density(z, mean, logvar), axis=-1)
  log_pz = jnp.sum(common.gaussian_log_density(z, 0.0, 0.0), axis=-1)
  return MinibatchDensities(log_qz_given_x, log_qz, log_prod_qz, log_pz)


def total_correlation(
    z: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    estimator: str = 'mws',
    dataset_size: int | None = None,
    mss_legacy_bug: bool = False,
    reduction: str = 'mean',
) -> Array:
  """The minibatch total-correlation estimate `log q(z) − Σ_d log q(z_d)`.

  The defaults (MWS, no dataset size) are dlib's `total_correlation`: the log(N·B) constants
  are dropped (see `minibatch_log_densities`).

  Args:
    z, mean, logvar: [batch, latents].
    estimator, dataset_size, mss_legacy_bug: see `minibatch_log_densities`.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    A scalar ([batch] with 'none').
  """
  d = minibatch_log_densities(
      z, mean, logvar, estimator=estimator, dataset_size=dataset_size,
      mss_legacy_bug=mss_legacy_bug,
  )
  return common.reduce_batch(d.log_qz - d.log_prod_qz, reduction)


def beta_tcvae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    z: ArrayLike,
    *,
    beta: ArrayLike = 6.0,
    alpha: ArrayLike = 1.0,
    gamma: ArrayLike = 1.0,
    variant: str = 'chen',
    estimator: str | None = None,
    dataset_size: int | None = None,
    mss_legacy_bug: bool = False,
    likelihood: str = 'bernoulli',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """β-TCVAE's loss in one of two published forms.

  `variant='chen'` (the paper and official code): `NLL + α·MI + β·TC + γ·DWKL`, all three from
  the minibatch estimator (default 'mss', which needs `dataset_size`).
  `variant='dlib'` (disentanglement_lib): `NLL + KL + (β − 1)·TC`, with the closed-form KL and
  the TC by MWS without constants (default estimator 'mws', `dataset_size=None`); α and γ unused.

  Args:
    logits: [batch, H, W, C] decoder outputs for z.
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [batch, latents].
    logvar: [batch, latents].
    z: [batch, latents] the sample the decoder saw.
    beta: the TC weight β.
    alpha: the index-code MI weight ('chen' only).
    gamma: the dimension-wise KL weight ('chen' only).
    variant: 'chen' or 'dlib'.
    estimator: 'mss' or 'mws'; None picks the variant's default.
    dataset_size: N, for 'mss' (required) and 'mws' (optional).
    mss_legacy_bug: the official code's mis-indexed MSS matrix.
    likelihood: 'bernoulli', 'gaussian' or 'mse'.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, terms)`, terms reduced like the loss: 'chen' → recon, kl (closed form, logged only),
    mi, tc, dwkl; 'dlib' → recon, kl, tc.
  """
  if variant not in VARIANTS:
    raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
  if estimator is None:
    estimator = 'mss' if variant == 'chen' else 'mws'
  recon = reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction='sum')
  kl = common.gaussian_kl(mean, logvar, event_reduction='sum')
  d = minibatch_log_densities(
      z, mean, logvar, estimator=estimator, dataset_size=dataset_size,
      mss_legacy_bug=mss_legacy_bug,
  )
  tc = d.log_qz - d.log_prod_qz
  terms = {'recon': recon, 'kl': kl, 'tc': tc}
  if variant == 'chen':
    mi = d.log_qz_given_x - d.log_qz
    dwkl = d.log_prod_qz - d.log_pz
    loss = recon + alpha * mi + beta * tc + gamma * dwkl
    terms.update(mi=mi, dwkl=dwkl)
  else:
    loss = recon + kl + (beta - 1.0) * tc
  red = lambda x: common.reduce_batch(x, reduction)  # noqa: E731
  return red(loss), {k: red(v) for k, v in terms.items()}

"""Primitives shared by every loss: Gaussian KL and densities, likelihoods, covariance.

Conventions (every loss of `disentangle_jax.losses`):
  * Arrays in, arrays out; no Flax, no config, no global state.
  * Argument order as optax: the model's output first (`logits`, or `predictions`), the target
    second (`targets`), then the other model outputs (posterior `mean`, `logvar`, a sample `z`);
    every option is keyword-only with a default.
  * Inputs of lower precision (bfloat16, float16) are computed and accumulated in float32
    (`as_float`); float64 inputs stay float64. Results have that promoted dtype.
  * The leading axis is the batch. The other axes of one example (latents, or pixels H, W, C) are
    its *event* axes. Per-example functions reduce the event axes with `event_reduction`:
    'sum' (the dlib convention: nats per example), 'mean' (per latent or per pixel), or 'none'
    (elementwise values, the input's shape).
  * Objective-level losses then reduce the batch with `reduction` in {'mean', 'sum', 'none'}.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

Array = jax.Array

_LOG_2PI = math.log(2.0 * math.pi)
_REDUCTIONS = ('mean', 'sum', 'none')


def as_float(x: ArrayLike) -> Array:
  """`x` as an array of at least float32 precision (bfloat16/float16/ints -> float32)."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def reduce_events(values: Array, event_reduction: str, num_event_axes: int | None = None) -> Array:
  """Reduces the event axes of `values` [batch, ...] to [batch] ('sum'/'mean') or keeps them.

  Args:
    values: [batch, ...] elementwise values.
    event_reduction: 'sum', 'mean' or 'none'.
    num_event_axes: how many trailing axes form one example; default all but the first.

  Returns:
    [batch] for 'sum'/'mean'; `values` unchanged for 'none'.
  """
  if event_reduction == 'none':
    return values
  if num_event_axes is None:
    axes = tuple(range(1, values.ndim))
  else:
    axes = tuple(range(values.ndim - num_event_axes, values.ndim))
  if event_reduction == 'sum':
    return jnp.sum(values, axis=axes)
  if event_reduction == 'mean':
    return jnp.mean(values, axis=axes)
  raise ValueError(f"event_reduction must be 'sum', 'mean' or 'none', got {event_reduction!r}")


def reduce_batch(values: Array, reduction: str) -> Array:
  """Reduces per-example values [batch] with 'mean', 'sum' or 'none' (returned unchanged)."""
  if reduction == 'mean':
    return jnp.mean(values, axis=0)
  if reduction == 'sum':
    return jnp.sum(values, axis=0)
  if reduction == 'none':
    return values
  raise ValueError(f'reduction must be one of {_REDUCTIONS}, got {reduction!r}')


def check_reduction(reduction: str) -> None:
  if reduction not in _REDUCTIONS:
    raise ValueError(f'reduction must be one of {_REDUCTIONS}, got {reduction!r}')


def gaussian_kl(
    mean: ArrayLike,
    logvar: ArrayLike,
    prior_mean: ArrayLike = 0.0,
    prior_logvar: ArrayLike = 0.0,
    *,
    event_reduction: str = 'sum',
) -> Array:
  """KL(N(mean, exp(logvar)) ‖ N(prior_mean, exp(prior_logvar))) of diagonal Gaussians.

  With the default standard-normal prior this is, per example,
  `0.5 · Σ_d (mean_d² + exp(logvar_d) − logvar_d − 1)`.

  Args:
    mean: [batch, latents] posterior means.
    logvar: [batch, latents] posterior log-variances.
    prior_mean: prior means, broadcastable to `mean` (default 0).
    prior_logvar: prior log-variances, broadcastable to `mean` (default 0).
    event_reduction: over the latents: 'sum' (nats per example), 'mean' (per latent) or 'none'.

  Returns:
    [batch] (or [batch, latents] with 'none').
  """
  mean, logvar = as_float(mean), as_float(logvar)
  prior_mean, prior_logvar = as_float(prior_mean), as_float(prior_logvar)
  kl = 0.5 * (
      prior_logvar
      - logvar
      + (jnp.exp(logvar) + jnp.square(mean - prior_mean)) * jnp.exp(-prior_logvar)
      - 1.0
  )
  return reduce_events(kl, event_reduction, num_event_axes=1)


def gaussian_log_density(x: ArrayLike, mean: ArrayLike, logvar: ArrayLike) -> Array:
  """Elementwise log N(x; mean, exp(logvar)): `−0.5 · ((x−mean)² e^{−logvar} + logvar + log 2π)`.

  Args:
    x, mean, logvar: broadcastable arrays (e.g. [batch, 1, latents] against [1, batch, latents]
      for the pairwise densities of β-TCVAE).

  Returns:
    The broadcast shape.
  """
  x, mean, logvar = as_float(x), as_float(mean), as_float(logvar)
  return -0.5 * (jnp.square(x - mean) * jnp.exp(-logvar) + logvar + _LOG_2PI)


def reparameterize(rng: jax.Array, mean: ArrayLike, logvar: ArrayLike) -> Array:
  """One sample `mean + exp(logvar / 2) · ε`, ε ~ N(0, I); differentiable in mean and logvar.

  Args:
    rng: a PRNG key.
    mean, logvar: [batch, latents].

  Returns:
    [batch, latents] samples.
  """
  mean, logvar = as_float(mean), as_float(logvar)
  eps = jax.random.normal(rng, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def bernoulli_nll_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    event_reduction: str = 'sum',
    subtract_entropy: bool = False,
) -> Array:
  """Negative Bernoulli log-likelihood from logits: `softplus(l) − x·l` per pixel.

  This is the sigmoid cross-entropy and is valid for targets anywhere in [0, 1]. For non-binary
  targets its minimum is the target's entropy, not 0; `subtract_entropy=True` removes it so a
  perfect reconstruction scores 0 (dlib's option, off by default there too).

  Args:
    logits: [batch, ...] (e.g. a decoder's output [batch, H, W, C]).
    targets: same shape as `logits`, values in [0, 1].
    event_reduction: over all non-batch axes: 'sum' (dlib), 'mean' (per pixel) or 'none'.
    subtract_entropy: subtract the targets' own Bernoulli entropy.

  Returns:
    [batch] (or the input shape with 'none').
  """
  logits, targets = as_float(logits), as_float(targets)
  # softplus(l) − x·l = max(l, 0) − x·l + log(1 + e^{−|l|}), stable for large |l|.
  nll = jax.nn.softplus(logits) - targets * logits
  if subtract_entropy:
    nll = nll - bernoulli_entropy(targets)
  return reduce_events(nll, event_reduction)


def bernoulli_entropy(p: ArrayLike, eps: float = 1e-6) -> Array:
  """Elementwise entropy of Bernoulli(p), with p clipped to [eps, 1 − eps]."""
  p = jnp.clip(jnp.asarray(p), eps, 1.0 - eps)
  return -(p * jnp.log(p) + (1.0 - p) * jnp.log1p(-p))


def gaussian_nll(
    mean: ArrayLike,
    targets: ArrayLike,
    *,
    variance: float = 1.0,
    include_constant: bool = False,
    event_reduction: str = 'sum',
) -> Array:
  """Negative log-likelihood of a Gaussian with fixed variance σ²: `0.5 · (x − mean)² / σ²`.

  Args:
    mean: [batch, ...], the decoder's mean (e.g. sigmoid of its logits).
    targets: same shape as `mean`.
    variance: the fixed variance σ².
    include_constant: add `0.5 · log(2π σ²)` per element (usually dropped: no effect on gradients).
    event_reduction: over all non-batch axes: 'sum', 'mean' or 'none'.

  Returns:
    [batch] (or the input shape with 'none').
  """
  mean, targets = as_float(mean), as_float(targets)
  nll = 0.5 * jnp.square(targets - mean) / variance
  if include_constant:
    nll = nll + 0.5 * (_LOG_2PI + math.log(variance))
  return reduce_events(nll, event_reduction)


def mse(predictions: ArrayLike, targets: ArrayLike, *, event_reduction: str = 'mean') -> Array:
  """Squared error `(y − x)²` per example: mean over pixels by default, or 'sum', or 'none'.

  `predictions` are compared as they are (no activation is applied).

  Args:
    predictions: [batch, ...].
    targets: same shape as `predictions`.
    event_reduction: over all non-batch axes.

  Returns:
    [batch] (or the input shape with 'none').
  """
  predictions, targets = as_float(predictions), as_float(targets)
  return reduce_events(jnp.square(predictions - targets), event_reduction)


def batch_cov(z: ArrayLike) -> Array:
  """Biased covariance over the batch, `E_b[z zᵀ] − E_b[z] E_b[z]ᵀ` (divides by batch).

  Args:
    z: [batch, dims].

  Returns:
    [dims, dims].
  """
  z = jnp.asarray(z)
  centered = z - jnp.mean(z, axis=0, keepdims=True)
  return centered.T @ centered / z.shape[0]


def clipped_log(p: ArrayLike, eps: float = 1e-6) -> Array:
  """`log(clip(p, eps, 1 − eps))`: dlib's guard on discriminator probabilities."""
  return jnp.log(jnp.clip(jnp.asarray(p), eps, 1.0 - eps))

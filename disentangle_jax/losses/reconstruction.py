"""Reconstruction terms and the deterministic autoencoder loss.

Decoders output *logits* [batch, H, W, C]; the image they stand for is `sigmoid(logits)`. The
likelihood says how those logits are scored against images in [0, 1]:
  'bernoulli': Bernoulli with logits, `softplus(l) − x·l` (dlib's `bernoulli_loss`);
  'gaussian':  Gaussian with fixed unit variance around `sigmoid(l)`, `0.5 · (x − sigmoid(l))²`;
  'mse':       squared error `(x − sigmoid(l))²` (dlib's `l2_loss`, twice the 'gaussian' value).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common

Array = jax.Array

LIKELIHOODS = ('bernoulli', 'gaussian', 'mse')


def reconstruction_loss(
    images: ArrayLike,
    logits: ArrayLike,
    *,
    likelihood: str = 'bernoulli',
    event_reduction: str = 'sum',
) -> Array:
  """Per-example reconstruction negative log-likelihood (up to constants).

  Args:
    images: [batch, H, W, C] targets in [0, 1].
    logits: [batch, H, W, C] decoder outputs.
    likelihood: 'bernoulli', 'gaussian' or 'mse' (see the module docstring).
    event_reduction: over pixels: 'sum' (dlib, nats per image), 'mean' (per pixel) or 'none'.

  Returns:
    [batch] (or [batch, H, W, C] with 'none').
  """
  images, logits = jnp.asarray(images), jnp.asarray(logits)
  if images.shape != logits.shape:
    raise ValueError(f'images {images.shape} and logits {logits.shape} must have the same shape')
  if likelihood == 'bernoulli':
    return common.bernoulli_nll_logits(images, logits, event_reduction=event_reduction)
  if likelihood == 'gaussian':
    return common.gaussian_nll(images, jax.nn.sigmoid(logits), event_reduction=event_reduction)
  if likelihood == 'mse':
    return common.mse(images, jax.nn.sigmoid(logits), event_reduction=event_reduction)
  raise ValueError(f'likelihood must be one of {LIKELIHOODS}, got {likelihood!r}')


def autoencoder_loss(
    images: ArrayLike,
    logits: ArrayLike,
    *,
    likelihood: str = 'bernoulli',
    event_reduction: str = 'sum',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """The deterministic autoencoder's loss: reconstruction only.

  Args:
    images: [batch, H, W, C] in [0, 1].
    logits: [batch, H, W, C] decoder outputs.
    likelihood: 'bernoulli', 'gaussian' or 'mse'.
    event_reduction: over pixels, see `reconstruction_loss`.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, terms)`: loss is a scalar ([batch] with 'none'); terms = {'recon': same}.
  """
  recon = common.reduce_batch(
      reconstruction_loss(images, logits, likelihood=likelihood, event_reduction=event_reduction),
      reduction,
  )
  return recon, {'recon': recon}

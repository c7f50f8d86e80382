"""Reconstruction terms and the deterministic autoencoder loss.

Decoders output *logits* [batch, H, W, C]. The likelihood says how they are scored against
targets:
  'bernoulli': Bernoulli with logits, `softplus(l) − x·l` (dlib's `bernoulli_loss`);
  'gaussian':  Gaussian with fixed unit variance around `act(l)`, `0.5 · (x − act(l))²`;
  'mse':       squared error `(x − act(l))²` (dlib's `l2_loss`, twice the 'gaussian' value).
`act` is `output_activation`: 'sigmoid' (images in [0, 1], the default), 'tanh' (images in
[−1, 1], e.g. the mixing autoencoder of Hu et al. 2018) or 'identity' (the logits are the mean).
The primitive `common.mse(predictions, targets)` applies no activation: call it with the
decoder's mean when that is what you have.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common

Array = jax.Array

LIKELIHOODS = ('bernoulli', 'gaussian', 'mse')
OUTPUT_ACTIVATIONS = {'sigmoid': jax.nn.sigmoid, 'tanh': jnp.tanh, 'identity': lambda x: x}


def reconstruction_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    likelihood: str = 'bernoulli',
    event_reduction: str = 'sum',
    output_activation: str = 'sigmoid',
) -> Array:
  """Per-example reconstruction negative log-likelihood (up to constants).

  Args:
    logits: [batch, H, W, C] decoder outputs.
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    likelihood: 'bernoulli', 'gaussian' or 'mse' (see the module docstring).
    event_reduction: over pixels: 'sum' (dlib, nats per image), 'mean' (per pixel) or 'none'.
    output_activation: the decoder mean of 'gaussian' and 'mse': 'sigmoid', 'tanh' or
      'identity' ('bernoulli' always reads logits).

  Returns:
    [batch] (or [batch, H, W, C] with 'none'), float32 or wider.
  """
  logits, targets = common.as_float(logits), common.as_float(targets)
  if targets.shape != logits.shape:
    raise ValueError(f'logits {logits.shape} and targets {targets.shape} must have the same shape')
  if likelihood == 'bernoulli':
    return common.bernoulli_nll_logits(logits, targets, event_reduction=event_reduction)
  if output_activation not in OUTPUT_ACTIVATIONS:
    raise ValueError(f'output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)}, '
                     f'got {output_activation!r}')
  mean = OUTPUT_ACTIVATIONS[output_activation](logits)
  if likelihood == 'gaussian':
    return common.gaussian_nll(mean, targets, event_reduction=event_reduction)
  if likelihood == 'mse':
    return common.mse(mean, targets, event_reduction=event_reduction)
  raise ValueError(f'likelihood must be one of {LIKELIHOODS}, got {likelihood!r}')


def autoencoder_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    likelihood: str = 'bernoulli',
    event_reduction: str = 'sum',
    output_activation: str = 'sigmoid',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """The deterministic autoencoder's loss: reconstruction only.

  Args:
    logits: [batch, H, W, C] decoder outputs.
    targets: [batch, H, W, C] images.
    likelihood, event_reduction, output_activation: see `reconstruction_loss`.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, terms)`: loss is a scalar ([batch] with 'none'); terms = {'recon': same}.
  """
  recon = common.reduce_batch(
      reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction=event_reduction,
                          output_activation=output_activation),
      reduction,
  )
  return recon, {'recon': recon}

"""Three latent-space regularisers for autoencoders (Newson, Almansa, Gousseau, Ladjal, JMIV 2020).

"Processing Simple Geometric Attributes with Autoencoders", Newson et al., Journal of
Mathematical Imaging and Vision 62 (2020), the section on regularising the latent space: an
autoencoder of centred disks with a 1-D latent, trained with some radii held out, only
interpolates correctly in the gap when its *encoder* is regularised; the decoder can be left
alone. Each term is added to the
autoencoder's L2 reconstruction loss with a weight λ:

  * type 1, distance preservation (`distance_preservation_loss`):
    `E_{x, x'} ( ‖x − x'‖²₂ − ‖E(x) − E(x')‖²₂ )²`, over all pairs of the batch;
  * type 2, denoising (`corrupt` then `denoising_loss`): reconstruct the clean image from a
    corrupted one, `‖D(E(x + η)) − x‖²₂` with η ~ N(0, σ²) (Vincent et al. 2008 for the denoising
    autoencoder);
  * type 3, weight decay on the encoder only (`weight_decay(params['encoder'])`):
    `Σ_ℓ ‖W^ℓ‖²₂` over the encoder's weight matrices and kernels.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common

Array = jax.Array

NOISE_KINDS = ('gaussian', 'masking')


def pairwise_squared_distances(x: ArrayLike) -> Array:
  """`‖x_a − x_b‖²₂` for every pair of rows of x [N, ...], flattened per row; [N, N], ≥ 0.

  Computed from the Gram matrix at full float32 matmul precision (no TF32 on GPUs), clipped at 0
  against rounding; the diagonal is exactly 0.
  """
  x = common.as_float(x)
  x = x.reshape(x.shape[0], -1)
  sq = jnp.sum(jnp.square(x), axis=1)
  gram = jnp.matmul(x, x.T, precision=jax.lax.Precision.HIGHEST)
  d = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
  return d * (1.0 - jnp.eye(x.shape[0], dtype=d.dtype))


def distance_preservation_loss(
    codes: ArrayLike,
    images: ArrayLike,
    *,
    image_scale: float = 1.0,
    reduction: str = 'mean',
) -> Array:
  """Type-1 regulariser of Newson et al. (2020): keep latent distances equal to image distances.

  For every unordered pair {a, b} of the batch (a < b):
  `( s · ‖x_a − x_b‖²₂ − ‖z_a − z_b‖²₂ )²`, s = `image_scale` (1 as published; a smaller s lets
  a low-dimensional code match the scale of large images without changing the penalty's form).

  Args:
    codes: [B, D] latent codes E(x).
    images: [B, ...] the encoded images (targets: no gradient is meant to reach them).
    image_scale: s, multiplies the image distances.
    reduction: over the B(B − 1)/2 pairs: 'mean' (the expectation over pairs, default), 'sum',
      or 'none' (the per-pair values in `jnp.triu_indices(B, 1)` order).

  Returns:
    A scalar ([B(B − 1)/2] with 'none'), at least float32.
  """
  codes, images = common.as_float(codes), common.as_float(images)
  if codes.ndim != 2:
    raise ValueError(f'codes must be [batch, latents], got shape {codes.shape}')
  if images.shape[0] != codes.shape[0]:
    raise ValueError(
        f'images {images.shape} and codes {codes.shape} must have the same batch size'
    )
  if codes.shape[0] < 2:
    raise ValueError('distance_preservation_loss needs a batch of at least 2 to form pairs')
  gap = image_scale * pairwise_squared_distances(images) - pairwise_squared_distances(codes)
  rows, cols = jnp.triu_indices(codes.shape[0], k=1)
  return common.reduce_batch(jnp.square(gap[rows, cols]), reduction)


def corrupt(
    rng: jax.Array,
    images: ArrayLike,
    *,
    noise_level: float = 0.1,
    kind: str = 'gaussian',
    clip: tuple[float, float] | None = None,
) -> Array:
  """The denoising autoencoder's corruption of its input (Vincent et al. 2008; Newson et al. 2020).

  Args:
    rng: a PRNG key.
    images: [B, ...].
    noise_level: 'gaussian': the standard deviation σ of additive noise η ~ N(0, σ²) (Newson et al.
      use additive Gaussian noise; 0.1 for images in [0, 1] is our default); 'masking': the
      probability that each element is set to 0.
    kind: 'gaussian' or 'masking'.
    clip: optional (low, high) to clip the corrupted images to, e.g. (0, 1); None keeps them.

  Returns:
    [B, ...] corrupted images, the input's dtype widened to at least float32.
  """
  images = common.as_float(images)
  if kind == 'gaussian':
    noisy = images + noise_level * jax.random.normal(rng, images.shape, images.dtype)
  elif kind == 'masking':
    keep = jax.random.bernoulli(rng, 1.0 - noise_level, images.shape)
    noisy = jnp.where(keep, images, 0.0)
  else:
    raise ValueError(f'kind must be one of {NOISE_KINDS}, got {kind!r}')
  if clip is not None:
    noisy = jnp.clip(noisy, clip[0], clip[1])
  return noisy


def denoising_loss(
    predictions: ArrayLike,
    clean_images: ArrayLike,
    *,
    event_reduction: str = 'sum',
    reduction: str = 'mean',
) -> Array:
  """Type-2 regulariser of Newson et al. (2020): `‖D(E(x + η)) − x‖²₂` against the *clean* image.

  It replaces the plain reconstruction term: pass the decoding of the corrupted input
  (`corrupt`) and the uncorrupted images.

  Args:
    predictions: [B, ...] D(E(corrupt(x))).
    clean_images: [B, ...] x, same shape.
    event_reduction: over each image's elements: 'sum' (the squared ℓ2 norm, default), 'mean'.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    A scalar ([B] with 'none'), at least float32.
  """
  predictions, clean_images = common.as_float(predictions), common.as_float(clean_images)
  if predictions.shape != clean_images.shape:
    raise ValueError(
        f'predictions {predictions.shape} and clean_images {clean_images.shape} must have the same'
        ' shape'
    )
  if event_reduction not in ('sum', 'mean'):
    raise ValueError(f"event_reduction must be 'sum' or 'mean', got {event_reduction!r}")
  per_example = common.reduce_events(jnp.square(predictions - clean_images), event_reduction)
  return common.reduce_batch(per_example, reduction)


def weight_decay(params: Any, *, weights_only: bool = True) -> Array:
  """Type-3 regulariser of Newson et al. (2020): `Σ_ℓ ‖W^ℓ‖²₂` over one parameter subtree.

  Pass the encoder's subtree only, e.g. `weight_decay(params['encoder'])`: Newson et al. regularise
  the encoder and leave the decoder free. With `weights_only` (default), only leaves of two or
  more dimensions count (dense matrices, convolution kernels); biases and normalisation scales
  (1-D) are excluded. No ½ factor, as published.

  Args:
    params: any pytree of arrays.
    weights_only: skip leaves with fewer than two dimensions.

  Returns:
    A float32 scalar (0 for an empty tree).
  """
  total = jnp.zeros((), jnp.float32)
  for leaf in jax.tree_util.tree_leaves(params):
    leaf = common.as_float(leaf)
    if weights_only and leaf.ndim < 2:
      continue
    total = total + jnp.sum(jnp.square(leaf)).astype(jnp.float32)
  return total

"""The mixing autoencoder of Hu, Szabó, Portenier, Favaro and Zwicker (CVPR 2018).

"Disentangling Factors of Variation by Mixing Them", Hu et al., CVPR 2018: the encoder's
feature `f = Enc(x)` of size `n·d` is read as `n` chunks of `d` values, each meant to carry one
factor of variation. One training step (the method section of Hu et al. 2018, as implemented in
the authors' released TensorFlow code for Sprites):

  1. `f1 = Enc(x1)`, `f2 = Enc(x2)` for two independent images;
  2. a binary chunk mask `m ∈ {0, 1}ⁿ` (`sample_chunk_mask`), `m_i = 1` meaning "chunk i from x1";
  3. mix: `f_mix = m ⊙ f1 + (1 − m) ⊙ f2` (`mix_codes`), `x3 = Dec(f_mix)`;
  4. re-encode: `f3 = Enc(x3)`;
  5. unmix: `f4 = m ⊙ f3 + (1 − m) ⊙ f1` (`unmix_codes`), `x4 = Dec(f4)`, whose target is x1.

`mix_and_unmix(encode_fn, decode_fn, x1, x2, mask)` runs that sequence with any pair of functions,
so an objective passes closures over its parameters. The loss terms:

  * `mixing_loss(x4, x1)`: L_M, the squared error averaged over all elements (the released code's
    `reduce_mean`); the same function scores the plain autoencoder term
    L_AE = `mixing_loss(Dec(Enc(x)), x)`.
  * `gan_discriminator_loss(D(x1), D(x3))` and `gan_generator_loss(D(x3))`: the standard
    non-saturating GAN (Goodfellow et al. 2014, §3) as sigmoid cross-entropies of logits; the real
    sample is x1 and the fake one the mixed image x3.
  * `chunk_classifier_loss(C(x1, x2, x3), chunk_origin_labels(m))`: L_C, a sigmoid cross-entropy
    per chunk, minimised jointly by the encoder, the decoder and the classifier (Hu et al. 2018:
    it removes the shortcut where one chunk carries everything and the others are ignored).

Where gradients stop is the objective's business: the discriminator's loss takes logits of
`stop_gradient(x3)`; the generator's and the classifier's may flow through x3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common

Array = jax.Array


def sample_chunk_mask(
    rng: jax.Array,
    *,
    batch_size: int,
    num_chunks: int,
    per_example: bool = False,
    p_first: float = 0.5,
) -> Array:
  """Draws the chunk mask `m`: 1 where the chunk is taken from the first image, 0 from the second.

  The released code draws one mask per minibatch, `m_i ~ Bernoulli(½)` independently per chunk,
  shared by every pair in the batch (the "chunk dropout mask" of Hu et al. 2018); it does not
  exclude the all-ones or all-zeros masks, and neither do we. `per_example=True` draws one mask per
  pair instead.

  Args:
    rng: a PRNG key.
    batch_size: B, the number of image pairs.
    num_chunks: n, the number of chunks of the feature.
    per_example: one mask per pair (True) or one shared by the batch (False, the released code).
    p_first: the probability that a chunk comes from the first image.

  Returns:
    [B, n] float32 of 0.0 and 1.0 (all rows equal unless `per_example`).
  """
  shape = (batch_size, num_chunks) if per_example else (1, num_chunks)
  mask = jax.random.bernoulli(rng, p_first, shape).astype(jnp.float32)
  return jnp.broadcast_to(mask, (batch_size, num_chunks))


def _check_mask(codes: Array, mask: Array) -> tuple[Array, int]:
  """The mask as [B or 1, n] and the chunk size d = D / n, or an error naming the mismatch."""
  if codes.ndim != 2:
    raise ValueError(f'codes must be [batch, num_chunks * chunk_size], got shape {codes.shape}')
  if mask.ndim == 1:
    mask = mask[None, :]
  if mask.ndim != 2 or mask.shape[0] not in (1, codes.shape[0]):
    raise ValueError(
        f'mask must be [num_chunks] or [batch, num_chunks] with batch {codes.shape[0]}, got shape'
        f' {mask.shape}'
    )
  num_chunks = mask.shape[1]
  if codes.shape[1] % num_chunks:
    raise ValueError(
        f'codes of size {codes.shape[1]} cannot be split into {num_chunks} equal chunks: make the'
        ' feature size a multiple of the mask length'
    )
  return mask, codes.shape[1] // num_chunks


def expand_chunk_mask(mask: ArrayLike, chunk_size: int) -> Array:
  """Repeats each chunk's entry of `mask` over its `chunk_size` feature dimensions.

  Args:
    mask: [B, n] (or [n]) chunk mask.
    chunk_size: d.

  Returns:
    [B, n·d] (or [n·d]), chunk i covering columns `i·d … (i+1)·d − 1`.
  """
  return jnp.repeat(jnp.asarray(mask), chunk_size, axis=-1)


def mix_codes(first: ArrayLike, second: ArrayLike, mask: ArrayLike) -> Array:
  """`m ⊙ first + (1 − m) ⊙ second`, chunk by chunk (the mixing step of Hu et al. 2018).

  Computed as a selection, so each output value is exactly one of the inputs' values.

  Args:
    first: [B, n·d] codes (f1).
    second: [B, n·d] codes (f2).
    mask: [B, n] or [n]; 1 takes the chunk from `first`, 0 from `second`. d = (n·d) / n.

  Returns:
    [B, n·d], the dtype of `first` and `second` combined.
  """
  first, second = jnp.asarray(first), jnp.asarray(second)
  if first.shape != second.shape:
    raise ValueError(f'first {first.shape} and second {second.shape} codes must have one shape')
  mask, chunk_size = _check_mask(first, jnp.asarray(mask))
  return jnp.where(expand_chunk_mask(mask, chunk_size) > 0.5, first, second)


def unmix_codes(reencoded: ArrayLike, first: ArrayLike, mask: ArrayLike) -> Array:
  """`m ⊙ f3 + (1 − m) ⊙ f1` (the unmixing step of Hu et al. 2018).

  The chunks of the mixed image x3 that came from x1 are read back from `Enc(x3)`; the chunks
  that came from x2 are replaced by x1's own, so decoding the result should give x1 back.

  Args:
    reencoded: [B, n·d], f3 = Enc(Dec(f_mix)).
    first: [B, n·d], f1 = Enc(x1).
    mask: the same mask as `mix_codes` was given.

  Returns:
    [B, n·d].
  """
  return mix_codes(reencoded, first, mask)


class MixingPass(NamedTuple):
  """Every tensor of one mixing/unmixing pass (Hu et al. 2018); leading axis the batch."""

  first_codes: Array  # f1 = Enc(x1)
  second_codes: Array  # f2 = Enc(x2)
  mixed_codes: Array  # f_mix
  mixed_images: Array  # x3 = Dec(f_mix)
  reencoded_codes: Array  # f3 = Enc(x3)
  unmixed_codes: Array  # f4
  unmixed_images: Array  # x4 = Dec(f4), target x1
  first_reconstructions: Array  # Dec(f1), for the autoencoder term
  second_reconstructions: Array  # Dec(f2), for the autoencoder term


def mix_and_unmix(
    encode_fn: Callable[[Array], Array],
    decode_fn: Callable[[Array], Array],
    first_images: ArrayLike,
    second_images: ArrayLike,
    mask: ArrayLike,
) -> MixingPass:
  """Runs the mixing and unmixing sequence of Hu et al. (2018) with the given networks.

  Pure in its arguments: `encode_fn` and `decode_fn` are closures over parameters (e.g.
  `lambda x: encoder.apply(params['encoder'], x)`). Under `jax.jit`, the outputs an objective
  does not use (say the reconstructions when the autoencoder term is off) are never computed.

  Args:
    encode_fn: images [B, ...] -> codes [B, n·d].
    decode_fn: codes [B, n·d] -> images [B, ...] (in the images' value range).
    first_images: [B, ...], x1.
    second_images: [B, ...], x2, independent of x1.
    mask: [B, n] or [n] chunk mask, 1 = chunk from x1 (`sample_chunk_mask`).

  Returns:
    A `MixingPass`. L_M is `mixing_loss(pass.unmixed_images, first_images)`.
  """
  f1 = encode_fn(first_images)
  f2 = encode_fn(second_images)
  f_mix = mix_codes(f1, f2, mask)
  x3 = decode_fn(f_mix)
  f3 = encode_fn(x3)
  f4 = unmix_codes(f3, f1, mask)
  return MixingPass(
      first_codes=f1,
      second_codes=f2,
      mixed_codes=f_mix,
      mixed_images=x3,
      reencoded_codes=f3,
      unmixed_codes=f4,
      unmixed_images=decode_fn(f4),
      first_reconstructions=decode_fn(f1),
      second_reconstructions=decode_fn(f2),
  )


def mixing_loss(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: str = 'mean'
) -> Array:
  """Squared error averaged over each image's elements: L_M and L_AE of Hu et al. (2018).

  L_M = `mixing_loss(x4, x1)`, L_AE = `mixing_loss(Dec(Enc(x)), x)`. With the default
  `reduction='mean'` the value is the mean over batch × H × W × C, the released code's
  `reduce_mean(square(·))` on images in [−1, 1].

  Args:
    predictions: [B, ...] decoded images.
    targets: [B, ...] images, same shape.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    A scalar ([B] with 'none'), at least float32.
  """
  predictions, targets = common.as_float(predictions), common.as_float(targets)
  if predictions.shape != targets.shape:
    raise ValueError(
        f'predictions {predictions.shape} and targets {targets.shape} must have the same shape'
    )
  per_example = jnp.mean(jnp.square(predictions - targets).reshape(targets.shape[0], -1), axis=1)
  return common.reduce_batch(per_example, reduction)


def _sigmoid_cross_entropy(logits: Array, labels: Array) -> Array:
  """Elementwise `−[y log σ(l) + (1 − y) log(1 − σ(l))] = softplus(l) − y·l`, stable for any l."""
  return jax.nn.softplus(logits) - labels * logits


def _per_example_mean(values: Array) -> Array:
  return jnp.mean(values.reshape(values.shape[0], -1), axis=1)


def gan_discriminator_loss(
    real_logits: ArrayLike, fake_logits: ArrayLike, *, reduction: str = 'mean'
) -> Array:
  """The discriminator's loss `BCE(1, D(x_real)) + BCE(0, D(x_fake))`, from logits.

  Goodfellow et al. (2014, Eq. 1), as used by Hu et al. (2018): the real sample is x1 and
  the fake one the mixed image x3. Each cross-entropy is averaged over the batch (the released
  code), then the two are added: zero logits give `2 log 2`. Pass logits of `stop_gradient(x3)`.
  The released code clips the log of sigmoid probabilities at 1e-12; from logits no clip is needed
  (they differ only where |logit| > 27).

  Args:
    real_logits: [B] or [B, 1] discriminator logits on real images.
    fake_logits: [B] or [B, 1] logits on generated (mixed) images; B may differ from the real one
      only with `reduction` 'mean' or 'sum'.
    reduction: over the batch, applied to each term: 'mean', 'sum' or 'none' ([B] per example,
      real and fake batches of equal size).

  Returns:
    A scalar ([B] with 'none'), at least float32.
  """
  real_logits, fake_logits = common.as_float(real_logits), common.as_float(fake_logits)
  real = _per_example_mean(_sigmoid_cross_entropy(real_logits, jnp.ones_like(real_logits)))
  fake = _per_example_mean(_sigmoid_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)))
  if reduction == 'none':
    return real + fake
  return common.reduce_batch(real, reduction) + common.reduce_batch(fake, reduction)


def gan_generator_loss(fake_logits: ArrayLike, *, reduction: str = 'mean') -> Array:
  """The non-saturating generator loss `BCE(1, D(x_fake)) = softplus(−logit)`, from logits.

  Goodfellow et al. (2014, §3): the generator maximises log D(G(z)) rather than minimising
  log(1 − D(G(z))). In Hu et al. (2018) the generator is the encoder and decoder together
  and the fake image the mix x3; the gradient flows through the discriminator into x3, and the
  objective applies it to the generator's parameters only. Zero logits give `log 2`.

  Args:
    fake_logits: [B] or [B, 1] discriminator logits on generated images.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    A scalar ([B] with 'none'), at least float32.
  """
  fake_logits = common.as_float(fake_logits)
  per_example = _per_example_mean(_sigmoid_cross_entropy(fake_logits, jnp.ones_like(fake_logits)))
  return common.reduce_batch(per_example, reduction)


def chunk_origin_labels(mask: ArrayLike) -> Array:
  """The chunk classifier's targets: 1 where the chunk of x3 came from x2, i.e. `1 − m`.

  This is the released code's polarity (its label is the Bernoulli draw that selects x2's chunk).
  Either polarity trains alike if used consistently.

  Args:
    mask: [B, n] or [n] chunk mask (1 = from x1).

  Returns:
    The same shape, float32.
  """
  return 1.0 - jnp.asarray(mask, jnp.float32)


def chunk_classifier_loss(
    logits: ArrayLike, targets: ArrayLike, *, reduction: str = 'mean'
) -> Array:
  """L_C of Hu et al. (2018): the sigmoid cross-entropy of the chunk-origin classifier.

  The classifier sees (x1, x2, x3) stacked along channels and predicts, for each chunk, whether
  x3 took it from x2 (label 1) or x1 (label 0). The loss is the mean over chunks per example, then
  the batch reduction; the default is the released code's mean over batch × chunks. Perfect logits
  give ≈ 0, zero logits `log 2`.

  Args:
    logits: [B, n] classifier logits.
    targets: [B, n] or [n] labels in [0, 1], usually `chunk_origin_labels(mask)`.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    A scalar ([B] with 'none'), at least float32.
  """
  logits = common.as_float(logits)
  targets = jnp.asarray(targets, logits.dtype)
  if logits.ndim != 2:
    raise ValueError(f'logits must be [batch, num_chunks], got shape {logits.shape}')
  if targets.shape[-1] != logits.shape[-1]:
    raise ValueError(
        f'targets {targets.shape} must have one label per chunk of logits {logits.shape}'
    )
  targets = jnp.broadcast_to(targets, logits.shape)
  per_example = jnp.mean(_sigmoid_cross_entropy(logits, targets), axis=1)
  return common.reduce_batch(per_example, reduction)

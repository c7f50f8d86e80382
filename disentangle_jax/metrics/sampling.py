"""Codes and factors from a ground-truth dataset and an encoder, for the sampled metrics.

This is the thin sampling wrapper in front of the array cores (dlib's
`generate_batch_factor_code`), but with our array layout: codes `[N, D]` and factors `[N, K]`
(dlib returns their transposes).

A ground truth is anything with the `disentangle_jax.data.ground_truth.GroundTruthData` surface
used here: `factor_sizes`, `sample_factors(rng: np.random.Generator, n) -> int [n, K]` (uniform and
independent per factor) and `images_for(factors [n, K]) -> float32 [n, H, W, C]`. An encoder is
any `encode_fn(images [n, H, W, C]) -> codes [n, D]` (a VAE's posterior mean); it may be a jitted
JAX function: batches are padded to a fixed size so it compiles once.

Determinism: every function takes a `np.random.Generator` and draws from it in a fixed order, so
the same seed gives the same factors, whatever the batch size.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

EncodeFn = Callable[[np.ndarray], Any]

#: dlib's batch size for encoding observations in most metrics.
DEFAULT_BATCH_SIZE = 16
#: Images rendered and encoded per call when a metric needs many (BetaVAE, FactorVAE votes).
DEFAULT_CHUNK_SIZE = 1024


def encode_in_batches(
  encode_fn: EncodeFn,
  images: np.ndarray,
  batch_size: int = DEFAULT_BATCH_SIZE,
  *,
  pad: bool = True,
  check_finite: bool = True,
) -> np.ndarray:
  """Encodes `images [n, H, W, C]` in batches; returns float64 codes `[n, D]`.

  Args:
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`.
    images: the observations.
    batch_size: images per call of `encode_fn`.
    pad: pad the last batch to `batch_size` (repeating its last image; the padding's codes are
      dropped) so that a jitted encoder sees a single shape.
    check_finite: raise a ValueError if a code is NaN or infinite (a diverged model), rather than
      letting it become a silent NaN score downstream.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  images = np.asarray(images)
  n = images.shape[0]
  if n == 0:
    raise ValueError('no images to encode')
  out = []
  for start in range(0, n, batch_size):
    batch = images[start : start + batch_size]
    b = batch.shape[0]
    if pad and b < batch_size:
      batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - b, axis=0)], axis=0)
    codes = np.asarray(encode_fn(batch), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != batch.shape[0]:
      raise ValueError(
        f'encode_fn must map [b, H, W, C] to [b, D]; got {codes.shape} for {batch.shape}'
      )
    out.append(codes[:b])
  codes = np.concatenate(out, axis=0)
  if check_finite and not np.all(np.isfinite(codes)):
    bad = np.flatnonzero(~np.all(np.isfinite(codes), axis=0))
    raise ValueError(f'the encoder returned NaN or infinite codes (code dimensions {bad.tolist()})')
  return codes


def codes_for_factors(
  ground_truth,
  encode_fn: EncodeFn,
  factors: np.ndarray,
  batch_size: int = DEFAULT_BATCH_SIZE,
  *,
  chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
  """Renders `factors [n, K]` and encodes them; returns codes `[n, D]`.

  Rendering goes `chunk_size` factor rows at a time so that memory stays bounded when `n` is large
  (a BetaVAE score encodes 1.9 million images).
  """
  factors = np.asarray(factors)
  if factors.ndim != 2:
    raise ValueError(f'factors must be [n, K], got shape {factors.shape}')
  chunk = max(batch_size, (chunk_size // batch_size) * batch_size)
  out = []
  for start in range(0, factors.shape[0], chunk):
    images = ground_truth.images_for(factors[start : start + chunk])
    out.append(encode_in_batches(encode_fn, images, batch_size))
  return np.concatenate(out, axis=0)


def sample_codes_and_factors(
  ground_truth,
  encode_fn: EncodeFn,
  num_points: int,
  rng: np.random.Generator,
  batch_size: int = DEFAULT_BATCH_SIZE,
  *,
  chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
  """Samples factors uniformly, renders and encodes them (dlib `generate_batch_factor_code`).

  Args:
    ground_truth: a `GroundTruthData`.
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`.
    num_points: number of points N.
    rng: the generator every draw comes from.
    batch_size: images per `encode_fn` call (dlib: 16).
    chunk_size: images rendered at once.

  Returns:
    `(codes [N, D] float64, factors [N, K] int64)`.
  """
  if num_points < 1:
    raise ValueError(f'num_points must be >= 1, got {num_points}')
  factors = np.asarray(ground_truth.sample_factors(rng, num_points), dtype=np.int64)
  codes = codes_for_factors(ground_truth, encode_fn, factors, batch_size, chunk_size=chunk_size)
  return codes, factors


def irs_sampled(
  ground_truth,
  encode_fn: EncodeFn,
  rng: np.random.Generator,
  *,
  num_points: int = 10_000,
  batch_size: int = DEFAULT_BATCH_SIZE,
  diff_quantile: float = 0.99,
  num_bins: int = 20,
) -> dict:
  """IRS over a ground truth (dlib `compute_irs`): sample `num_points`, encode, call the core.

  The array core is `disentangle_jax.metrics.irs.irs(codes, factors, diff_quantile, num_bins)`,
  which discretises the factors with a `num_bins` histogram as dlib does.
  """
  from disentangle_jax.metrics import irs as irs_module  # pylint: disable=g-import-not-at-top

  codes, factors = sample_codes_and_factors(ground_truth, encode_fn, num_points, rng, batch_size)
  return irs_module.irs(codes, factors, diff_quantile=diff_quantile, num_bins=num_bins)

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

Streaming: `codes_for_factors` renders a few MB of images at a time on a worker thread, the next
piece while this one is encoded, with batches where rendering everything at once would put them,
so codes do not depend on the pieces. `report_encoded` lets a progress line count the images.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import math
from typing import Any, Callable, Iterator

import numpy as np

EncodeFn = Callable[[np.ndarray], Any]

#: dlib's batch size for encoding observations in most metrics.
DEFAULT_BATCH_SIZE = 16
#: Images rendered and encoded per call when a metric needs many (BetaVAE, FactorVAE votes).
DEFAULT_CHUNK_SIZE = 1024
#: Bytes of float32 images per piece of a rendering stream (`stream_size`): well under glibc's
#: largest mmap threshold (32 MiB), so the pieces' buffers are reused, not mapped per piece, and
#: the peak memory is a few pieces, not a 8,192-image chunk (128 MiB of 64x64 images). The
#: encoder's own per-call temporaries are another matter: see `training.host_memory`.
STREAM_BYTES = 8 * 1024 * 1024


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
      padded = np.empty((batch_size, *batch.shape[1:]), batch.dtype)
      padded[:b] = batch
      padded[b:] = batch[-1:]
      batch = padded
    codes = np.asarray(encode_fn(batch), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != batch.shape[0]:
      raise ValueError(
        f'encode_fn must map [b, H, W, C] to [b, D]; got {codes.shape} for {batch.shape}'
      )
    out.append(codes[:b])
  codes = out[0] if len(out) == 1 else np.concatenate(out, axis=0)
  if check_finite and not np.all(np.isfinite(codes)):
    bad = np.flatnonzero(~np.all(np.isfinite(codes), axis=0))
    raise ValueError(f'the encoder returned NaN or infinite codes (code dimensions {bad.tolist()})')
  _report_encoded(n)
  return codes


def stream_size(ground_truth, batch_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
  """Images rendered per piece of `codes_for_factors`' stream: about `STREAM_BYTES` of float32
  images, a multiple of `batch_size`, at most `chunk_size` (rounded down to whole batches)."""
  shape = getattr(ground_truth, 'image_shape', None)
  image_bytes = 4 * math.prod(shape) if shape else 4 * 64 * 64 * 3
  chunk = max(batch_size, (chunk_size // batch_size) * batch_size)
  target = max(batch_size, (STREAM_BYTES // image_bytes) // batch_size * batch_size)
  return min(chunk, target)


def stream_images(
  images_fn: Callable[[np.ndarray], np.ndarray], factors: np.ndarray, piece: int
) -> Iterator[np.ndarray]:
  """Yields `images_fn(factors[i : i + piece])` for i = 0, piece, 2 piece, ...; the next piece
  is rendered on a worker thread while the caller works on (encodes) this one.

  The renderers are numpy, which releases the GIL in its array loops, and a jitted encoder runs
  without it: the two overlap on two cores. At most two pieces exist at once (the one yielded
  and the one being rendered).
  """
  n = factors.shape[0]
  if n == 0:
    return
  with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='render') as pool:
    pending = pool.submit(images_fn, factors[:piece])
    for start in range(0, n, piece):
      images = pending.result()
      following = start + piece
      if following < n:
        pending = pool.submit(images_fn, factors[following : following + piece])
      yield images
      del images  # the piece's memory is free (for the next but one) before the next wait


def codes_for_factors(
  ground_truth,
  encode_fn: EncodeFn,
  factors: np.ndarray,
  batch_size: int = DEFAULT_BATCH_SIZE,
  *,
  chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
  """Renders `factors [n, K]` and encodes them; returns codes `[n, D]`.

  Images are rendered a piece at a time (`stream_size`: a few MB, whole batches, at most
  `chunk_size`), the next piece while this one is encoded (`stream_images`), so memory stays
  bounded when `n` is large (a BetaVAE score encodes 1.9 million images) and rendering overlaps
  encoding. Batches start at multiples of `batch_size`, whatever the pieces, so codes are the
  same as encoding all images at once.
  """
  factors = np.asarray(factors)
  if factors.ndim != 2:
    raise ValueError(f'factors must be [n, K], got shape {factors.shape}')
  piece = stream_size(ground_truth, batch_size, chunk_size)
  out = [
    encode_in_batches(encode_fn, images, batch_size)
    for images in stream_images(ground_truth.images_for, factors, piece)
  ]
  if not out:
    raise ValueError('no images to encode')
  return out[0] if len(out) == 1 else np.concatenate(out, axis=0)


# Who is told about encoded images (`report_encoded`); a context variable, so that threads and
# nested evaluations each see their own.
_ON_ENCODED: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
  'on_encoded', default=None
)


@contextlib.contextmanager
def report_encoded(callback: Callable[[int], None]) -> Iterator[None]:
  """Within the block, `callback(n)` runs after every `encode_in_batches` call with the number of
  images it encoded (a progress line counts them; see `training.progress.TaskProgress`)."""
  token = _ON_ENCODED.set(callback)
  try:
    yield
  finally:
    _ON_ENCODED.reset(token)


def _report_encoded(n: int) -> None:
  callback = _ON_ENCODED.get()
  if callback is not None:
    callback(n)


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

"""Pictures of a chunked representation: attribute transfer and mixing grids (Hu et al. 2018).

The mixing autoencoder (Hu, Szabó, Portenier, Favaro, Zwicker, CVPR 2018) reads its feature as
n chunks of d values; its qualitative figures swap chunks between images:

* `transfer_grid`: chunk j of each donor (left column) swapped into each target (top row): cell
  (r, c) decodes target c's feature with donor r's chunk j. One grid per chunk.
* `cumulative_transfer`: for each (target, donor) pair, chunks 0..j of the donor swapped into the
  target for growing j, from the target's own feature (nothing swapped) to the donor's whole one.
* `mixing_grid`: two rows of images x1 and x2, then one row per random chunk mask m: the decoded
  mix m⊙f1 + (1 − m)⊙f2 (m_i = 1: chunk i from x1), as in one training step.

Every function takes `decode_fn(codes [N, n·d]) -> images [N, H, W, C] in [0, 1]` (numpy in, numpy
out) and works in numpy; `decode_in_batches` feeds it fixed-size batches so a jitted decoder
compiles once. `mixing_pictures` draws them all with capped work: at most `num_pairs²·max_chunks +
num_pairs·(max_columns + num_masks)` decodes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from disentangle_jax.visualization import images as image_lib

DecodeFn = Callable[[np.ndarray], np.ndarray]
#: Decoder calls are padded to this many codes, so a jitted decoder compiles once.
DECODE_BATCH = 64


def _chunks(codes: np.ndarray, num_chunks: int) -> np.ndarray:
  codes = np.asarray(codes)
  if codes.ndim != 2 or num_chunks < 1 or codes.shape[1] % num_chunks:
    raise ValueError(f'codes must be [N, num_chunks * chunk_size] with num_chunks={num_chunks}, '
                     f'got shape {codes.shape}')
  return codes.reshape(codes.shape[0], num_chunks, -1)


def swap_chunks(targets, donors, chunk_mask, num_chunks: int) -> np.ndarray:
  """Targets' codes with the chunks where `chunk_mask` is true taken from the donors.

  Args:
    targets: [N, n·d] codes.
    donors: [N, n·d] codes (or [1, n·d], broadcast).
    chunk_mask: [n] or [N, n] booleans, True = take the donor's chunk.
    num_chunks: n.

  Returns:
    [N, n·d].
  """
  t = _chunks(targets, num_chunks)
  d = _chunks(donors, num_chunks)
  mask = np.asarray(chunk_mask, bool)
  mask = mask.reshape((1,) * (2 - mask.ndim) + mask.shape)[..., None]
  return np.where(mask, d, t).reshape(t.shape[0], -1)


def decode_in_batches(decode_fn: DecodeFn, codes, batch_size: int = DECODE_BATCH) -> np.ndarray:
  """`decode_fn` over `codes` [N, D] in batches of exactly `batch_size` (the last one padded)."""
  codes = np.asarray(codes)
  outputs = []
  for start in range(0, codes.shape[0], batch_size):
    part = codes[start:start + batch_size]
    pad = batch_size - part.shape[0]
    if pad:
      part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
    outputs.append(np.asarray(decode_fn(part))[:batch_size - pad])
  return np.concatenate(outputs)


def transfer_grid(decode_fn: DecodeFn, donor_codes, target_codes, chunk: int, num_chunks: int,
                  donor_images, target_images) -> np.ndarray:
  """Chunk `chunk` of each donor swapped into each target, framed by the originals.

  Returns:
    [R + 1, C + 1, H, W, Ch]: row 0 the targets (after a blank corner), column 0 the donors, cell
    (r + 1, c + 1) = Dec(target c with donor r's chunk).
  """
  donors, targets = np.asarray(donor_codes), np.asarray(target_codes)
  r, c = donors.shape[0], targets.shape[0]
  mask = np.arange(num_chunks) == chunk
  swapped = swap_chunks(np.tile(targets, (r, 1)), np.repeat(donors, c, axis=0), mask, num_chunks)
  cells = decode_in_batches(decode_fn, swapped).reshape(r, c, *np.shape(target_images)[1:])
  return _framed(cells, np.asarray(donor_images), np.asarray(target_images))


def _framed(cells, left, top) -> np.ndarray:
  """Cells [R, C, ...] with `left` [R, ...] before each row and `top` [C, ...] above, corner
  white."""
  cells, left, top = (image_lib.to_uint8(a) for a in (cells, left, top))
  corner = np.full((1, *top.shape[1:]), 255, np.uint8)
  header = np.concatenate([corner, top])[None]
  body = np.concatenate([left[:, None], cells], axis=1)
  return np.concatenate([header, body])


def cumulative_steps(num_chunks: int, max_columns: int) -> np.ndarray:
  """How many leading chunks each column swaps: 0 … n, at most `max_columns` values, evenly
  spaced, always including 0 and n."""
  if num_chunks + 1 <= max_columns:
    return np.arange(num_chunks + 1)
  return np.unique(np.round(np.linspace(0, num_chunks, max(2, max_columns))).astype(int))


def cumulative_transfer(decode_fn: DecodeFn, donor_codes, target_codes, num_chunks: int,
                        max_columns: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """Chunks 0..k−1 of donor p swapped into target p, for growing k (`cumulative_steps`).

  Returns:
    ([P, K, H, W, Ch] images, [K] the numbers of chunks swapped): column 0 is the target's own
    feature decoded, the last column the donor's.
  """
  donors, targets = np.asarray(donor_codes), np.asarray(target_codes)
  steps = cumulative_steps(num_chunks, max_columns)
  p = targets.shape[0]
  masks = np.arange(num_chunks)[None, :] < steps[:, None]  # [K, n]
  codes = swap_chunks(np.repeat(targets, len(steps), axis=0), np.repeat(donors, len(steps), axis=0),
                      np.tile(masks, (p, 1)), num_chunks)
  decoded = decode_in_batches(decode_fn, codes)
  return decoded.reshape(p, len(steps), *decoded.shape[1:]), steps


def mixing_grid(decode_fn: DecodeFn, first_codes, second_codes, masks, num_chunks: int
                ) -> np.ndarray:
  """Dec(m⊙f1 + (1 − m)⊙f2) for each mask m (rows) and pair (columns). Returns [M, P, H, W, Ch].
  """
  f1, f2 = np.asarray(first_codes), np.asarray(second_codes)
  masks = np.asarray(masks, bool)
  m, p = masks.shape[0], f1.shape[0]
  codes = swap_chunks(np.tile(f2, (m, 1)), np.tile(f1, (m, 1)), np.repeat(masks, p, axis=0),
                      num_chunks)
  decoded = decode_in_batches(decode_fn, codes)
  return decoded.reshape(m, p, *decoded.shape[1:])


def chunk_activity(codes, num_chunks: int) -> np.ndarray:
  """How much each chunk varies over a batch: the summed variance of its d values, [n]."""
  return _chunks(codes, num_chunks).var(axis=0).sum(axis=-1)


def _mask_label(mask: np.ndarray) -> str:
  if mask.size <= 16:
    return ''.join('1' if v else '0' for v in mask)
  return f'{int(mask.sum())}/{mask.size} from x1'


def mixing_pictures(encode_fn, decode_fn: DecodeFn, images, *, num_chunks: int, seed: int = 0,
                    num_pairs: int = 6, max_chunks: int = 8, max_columns: int = 10,
                    num_masks: int = 6) -> dict[str, np.ndarray]:
  """All pictures of a chunked autoencoder for one batch of images in [0, 1].

  The first `num_pairs` images are donors / x1, the next `num_pairs` targets / x2 (fewer when the
  batch is small).

  Returns:
    {'reconstructions', 'transfer_chunk_<j>' (one per chunk; the `max_chunks` most varying over
    the batch when there are more), 'transfer_cumulative', 'mixing'}: uint8 [H', W', C] grids.
  """
  images = np.asarray(images)
  if images.shape[0] < 2:
    raise ValueError(f'mixing pictures need at least 2 images, got {images.shape[0]}')
  codes = np.asarray(encode_fn(images))
  recon = decode_in_batches(decode_fn, codes)
  pictures = {'reconstructions': image_lib.reconstruction_grid(images, recon)}

  p = max(1, min(num_pairs, images.shape[0] // 2))
  donor_images, target_images = images[:p], images[p:2 * p]
  donors, targets = codes[:p], codes[p:2 * p]

  chunks = np.arange(num_chunks)
  if num_chunks > max_chunks:
    chunks = np.sort(np.argsort(-chunk_activity(codes, num_chunks), kind='stable')[:max_chunks])
  for j in chunks:
    cells = transfer_grid(decode_fn, donors, targets, int(j), num_chunks, donor_images,
                          target_images)
    pictures[f'transfer_chunk_{int(j):02d}'] = image_lib.labelled_grid(
        cells, title=f'chunk {int(j)}: left image -> top image')

  cumulative, steps = cumulative_transfer(decode_fn, donors, targets, num_chunks, max_columns)
  framed = np.concatenate([image_lib.to_uint8(target_images)[:, None],
                           image_lib.to_uint8(cumulative),
                           image_lib.to_uint8(donor_images)[:, None]], axis=1)
  pictures['transfer_cumulative'] = image_lib.labelled_grid(
      framed, col_labels=['B'] + [f'{k}' for k in steps] + ['A'],
      title='chunks 0..k-1 of A into B')

  masks = np.random.default_rng(seed).random((num_masks, num_chunks)) < 0.5
  mixed = mixing_grid(decode_fn, donors, targets, masks, num_chunks)
  rows = np.concatenate([image_lib.to_uint8(donor_images)[None],
                         image_lib.to_uint8(target_images)[None], image_lib.to_uint8(mixed)])
  pictures['mixing'] = image_lib.labelled_grid(
      rows, row_labels=['x1', 'x2'] + [_mask_label(m) for m in masks],
      title='rows: mask bits, 1 = chunk from x1')
  return pictures

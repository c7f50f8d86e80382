"""Latent traversals: decode one code with one dimension swept over a range of values.

`latent_traversal` builds every swept code at once and calls the decoder a single time, so a
jitted decoder compiles once per (dims, values) shape and runs as one batch. The result is a plain
array `[dims, values, H, W, C]`; `traversal_grid` draws it as a labelled PNG grid (rows = dims,
columns = values) and `traversal_gif_frames` as animation frames (all dims side by side, one frame
per value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from disentangle_jax.visualization import images as image_lib

DEFAULT_VALUES = np.linspace(-2.0, 2.0, 8)


def latent_traversal(
    decode_fn: Callable[[np.ndarray], np.ndarray],
    codes,
    *,
    dims: Sequence[int] | None = None,
    values=DEFAULT_VALUES,
    relative: bool = False,
) -> np.ndarray:
  """Decodes `codes` with each of `dims` set to each of `values`, in one batched call.

  Args:
    decode_fn: codes [B, D] -> images [B, H, W, C] in [0, 1] (a jitted decoder is fine).
    codes: the code to start from, [D] or [1, D].
    dims: which dimensions to sweep (default all D), in the order of the result's rows.
    values: [V] values used for every swept dimension, or [len(dims), V] one range per dimension
      (e.g. quantiles of each dimension's codes over data, see `values_from_codes`).
    relative: add `values` to the code's own value instead of replacing it.

  Returns:
    float32 [len(dims), V, H, W, C]: row i shows dimension dims[i] swept over its values, every
    other dimension held at the starting code.
  """
  codes = np.asarray(codes, np.float32)
  if codes.ndim == 2 and codes.shape[0] == 1:
    codes = codes[0]
  if codes.ndim != 1:
    raise ValueError(f'codes must be [D] or [1, D], got shape {codes.shape}')
  latent_dim = codes.shape[0]
  dims = np.arange(latent_dim) if dims is None else np.asarray(dims, int).reshape(-1)
  if dims.size == 0 or dims.min() < 0 or dims.max() >= latent_dim:
    raise ValueError(f'dims {dims.tolist()} out of range for a {latent_dim}-dimensional code')
  values = np.asarray(values, np.float32)
  if values.ndim == 1:
    values = np.broadcast_to(values, (dims.size, values.size))
  if values.ndim != 2 or values.shape[0] != dims.size:
    raise ValueError(f'values must be [V] or [len(dims)={dims.size}, V], got {values.shape}')
  num_values = values.shape[1]

  # swept[i, j] = codes with dimension dims[i] set to (or moved by) values[i, j].
  swept = np.broadcast_to(codes, (dims.size, num_values, latent_dim)).copy()
  rows = np.arange(dims.size)
  base = codes[dims][:, None] if relative else 0.0
  swept[rows, :, dims] = base + values
  decoded = np.asarray(decode_fn(swept.reshape(-1, latent_dim)), np.float32)
  if decoded.ndim != 4 or decoded.shape[0] != dims.size * num_values:
    raise ValueError(
        f'decode_fn returned shape {decoded.shape} for {dims.size * num_values} codes; '
        'expected [B, H, W, C]'
    )
  return decoded.reshape(dims.size, num_values, *decoded.shape[1:])


def values_from_codes(
    codes, *, num: int = 8, quantiles: tuple[float, float] = (0.05, 0.95)
) -> np.ndarray:
  """[D, num] traversal values spanning each dimension's range over a batch of codes [N, D].

  For models without a prior (a plain autoencoder) a fixed [-2, 2] can miss where the codes live;
  this spans the `quantiles` of the codes actually produced on data.
  """
  codes = np.asarray(codes, np.float32)
  low, high = np.quantile(codes, quantiles, axis=0)
  return np.linspace(low, high, num, axis=1)


def _format_value(v: float) -> str:
  return f'{v:+.2g}' if abs(v) < 10 else f'{v:+.0f}'


def default_row_labels(num_dims: int, dims=None, kl=None) -> list[str]:
  """'z3' per row, with 'KL 1.23' on a second line where per-dimension `kl` [D] is given."""
  dims = list(range(num_dims)) if dims is None else [int(d) for d in dims]
  labels = [f'z{d}' for d in dims]
  if kl is not None:
    kl = np.asarray(kl, np.float64).reshape(-1)
    labels = [f'{s}\nKL {kl[d]:.2f}' for s, d in zip(labels, dims)]
  return labels


def traversal_grid(
    traversal,
    *,
    dims: Sequence[int] | None = None,
    values=None,
    kl=None,
    row_labels: Sequence[str] | None = None,
    labels: bool = True,
    scale: int | None = None,
    padding: int = 2,
) -> np.ndarray:
  """A grid of a traversal: one row per dimension, one column per value.

  Args:
    traversal: [num_dims, V, H, W, C] from `latent_traversal`.
    dims: the dimension index of each row, for the labels (default 0..num_dims-1).
    values: [V] values, shown above the columns (omitted if None or per-dimension).
    kl: per-dimension KL [D] (indexed by `dims`), shown under each row's name: it tells an active
      dimension from a collapsed one at a glance.
    row_labels: explicit row labels, overriding dims/kl.
    labels: False draws the bare grid.
    scale: nearest-neighbour upsampling; None makes cells at least 64 px.
    padding: pixels between cells.

  Returns:
    uint8 [H', W', C].
  """
  traversal = np.asarray(traversal)
  if traversal.ndim != 5:
    raise ValueError(f'traversal must be [dims, values, H, W, C], got shape {traversal.shape}')
  col_labels = None
  if labels:
    if row_labels is None:
      row_labels = default_row_labels(traversal.shape[0], dims, kl)
    if values is not None and np.ndim(values) == 1:
      col_labels = [_format_value(v) for v in np.asarray(values)]
  else:
    row_labels = None
  return image_lib.labelled_grid(
      traversal, row_labels=row_labels, col_labels=col_labels, padding=padding, scale=scale
  )


def traversal_gif_frames(
    traversal,
    *,
    ping_pong: bool = True,
    dims: Sequence[int] | None = None,
    values=None,
    ncols: int | None = None,
    labels: bool = True,
    scale: int | None = None,
    padding: int = 2,
) -> list[np.ndarray]:
  """Frames of an animated traversal: frame j shows every dimension side by side at value j.

  Args:
    traversal: [num_dims, V, H, W, C] from `latent_traversal`.
    ping_pong: go back from the last value to the first (without repeating the ends), so a
      looping GIF moves smoothly back and forth.
    dims: the dimension index of each cell, for the labels (default 0..num_dims-1).
    values: [V] values; the frame's value is written below the cells when given.
    ncols: cells per row (default: all in one row up to 10, then rows of 10).
    labels: False draws bare frames.
    scale: nearest-neighbour upsampling; None makes cells at least 64 px.
    padding: pixels between cells.

  Returns:
    A list of uint8 [H', W', C] frames, all the same size: V frames, or 2V - 2 with ping_pong.
  """
  traversal = np.asarray(traversal)
  if traversal.ndim != 5:
    raise ValueError(f'traversal must be [dims, values, H, W, C], got shape {traversal.shape}')
  num_dims, num_values = traversal.shape[:2]
  ncols = min(ncols or 10, num_dims)
  nrows = -(-num_dims // ncols)
  names = [f'z{d}' for d in (range(num_dims) if dims is None else dims)]
  show_values = labels and values is not None and np.ndim(values) == 1
  order = list(range(num_values))
  if ping_pong and num_values > 2:
    order += list(range(num_values - 2, 0, -1))

  blank = np.ones((nrows * ncols - num_dims, *traversal.shape[2:]), traversal.dtype)
  if traversal.dtype == np.uint8:
    blank *= 255
  frames_by_value = []
  for j in range(num_values):
    cells = np.concatenate([traversal[:, j], blank]).reshape(nrows, ncols, *traversal.shape[2:])
    title = f'value {_format_value(float(np.asarray(values)[j]))}' if show_values else None
    if labels and nrows == 1:
      frame = image_lib.labelled_grid(
          cells, col_labels=names, title=title, padding=padding, scale=scale
      )
    elif labels:
      row_labels = [
          f'{names[r * ncols]}..{names[min((r + 1) * ncols, num_dims) - 1]}' for r in range(nrows)
      ]
      frame = image_lib.labelled_grid(
          cells, row_labels=row_labels, title=title, padding=padding, scale=scale
      )
    else:
      frame = image_lib.labelled_grid(cells, padding=padding, scale=scale)
    frames_by_value.append(frame)
  return [frames_by_value[j] for j in order]

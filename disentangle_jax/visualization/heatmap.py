"""A labelled heatmap of a matrix as a PNG (metric matrices: DCI importances, MIG, correlations).

Rendered with numpy and Pillow alone: viridis from a small table of anchor colours, each cell's
value written in it, row labels on the left, column labels on top (turned upright when they are
wider than a cell), a colour bar with its range on the right, and an optional title.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from disentangle_jax.visualization import images as image_lib

# viridis (matplotlib's default map, CC0) sampled at 9 evenly spaced points; linear interpolation
# between them stays within a couple of levels of the full 256-entry table.
_VIRIDIS_ANCHORS = np.array(
    [
        [0x44, 0x01, 0x54],
        [0x47, 0x2D, 0x7B],
        [0x3B, 0x52, 0x8B],
        [0x2C, 0x72, 0x8E],
        [0x21, 0x90, 0x8C],
        [0x27, 0xAD, 0x81],
        [0x5D, 0xC8, 0x63],
        [0xAA, 0xDC, 0x32],
        [0xFD, 0xE7, 0x25],
    ],
    np.float64,
)
_NAN_COLOR = np.array([200, 200, 200], np.uint8)


def viridis(x) -> np.ndarray:
  """uint8 RGB [..., 3] of values `x` in [0, 1] (clipped, NaN as 0); lightness rises with `x`."""
  x = np.clip(np.nan_to_num(np.asarray(x, np.float64), nan=0.0), 0.0, 1.0)
  position = x * (len(_VIRIDIS_ANCHORS) - 1)
  low = np.minimum(np.floor(position).astype(int), len(_VIRIDIS_ANCHORS) - 2)
  frac = (position - low)[..., None]
  rgb = _VIRIDIS_ANCHORS[low] * (1 - frac) + _VIRIDIS_ANCHORS[low + 1] * frac
  return np.rint(rgb).astype(np.uint8)


def _luminance(rgb) -> np.ndarray:
  return np.asarray(rgb, np.float64) @ np.array([0.299, 0.587, 0.114])


def _value_range(matrix: np.ndarray, vmin, vmax) -> tuple[float, float]:
  finite = matrix[np.isfinite(matrix)]
  lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
  hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
  if hi <= lo:
    hi = lo + 1.0
  return lo, hi


def render_heatmap(
    matrix,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    fmt: str = '{:.2f}',
    cell_size: int | None = None,
    font_size: int = 13,
) -> tuple[np.ndarray, dict]:
  """Draws the heatmap; returns `(uint8 RGB image, layout)`.

  `layout` has `top` and `left` (pixel of the first cell's corner), `cell_height`, `cell_width`
  and `value_range` (vmin, vmax), so tests and callers can find every cell.
  See `heatmap_png` for the arguments.
  """
  matrix = np.asarray(matrix, np.float64)
  if matrix.ndim != 2:
    raise ValueError(f'matrix must be [rows, cols], got shape {matrix.shape}')
  nrows, ncols = matrix.shape
  if len(row_labels) != nrows or len(col_labels) != ncols:
    raise ValueError(
        f'{len(row_labels)} row labels and {len(col_labels)} column labels for a '
        f'{nrows}x{ncols} matrix'
    )
  lo, hi = _value_range(matrix, vmin, vmax)
  texts = [[fmt.format(v) if np.isfinite(v) else str(v) for v in row] for row in matrix]
  widest = max(image_lib.text_size(t, font_size)[0] for row in texts for t in row)
  cell_w = max(cell_size or 0, widest + 10, 36)
  cell_h = max(cell_size or 0, 2 * font_size + 6, 28)
  pad = 6

  # Labels as coverage masks; column labels turned upright when wider than a cell.
  mask = image_lib.text_mask
  row_masks = [mask(str(s), font_size) for s in row_labels]
  col_masks = [mask(str(s), font_size) for s in col_labels]
  if max(m.shape[1] for m in col_masks) > cell_w - 4:
    col_masks = [np.rot90(m) for m in col_masks]
  title_mask = mask(title, font_size + 3) if title else None
  tick_masks = [mask(fmt.format(v), font_size) for v in (hi, (lo + hi) / 2, lo)]

  left = pad + max(m.shape[1] for m in row_masks) + pad
  top = pad + (title_mask.shape[0] + 2 * pad if title_mask is not None else 0)
  top += max(m.shape[0] for m in col_masks) + pad
  grid_h, grid_w = nrows * cell_h, ncols * cell_w
  bar_left, bar_w = left + grid_w + 2 * pad, 14
  width = bar_left + bar_w + pad + max(m.shape[1] for m in tick_masks) + pad
  if title_mask is not None:
    width = max(width, title_mask.shape[1] + 2 * pad)
  height = top + grid_h + pad + tick_masks[-1].shape[0] // 2

  canvas = np.full((height, width, 3), 255, np.uint8)
  colors = viridis((matrix - lo) / (hi - lo))
  colors[~np.isfinite(matrix)] = _NAN_COLOR
  block = np.repeat(np.repeat(colors, cell_h, axis=0), cell_w, axis=1)
  block[cell_h - 1 :: cell_h, :] = 255  # thin white lines between cells
  block[:, cell_w - 1 :: cell_w] = 255
  canvas[top : top + grid_h, left : left + grid_w] = block

  black, white = (0, 0, 0), (255, 255, 255)
  for i in range(nrows):
    for j in range(ncols):
      m = mask(texts[i][j], font_size)
      y = top + i * cell_h + (cell_h - 1 - m.shape[0]) // 2
      x = left + j * cell_w + (cell_w - 1 - m.shape[1]) // 2
      image_lib.draw_text(canvas, m, y, x, white if _luminance(colors[i, j]) < 128 else black)
  for i, m in enumerate(row_masks):  # right-aligned against the grid
    y = top + i * cell_h + (cell_h - m.shape[0]) // 2
    image_lib.draw_text(canvas, m, y, left - pad - m.shape[1], black)
  for j, m in enumerate(col_masks):  # bottom-aligned over the column
    x = left + j * cell_w + (cell_w - m.shape[1]) // 2
    image_lib.draw_text(canvas, m, top - pad - m.shape[0], x, black)
  if title_mask is not None:
    image_lib.draw_text(canvas, title_mask, pad, (width - title_mask.shape[1]) // 2, black)

  # Colour bar: vmax at the top, vmin at the bottom, the middle value between.
  ramp = viridis(np.linspace(1.0, 0.0, grid_h))[:, None]
  canvas[top : top + grid_h, bar_left : bar_left + bar_w] = ramp
  for k, m in enumerate(tick_masks):
    y = top + round(k * (grid_h - 1) / 2) - m.shape[0] // 2
    image_lib.draw_text(canvas, m, y, bar_left + bar_w + pad, black)

  layout = dict(top=top, left=left, cell_height=cell_h, cell_width=cell_w, value_range=(lo, hi))
  return canvas, layout


def heatmap_png(
    path: str,
    matrix,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    fmt: str = '{:.2f}',
    cell_size: int | None = None,
) -> None:
  """Writes a labelled heatmap of `matrix` [R, C] to `path` (PNG, atomically).

  Args:
    path: the PNG file to write.
    matrix: [R, C] numbers; NaN/inf cells are grey and say so.
    row_labels: R labels, left of the rows (e.g. latent dimensions 'z0'..).
    col_labels: C labels, above the columns (e.g. factor names).
    title: a line above the heatmap.
    vmin, vmax: the value range mapped onto the colour map (default: the finite data's range);
      values outside it take the end colours.
    fmt: format of the value written in each cell.
    cell_size: minimum cell side in pixels (cells grow to fit their text).
  """
  image, _ = render_heatmap(
      matrix, row_labels=row_labels, col_labels=col_labels, title=title, vmin=vmin, vmax=vmax,
      fmt=fmt, cell_size=cell_size,
  )
  image_lib.save_png(path, image)

"""Image grids, labelled grids and atomic PNG/GIF files: numpy and Pillow only.

Images come in as `[N, H, W, C]` (or `[N, H, W]`) arrays, float in [0, 1] or uint8, with 1 or 3
channels, and go out as uint8 `[H', W', C]` with the same channel count. Files are written to a
temporary name in the target directory and moved into place with `os.replace`, so a reader (a
TensorBoard, a person, a crashed run restarted) never sees half a file.
"""

from __future__ import annotations

import functools
import io
import math
import os
import tempfile
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Cells smaller than this (in pixels, the larger side) are upsampled, nearest-neighbour, by the
#: labelled grids, so that 28x28 or 32x32 images are not microscopic.
MIN_CELL_SIZE = 64


def to_uint8(images) -> np.ndarray:
  """uint8 as is; bool to {0, 255}; floats clipped to [0, 1] and scaled (NaN shows as 0)."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images
  if images.dtype == np.bool_:
    return images.astype(np.uint8) * 255
  if not np.issubdtype(images.dtype, np.floating):
    raise TypeError(f'images must be float in [0, 1] or uint8, got dtype {images.dtype}')
  images = np.nan_to_num(images.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
  return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_batch(images) -> np.ndarray:
  """`[N, H, W, C]` uint8 with C in (1, 3) from `[N, H, W]` or `[N, H, W, C]`."""
  images = to_uint8(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(
        f'expected images [N, H, W] or [N, H, W, C] with C in (1, 3), got shape {images.shape}'
    )
  return images


def _fill(pad_value, channels: int) -> np.ndarray:
  """pad_value (a float in [0, 1] or one per channel) as a uint8 colour of `channels` values."""
  value = np.asarray(pad_value, np.float32).reshape(-1)
  if value.size == 1:
    value = np.repeat(value, channels)
  if value.size != channels:
    raise ValueError(f'pad_value {pad_value!r} has {value.size} values for {channels} channels')
  return to_uint8(value)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour upsampling of `[..., H, W, C]` by an integer factor (pixels stay crisp)."""
  if factor == 1:
    return image
  if factor < 1 or int(factor) != factor:
    raise ValueError(f'upscale factor must be a positive integer, got {factor}')
  image = np.repeat(image, factor, axis=-3)
  return np.repeat(image, factor, axis=-2)


def auto_scale(height: int, width: int, min_size: int = MIN_CELL_SIZE) -> int:
  """The smallest integer factor that makes a `height x width` cell at least `min_size` wide."""
  return max(1, math.ceil(min_size / max(height, width, 1)))


def image_grid(
    images, *, ncols: int, padding: int = 2, pad_value=1.0, scale: int = 1
) -> np.ndarray:
  """Tiles images into a grid, row-major, with `padding` pixels around and between them.

  Args:
    images: [N, H, W, C] or [N, H, W], float in [0, 1] or uint8, C in (1, 3).
    ncols: images per row; the last row is filled with `pad_value` where images run out.
    padding: pixels between images and around the border.
    pad_value: colour of the padding, a float in [0, 1] or one per channel.
    scale: integer nearest-neighbour upsampling of every image before tiling.

  Returns:
    uint8 [rows * (H*scale + padding) + padding, ncols * (W*scale + padding) + padding, C],
    rows = ceil(N / ncols).
  """
  images = upscale(_as_batch(images), scale)
  n, h, w, c = images.shape
  if n == 0:
    raise ValueError('image_grid needs at least one image')
  if ncols < 1:
    raise ValueError(f'ncols must be >= 1, got {ncols}')
  ncols = min(ncols, n)
  nrows = math.ceil(n / ncols)
  fill = _fill(pad_value, c)
  # Every cell is an image plus `padding` below and to its right; one extra band on top and left.
  cells = np.empty((nrows * ncols, h + padding, w + padding, c), np.uint8)
  cells[...] = fill
  cells[:n, :h, :w] = images
  grid = cells.reshape(nrows, ncols, h + padding, w + padding, c).transpose(0, 2, 1, 3, 4)
  grid = grid.reshape(nrows * (h + padding), ncols * (w + padding), c)
  out = np.empty((grid.shape[0] + padding, grid.shape[1] + padding, c), np.uint8)
  out[...] = fill
  out[padding:, padding:] = grid
  return out


# Text ----------------------------------------------------------------------------------------


@functools.cache
def font(size: int) -> ImageFont.ImageFont:
  """Pillow's bundled default font at `size` px (a bitmap font if Pillow lacks FreeType)."""
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, ImportError, OSError):  # No FreeType: the fixed-size bitmap font.
    return ImageFont.load_default()


def font_size_for(cell: int) -> int:
  """A legible font size for labels next to cells `cell` pixels tall."""
  return int(np.clip(round(cell * 0.2), 11, 18))


def text_size(text: str, size: int) -> tuple[int, int]:
  """(width, height) in pixels of `text` (may hold newlines) in `font(size)`."""
  box = ImageDraw.Draw(Image.new('L', (1, 1))).multiline_textbbox(
      (0, 0), text, font=font(size), spacing=2
  )
  return box[2], box[3]


def text_mask(text: str, size: int, *, rotate: bool = False) -> np.ndarray:
  """Coverage of `text` (may hold newlines) in `font(size)`: float [h, w] in [0, 1].

  `rotate` turns it a quarter counter-clockwise (reading bottom to top), for column labels.
  """
  w, h = text_size(text, size)
  canvas = Image.new('L', (max(w, 1), max(h, 1)), 0)
  ImageDraw.Draw(canvas).multiline_text((0, 0), text, fill=255, font=font(size), spacing=2)
  mask = np.asarray(canvas, np.float32) / 255.0
  return np.rot90(mask) if rotate else mask


def draw_text(canvas: np.ndarray, mask: np.ndarray, top: int, left: int, color) -> None:
  """Blends `color` into `canvas` [H, W, C] uint8 through a `text_mask`, clipped to the canvas."""
  top, left = int(top), int(left)
  y0, x0 = max(top, 0), max(left, 0)
  y1 = min(top + mask.shape[0], canvas.shape[0])
  x1 = min(left + mask.shape[1], canvas.shape[1])
  if y1 <= y0 or x1 <= x0:
    return
  alpha = mask[y0 - top : y1 - top, x0 - left : x1 - left, None]
  region = canvas[y0:y1, x0:x1].astype(np.float32)
  color = np.asarray(color, np.float32).reshape(-1)[: canvas.shape[-1]]
  canvas[y0:y1, x0:x1] = np.rint(region * (1 - alpha) + color * alpha).astype(np.uint8)


def labelled_grid(
    images,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str | None = None,
    padding: int = 2,
    pad_value=1.0,
    scale: int | None = None,
    row_gap: Sequence[int] | None = None,
) -> np.ndarray:
  """A grid of `[R, C, H, W, Ch]` images with optional labels left of rows and above columns.

  Args:
    images: [R, C, H, W, Ch] (or [R, C, H, W]), float in [0, 1] or uint8.
    row_labels: R strings (newlines allowed) drawn left of each row, or None.
    col_labels: C strings drawn above each column, or None.
    title: a line of text above everything, or None.
    padding: pixels between cells and around the border.
    pad_value: background colour, a float in [0, 1] or one per channel; text is drawn in the
      contrasting grey (black on a light background).
    scale: integer nearest-neighbour upsampling; None picks one so cells are >= 64 px.
    row_gap: extra pixels above each row (R values), e.g. to group rows in pairs.

  Returns:
    uint8 [H', W', Ch] with the input's channel count.
  """
  images = np.asarray(images)
  if images.ndim == 4:
    images = images[..., None]
  if images.ndim != 5:
    raise ValueError(f'expected images [rows, cols, H, W, C], got shape {images.shape}')
  nrows, ncols = images.shape[:2]
  batch = _as_batch(images.reshape(nrows * ncols, *images.shape[2:]))
  if scale is None:
    scale = auto_scale(*batch.shape[1:3])
  batch = upscale(batch, scale)
  _, h, w, c = batch.shape
  cells = batch.reshape(nrows, ncols, h, w, c)
  fill = _fill(pad_value, c)
  ink = np.full(c, 0 if float(np.mean(fill)) > 127 else 255, np.uint8)
  size = font_size_for(h)

  row_masks = [text_mask(s, size) for s in row_labels] if row_labels is not None else []
  col_masks = [text_mask(s, size) for s in col_labels] if col_labels is not None else []
  if row_labels is not None and len(row_masks) != nrows:
    raise ValueError(f'{len(row_masks)} row labels for {nrows} rows')
  if col_labels is not None and len(col_masks) != ncols:
    raise ValueError(f'{len(col_masks)} column labels for {ncols} columns')
  if col_masks and max(m.shape[1] for m in col_masks) > w + padding:
    col_masks = [np.rot90(m) for m in col_masks]  # too wide for a column: read bottom to top
  title_mask = text_mask(title, size) if title else None

  gaps = np.zeros(nrows, int) if row_gap is None else np.asarray(row_gap, int)
  label_w = max((m.shape[1] for m in row_masks), default=0)
  left = padding + (label_w + 2 * padding if label_w else 0)
  col_h = max((m.shape[0] for m in col_masks), default=0)
  title_h = title_mask.shape[0] + 2 * padding if title_mask is not None else 0
  top = padding + title_h + (col_h + padding if col_h else 0)
  row_tops = top + np.arange(nrows) * (h + padding) + np.cumsum(gaps)
  height = int(row_tops[-1]) + h + padding
  width = left + ncols * (w + padding)
  if title_mask is not None:
    width = max(width, title_mask.shape[1] + 2 * padding)

  canvas = np.empty((height, width, c), np.uint8)
  canvas[...] = fill
  for i in range(nrows):
    for j in range(ncols):
      y, x = int(row_tops[i]), left + j * (w + padding)
      canvas[y : y + h, x : x + w] = cells[i, j]
  for i, mask in enumerate(row_masks):  # right-aligned against the grid, centred on the row
    y = row_tops[i] + (h - mask.shape[0]) // 2
    draw_text(canvas, mask, y, left - 2 * padding - mask.shape[1], ink)
  for j, mask in enumerate(col_masks):  # centred over the column, bottom-aligned
    x = left + j * (w + padding) + (w - mask.shape[1]) // 2
    draw_text(canvas, mask, top - padding - mask.shape[0], x, ink)
  if title_mask is not None:
    draw_text(canvas, title_mask, padding, (width - title_mask.shape[1]) // 2, ink)
  return canvas


def reconstruction_grid(
    inputs, reconstructions, *, max_images: int = 16, ncols: int | None = None,
    scale: int | None = None, labels: bool = True,
) -> np.ndarray:
  """Inputs above their reconstructions: rows come in pairs (inputs, then the same reconstructed).

  Args:
    inputs: [N, H, W, C] images, float in [0, 1] or uint8.
    reconstructions: the same shape.
    max_images: how many of the N pairs to show.
    ncols: images per row; by default 8 (fewer if there are fewer images).
    scale: nearest-neighbour upsampling; None makes cells at least 64 px.
    labels: write 'input' / 'recon' left of the rows.

  Returns:
    uint8 [H', W', C]; pairs of rows are separated by a wider gap than rows within a pair.
  """
  inputs = _as_batch(inputs)[:max_images]
  reconstructions = _as_batch(reconstructions)[:max_images]
  if inputs.shape != reconstructions.shape:
    raise ValueError(
        f'inputs {inputs.shape} and reconstructions {reconstructions.shape} differ in shape'
    )
  n = inputs.shape[0]
  ncols = min(ncols or 8, n)
  npairs = math.ceil(n / ncols)
  blank = np.full((npairs * ncols - n, *inputs.shape[1:]), 255, np.uint8)
  ins = np.concatenate([inputs, blank]).reshape(npairs, 1, ncols, *inputs.shape[1:])
  outs = np.concatenate([reconstructions, blank]).reshape(npairs, 1, ncols, *inputs.shape[1:])
  rows = np.concatenate([ins, outs], axis=1).reshape(2 * npairs, ncols, *inputs.shape[1:])
  padding = 2
  gaps = [3 * padding if i % 2 == 0 and i else 0 for i in range(2 * npairs)]
  row_labels = ['input', 'recon'] * npairs if labels else None
  return labelled_grid(rows, row_labels=row_labels, padding=padding, scale=scale, row_gap=gaps)


# Files ---------------------------------------------------------------------------------------


def _pil_image(image) -> Image.Image:
  image = to_uint8(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim == 2:
    return Image.fromarray(image, mode='L')
  if image.ndim == 3 and image.shape[-1] == 3:
    return Image.fromarray(image, mode='RGB')
  raise ValueError(f'expected an image [H, W], [H, W, 1] or [H, W, 3], got shape {image.shape}')


def encode_png(image) -> bytes:
  """PNG bytes of a uint8 (or [0, 1] float) image [H, W], [H, W, 1] or [H, W, 3]."""
  buffer = io.BytesIO()
  _pil_image(image).save(buffer, format='PNG', optimize=False, compress_level=6)
  return buffer.getvalue()


def encode_gif(frames, *, duration_ms: int = 100, loop: int | None = 0) -> bytes:
  """Animated-GIF bytes of frames [T, H, W, C] (or a list of [H, W, C]).

  `loop=0` repeats forever, None plays once. Pillow merges consecutive identical frames into one
  longer frame, so a GIF of T frames may hold fewer.
  """
  pil_frames = [_pil_image(f) for f in frames]
  if not pil_frames:
    raise ValueError('a GIF needs at least one frame')
  sizes = {f.size for f in pil_frames}
  if len(sizes) != 1:
    raise ValueError(f'GIF frames differ in size: {sorted(sizes)}')
  kwargs = dict(format='GIF', save_all=True, append_images=pil_frames[1:], duration=duration_ms)
  if loop is not None:
    kwargs['loop'] = loop
  buffer = io.BytesIO()
  pil_frames[0].save(buffer, **kwargs)
  return buffer.getvalue()


def write_atomic(path: str, data: bytes) -> None:
  """Writes `data` to `path` through a temporary file in the same directory and `os.replace`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def save_png(path: str, image) -> None:
  """Saves a uint8 image [H, W], [H, W, 1] or [H, W, 3] as a PNG, atomically."""
  write_atomic(path, encode_png(image))


def save_gif(path: str, frames, *, duration_ms: int = 100, loop: int | None = 0) -> None:
  """Saves frames [T, H, W, C] as an animated GIF, atomically. See `encode_gif`."""
  write_atomic(path, encode_gif(frames, duration_ms=duration_ms, loop=loop))

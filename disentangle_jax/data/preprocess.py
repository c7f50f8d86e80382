"""Batch image preprocessing in numpy: uint8 -> float32 in [0, 1], centre crop, resize.

Everything works on whole batches `[b, H, W, C]` with a handful of vectorised numpy operations,
so the loader spends its time reading records, not looping over images in Python.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np


@functools.lru_cache(maxsize=32)
def resize_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Sparse 1-D resampling weights: `out[o] = sum_t weights[o, t] * in[index[o, t]]`.

  A triangle (linear) filter whose support widens by the reduction factor when shrinking, so a
  reduction averages every input pixel (as PIL's BILINEAR or `tf.image.resize(antialias=True)`);
  when enlarging it is plain linear interpolation. Pixel centres are aligned (`(o + 0.5) * scale`),
  edges are clamped, and each row of weights sums to 1.

  Returns:
    (index int64 [out_size, T], weights float32 [out_size, T]).
  """
  if in_size < 1 or out_size < 1:
    raise ValueError(f'cannot resize {in_size} pixels to {out_size}')
  scale = in_size / out_size
  support = max(scale, 1.0)  # half-width of the triangle, in input pixels
  centres = (np.arange(out_size) + 0.5) * scale - 0.5
  taps = int(np.ceil(2 * support)) + 1
  first = np.floor(centres - support).astype(np.int64) + 1
  index = first[:, None] + np.arange(taps)[None, :]
  weights = np.maximum(0.0, 1.0 - np.abs(index - centres[:, None]) / support)
  weights /= weights.sum(axis=1, keepdims=True)
  return np.clip(index, 0, in_size - 1), weights.astype(np.float32)


def _resize_axis(images: np.ndarray, out_size: int, axis: int) -> np.ndarray:
  index, weights = resize_taps(images.shape[axis], out_size)
  out = None
  for t in range(index.shape[1]):
    shape = [1] * images.ndim
    shape[axis] = out_size
    term = np.take(images, index[:, t], axis=axis) * weights[:, t].reshape(shape)
    out = term if out is None else out + term
  return out


def resize(images: np.ndarray, size: int) -> np.ndarray:
  """Resizes float images `[b, H, W, C]` to `[b, size, size, C]` (see `resize_taps`)."""
  if images.shape[1] != size:
    images = _resize_axis(images, size, axis=1)
  if images.shape[2] != size:
    images = _resize_axis(images, size, axis=2)
  return images


def center_crop(images: np.ndarray, size: int | None = None) -> np.ndarray:
  """The central `size`×`size` window of `[b, H, W, C]` (default: the largest square)."""
  height, width = images.shape[1:3]
  size = min(height, width) if size is None else size
  if size > min(height, width):
    raise ValueError(f'cannot crop {size}x{size} from {height}x{width} images')
  top, left = (height - size) // 2, (width - size) // 2
  return images[:, top : top + size, left : left + size]


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """uint8 records -> float32 images in [0, 1]: crop, then scale, then resize.

  Attributes:
    pixel_max: the stored value of a white pixel (255, or 1 for TFDS's dsprites).
    crop: None, 'center' (largest centred square) or an int (centred square of that side).
    image_size: None (keep) or the side of the square output.
  """

  pixel_max: int = 255
  crop: str | int | None = None
  image_size: int | None = None

  def __post_init__(self):
    if self.crop not in (None, 'center') and not isinstance(self.crop, int):
      raise ValueError(f"crop must be None, 'center' or a side in pixels, got {self.crop!r}")

  def output_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The shape of one preprocessed image whose stored shape is `image_shape`."""
    height, width, channels = image_shape
    if self.crop is not None:
      side = min(height, width) if self.crop == 'center' else self.crop
      if side > min(height, width):
        raise ValueError(f'cannot crop {side}x{side} from {height}x{width} images')
      height = width = side
    if self.image_size is not None:
      height = width = self.image_size
    return (height, width, channels)

  def __call__(self, images: np.ndarray) -> np.ndarray:
    """uint8 (or any numeric) `[b, H, W, C]` -> float32 `[b, h, w, C]` in [0, 1]."""
    if self.crop is not None:
      images = center_crop(images, None if self.crop == 'center' else self.crop)
    images = images.astype(np.float32)
    images *= np.float32(1.0 / self.pixel_max)
    if self.pixel_max != 255:  # e.g. 0/1 images: keep [0, 1] whatever else is stored
      np.clip(images, 0.0, 1.0, out=images)
    if self.image_size is not None:
      images = resize(images, self.image_size)
      np.clip(images, 0.0, 1.0, out=images)
    return images

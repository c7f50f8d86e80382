"""Disks: one centred white disk on black whose radius varies, 64×64×1, slightly blurred.

The data set of Newson et al.'s "Processing simple geometric attributes with autoencoders"
(seed 003, methods §2.5): the disk's area is the only factor, and the images are blurred slightly
"to avoid discrete parameterisation".

Grid (ours): radius r = 0.25 · k px for k = 0..127, i.e. 0 .. 31.75 px in quarter pixels (r = 0
is the empty image); `REDUCED_STRIDES` keeps the integer radii 0..31. The disk is centred on the
canvas centre (32, 32) in continuous coordinates (pixel j spans [j, j+1)), rendered with its
exact-to-1/256 pixel coverage (16×16 samples per pixel), then Gaussian-blurred with σ = 0.5 px
(the ellipse generator's blur). The interpolation experiment trains without radii 11..18 px:
`holdout_mask` selects them.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from disentangle_jax.data.renderers import _common

FACTOR_NAMES = ('radius',)
FACTOR_SIZES = (128,)
IMAGE_SHAPE = (64, 64, 1)
#: Integer radii 0..31 px.
REDUCED_STRIDES = (4,)
RADIUS_STEP_PX = 0.25
BLUR_SIGMA = 0.5
_SUPERSAMPLE = 16


def factor_values(name: str) -> np.ndarray:
  """Radius in pixels of each index."""
  if name != 'radius':
    raise ValueError(f'disks has no factor {name!r}; factors are {FACTOR_NAMES}')
  return np.arange(FACTOR_SIZES[0]) * RADIUS_STEP_PX


def holdout_mask(factors: np.ndarray, low: float = 11.0, high: float = 18.0) -> np.ndarray:
  """True where the radius lies in the held-out band [low, high] px (both ends included).

  Args:
    factors: int [n, 1] radius indices into the full grid.
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'disks')
  radius = factor_values('radius')[factors[:, 0]]
  return (radius >= low) & (radius <= high)


def disk_coverage(radius: np.ndarray, supersample: int = _SUPERSAMPLE) -> np.ndarray:
  """Fraction of each pixel inside a centred disk of each radius (px); float32 [n, 64, 64]."""
  radius = np.asarray(radius, np.float64)
  size = IMAGE_SHAPE[0]
  # Sample coordinates relative to the canvas centre, along one axis.
  samples = (np.arange(size * supersample) + 0.5) / supersample - size / 2
  d2 = samples[:, None] ** 2 + samples[None, :] ** 2
  out = np.empty((radius.size, size, size), np.float32)
  for i, r in enumerate(radius):
    inside = (d2 <= r * r).astype(np.float32)
    out[i] = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
  return out


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian blur over the two spatial axes of float `[n, H, W]` (skimage's defaults)."""
  if sigma <= 0:
    return images
  return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma), mode='nearest', truncate=4.0)


@functools.lru_cache(maxsize=4)
def _table(blur_sigma: float) -> np.ndarray:
  images = blur(disk_coverage(factor_values('radius')), blur_sigma)
  return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)[..., None]


def render(factors: np.ndarray, *, blur_sigma: float = BLUR_SIGMA) -> np.ndarray:
  """Renders disks for radius indices.

  Args:
    factors: int [n, 1] radius indices into the full grid.
    blur_sigma: Gaussian blur in pixels (0: the anti-aliased disk unblurred).

  Returns:
    uint8 [n, 64, 64, 1].
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'disks')
  return _table(float(blur_sigma))[factors[:, 0]]

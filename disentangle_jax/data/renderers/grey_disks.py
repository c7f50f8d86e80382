"""Grey-level disks: the centred disks of `disks` whose grey level varies too, 64×64×1.

Newson et al.'s documented failure case for the PCA-like autoencoder (Pham, Ladjal & Newson,
"PCA-AE", JMIV 2022; seed 003's slides): with two factors, radius and grey level, the second
component is not learned well. Their generator is not published; ours draws the disk of `disks`
(same radii, anti-aliasing and σ = 0.5 px blur) and multiplies it by a grey level in
0.2 .. 1.0 (17 levels, steps of 0.05: the range of a U(0.2, 1) draw, on a grid).

Grid: radius 128 (0 .. 31.75 px by 0.25) × grey level 17 = 2,176 images; `REDUCED_STRIDES`
keeps the integer radii and every other level (32 × 9 = 288). Radius 0 is the empty image at
every grey level.
"""

from __future__ import annotations

import functools

import numpy as np

from disentangle_jax.data.renderers import _common
from disentangle_jax.data.renderers import disks

FACTOR_NAMES = ('radius', 'grey_level')
FACTOR_SIZES = (disks.FACTOR_SIZES[0], 17)
IMAGE_SHAPE = disks.IMAGE_SHAPE
REDUCED_STRIDES = (4, 2)
GREY_LEVELS = np.linspace(0.2, 1.0, FACTOR_SIZES[1])


def factor_values(name: str) -> np.ndarray:
  """Radius in pixels, or grey level in [0.2, 1], of each index."""
  if name == 'radius':
    return disks.factor_values('radius')
  if name == 'grey_level':
    return GREY_LEVELS
  raise ValueError(f'grey_disks has no factor {name!r}; factors are {FACTOR_NAMES}')


def holdout_mask(factors: np.ndarray, low: float = 11.0, high: float = 18.0) -> np.ndarray:
  """True where the radius lies in [low, high] px (as `disks.holdout_mask`), any grey level."""
  factors = _common.check_factors(factors, FACTOR_SIZES, 'grey_disks')
  return disks.holdout_mask(factors[:, :1], low, high)


@functools.lru_cache(maxsize=4)
def _coverage(blur_sigma: float) -> np.ndarray:
  images = disks.blur(disks.disk_coverage(disks.factor_values('radius')), blur_sigma)
  return np.clip(images, 0.0, 1.0)


def render(factors: np.ndarray, *, blur_sigma: float = disks.BLUR_SIGMA) -> np.ndarray:
  """Renders grey disks for (radius, grey_level) indices.

  Args:
    factors: int [n, 2] indices into the full grid.
    blur_sigma: Gaussian blur in pixels (0: the anti-aliased disk unblurred).

  Returns:
    uint8 [n, 64, 64, 1]; at grey level 1 the image equals `disks.render`'s.
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'grey_disks')
  coverage = _coverage(float(blur_sigma))[factors[:, 0]]
  grey = GREY_LEVELS[factors[:, 1]][:, None, None]
  return np.round(coverage * grey * 255.0).astype(np.uint8)[..., None]

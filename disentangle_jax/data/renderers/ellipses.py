"""Ellipses: one filled, centred, rotated ellipse, 64×64×1, slightly blurred (methods §2.5).

The generator of the PCA-AE notebook (Pham, Ladjal, Newson): a 64×64 canvas, centre at pixel
(32, 32), semi-axes r_x, r_y in 2..31 px (integers), rotation 0..89 degrees (integers), pixels
whose centre lies strictly inside filled with 255, then a Gaussian blur with σ = 0.5 (skimage's
`gaussian`: mode 'nearest', truncate 4). The notebook samples these three factors uniformly;
here they form a full grid of 30 · 30 · 90 = 81,000 images.

Conventions: r_x is the semi-axis along the image's x (columns) at rotation 0, r_y along y
(rows); a positive rotation turns the ellipse counter-clockwise as seen on screen.
"""

from __future__ import annotations

import numpy as np

from disentangle_jax.data.renderers import _common
from disentangle_jax.data.renderers.disks import blur

FACTOR_NAMES = ('semi_axis_x', 'semi_axis_y', 'rotation')
FACTOR_SIZES = (30, 30, 90)
IMAGE_SHAPE = (64, 64, 1)
#: Every other semi-axis (2, 4, .., 30 px) and every third degree: 15 · 15 · 30 = 6,750 images.
REDUCED_STRIDES = (2, 2, 3)
BLUR_SIGMA = 0.5
_CENTRE = 32


def factor_values(name: str) -> np.ndarray:
  """Semi-axes in pixels (2..31) and rotation in degrees (0..89) of each index."""
  if name in ('semi_axis_x', 'semi_axis_y'):
    return np.arange(2, 32, dtype=np.float64)
  if name == 'rotation':
    return np.arange(90, dtype=np.float64)
  raise ValueError(f'ellipses has no factor {name!r}; factors are {FACTOR_NAMES}')


def render_continuous(semi_axis_x, semi_axis_y, rotation_degrees, *,
                      blur_sigma: float = BLUR_SIGMA) -> np.ndarray:
  """Renders ellipses for any semi-axes (px) and rotations (degrees); uint8 [n, 64, 64, 1]."""
  rx, ry, deg = (np.atleast_1d(np.asarray(a, np.float64))
                 for a in (semi_axis_x, semi_axis_y, rotation_degrees))
  size = IMAGE_SHAPE[0]
  x = (np.arange(size) - _CENTRE)[None, None, :]
  y = (_CENTRE - np.arange(size))[None, :, None]  # up
  out = np.empty((rx.size, *IMAGE_SHAPE), np.uint8)
  for s in _common.chunks(rx.size, 1024):
    theta = np.deg2rad(deg[s])[:, None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    u = x * cos + y * sin
    v = y * cos - x * sin
    inside = (u / rx[s, None, None]) ** 2 + (v / ry[s, None, None]) ** 2 < 1.0
    images = blur(inside.astype(np.float32), blur_sigma)
    out[s, ..., 0] = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
  return out


def render(factors: np.ndarray, *, blur_sigma: float = BLUR_SIGMA) -> np.ndarray:
  """Renders ellipses for factor indices (semi_axis_x, semi_axis_y, rotation) into the grid.

  Returns:
    uint8 [n, 64, 64, 1].
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'ellipses')
  values = [factor_values(name)[factors[:, k]] for k, name in enumerate(FACTOR_NAMES)]
  return render_continuous(*values, blur_sigma=blur_sigma)

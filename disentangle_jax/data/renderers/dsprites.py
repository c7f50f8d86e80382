"""A dSprites-equivalent: white square, ellipse or heart on black, 64×64×1.

The factor grid is dSprites' exactly (Matthey et al. 2017): shape 3 × scale 6 (linspace 0.5..1)
× orientation 40 (linspace(0, 2π, 40), so the first and last values are the same rotation) ×
x 32 × y 32 (linspace 0..1), 737,280 images, binary {0, 255} by default.

Geometry (ours; dSprites' generator is not public, so pixel-level equality is not claimed):
- pixel (row i, column j) covers [j, j+1) × [i, i+1); its centre is (j + 0.5, i + 0.5);
- a position p in [0, 1] puts the shape's centre at 32 + (p - 0.5) · 38.75 px, i.e. 12.625 ..
  51.375 px in steps of 1.25 px, on both axes; x grows to the right and y grows downwards (as
  in dSprites' images); the margin of 12.6 px keeps every shape whole at any rotation;
- at scale 1 the square has side 16.8 px, the ellipse semi-axes 6 × 12 px (long axis vertical at
  orientation 0), the heart is the curve (X² + Y² − 1)³ = X²Y³ with 1 unit = 8.9 px, centred on
  its bounding box and pointing down at orientation 0; all fit in a 12 px radius;
- orientation θ turns the shape counter-clockwise as seen on screen.

Speed: the 1.25 px step repeats every 4 positions, so an image is one of 39 · 3 · 6 · 4 · 4
pre-rendered 27×27 patches (orientation 2π reuses orientation 0's patches) pasted at an integer
offset. The patches are computed once per process on first use.
"""

from __future__ import annotations

import numpy as np

from disentangle_jax.data.renderers import _common

FACTOR_NAMES = ('shape', 'scale', 'orientation', 'x_position', 'y_position')
FACTOR_SIZES = (3, 6, 40, 32, 32)
IMAGE_SHAPE = (64, 64, 1)
#: Every other scale, orientation and position: 3 · 3 · 20 · 16 · 16 = 46,080 images.
REDUCED_STRIDES = (1, 2, 2, 2, 2)
SHAPE_NAMES = ('square', 'ellipse', 'heart')

_SIZE = IMAGE_SHAPE[0]
_POSITION_RANGE_PX = 38.75  # 31 steps of 1.25 px
_PHASES = 4  # 4 steps of 1.25 px = 5 px: the sub-pixel phase repeats every 4 positions
_PATCH_RADIUS = 13  # a patch covers the shape's base pixel ± 13 pixels
_PATCH = 2 * _PATCH_RADIUS + 1
_SQUARE_HALF_SIDE = 8.4
_ELLIPSE_SEMI_AXES = (6.0, 12.0)  # (across, along) the shape's own vertical axis
_HEART_UNIT = 8.9
_HEART_Y_OFFSET = 0.118  # centre of the heart curve's bounding box, in curve units
_SUPERSAMPLE = 4  # antialias=True: 4×4 samples per pixel


def factor_values(name: str) -> np.ndarray:
  """The physical value of each index of factor `name` (shape: 0, 1, 2 for its names)."""
  values = {
      'shape': np.arange(3, dtype=np.float64),
      'scale': np.linspace(0.5, 1.0, 6),
      'orientation': np.linspace(0.0, 2 * np.pi, 40),
      'x_position': np.linspace(0.0, 1.0, 32),
      'y_position': np.linspace(0.0, 1.0, 32),
  }
  if name not in values:
    raise ValueError(f'dsprites has no factor {name!r}; factors are {FACTOR_NAMES}')
  return values[name]


def position_to_pixels(position: np.ndarray) -> np.ndarray:
  """Centre of the shape in pixels (continuous, pixel j spans [j, j+1)) for positions in [0, 1]."""
  return _SIZE / 2 + (np.asarray(position, np.float64) - 0.5) * _POSITION_RANGE_PX


def _inside(shape: np.ndarray, u: np.ndarray, w: np.ndarray) -> np.ndarray:
  """Whether points (u right, w up; pixels at scale 1, shape frame) lie inside each shape.

  Args:
    shape: int [m], the shape of each row of `u` and `w`.
    u, w: float [m, ...] coordinates.
  """
  out = np.empty(u.shape, bool)
  for s in np.unique(shape):
    rows = shape == s
    su, sw = u[rows], w[rows]
    if s == 0:
      out[rows] = np.maximum(np.abs(su), np.abs(sw)) <= _SQUARE_HALF_SIDE
    elif s == 1:
      out[rows] = (su / _ELLIPSE_SEMI_AXES[0]) ** 2 + (sw / _ELLIPSE_SEMI_AXES[1]) ** 2 <= 1.0
    else:
      x2 = (su / _HEART_UNIT) ** 2
      y = sw / _HEART_UNIT + _HEART_Y_OFFSET
      out[rows] = (x2 + y * y - 1.0) ** 3 <= x2 * y**3
  return out


def _coverage(shape, scale, angle, dx, dy, supersample: int) -> np.ndarray:
  """Fraction of each pixel covered by the shape, float32 [m, H, W].

  Args:
    shape, scale, angle: [m] shape index, scale (0.5..1) and orientation in radians.
    dx, dy: float [m, H, W] offsets of pixel centres from the shape's centre (y down).
    supersample: samples per pixel along each axis (1: the pixel centre only).
  """
  angle = np.mod(np.asarray(angle, np.float64), 2 * np.pi)[:, None, None]
  cos, sin = np.cos(angle), np.sin(angle)
  inv_scale = 1.0 / np.asarray(scale, np.float64)[:, None, None]
  offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
  total = np.zeros(dx.shape, np.float32)
  for ox in offsets:
    for oy in offsets:
      u = dx + ox
      w = -(dy + oy)  # screen y points down; the shape frame's w points up
      # Rotating the shape by +angle = rotating the sample points by -angle.
      su = (u * cos + w * sin) * inv_scale
      sw = (w * cos - u * sin) * inv_scale
      total += _inside(np.asarray(shape), su, sw)
  return total / supersample**2


def _to_uint8(coverage: np.ndarray) -> np.ndarray:
  return np.round(coverage * 255.0).astype(np.uint8)


def render_continuous(shape, scale, angle, x, y, *, antialias: bool = False) -> np.ndarray:
  """Renders shapes at arbitrary (off-grid) values; uint8 [n, 64, 64, 1].

  Args:
    shape: int [n] in {0: square, 1: ellipse, 2: heart}.
    scale: float [n], dSprites' scale (1 = the largest size).
    angle: float [n], orientation in radians (counter-clockwise on screen).
    x, y: float [n], positions in [0, 1] (mapped by `position_to_pixels`).
    antialias: average 4×4 samples per pixel instead of testing the pixel centre.
  """
  shape, scale, angle, x, y = (np.atleast_1d(np.asarray(a)) for a in (shape, scale, angle, x, y))
  centres = np.arange(_SIZE) + 0.5
  out = np.empty((shape.shape[0], *IMAGE_SHAPE), np.uint8)
  for s in _common.chunks(shape.shape[0], 1024):
    dx = centres[None, None, :] - position_to_pixels(x[s])[:, None, None]
    dy = centres[None, :, None] - position_to_pixels(y[s])[:, None, None]
    dx, dy = np.broadcast_arrays(dx, dy)
    cov = _coverage(shape[s], scale[s], angle[s], dx, dy, _SUPERSAMPLE if antialias else 1)
    out[s, ..., 0] = _to_uint8(cov)
  return out


# Patch tables. Entry id = (((shape · 6 + scale) · 39 + orientation mod 39) · 4 + x phase) · 4
# + y phase.
_NUM_ORIENTATIONS = FACTOR_SIZES[2] - 1  # index 39 (2π) is index 0 (0)
_TABLE_SHAPE = (3, 6, _NUM_ORIENTATIONS, _PHASES, _PHASES)


def _position_base_and_phase(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """For position indices: the pixel holding the centre, the phase (0..3) and its fraction.

  Positions p, p + 4, p + 8, ... are whole pixels apart, so they share a phase `p % 4` and the
  fractional part of the centre.
  """
  centre = position_to_pixels(factor_values('x_position')[index])
  base = np.floor(centre)
  return base.astype(np.int64), index % _PHASES, centre - base


def _compute_patches(ids: np.ndarray, supersample: int) -> np.ndarray:
  shape, scale, orientation, phase_x, phase_y = np.unravel_index(ids, _TABLE_SHAPE)
  # Position index `phase` has the phase `phase` itself.
  frac_x, frac_y = (_position_base_and_phase(p)[2] for p in (phase_x, phase_y))
  grid = np.arange(_PATCH) - _PATCH_RADIUS + 0.5
  dx, dy = np.broadcast_arrays(grid[None, None, :] - frac_x[:, None, None],
                               grid[None, :, None] - frac_y[:, None, None])
  scale = factor_values('scale')[scale]
  angle = factor_values('orientation')[orientation]
  return _to_uint8(_coverage(shape, scale, angle, dx, dy, supersample))


def _patch_table(supersample: int) -> _common.LazyTable:
  return _common.LazyTable(int(np.prod(_TABLE_SHAPE)),
                           lambda ids: _compute_patches(ids, supersample), chunk_size=1024)


_TABLES = {False: _patch_table(1), True: _patch_table(_SUPERSAMPLE)}
_PADDED = _SIZE + 2 * _PATCH_RADIUS


def _render_chunk(factors: np.ndarray, antialias: bool) -> np.ndarray:
  n = factors.shape[0]
  shape, scale, orientation, x, y = factors.T
  base_x, phase_x, _ = _position_base_and_phase(x)
  base_y, phase_y, _ = _position_base_and_phase(y)
  ids = np.ravel_multi_index(
      (shape, scale, orientation % _NUM_ORIENTATIONS, phase_x, phase_y), _TABLE_SHAPE
  )
  patches = _TABLES[antialias](ids)
  # Paste into a canvas padded by the patch radius, so that a patch never needs clipping:
  # the patch's top-left pixel lands on padded (base_y, base_x).
  canvas = np.zeros((n, _PADDED, _PADDED), np.uint8)
  rows = (np.arange(n) * _PADDED + base_y)[:, None] + np.arange(_PATCH)[None, :]  # [n, P]
  flat = (rows * _PADDED)[:, :, None] + (base_x[:, None, None] + np.arange(_PATCH)[None, None, :])
  canvas.reshape(-1)[flat.reshape(-1)] = patches.reshape(-1)
  inner = slice(_PATCH_RADIUS, _PATCH_RADIUS + _SIZE)
  return canvas[:, inner, inner, None]


def render(factors: np.ndarray, *, antialias: bool = False) -> np.ndarray:
  """Renders dSprites images for factor indices into the full grid.

  Args:
    factors: int [n, 5] indices (shape, scale, orientation, x_position, y_position).
    antialias: grey values from 4×4 supersampling instead of dSprites' binary {0, 255}.

  Returns:
    uint8 [n, 64, 64, 1].
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'dsprites')
  return _common.render_in_chunks(lambda f: _render_chunk(f, antialias), factors, IMAGE_SHAPE)


def concept_masks(factors: np.ndarray, *, antialias: bool = False
                  ) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-pixel shape masks: the shape's pixels (value ≥ 0.5) in the channel of its shape class.

  Args:
    factors: int [n, 5] indices into the full grid.
    antialias: as `render`'s (the mask is then the pixels at least half covered).

  Returns:
    (bool [n, 64, 64, 3], `SHAPE_NAMES`: square, ellipse, heart).
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'dsprites')
  ink = render(factors, antialias=antialias)[..., 0] >= 128
  masks = np.zeros((*ink.shape, len(SHAPE_NAMES)), bool)
  masks[np.arange(ink.shape[0]), ..., factors[:, 0]] = ink
  return masks, SHAPE_NAMES

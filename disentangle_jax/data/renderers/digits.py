"""An offline MNIST stand-in with ground truth: real handwritten digits, rotated and re-stroked.

The digits are the 1,797 scans that ship with scikit-learn (`sklearn.datasets.load_digits`, the
test part of Alpaydin & Kaynak's UCI "optdigits", 1998): each is an 8×8 grid of counts 0..16, the
number of ink pixels in each 4×4 block of a 32×32 binary bitmap. We keep the first 174 scans of
each class in file order (the smallest class, 8, has 174), so the factors form a full grid:

  digit 10 × rotation 7 (-45..45° by 15°) × stroke 5 × instance 174 = 60,900 images, 32×32×1.

Why 32×32: the scans are block counts of 32×32 bitmaps, so 32×32 is the resolution they came
from, and it is the MNIST size of Hu et al. (CVPR 2018), whose mixing autoencoder found one chunk
each for digit class, rotation angle and stroke width on MNIST (the finding this set is for).

Drawing (ours): the scan's counts / 16 (ink density) are interpolated by a cubic spline, sampled
at 4×4 points per output pixel through the rotation, and thresholded at density 0.5 (the
bitmap's own edge, in the spline's estimate); the digit's 8×8 cells span the central 24×24 pixels
at rotation 0, leaving room to turn. Stroke width is changed by moving the outline along its
normal (a dilation or erosion by a disc, computed with an exact Euclidean distance transform) by
`STROKE_OFFSETS_PX` output pixels, so a stroke's width changes by twice the offset. A pixel's value
is the fraction of its 16 samples inside, so edges are anti-aliased.

Splits (`split_of`): instances 0..139 of every class train, 140..173 test: no scan is in both.

The expensive part, one (scan, rotation) with all five strokes, is computed once per process on
first use (`_common.LazyTable`); an image is then a lookup.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from disentangle_jax.data.renderers import _common

FACTOR_NAMES = ('digit', 'rotation', 'stroke', 'instance')
FACTOR_SIZES = (10, 7, 5, 174)
IMAGE_SHAPE = (32, 32, 1)
#: Rotations -45, 0, 45°, strokes thin (-0.5), natural (0), thick (+1), every 6th instance:
#: 10 · 3 · 3 · 29 = 2,610 images.
REDUCED_STRIDES = (1, 3, 2, 6)
ROTATIONS_DEG = np.linspace(-45.0, 45.0, 7)
#: How far the outline moves, in output pixels (negative: erosion, thinner strokes).
STROKE_OFFSETS_PX = (-0.5, -0.25, 0.0, 0.5, 1.0)
INSTANCES_PER_DIGIT = 174
#: Instances below this index are training scans; the others are test scans.
NUM_TRAIN_INSTANCES = 140
SPLITS = ('train', 'test')
#: Output pixels spanned by the scan's 8 cells (3 px a cell at 32×32).
BOX_PX = 24
DENSITY_THRESHOLD = 0.5
_SUPERSAMPLE = 4
_PAD = 3  # zero cells around the scan, so the spline falls to 0 outside it


def factor_values(name: str) -> np.ndarray:
  """Digit class, rotation in degrees, stroke offset in px, or instance index of each index."""
  values = {
      'digit': np.arange(10, dtype=np.float64),
      'rotation': ROTATIONS_DEG,
      'stroke': np.asarray(STROKE_OFFSETS_PX, np.float64),
      'instance': np.arange(INSTANCES_PER_DIGIT, dtype=np.float64),
  }
  if name not in values:
    raise ValueError(f'digits has no factor {name!r}; factors are {FACTOR_NAMES}')
  return values[name]


@functools.lru_cache(maxsize=1)
def scans() -> np.ndarray:
  """The scans used, float32 [10, 174, 8, 8] ink densities in [0, 1]: [digit, instance]."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top

  data = load_digits()
  out = np.empty((10, INSTANCES_PER_DIGIT, 8, 8), np.float32)
  for digit in range(10):
    out[digit] = data.images[data.target == digit][:INSTANCES_PER_DIGIT] / 16.0
  return out


def split_of(factors: np.ndarray) -> np.ndarray:
  """'train' for instances 0..139, 'test' for 140..173; str [n] (factors: int [n, 4] full grid)."""
  factors = _common.check_factors(factors, FACTOR_SIZES, 'digits')
  return np.where(factors[:, 3] < NUM_TRAIN_INSTANCES, 'train', 'test')


def glyphs(scan: np.ndarray, rotation_deg: float, offsets_px, *, size: int, box_px: float,
           supersample: int = _SUPERSAMPLE) -> np.ndarray:
  """Draws one scan, rotated, with several stroke offsets, centred on a size × size canvas.

  Args:
    scan: float [8, 8] ink densities in [0, 1].
    rotation_deg: counter-clockwise rotation on screen, in degrees.
    offsets_px: S outline offsets in output pixels (positive: thicker strokes).
    size: canvas side in pixels.
    box_px: output pixels spanned by the scan's 8 cells (at rotation 0).
    supersample: samples per output pixel along each axis.

  Returns:
    float32 [S, size, size], the fraction of each pixel inside the digit.
  """
  hi = size * supersample
  t = (np.arange(hi) + 0.5) / supersample - size / 2  # sample centres from the canvas centre
  x, y = t[None, :], -t[:, None]  # x right, y up
  theta = np.deg2rad(rotation_deg)
  # A digit turned by +theta shows, at point p, the scan's point R(-theta) p.
  xs = x * np.cos(theta) + y * np.sin(theta)
  ys = -x * np.sin(theta) + y * np.cos(theta)
  cell = box_px / 8.0
  col = xs / cell + 3.5 + _PAD
  row = -ys / cell + 3.5 + _PAD
  padded = np.pad(np.asarray(scan, np.float64), _PAD)
  density = ndimage.map_coordinates(padded, [row, col], order=3, mode='constant', cval=0.0)
  inside = density >= DENSITY_THRESHOLD
  # Signed distance of each sample to the outline, in samples (positive inside; the outline
  # lies half a sample outside the outermost inside samples).
  if inside.any():
    signed = np.where(inside, ndimage.distance_transform_edt(inside) - 0.5,
                      0.5 - ndimage.distance_transform_edt(~inside))
  else:
    signed = np.full(inside.shape, -np.inf)
  offsets = np.asarray(offsets_px, np.float64) * supersample
  ink = signed[None] + offsets[:, None, None] > 0
  return ink.reshape(len(offsets), size, supersample, size, supersample).mean(
      axis=(2, 4)).astype(np.float32)


def _to_uint8(coverage: np.ndarray) -> np.ndarray:
  return np.round(coverage * 255.0).astype(np.uint8)


# Table entry id = (digit · 174 + instance) · 7 + rotation: all five strokes of one rotated scan.
_TABLE_SHAPE = (10, INSTANCES_PER_DIGIT, FACTOR_SIZES[1])


def _compute_entries(ids: np.ndarray) -> np.ndarray:
  digit, instance, rotation = np.unravel_index(ids, _TABLE_SHAPE)
  all_scans = scans()
  return np.stack([
      _to_uint8(glyphs(all_scans[d, i], ROTATIONS_DEG[r], STROKE_OFFSETS_PX,
                       size=IMAGE_SHAPE[0], box_px=BOX_PX))
      for d, i, r in zip(digit, instance, rotation)
  ])


_TABLE = _common.LazyTable(int(np.prod(_TABLE_SHAPE)), _compute_entries, chunk_size=64)


def render(factors: np.ndarray) -> np.ndarray:
  """Renders digits for factor indices (digit, rotation, stroke, instance).

  Returns:
    uint8 [n, 32, 32, 1].
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'digits')
  digit, rotation, stroke, instance = factors.T
  if not factors.shape[0]:
    return np.zeros((0, *IMAGE_SHAPE), np.uint8)
  entries = _TABLE(np.ravel_multi_index((digit, instance, rotation), _TABLE_SHAPE))
  return entries[np.arange(factors.shape[0]), stroke][..., None]


def concept_masks(factors: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-pixel digit masks: the digit's pixels (value ≥ 0.5) in its class's channel.

  Returns:
    (bool [n, 32, 32, 10], the concept names '0'..'9').
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'digits')
  ink = render(factors)[..., 0] >= 128
  masks = np.zeros((*ink.shape, 10), bool)
  masks[np.arange(ink.shape[0]), ..., factors[:, 0]] = ink
  return masks, tuple(str(d) for d in range(10))

"""Mixture of digits: two different handwritten digits on a 56×56 canvas, with per-pixel masks.

The sanity-check data set of Zhou's unit-interpretability experiments (the "Mixture of MNIST" of
his Network Dissection talks, with W. Zhu): each image shows two different digits and its class
is the unordered pair, C(10, 2) = 45 classes; in the "usefulness" variant only 0..7 make the
classes (C(8, 2) = 28) and a redundant digit, 8 or 9 at random, is added to every image.

The digits are the scikit-learn scans of `digits` (upright, natural stroke) drawn as 28×28 patches
with the digit's 8×8 cells spanning the central 20×20 pixels (MNIST's layout). Composition (ours;
the talk does not describe it): each digit's patch goes at a top-left corner (row, col) in
0..28 × 0..28, the patches' boxes overlap by an IoU of at most 0.1 (`MAX_BOX_IOU`), and the canvas
is their pixel-wise maximum.

An image is a pure function of its factors (one row per image):

  digit_a, digit_b        the pair's digits (a < b when made by `sample_factors`)
  instance_a, instance_b  which scan of each digit (0..173; `digits.NUM_TRAIN_INSTANCES` splits
                          training scans from validation scans)
  row_a, col_a, ...       the patches' top-left corners
  distractor              the added digit, or 10 for none
  instance_d, row_d, col_d  its scan and corner (ignored without a distractor)

`concept_masks` gives per-pixel digit masks from the same factors (a digit's patch pixels ≥ 0.5,
in the channel of its class), for Network Dissection (Bau et al., CVPR 2017): masks are never
stored.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from disentangle_jax.data.renderers import _common
from disentangle_jax.data.renderers import digits as digits_lib

FACTOR_NAMES = ('digit_a', 'digit_b', 'instance_a', 'instance_b', 'row_a', 'col_a', 'row_b',
                'col_b', 'distractor', 'instance_d', 'row_d', 'col_d')
_CORNERS = 29  # corners 0..28 on a 56-pixel canvas for a 28-pixel patch
FACTOR_SIZES = (10, 10, 174, 174, _CORNERS, _CORNERS, _CORNERS, _CORNERS, 11, 174, _CORNERS,
                _CORNERS)
IMAGE_SHAPE = (56, 56, 1)
#: Every factor at full resolution (the data set is sampled, not a grid).
REDUCED_STRIDES = (1,) * len(FACTOR_SIZES)
NO_DISTRACTOR = 10
PATCH = 28
#: Output pixels spanned by a scan's 8 cells in a patch (MNIST's 20×20 box in 28×28).
BOX_PX = 20
MAX_BOX_IOU = 0.1
CONCEPT_NAMES = tuple(str(d) for d in range(10))


def factor_values(name: str) -> np.ndarray:
  """Index of each value (digits, instances and corners in pixels are their own indices)."""
  if name not in FACTOR_NAMES:
    raise ValueError(f'digit_mixture has no factor {name!r}; factors are {FACTOR_NAMES}')
  return np.arange(FACTOR_SIZES[FACTOR_NAMES.index(name)], dtype=np.float64)


def pairs(class_digits: Sequence[int] = tuple(range(10))) -> np.ndarray:
  """The classes: unordered pairs of different digits, lexicographic; int [C(n, 2), 2]."""
  return np.array(list(itertools.combinations(sorted(class_digits), 2)), np.int64).reshape(-1, 2)


def pair_label(digit_a, digit_b, class_digits: Sequence[int] = tuple(range(10))) -> np.ndarray:
  """The class index of each (unordered) pair among `pairs(class_digits)`; int64 [n]."""
  a, b = np.minimum(digit_a, digit_b), np.maximum(digit_a, digit_b)
  table = pairs(class_digits)
  lookup = np.full((10, 10), -1, np.int64)
  lookup[table[:, 0], table[:, 1]] = np.arange(len(table))
  labels = lookup[a, b]
  if labels.size and labels.min() < 0:
    raise ValueError(f'a pair is not one of the classes over digits {tuple(class_digits)}')
  return labels


def box_iou(corner_1: np.ndarray, corner_2: np.ndarray) -> np.ndarray:
  """IoU of the 28×28 boxes with top-left corners [..., 2] (row, col); float [...]."""
  d = np.abs(np.asarray(corner_1) - np.asarray(corner_2))
  inter = np.prod(np.clip(PATCH - d, 0, None), axis=-1).astype(np.float64)
  return inter / (2 * PATCH * PATCH - inter)


def sample_factors(rng: np.random.Generator, n: int, *,
                   class_digits: Sequence[int] = tuple(range(10)),
                   distractors: Sequence[int] = (),
                   instances: Sequence[int] | range = range(digits_lib.NUM_TRAIN_INSTANCES),
                   ) -> np.ndarray:
  """Draws `n` images' factors with balanced classes.

  Args:
    rng: the generator every draw comes from.
    n: number of images; the classes' counts differ by at most one.
    class_digits: the digits that make the classes (pairs of different ones).
    distractors: digits one of which (uniformly) is added to every image; () for none.
    instances: the scans drawn from (the same indices for every digit).

  Returns:
    int64 [n, 12] factor rows.
  """
  classes = pairs(class_digits)
  labels = rng.permutation(np.arange(n) % len(classes))
  out = np.zeros((n, len(FACTOR_SIZES)), np.int64)
  out[:, 0], out[:, 1] = classes[labels, 0], classes[labels, 1]
  instances = np.asarray(instances, np.int64)
  out[:, [2, 3, 9]] = instances[rng.integers(0, len(instances), (n, 3))]
  num_patches = 3 if len(distractors) else 2
  if len(distractors):
    out[:, 8] = np.asarray(distractors, np.int64)[rng.integers(0, len(distractors), n)]
  else:
    out[:, 8], out[:, 9] = NO_DISTRACTOR, 0
  corners = np.zeros((n, 3, 2), np.int64)
  todo = np.arange(n)
  while todo.size:  # rejection: redraw the images whose boxes overlap too much
    corners[todo, :num_patches] = rng.integers(0, _CORNERS, (todo.size, num_patches, 2))
    c = corners[todo]
    bad = np.zeros(todo.size, bool)
    for i, j in itertools.combinations(range(num_patches), 2):
      bad |= box_iou(c[:, i], c[:, j]) > MAX_BOX_IOU
    todo = todo[bad]
  out[:, [4, 5, 6, 7, 10, 11]] = corners.reshape(n, 6)
  return out


def _compute_glyphs(ids: np.ndarray) -> np.ndarray:
  digit, instance = np.unravel_index(ids, (10, digits_lib.INSTANCES_PER_DIGIT))
  scans = digits_lib.scans()
  return np.stack([
      np.round(digits_lib.glyphs(scans[d, i], 0.0, (0.0,), size=PATCH, box_px=BOX_PX)[0] * 255)
      .astype(np.uint8)
      for d, i in zip(digit, instance)
  ])


_GLYPHS = _common.LazyTable(10 * digits_lib.INSTANCES_PER_DIGIT, _compute_glyphs, chunk_size=128)


def _placed(factors: np.ndarray):
  """(digit [n, 3], patch uint8 [n, 3, 28, 28], row [n, 3], col [n, 3], present bool [n, 3])."""
  digit = factors[:, [0, 1, 8]]
  instance = factors[:, [2, 3, 9]]
  row, col = factors[:, [4, 6, 10]], factors[:, [5, 7, 11]]
  present = np.ones(digit.shape, bool)
  present[:, 2] = digit[:, 2] != NO_DISTRACTOR
  ids = np.where(present, digit, 0) * digits_lib.INSTANCES_PER_DIGIT + instance
  patches = _GLYPHS(ids.ravel()).reshape(*digit.shape, PATCH, PATCH)
  return digit, patches, row, col, present


def _paste(patches, row, col, present) -> np.ndarray:
  """Canvas uint8 [n, 3, 56, 56] with each patch at its corner (zero where absent)."""
  n = patches.shape[0]
  out = np.zeros((n, 3, *IMAGE_SHAPE[:2]), np.uint8)
  rr = row[..., None] + np.arange(PATCH)  # [n, 3, 28]
  cc = col[..., None] + np.arange(PATCH)
  i = np.arange(n)[:, None, None, None]
  k = np.arange(3)[None, :, None, None]
  out[i, k, rr[..., :, None], cc[..., None, :]] = patches * present[..., None, None]
  return out


def render(factors: np.ndarray) -> np.ndarray:
  """Renders mixtures for factor rows (see the module docstring).

  Returns:
    uint8 [n, 56, 56, 1]: the pixel-wise maximum of the placed digits.
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'digit_mixture')
  out = np.empty((factors.shape[0], *IMAGE_SHAPE), np.uint8)
  for s in _common.chunks(factors.shape[0], 1024):
    _, patches, row, col, present = _placed(factors[s])
    out[s, ..., 0] = _paste(patches, row, col, present).max(axis=1)
  return out


def concept_masks(factors: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-pixel digit masks: channel d holds the pixels (≥ 0.5) of every placed digit d.

  Returns:
    (bool [n, 56, 56, 10], the concept names '0'..'9').
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'digit_mixture')
  masks = np.zeros((factors.shape[0], *IMAGE_SHAPE[:2], 10), bool)
  for s in _common.chunks(factors.shape[0], 1024):
    digit, patches, row, col, present = _placed(factors[s])
    ink = _paste(patches, row, col, present) >= 128  # [m, 3, 56, 56]
    for k in range(3):
      rows = np.flatnonzero(present[:, k])
      masks[s][rows, ..., digit[rows, k]] |= ink[rows, k]
  return masks, CONCEPT_NAMES

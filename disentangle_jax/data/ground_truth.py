"""Ground-truth factor access for datasets whose images form a full factor grid.

This is what the sampled metrics (BetaVAE, FactorVAE, ...) and latent traversals draw from:
factor names and sizes, `factors <-> index` (row-major over the grid), uniform independent
factor samples (as dlib samples them), and the images of given factors.

- `RenderedGroundTruth` calls a procedural renderer directly (no dataset on disk needed), on
  the full grid or on a reduced one (every `stride`-th value of each factor).
- `IndexedGroundTruth` looks images up in stored records (real dSprites, Shapes3D, MPI3D, or a
  built procedural dataset) through a grid -> record table built once.
- `SubsetGroundTruth` restricts another ground truth to some of its points, e.g. one split's
  (`datasets.get_ground_truth(config, split='test')`): `sample_factors` draws only those points.

`concept_masks(renderer_name, factors)` gives per-pixel concept masks (digits, sprite parts,
dSprites' and Shapes3D's shapes) computed from the factors, for Network Dissection.

Factors are int arrays `[n, K]` of indices; images are float32 `[n, H, W, C]` in [0, 1].
"""

from __future__ import annotations

import abc
import importlib
import math
from types import ModuleType
from typing import Callable, Sequence

import numpy as np

RENDERER_NAMES = ('dsprites', 'shapes3d', 'disks', 'ellipses', 'sprites', 'digits',
                  'digit_mixture', 'grey_disks')


def get_renderer(name: str) -> ModuleType:
  """The renderer module `disentangle_jax.data.renderers.<name>`."""
  if name not in RENDERER_NAMES:
    raise ValueError(f'unknown renderer {name!r}; choose one of {RENDERER_NAMES}')
  return importlib.import_module(f'disentangle_jax.data.renderers.{name}')


def concept_masks(renderer_name: str, factors: np.ndarray, **render_options
                  ) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-pixel concept masks of rendered images, as a function of their factors.

  For Network Dissection (Bau et al., CVPR 2017): the masks are computed from the factors by
  the renderer that draws the images, never stored. Concepts per renderer:
  - `digits`, `digit_mixture`: the digits '0'..'9' (a digit's pixels ≥ 0.5 in its class's
    channel);
  - `sprites`: the avatar's parts (outline, skin, hair, vest, arm, leg, boots, eyes, belt,
    armour), a partition of the figure;
  - `dsprites`: the shape's pixels under its class (square, ellipse, heart);
  - `shapes3d`: floor, wall, and the object under its shape's name (a partition of the image).

  Args:
    renderer_name: one of `RENDERER_NAMES` that has masks (above).
    factors: int [n, K] indices into the renderer's full grid (a reduced grid's indices go
      through `RenderedGroundTruth.concept_masks`).
    **render_options: the renderer's options that change its pixels (dSprites' `antialias`).

  Returns:
    `(masks bool [n, H, W, num_concepts], concept_names)`, H × W the images' size.
  """
  renderer = get_renderer(renderer_name)
  masks_fn = getattr(renderer, 'concept_masks', None)
  if masks_fn is None:
    with_masks = [n for n in RENDERER_NAMES if hasattr(get_renderer(n), 'concept_masks')]
    raise ValueError(
        f'renderer {renderer_name!r} has no concept masks; renderers with masks: {with_masks}'
    )
  return masks_fn(factors, **render_options)


def _to_float_images(images: np.ndarray) -> np.ndarray:
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) * np.float32(1.0 / 255.0)
  return images.astype(np.float32, copy=False)


class GroundTruthData(abc.ABC):
  """A full factor grid with images; subclasses provide `images_for`.

  Attributes:
    factor_names: one name per factor.
    factor_sizes: number of values of each factor; the grid has `prod(factor_sizes)` points.
    image_shape: (H, W, C) of `images_for`'s images.
  """

  factor_names: tuple[str, ...]
  factor_sizes: tuple[int, ...]
  image_shape: tuple[int, int, int]

  @property
  def num_factors(self) -> int:
    return len(self.factor_sizes)

  @property
  def num_points(self) -> int:
    """Number of points in the factor grid."""
    return math.prod(self.factor_sizes)

  def check_factors(self, factors: np.ndarray) -> np.ndarray:
    """Returns `factors` as int64 `[n, K]`; raises a ValueError if they are off the grid."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != self.num_factors:
      raise ValueError(f'factors must have shape [n, {self.num_factors}], got {factors.shape}')
    factors = factors.astype(np.int64, copy=False)
    if factors.size and ((factors < 0) | (factors >= np.asarray(self.factor_sizes))).any():
      raise ValueError(
          f'factors outside the grid {dict(zip(self.factor_names, self.factor_sizes))}'
      )
    return factors

  def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
    """Row-major grid index of each row of `factors` (int [n, K]); int64 [n]."""
    factors = self.check_factors(factors)
    return np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)

  def index_to_factors(self, index: np.ndarray) -> np.ndarray:
    """Inverse of `factors_to_index`: int [n] -> int64 [n, K]."""
    index = np.asarray(index, np.int64)
    if index.size and (index.min() < 0 or index.max() >= self.num_points):
      raise ValueError(f'grid index outside [0, {self.num_points})')
    return np.stack(np.unravel_index(index, self.factor_sizes), axis=-1).astype(np.int64)

  def sample_factors(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` factor rows, each factor uniform and independent; int64 [n, K]."""
    return rng.integers(0, self.factor_sizes, size=(n, self.num_factors), dtype=np.int64)

  @abc.abstractmethod
  def images_for(self, factors: np.ndarray) -> np.ndarray:
    """Images of the grid points `factors` (int [n, K]); float32 [n, H, W, C] in [0, 1]."""


class RenderedGroundTruth(GroundTruthData):
  """A procedural renderer's grid, optionally reduced to every `strides[k]`-th value.

  With strides, factor k has `ceil(size_k / stride_k)` values and its index i means the full
  grid's index `i * stride_k`.
  """

  def __init__(self, renderer_module: ModuleType | str, strides: Sequence[int] | None = None,
               **render_options):
    if isinstance(renderer_module, str):
      renderer_module = get_renderer(renderer_module)
    self.renderer = renderer_module
    full_sizes = tuple(renderer_module.FACTOR_SIZES)
    if strides is None:
      strides = (1,) * len(full_sizes)
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(full_sizes) or min(strides) < 1:
      raise ValueError(f'strides {strides} must be {len(full_sizes)} integers >= 1')
    self.strides = strides
    self.full_factor_sizes = full_sizes
    self.factor_names = tuple(renderer_module.FACTOR_NAMES)
    self.factor_sizes = tuple(-(-size // s) for size, s in zip(full_sizes, strides))
    self.image_shape = tuple(renderer_module.IMAGE_SHAPE)
    self.render_options = render_options

  def to_full_factors(self, factors: np.ndarray) -> np.ndarray:
    """Indices into this (possibly reduced) grid -> indices into the renderer's full grid."""
    return self.check_factors(factors) * np.asarray(self.strides, np.int64)

  def factor_values(self, name: str) -> np.ndarray:
    """Physical value of each index of factor `name` on this grid."""
    k = self.factor_names.index(name)
    return self.renderer.factor_values(name)[:: self.strides[k]]

  def images_for(self, factors: np.ndarray) -> np.ndarray:
    full = self.to_full_factors(factors)
    return _to_float_images(self.renderer.render(full, **self.render_options))

  def concept_masks(self, factors: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """`concept_masks` of the images `images_for(factors)` (factors on this grid)."""
    name = self.renderer.__name__.rsplit('.', 1)[-1]
    return concept_masks(name, self.to_full_factors(factors), **self.render_options)


class IndexedGroundTruth(GroundTruthData):
  """Images stored as records whose factors cover a full grid, in any order.

  Args:
    images_fn: `images_fn(record_indices int [n]) -> images [n, H, W, C]`, uint8 (scaled by
      1/255) or float (returned as float32 unchanged).
    record_factors: int [N, K], the factor indices of record i in row i.
    factor_names, factor_sizes: the grid.
    image_shape: (H, W, C); read from record 0 when not given.
    complete: require a record for every grid point. With False (one split of a grid), grid
      points without a record are allowed, `images_for` refuses them, and `sample_factors`
      still draws from the whole grid: wrap it in `SubsetGroundTruth(data, record_factors)` to
      draw only points that have a record.
  """

  def __init__(self, images_fn: Callable[[np.ndarray], np.ndarray], record_factors: np.ndarray,
               factor_names: Sequence[str], factor_sizes: Sequence[int],
               image_shape: Sequence[int] | None = None, complete: bool = True):
    self.factor_names = tuple(factor_names)
    self.factor_sizes = tuple(int(s) for s in factor_sizes)
    if len(self.factor_names) != len(self.factor_sizes):
      raise ValueError(f'{len(self.factor_names)} names for {len(self.factor_sizes)} sizes')
    self._images_fn = images_fn
    grid_index = self.factors_to_index(record_factors)
    lookup = np.full(self.num_points, -1, np.int64)
    lookup[grid_index] = np.arange(grid_index.size)
    missing = np.flatnonzero(lookup < 0)
    if missing.size and complete:
      example = dict(zip(self.factor_names, self.index_to_factors(missing[:1])[0].tolist()))
      raise ValueError(
          f'the records do not cover the factor grid {self.factor_sizes}: {missing.size} of '
          f'{self.num_points} grid points have no record (e.g. {example}); '
          f'{grid_index.size} records were given'
      )
    self._lookup = lookup
    if image_shape is None:
      image_shape = np.asarray(images_fn(np.zeros(1, np.int64))).shape[1:]
    self.image_shape = tuple(int(d) for d in image_shape)

  def record_index(self, factors: np.ndarray) -> np.ndarray:
    """The record holding each grid point `factors` (int [n, K]); int64 [n]."""
    records = self._lookup[self.factors_to_index(factors)]
    if records.size and records.min() < 0:
      row = int(np.argmin(records))
      example = dict(zip(self.factor_names, self.check_factors(factors)[row].tolist()))
      raise ValueError(
          f'no record holds the grid point {example}: these records cover only part of the grid '
          '(one split); sample factors from SubsetGroundTruth(this, record_factors)'
      )
    return records

  def images_for(self, factors: np.ndarray) -> np.ndarray:
    return _to_float_images(self._images_fn(self.record_index(factors)))


class SubsetGroundTruth(GroundTruthData):
  """Another ground truth restricted to some of its points (one split, or a sampled data set).

  `sample_factors` draws rows of `factors` uniformly with replacement (for a split that is a
  union of whole characters or instances, this is not independent per factor); `images_for`
  renders or looks up any point of the base grid, so a metric that overwrites one factor of the
  samples (BetaVAE, FactorVAE) gets images even where the result leaves the subset: `contains`
  says where it does. Other attributes (`renderer`, `factor_values`, ...) are the base's.

  Args:
    base: the ground truth of the whole grid.
    factors: int [N, K], the subset's points on `base`'s grid (duplicates are kept, so a sampled
      data set with repeated points is drawn with its own frequencies).
    name: what the subset is (e.g. the split's name), for messages.
  """

  def __init__(self, base: GroundTruthData, factors: np.ndarray, name: str | None = None):
    self.base = base
    self.factor_names = base.factor_names
    self.factor_sizes = base.factor_sizes
    self.image_shape = base.image_shape
    self.name = name
    self.factors = base.check_factors(factors)
    if not len(self.factors):
      raise ValueError(f'the subset {name or ""} of the grid has no points')
    self._sorted_index = np.sort(base.factors_to_index(self.factors))

  def __getattr__(self, attribute):
    # Not `base` itself (unset while unpickling) nor special names (copy's `__deepcopy__` must
    # not copy the base instead of the subset).
    if attribute == 'base' or attribute.startswith('__'):
      raise AttributeError(attribute)
    return getattr(self.base, attribute)

  @property
  def num_examples(self) -> int:
    """Points in the subset (the grid's size is `num_points`)."""
    return len(self.factors)

  def sample_factors(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` rows of the subset, uniform with replacement; int64 [n, K]."""
    return self.factors[rng.integers(0, len(self.factors), size=n)]

  def contains(self, factors: np.ndarray) -> np.ndarray:
    """Whether each row of `factors` (int [n, K]) is a point of the subset; bool [n]."""
    index = self.factors_to_index(factors)
    pos = np.minimum(np.searchsorted(self._sorted_index, index), self._sorted_index.size - 1)
    return self._sorted_index[pos] == index

  def images_for(self, factors: np.ndarray) -> np.ndarray:
    return self.base.images_for(factors)

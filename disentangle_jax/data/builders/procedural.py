"""TFDS builders of the procedurally rendered ground-truth datasets; they build offline.

Each builder renders its factor grid with a renderer of `disentangle_jax.data.renderers` and
writes it as ArrayRecord, so `tfds.data_source('<name>')` reads it without TensorFlow:

  procedural_dsprites  full (737,280 binary images), antialiased, small (reduced grid)
  procedural_shapes3d  full (480,000), small
  disks                full (128 radii), holdout (radii 11..18 px moved to a `holdout` split),
                       small, grey (radius 128 x grey level 17 = 2,176)
  ellipses             full (81,000), small
  procedural_sprites   full (96,768: train 80,640 / validation 8,064 / test 8,064, split by
                       character), small (48,384), tiny (4,608: every character in 8 poses)
  procedural_digits    full (60,900: train 49,000 / test 11,900, disjoint scans), small (2,610)
  mixture_of_digits    pairs (45 classes, train 20,000 / validation 5,000), distractors (28
                       classes, an 8 or 9 added to every image), small (45 classes, 2,000 / 500
                       from 20 / 5 scans per digit):
                       sampled factor rows, not a grid; records also hold `label`

Features of every record:
  image:          uint8 [H, W, C], a `Tensor` with zlib encoding (TFDS's `Image` feature would need
                  TensorFlow to encode; reading a zlib tensor needs neither TensorFlow nor an image
                  codec, and a dSprites record shrinks from 4 KiB to ~100 bytes).
  factors:        int32 [K], the record's factor indices on this config's grid (reduced configs
                  count in their own, reduced, indices).
  label_<factor>: one `ClassLabel` per factor, the same values, named as TFDS's dsprites/shapes3d
                  name theirs, so code written for those reads these too.

Records are in TFDS's usual hashed order (a fixed pseudo-random permutation of the grid, keyed by
grid index), as in TFDS's dsprites: the first records of an unshuffled read are a spread of the
grid, not 64 copies of the smallest square. Each record carries its factors.

Building goes through TFDS's own writer: it writes into an `incomplete.*` directory and renames it
only when every split is written, so an interrupted build never looks finished.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
from typing import Any, Iterator

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

#: Images rendered per vectorised call while building.
_RENDER_CHUNK = 8192


@dataclasses.dataclass(eq=False)
class ProceduralConfig(tfds.core.BuilderConfig):
  """A builder config: which grid points, and how they are rendered.

  Attributes:
    reduced: keep every `REDUCED_STRIDES[k]`-th value of each factor (the renderer's reduced grid).
    strides: keep every `strides[k]`-th value of each factor (a grid of its own; overrides
      `reduced`).
    render_options: keyword arguments of the renderer's `render` (e.g. `antialias=True`).
    holdout: `(low, high)` radii in px: grid points inside the band go to a `holdout` split
      instead of `train` (disks only: its renderer's `holdout_mask`).
    split_fn: the name of a renderer function `fn(full_factors int [n, K]) -> str [n]` giving
      each grid point's split (e.g. sprites' `split_of`: train / validation / test by character);
      None puts every point in `train`.
    renderer: the renderer of this config when it is not the builder's (`disks/grey` renders
      `grey_disks`, a grid with a second factor).
  """

  reduced: bool = False
  strides: tuple[int, ...] | None = None
  render_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  holdout: tuple[float, float] | None = None
  split_fn: str | None = None
  renderer: str | None = None


def _renderer(name: str):
  # Imported when a builder is used, not when TFDS registers the builders.
  from disentangle_jax.data import ground_truth

  return ground_truth.get_renderer(name)


def ground_truth_for(renderer_name: str, config: ProceduralConfig):
  """The `RenderedGroundTruth` of a config's grid (reduced or full, with its render options)."""
  from disentangle_jax.data import ground_truth

  renderer = _renderer(config.renderer or renderer_name)
  strides = config.strides or (renderer.REDUCED_STRIDES if config.reduced else None)
  return ground_truth.RenderedGroundTruth(renderer, strides=strides, **config.render_options)


#: Splits in this order first; any others follow in sorted order.
_SPLIT_ORDER = ('train', 'validation', 'test', 'holdout')


def split_grid_indices(renderer_name: str, config: ProceduralConfig) -> dict[str, np.ndarray]:
  """Grid indices (into the config's grid) of the records of each split; they are the keys."""
  grid = ground_truth_for(renderer_name, config)
  indices = np.arange(grid.num_points, dtype=np.int64)
  if config.holdout is None and config.split_fn is None:
    return {'train': indices}
  renderer = grid.renderer
  full = grid.to_full_factors(grid.index_to_factors(indices))
  if config.holdout is not None:
    names = np.where(renderer.holdout_mask(full, *config.holdout), 'holdout', 'train')
  else:
    names = np.asarray(getattr(renderer, config.split_fn)(full))
  found = set(np.unique(names).tolist())
  order = [n for n in _SPLIT_ORDER if n in found] + sorted(found - set(_SPLIT_ORDER))
  return {name: indices[names == name] for name in order}


class ProceduralBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Renders `RENDERER`'s grid; subclasses name the renderer and list their configs."""

  RENDERER: str = ''
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS: list[ProceduralConfig] = []

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS's own lookup imports `importlib_resources`, which TFDS does not depend on; the path
    # only serves to find a `checksums.tsv`, and procedural builders download nothing.
    return epath.Path(__file__)

  @property
  def ground_truth(self):
    return ground_truth_for(self.RENDERER, self.builder_config)

  @classmethod
  def split_keys(cls, config: ProceduralConfig) -> dict[str, np.ndarray]:
    """The record keys of each split of `config` (grid indices, for a grid)."""
    return split_grid_indices(cls.RENDERER, config)

  def factors_of_keys(self, split: str, keys: np.ndarray) -> np.ndarray:
    """The factors (on the config's grid) of the records `keys` of `split`; int64 [n, K]."""
    del split  # a grid point's factors are its index's
    return self.ground_truth.index_to_factors(keys)

  def _info(self) -> tfds.core.DatasetInfo:
    grid = self.ground_truth
    features = {
        'image': tfds.features.Tensor(
            shape=grid.image_shape, dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB
        ),
        'factors': tfds.features.Tensor(shape=(grid.num_factors,), dtype=np.int32),
    }
    for name, size in zip(grid.factor_names, grid.factor_sizes):
      features[f'label_{name}'] = tfds.features.ClassLabel(num_classes=size)
    features.update(self._extra_feature_specs())
    return tfds.core.DatasetInfo(
        builder=self,
        description=(self.__doc__ or '').strip(),
        features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict(
            factor_names=list(grid.factor_names),
            factor_sizes=list(grid.factor_sizes),
            strides=list(grid.strides),
            render_options=dict(self.builder_config.render_options),
        ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    splits = self.split_keys(self.builder_config)
    return {name: self._generate_examples(name, keys) for name, keys in splits.items()}

  @classmethod
  def label_sizes(cls, config: ProceduralConfig) -> tuple[int, ...]:
    """Classes of each column of the records' `label` (none here)."""
    del config
    return ()

  def _extra_feature_specs(self) -> dict[str, Any]:
    """TFDS features besides the image, factors and factor labels (none here)."""
    return {}

  def _extra_features(self, split: str, factors: np.ndarray) -> dict[str, np.ndarray]:
    """The values of `_extra_feature_specs` for records of `split` with these factors."""
    del split, factors
    return {}

  def _generate_examples(self, split: str, grid_indices: np.ndarray
                         ) -> Iterator[tuple[int, dict]]:
    grid = self.ground_truth
    label_keys = [f'label_{name}' for name in grid.factor_names]

    def render(start: int):
      factors = self.factors_of_keys(split, grid_indices[start : start + _RENDER_CHUNK])
      images = grid.renderer.render(grid.to_full_factors(factors), **grid.render_options)
      return factors.astype(np.int32), images

    # Render the next chunk in a thread (numpy releases the GIL) while TFDS serialises this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      starts = range(0, len(grid_indices), _RENDER_CHUNK)
      pending = pool.submit(render, 0) if len(grid_indices) else None
      for start in starts:
        factors, images = pending.result()
        if start + _RENDER_CHUNK < len(grid_indices):
          pending = pool.submit(render, start + _RENDER_CHUNK)
        keys = grid_indices[start : start + _RENDER_CHUNK].tolist()
        labels = factors.tolist()
        extra = {k: v.tolist() for k, v in self._extra_features(split, factors).items()}
        for j, key in enumerate(keys):
          example = {'image': images[j], 'factors': factors[j]}
          example.update(zip(label_keys, labels[j]))
          example.update((k, v[j]) for k, v in extra.items())
          yield key, example


def _configs(*extra: ProceduralConfig, **common) -> list[ProceduralConfig]:
  """`full`, the `extra` configs, then `small`; `common` fields go to `full` and `small`."""
  return [
      ProceduralConfig(name='full', description='The full factor grid.', **common),
      *extra,
      ProceduralConfig(
          name='small', reduced=True,
          description="The renderer's reduced grid (REDUCED_STRIDES), for tests and CPU runs.",
          **common,
      ),
  ]


class ProceduralDsprites(ProceduralBuilder):
  """dSprites-equivalent: 3 shapes x 6 scales x 40 orientations x 32 x 32 positions, 64x64x1."""

  RENDERER = 'dsprites'
  BUILDER_CONFIGS = _configs(
      ProceduralConfig(
          name='antialiased', render_options={'antialias': True},
          description='The full grid with 4x4-supersampled grey edges instead of binary pixels.',
      )
  )


class ProceduralShapes3d(ProceduralBuilder):
  """Shapes3D-equivalent: floor, wall, object hue x scale x shape x orientation, 64x64x3."""

  RENDERER = 'shapes3d'
  BUILDER_CONFIGS = _configs()


class Disks(ProceduralBuilder):
  """One centred, slightly blurred disk whose radius varies, 64x64x1 (Newson et al.).

  `grey` adds a second factor, the disk's grey level (the `grey_disks` renderer).
  """

  RENDERER = 'disks'
  BUILDER_CONFIGS = _configs(
      ProceduralConfig(
          name='holdout', holdout=(11.0, 18.0),
          description=(
              'The full grid with radii 11..18 px moved from `train` to a `holdout` split, for '
              'the interpolation experiment.'
          ),
      ),
      ProceduralConfig(
          name='grey', renderer='grey_disks',
          description=(
              'Radius 128 x grey level 17 (0.2..1.0): the PCA-like autoencoder\'s documented '
              'failure case for its second component. 2,176 images.'
          ),
      ),
  )


class Ellipses(ProceduralBuilder):
  """One centred, slightly blurred ellipse: two semi-axes and a rotation, 64x64x1."""

  RENDERER = 'ellipses'
  BUILDER_CONFIGS = _configs()


class ProceduralSprites(ProceduralBuilder):
  """Sprites-equivalent avatars: body, skin, vest, hair, arm, leg and pose, 64x64x3.

  Splits by character (the six attributes but the pose): 480 characters train, 48 validation,
  48 test, each split balanced in every attribute (see the renderer's `split_of`). `tiny` keeps
  every character and every 21st pose (all 4 directions, 2 actions, the first frame): the same
  splits at 4,608 images, built in seconds, for tests.
  """

  RENDERER = 'sprites'
  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'First release.',
      '1.1.0': 'train / validation / test splits over disjoint characters.',
  }
  BUILDER_CONFIGS = _configs(
      ProceduralConfig(
          name='tiny', strides=(1,) * 6 + (21,), split_fn='split_of',
          description=('Every character in 8 poses (every 21st): train 3,840 / validation 384 / '
                       'test 384, for tests.'),
      ),
      split_fn='split_of',
  )


class ProceduralDigits(ProceduralBuilder):
  """MNIST stand-in: scikit-learn's handwritten digit scans, rotated and re-stroked, 32x32x1.

  Factors digit 10, rotation 7, stroke 5, instance 174; train holds instances 0..139 of each
  digit, test the other 34 (disjoint scans). Builds offline from `sklearn.datasets.load_digits`.
  """

  RENDERER = 'digits'
  BUILDER_CONFIGS = _configs(split_fn='split_of')


@dataclasses.dataclass(eq=False)
class MixtureConfig(ProceduralConfig):
  """A mixture-of-digits config: which digits make the classes, distractors, sizes.

  Attributes:
    class_digits: the digits whose unordered pairs are the classes.
    distractors: digits one of which is added to every image (() for none).
    num_train, num_validation: images per split (classes balanced to within one image).
    seed: the records' seed; train and validation draw from their own streams.
    scan_stride: use every `scan_stride`-th scan of each split (fewer glyphs to draw: a small
      config builds in seconds).
  """

  class_digits: tuple[int, ...] = tuple(range(10))
  distractors: tuple[int, ...] = ()
  num_train: int = 20_000
  num_validation: int = 5_000
  seed: int = 0
  scan_stride: int = 1


@functools.lru_cache(maxsize=8)
def mixture_factors(config: MixtureConfig, split: str) -> np.ndarray:
  """The factor rows of a mixture config's split, record by record; int64 [n, 12].

  Training images use the training scans of each digit, validation images the others, so
  validation accuracy measures generalisation to new handwriting.
  """
  # pylint: disable-next=g-import-not-at-top
  from disentangle_jax.data.renderers import digit_mixture, digits

  stride = config.scan_stride
  instances = {
      'train': range(0, digits.NUM_TRAIN_INSTANCES, stride),
      'validation': range(digits.NUM_TRAIN_INSTANCES, digits.INSTANCES_PER_DIGIT, stride),
  }
  count = {'train': config.num_train, 'validation': config.num_validation}
  rng = np.random.default_rng([config.seed, list(instances).index(split)])
  return digit_mixture.sample_factors(
      rng, count[split], class_digits=config.class_digits, distractors=config.distractors,
      instances=instances[split])


class MixtureOfDigits(ProceduralBuilder):
  """Two different handwritten digits per 56x56x1 image; the class is the unordered pair.

  Zhou's "Mixture of MNIST" sanity check for unit interpretability, offline: the digits are
  scikit-learn's scans (training scans for `train`, the others for `validation`). Records hold
  the image, `label` (the pair's class), and the renderer's factor row (which digits and scans,
  where); the per-pixel digit masks come from `digit_mixture.concept_masks(factors)`.
  """

  RENDERER = 'digit_mixture'
  BUILDER_CONFIGS = [
      MixtureConfig(name='pairs', description='45 classes (pairs of 0-9), 20,000 / 5,000 images.'),
      MixtureConfig(
          name='distractors', class_digits=tuple(range(8)), distractors=(8, 9),
          description=('The usefulness variant: 28 classes (pairs of 0-7), and an 8 or a 9 at '
                       'random in every image, 20,000 / 5,000 images.'),
      ),
      MixtureConfig(
          name='small', num_train=2_000, num_validation=500, scan_stride=7,
          description=('45 classes, 2,000 / 500 images from 20 / 5 scans per digit, for tests '
                       'and CPU runs.'),
      ),
  ]

  @classmethod
  def split_keys(cls, config: MixtureConfig) -> dict[str, np.ndarray]:
    return {'train': np.arange(config.num_train, dtype=np.int64),
            'validation': np.arange(config.num_validation, dtype=np.int64)}

  def factors_of_keys(self, split: str, keys: np.ndarray) -> np.ndarray:
    return mixture_factors(self.builder_config, split)[keys]

  @classmethod
  def label_sizes(cls, config: MixtureConfig) -> tuple[int, ...]:
    n = len(config.class_digits)
    return (n * (n - 1) // 2,)

  def _extra_feature_specs(self) -> dict[str, Any]:
    return {'label': tfds.features.ClassLabel(num_classes=self.label_sizes(self.builder_config)[0])}

  def _extra_features(self, split: str, factors: np.ndarray) -> dict[str, np.ndarray]:
    from disentangle_jax.data.renderers import digit_mixture  # pylint: disable=g-import-not-at-top

    return {'label': digit_mixture.pair_label(factors[:, 0], factors[:, 1],
                                              self.builder_config.class_digits)}


#: TFDS name -> builder class, for the catalogue.
BUILDERS = {
    cls.name: cls
    for cls in (ProceduralDsprites, ProceduralShapes3d, Disks, Ellipses, ProceduralSprites,
                ProceduralDigits, MixtureOfDigits)
}


def num_examples(name: str, config_name: str | None = None) -> dict[str, int]:
  """Records per split of a builder config, computed without building it."""
  cls = BUILDERS[name]
  config = cls.builder_configs[config_name or cls.BUILDER_CONFIGS[0].name]
  return {k: int(v.size) for k, v in cls.split_keys(config).items()}



def label_sizes(name: str, config_name: str | None = None) -> tuple[int, ...]:
  """Classes of each label column of a builder config's records (() when it has no labels)."""
  cls = BUILDERS[name]
  return cls.label_sizes(cls.builder_configs[config_name or cls.BUILDER_CONFIGS[0].name])

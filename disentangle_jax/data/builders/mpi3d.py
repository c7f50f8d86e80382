"""MPI3D from the official `.npz` files, without TensorFlow (TFDS name `mpi3d`).

    python launch/prepare_mpi3d.py --variant=toy --source_dir=~/mpi3d \
        --data_dir=~/tensorflow_datasets

MPI3D (Gondal, Wüthrich, Miladinović, Locatello, Breidt, Volchkov, Akpo, Bachem, Schölkopf,
Bauer, "On the Transfer of Inductive Bias from Simulation to the Real World: a New
Disentanglement Dataset", NeurIPS 2019) photographs or renders a robot arm holding an object over
a full factor grid. Each release is one `.npz` holding `images`, uint8 [N, 64, 64, 3], in the
row-major order of the factors (the last one varies fastest):

  object_color 6, object_shape 6, object_size 2, camera_height 3, background_color 3,
  horizontal_axis 40, vertical_axis 40  ->  1,036,800 images

The builder configs are the releases (`source_file` is looked for in `--source_dir`):

  toy        mpi3d_toy.npz                          simple rendered shapes
  realistic  mpi3d_realistic.npz                    realistic renderings
  real       mpi3d_real.npz                         photographs of the real robot
  complex    real3d_complicated_shapes_ordered.npz  photographs of everyday objects, 4 colours
                                                     × 4 shapes (460,800 images)

The factor sizes are read, not assumed: an `.npz` may carry its own `factor_sizes` array (7 ints,
as a reduced file for tests does), or `prepare(factor_sizes=...)` gives them; otherwise they are
the config's when its grid has as many points as the file has images, or else the one known
layout of that image count (1,036,800 or 460,800, e.g. the NeurIPS 2019 challenge's 4 × 4 subset).
The sizes used are stored in the dataset's metadata (`factor_sizes`), where the loader reads them.

Features of every record (written like the procedural datasets', read without TensorFlow):
  image:          uint8 [64, 64, 3], zlib-encoded tensor.
  factors:        int32 [7], the image's factor indices, in the order above (what the loader
                  reads, with the sizes of the metadata).
  label_<factor>: one `ClassLabel` per factor, the same values, sized as the variant's release
                  (a reduced file's values fit them; mock data draws valid factors from them).

One split, `train`, the whole grid, in TFDS's hashed record order: a slice such as `train[:80%]`
is a random 80% of the grid (the finetuning split of Seitzer et al. 2020 is random 80/20).
`datasets.ground_truth('mpi3d')` looks images up by their factors (`IndexedGroundTruth`), so the
sampled metrics draw MPI3D images for chosen factor values.

The `.npz` is read in order in chunks straight out of the zip archive (stored or deflated), so
building needs memory for one chunk, not for the 12.7 GB array.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zipfile
from typing import Iterator, Sequence

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from disentangle_jax.data.builders import manual

FACTOR_NAMES = ('object_color', 'object_shape', 'object_size', 'camera_height',
                'background_color', 'horizontal_axis', 'vertical_axis')
FULL_SIZES = (6, 6, 2, 3, 3, 40, 40)
FOUR_BY_FOUR_SIZES = (4, 4, 2, 3, 3, 40, 40)
#: Image count -> the factor sizes of the releases with that many images.
KNOWN_LAYOUTS = {math.prod(FULL_SIZES): FULL_SIZES,
                 math.prod(FOUR_BY_FOUR_SIZES): FOUR_BY_FOUR_SIZES}
IMAGE_SHAPE = (64, 64, 3)

#: Images read from the archive per chunk while building.
_CHUNK = 4096

_HOW_TO_GET = 'download it from github.com/rr-learning/disentanglement_dataset'


class Mpi3dSourceError(FileNotFoundError):
  """The MPI3D `.npz` is missing or does not hold an MPI3D image grid."""


@dataclasses.dataclass(eq=False)
class Mpi3dConfig(tfds.core.BuilderConfig):
  """One MPI3D release.

  Attributes:
    source_file: the release's file name.
    factor_sizes: the release's grid.
  """

  source_file: str = ''
  factor_sizes: tuple[int, ...] = FULL_SIZES


# ---------------------------------------------------------------------------------------------
# The official file.


def _read_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
  version = np.lib.format.read_magic(f)
  if version == (1, 0):
    return np.lib.format.read_array_header_1_0(f)
  if version == (2, 0):
    return np.lib.format.read_array_header_2_0(f)
  return np.lib.format._read_array_header(f, version)  # pylint: disable=protected-access


class NpzImages:
  """The `images` array of an MPI3D `.npz`, read in order, chunk by chunk, from the archive.

  Attributes:
    path: the `.npz`.
    shape: [N, 64, 64, 3].
    factor_sizes: the file's own `factor_sizes` array, or None.
  """

  def __init__(self, path: str):
    self.path = path
    try:
      archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
      raise Mpi3dSourceError(f'{path} is not an .npz file ({e}); {_HOW_TO_GET} again.') from e
    with archive:
      names = archive.namelist()
      if 'images.npy' not in names:
        raise Mpi3dSourceError(
            f'{path} holds no `images` array (it holds {", ".join(n[:-4] for n in names)}): it '
            'is not an MPI3D release.'
        )
      with archive.open('images.npy') as f:
        shape, fortran, dtype = _read_header(f)
      self.factor_sizes = None
      if 'factor_sizes.npy' in names:
        with archive.open('factor_sizes.npy') as f:
          self.factor_sizes = tuple(int(s) for s in np.lib.format.read_array(f).ravel())
    if len(shape) != 4 or tuple(shape[1:]) != IMAGE_SHAPE or dtype != np.uint8 or fortran:
      raise Mpi3dSourceError(
          f'{path} holds images {dtype} {list(shape)}{" (Fortran order)" if fortran else ""}; '
          f'an MPI3D release holds uint8 [N, 64, 64, 3] in C order.'
      )
    self.shape = tuple(int(s) for s in shape)

  def __len__(self) -> int:
    return self.shape[0]

  def chunks(self, size: int) -> Iterator[np.ndarray]:
    """Consecutive uint8 [<= size, 64, 64, 3] blocks of the images, in file order."""
    per_image = math.prod(IMAGE_SHAPE)
    with zipfile.ZipFile(self.path) as archive, archive.open('images.npy') as f:
      _read_header(f)
      for start in range(0, len(self), size):
        count = min(size, len(self) - start)
        data = f.read(count * per_image)
        if len(data) != count * per_image:
          raise Mpi3dSourceError(
              f'{self.path} ends after {start + len(data) // per_image} of {len(self)} images: '
              f'the file is truncated; {_HOW_TO_GET} again.'
          )
        yield np.frombuffer(data, np.uint8).reshape(count, *IMAGE_SHAPE)


def factor_sizes_for(images: NpzImages, config_sizes: Sequence[int],
                     given: Sequence[int] | None = None) -> tuple[int, ...]:
  """The grid of an `.npz`: `given`, else its own `factor_sizes`, else the config's or the known
  layout of its image count (see the module docstring). Their product must be the image count.
  """
  n = len(images)
  if given is not None:
    sizes, origin = tuple(int(s) for s in given), 'the factor sizes given'
  elif images.factor_sizes is not None:
    sizes, origin = images.factor_sizes, f'the factor_sizes array of {images.path}'
  elif math.prod(config_sizes) == n:
    sizes, origin = tuple(config_sizes), 'the release'
  elif n in KNOWN_LAYOUTS:
    sizes, origin = KNOWN_LAYOUTS[n], 'the known layout'
  else:
    known = '; '.join(f'{list(s)} = {k:,}' for k, s in KNOWN_LAYOUTS.items())
    raise Mpi3dSourceError(
        f'{images.path} holds {n:,} images, the image count of no MPI3D grid ({known}); give the '
        'factor sizes (--factor_sizes, 7 numbers, the last varying fastest).'
    )
  if len(sizes) != len(FACTOR_NAMES) or min(sizes) < 1 or math.prod(sizes) != n:
    raise Mpi3dSourceError(
        f'{origin} {list(sizes)} do not fit {images.path}: {len(FACTOR_NAMES)} positive sizes '
        f'whose product is its {n:,} images are needed.'
    )
  if any(s > c for s, c in zip(sizes, config_sizes)):
    raise Mpi3dSourceError(
        f'{origin} {list(sizes)} exceed the grid of this variant\'s release '
        f'{list(config_sizes)}: {images.path} is another variant\'s file (--variant).'
    )
  return sizes


def source_path(source_dir: str, config: Mpi3dConfig) -> str:
  """The release's file in `source_dir`; missing is an error naming it and where."""
  source_dir = os.path.expanduser(os.fspath(source_dir))
  path = os.path.join(source_dir, config.source_file)
  if not os.path.isfile(path):
    raise Mpi3dSourceError(
        f'MPI3D file missing from {source_dir}: {config.source_file} (mpi3d/{config.name}); '
        f'{_HOW_TO_GET} into {source_dir}, or pass --source_dir=<the directory that holds it>.'
    )
  return path


# ---------------------------------------------------------------------------------------------
# The builder.


class Mpi3d(tfds.core.GeneratorBasedBuilder):
  """MPI3D's robot-arm images over their full factor grid, with the factors of each image."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put the release .npz (mpi3d_toy.npz, mpi3d_realistic.npz, mpi3d_real.npz or '
      f'real3d_complicated_shapes_ordered.npz; {_HOW_TO_GET}) in a directory and run python '
      'launch/prepare_mpi3d.py --variant=<toy|realistic|real|complex> --source_dir=<it>.'
  )
  BUILDER_CONFIGS = [
      Mpi3dConfig(name='toy', source_file='mpi3d_toy.npz',
                  description='Simple rendered shapes (mpi3d_toy.npz).'),
      Mpi3dConfig(name='realistic', source_file='mpi3d_realistic.npz',
                  description='Realistic renderings (mpi3d_realistic.npz).'),
      Mpi3dConfig(name='real', source_file='mpi3d_real.npz',
                  description='Photographs of the real robot (mpi3d_real.npz).'),
      Mpi3dConfig(name='complex', source_file='real3d_complicated_shapes_ordered.npz',
                  factor_sizes=FOUR_BY_FOUR_SIZES,
                  description='Photographs of everyday objects, 4 colours x 4 shapes.'),
  ]

  def __init__(self, *, factor_sizes: Sequence[int] | None = None, **kwargs):
    """`factor_sizes` overrides what the `.npz` says (building only; see the module docstring)."""
    self._given_factor_sizes = factor_sizes
    super().__init__(**kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # As the procedural builders: nothing is downloaded, no checksums file is looked for.
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    # `factor_sizes` is not put here: metadata given in code overrides what is on disk, and the
    # sizes are those of the file that was built (set in `_split_generators`).
    return tfds.core.DatasetInfo(
        builder=self,
        description=(self.__doc__ or '').strip(),
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(
                shape=IMAGE_SHAPE, dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB
            ),
            'factors': tfds.features.Tensor(shape=(len(FACTOR_NAMES),), dtype=np.int32),
            **{f'label_{name}': tfds.features.ClassLabel(num_classes=size)
               for name, size in zip(FACTOR_NAMES, self.builder_config.factor_sizes)},
        }),
        homepage='https://github.com/rr-learning/disentanglement_dataset',
        metadata=tfds.core.MetadataDict(factor_names=list(FACTOR_NAMES)),
    )

  @property
  def factor_sizes(self) -> tuple[int, ...]:
    """The grid of the prepared dataset (its metadata), else the config's."""
    sizes = self.info.metadata.get('factor_sizes') if self.info.metadata is not None else None
    return tuple(int(s) for s in sizes) if sizes else tuple(self.builder_config.factor_sizes)

  def _split_generators(self, dl_manager):
    images = NpzImages(source_path(os.fspath(dl_manager.manual_dir), self.builder_config))
    sizes = factor_sizes_for(images, self.builder_config.factor_sizes, self._given_factor_sizes)
    self.info.metadata['factor_sizes'] = list(sizes)
    return {'train': self._generate_examples(images, sizes)}

  def _generate_examples(self, images: NpzImages, sizes: tuple[int, ...]
                         ) -> Iterator[tuple[int, dict]]:
    label_keys = [f'label_{name}' for name in FACTOR_NAMES]
    start = 0
    for chunk in images.chunks(_CHUNK):
      index = np.arange(start, start + len(chunk))
      factors = np.stack(np.unravel_index(index, sizes), axis=1).astype(np.int32)
      labels = factors.tolist()
      for j, key in enumerate(index.tolist()):
        example = {'image': chunk[j], 'factors': factors[j]}
        example.update(zip(label_keys, labels[j]))
        yield key, example
      start += len(chunk)


def prepare(source_dir: str, *, variant: str = 'toy', data_dir: str | None = None,
            factor_sizes: Sequence[int] | None = None) -> str:
  """Builds `mpi3d/<variant>` in `data_dir` from the release's `.npz` in `source_dir`.

  Args:
    source_dir: the directory holding the release's file (see `Mpi3d.BUILDER_CONFIGS`).
    variant: toy, realistic, real or complex.
    data_dir: the TFDS data dir to write to (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    factor_sizes: the grid, when the file is neither a full release nor says it itself.

  Returns:
    The directory of the prepared dataset (already prepared: nothing is read or written).

  Raises:
    Mpi3dSourceError: the file is missing or is not an MPI3D grid (one line naming it).
    ValueError: an unknown variant.
  """
  configs = Mpi3d.builder_configs
  if variant not in configs:
    raise ValueError(f'mpi3d has no variant {variant!r}; known: {", ".join(configs)}')
  builder = Mpi3d(config=variant, data_dir=data_dir, file_format='array_record',
                  factor_sizes=factor_sizes)
  if builder.is_prepared():
    return os.fspath(builder.data_dir)
  source_dir = os.path.abspath(os.path.expanduser(source_dir))
  factor_sizes_for(NpzImages(source_path(source_dir, configs[variant])),
                   configs[variant].factor_sizes, factor_sizes)  # errors before TFDS starts
  return manual.build_from(builder, source_dir)

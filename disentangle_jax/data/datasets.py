"""The dataset catalogue: every dataset the pipeline reads, real or procedural, through TFDS.

Real datasets (prepared by TFDS in ArrayRecord format; never downloaded from here):

  dsprites   737,280  64×64×1  factors shape, scale, orientation, x_position, y_position
  shapes3d   480,000  64×64×3  factors floor_hue, wall_hue, object_hue, scale, shape, orientation
  smallnorb  24,300 + 24,300  96×96×1 -> 64×64 (as dlib)  factors category, instance, elevation,
             azimuth, lighting (the grid is complete over `train+test`)
  mnist      60,000 + 10,000  28×28×1  label: digit
  celeb_a    162,770 / 19,867 / 19,962  218×178×3 -> centre crop 178 -> 64×64  label: 40 attributes

TFDS 4.9.10 has no Cars3D or MPI3D builder: MPI3D is built here (below), and
`IndexedGroundTruth` serves any such grid once a builder for it exists.

Real datasets prepared by this package from the official files a user has, without TensorFlow
(records written like the procedural ones, see `disentangle_jax.data.builders`):

  celeb_a64  162,770 / 19,867 / 19,962  64×64×3 (crop178: centre 178 square, the default;
             crop148; crop108)  label: 40 attributes        python launch/prepare_celeba.py
  mpi3d      1,036,800 (toy, realistic, real; complex 460,800)  64×64×3  factors object_color,
             object_shape, object_size, camera_height, background_color, horizontal_axis,
             vertical_axis                                  python launch/prepare_mpi3d.py

Procedural datasets (built offline on first use, see `disentangle_jax.data.builders`):
procedural_dsprites, procedural_shapes3d, disks, ellipses, procedural_sprites (train / validation /
test by character), procedural_digits (an MNIST stand-in: train / test by scan),
mixture_of_digits (two digits per image, labelled by the pair; train / validation by scan).

`open_dataset` opens one split as a `RecordReader`: random access by record index to numpy
batches. A dataset that is not prepared raises `DatasetNotFoundError` saying which dataset, where
TFDS looked and how to obtain it; unreadable files raise `DatasetCorruptedError` saying how to
rebuild. Nothing here downloads or waits on the network.
"""

from __future__ import annotations

import dataclasses
import fcntl
import math
import os
import shutil
import zlib
from typing import Callable, Sequence

import numpy as np

from disentangle_jax.data import ground_truth as ground_truth_lib
from disentangle_jax.data import preprocess

PREPARE_EXTRA = "pip install 'disentangle_jax[prepare]'"


class DatasetNotFoundError(FileNotFoundError):
  """A dataset is not prepared where TFDS looked (and may not be built from here)."""


class DatasetCorruptedError(RuntimeError):
  """A prepared dataset's files are missing, truncated or unreadable."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One catalogue entry.

  Attributes:
    name: the TFDS name.
    procedural: built here by `disentangle_jax.data.builders` (else prepared by TFDS).
    factor_keys: the TFDS features holding the factor indices, in factor order.
    factor_names: the factors' names (same order).
    label_keys: the TFDS features of the labels ('/' descends into nested features).
    label_names: the labels' names (same order).
    pixel_max: the stored value of white (TFDS's dsprites stores 0/1 images).
    crop, image_size: default preprocessing (see `preprocess.Preprocessing`).
    train_split, eval_split: default splits.
    ground_truth_split: the split whose records cover the factor grid.
    manual: how to obtain the raw files when TFDS cannot download them itself.
    prepare: for datasets this package builds from the user's files, the command that does it,
      with `{data_dir}` and `{config}` to fill in. Their records are written as the procedural
      ones: a zlib 'image' tensor and int32 'factors' [K] / 'label' [L] tensors.
  """

  name: str
  procedural: bool = False
  factor_keys: tuple[str, ...] = ()
  factor_names: tuple[str, ...] = ()
  label_keys: tuple[str, ...] = ()
  label_names: tuple[str, ...] = ()
  pixel_max: int = 255
  crop: str | int | None = None
  image_size: int | None = None
  train_split: str = 'train'
  eval_split: str = 'train'
  ground_truth_split: str | None = None
  manual: str | None = None
  prepare: str | None = None

  @property
  def packaged(self) -> bool:
    """Records written by this package's builders (procedural, or prepared by `prepare`)."""
    return self.procedural or self.prepare is not None


def _labels(*names: str) -> tuple[str, ...]:
  return tuple(f'label_{n}' for n in names)


_DSPRITES = ('shape', 'scale', 'orientation', 'x_position', 'y_position')
_SHAPES3D = ('floor_hue', 'wall_hue', 'object_hue', 'scale', 'shape', 'orientation')
_NORB = ('category', 'instance', 'elevation', 'azimuth', 'lighting')
CELEBA_ATTRIBUTES = (
    '5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose '
    'Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee '
    'Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes '
    'No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling '
    'Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace '
    'Wearing_Necktie Young'
).split()
_CELEBA_FILES = (
    'img_align_celeba.zip', 'list_eval_partition.txt', 'list_attr_celeba.txt',
    'list_landmarks_align_celeba.txt', 'identity_CelebA.txt',
)
_MPI3D = ('object_color', 'object_shape', 'object_size', 'camera_height', 'background_color',
          'horizontal_axis', 'vertical_axis')
_PREPARE_CELEBA = (
    'python launch/prepare_celeba.py --source_dir=<directory holding img_align_celeba.zip, '
    'list_attr_celeba.txt and list_eval_partition.txt> --data_dir={data_dir} --config={config}'
)

REAL_DATASETS = {
    d.name: d
    for d in (
        Dataset(
            'dsprites', factor_keys=_labels(*_DSPRITES), factor_names=_DSPRITES, pixel_max=1,
            ground_truth_split='train',
        ),
        Dataset(
            'shapes3d', factor_keys=_labels(*_SHAPES3D), factor_names=_SHAPES3D,
            ground_truth_split='train',
        ),
        Dataset(
            'smallnorb',
            factor_keys=('label_category', 'instance', 'label_elevation', 'label_azimuth',
                         'label_lighting'),
            factor_names=_NORB, image_size=64, eval_split='test', ground_truth_split='train+test',
        ),
        Dataset('mnist', label_keys=('label',), label_names=('digit',), eval_split='test'),
        Dataset(
            'celeb_a', label_keys=tuple(f'attributes/{a}' for a in CELEBA_ATTRIBUTES),
            label_names=tuple(CELEBA_ATTRIBUTES), crop='center', image_size=64,
            eval_split='test',
            manual=(
                "TFDS downloads CelebA from Google Drive, which often refuses (quota). Download "
                f"{', '.join(_CELEBA_FILES)} from the CelebA site by hand into the manual "
                "directory, {manual_dir}, and run the command again (it finds them there). "
                "Or, without TensorFlow, build celeb_a64 (the same faces, cropped and resized to "
                "64x64 once) from img_align_celeba.zip, list_attr_celeba.txt and "
                "list_eval_partition.txt and train on data.name='celeb_a64': "
                + _PREPARE_CELEBA.format(data_dir='{data_dir}', config='crop178')
            ),
        ),
        Dataset(
            'celeb_a64', label_keys=('label',), label_names=tuple(CELEBA_ATTRIBUTES),
            eval_split='test', prepare=_PREPARE_CELEBA,
        ),
        Dataset(
            'mpi3d', factor_keys=_labels(*_MPI3D), factor_names=_MPI3D,
            ground_truth_split='train',
            prepare=(
                'python launch/prepare_mpi3d.py --variant={config} --source_dir=<directory '
                'holding {source_file}> --data_dir={data_dir}'
            ),
        ),
    )
}

PROCEDURAL_DATASETS = {
    d.name: d
    for d in (
        Dataset('procedural_dsprites', procedural=True),
        Dataset('procedural_shapes3d', procedural=True),
        Dataset('disks', procedural=True),
        Dataset('ellipses', procedural=True),
        Dataset('procedural_sprites', procedural=True, eval_split='validation'),
        Dataset('procedural_digits', procedural=True, eval_split='test'),
        Dataset(
            'mixture_of_digits', procedural=True, label_keys=('label',), label_names=('pair',),
            eval_split='validation', ground_truth_split='validation',
        ),
    )
}

CATALOGUE = {**PROCEDURAL_DATASETS, **REAL_DATASETS}


def get_dataset(name: str) -> Dataset:
  """The catalogue entry of `name`; an unknown name is an error listing the known ones."""
  if name not in CATALOGUE:
    raise ValueError(
        f'unknown dataset {name!r}; known datasets: procedural '
        f'{", ".join(sorted(PROCEDURAL_DATASETS))}; real {", ".join(sorted(REAL_DATASETS))}'
    )
  return CATALOGUE[name]


# ---------------------------------------------------------------------------------------------
# Opening a dataset.


def _tfds():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  import disentangle_jax.data.builders  # noqa: F401  (registers the builders)

  return tfds


def _builder(dataset: Dataset, builder_config: str | None, data_dir: str | None):
  tfds = _tfds()
  cls = tfds.builder_cls(dataset.name)
  configs = getattr(cls, 'builder_configs', None) or {}
  if builder_config is not None and builder_config not in configs:
    if not configs and not dataset.procedural:
      # A run shrunk for a CPU (builder_config='small') pointed at a real dataset: whether the
      # dataset is there at all is the more useful news.
      builder = tfds.builder(dataset.name, data_dir=data_dir)
      if not builder.is_prepared():
        raise DatasetNotFoundError(_not_found_message(dataset, builder))
    known = ', '.join(configs) if configs else 'none: it has a single configuration'
    raise ValueError(
        f'{dataset.name} has no builder config {builder_config!r}; known: {known} '
        '(data.builder_config=None takes the default)'
    )
  kwargs = {'config': builder_config} if builder_config is not None else {}
  if dataset.procedural:
    kwargs['file_format'] = 'array_record'
  return tfds.builder(dataset.name, data_dir=data_dir, **kwargs)


def _full_name(builder) -> str:
  config = builder.builder_config
  return f'{builder.name}/{config.name}' if config is not None else builder.name


def _data_dir_root(builder) -> str:
  """The data dir TFDS searched: `<root>/<name>[/<config>]/<version>` -> `<root>`."""
  levels = 3 if builder.builder_config is not None else 2
  path = os.path.normpath(builder.data_dir)
  for _ in range(levels):
    path = os.path.dirname(path)
  return path


def _prepare_command(dataset: Dataset, builder) -> str:
  config = builder.builder_config
  return dataset.prepare.format(
      data_dir=_data_dir_root(builder), config=config.name if config else '',
      source_file=getattr(config, 'source_file', ''),
  )


def _not_found_message(dataset: Dataset, builder) -> str:
  name = _full_name(builder)
  data_dir_arg = _data_dir_root(builder)
  where = f'TFDS looked in {builder.data_dir}'
  if dataset.prepare:
    return (
        f'dataset {name} is not prepared: {where}. The pipeline never downloads real datasets. '
        f'Prepare it (no TensorFlow needed) from the official files you downloaded: '
        f'{_prepare_command(dataset, builder)}. Or point data.data_dir (or $TFDS_DATA_DIR) at '
        'a directory that holds it.'
    )
  if dataset.procedural:
    return (
        f'dataset {name} is not built: {where}, and build_if_missing is False. Build it with '
        f'`python -c "import disentangle_jax, tensorflow_datasets as tfds; '
        f"tfds.builder('{name}', data_dir='{data_dir_arg}', file_format='array_record')"
        f'.download_and_prepare()"` or set data.build_if_missing=True.'
    )
  command = (
      f'tfds build {dataset.name} --data_dir={data_dir_arg} --file_format=array_record'
  )
  lines = [
      f'dataset {name} is not prepared: {where}. The pipeline never downloads real datasets. '
      'To obtain it, install TensorFlow (TFDS needs it to prepare real datasets) and prepare '
      'it in ArrayRecord format:',
      f'  {PREPARE_EXTRA}',
      f'  {command}',
  ]
  if dataset.manual:
    manual_dir = os.path.join(data_dir_arg, 'downloads', 'manual')
    lines.append(dataset.manual.format(manual_dir=manual_dir, data_dir=data_dir_arg))
  lines.append('Or point data.data_dir (or $TFDS_DATA_DIR) at a directory that holds it.')
  return '\n'.join(lines)


def _rebuild_advice(dataset: Dataset, builder) -> str:
  if dataset.procedural:
    return f'Delete {builder.data_dir} and run again: it is rebuilt (build_if_missing=True).'
  if dataset.prepare:
    return f'Delete {builder.data_dir} and prepare it again: {_prepare_command(dataset, builder)}'
  return (
      f'Delete {builder.data_dir} and prepare it again: '
      f'tfds build {dataset.name} --data_dir={_data_dir_root(builder)} --file_format=array_record'
  )


def _build_procedural(builder) -> None:
  """Builds a procedural dataset once, even with several processes sharing the data dir."""
  config_dir = os.path.dirname(builder.data_dir.rstrip('/'))
  os.makedirs(config_dir, exist_ok=True)
  with open(os.path.join(config_dir, '.build.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    try:
      if builder.is_prepared():  # another process built it while we waited
        return
      # Only the lock holder writes here, so any `incomplete.*` left is a killed build's.
      for entry in os.listdir(config_dir):
        if entry.startswith('incomplete'):
          shutil.rmtree(os.path.join(config_dir, entry), ignore_errors=True)
      builder.download_and_prepare(file_format='array_record')
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _check_files(dataset: Dataset, builder, split: str) -> None:
  """Every shard of `split` exists, opens and holds the records the metadata promises."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top

  try:
    instructions = builder.info.splits[split].file_instructions
  except KeyError as e:
    raise ValueError(
        f'{_full_name(builder)} has no split {split!r}; splits: {list(builder.info.splits)}'
    ) from e
  for instruction in instructions:
    path = os.fspath(instruction.filename)
    try:
      reader = array_record_module.ArrayRecordReader(path)
      count = reader.num_records()
      reader.close()
    except Exception as e:  # pylint: disable=broad-except
      raise DatasetCorruptedError(
          f'dataset {_full_name(builder)} is corrupted: shard {path} cannot be read ({e}). '
          + _rebuild_advice(dataset, builder)
      ) from e
    if count < instruction.skip + instruction.take:
      raise DatasetCorruptedError(
          f'dataset {_full_name(builder)} is corrupted: shard {path} holds {count} records, '
          f'its metadata promises {instruction.skip + instruction.take}. '
          + _rebuild_advice(dataset, builder)
      )


def _nested(example: dict, key: str):
  for part in key.split('/'):
    example = example[part]
  return example


class RecordReader:
  """One split of a dataset: random access by record index to decoded numpy batches.

  `read(indices)` returns {'image': uint8 [n, H, W, C], 'factors': int32 [n, K] (ground-truth
  datasets), 'label': int32 [n, L] (labelled datasets)}. Reads are batched through the data
  source's `__getitems__`. Picklable, so grain worker processes can use it.
  """

  def __init__(self, dataset: Dataset, builder, split: str, source, *, factor_sizes, image_shape,
               fast: bool):
    self.dataset = dataset
    self.name = _full_name(builder)
    self.split = split
    self.rebuild_advice = _rebuild_advice(dataset, builder)
    self.source = source
    self.factor_sizes = tuple(factor_sizes)
    self.image_shape = tuple(image_shape)
    self._fast = fast

  def __len__(self) -> int:
    return len(self.source)

  def read(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
    indices = [int(i) for i in indices]
    try:
      records = self.source.__getitems__(indices)
      return self._decode_fast(records) if self._fast else self._decode(records)
    except DatasetCorruptedError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise DatasetCorruptedError(
          f'reading records {indices[:4]}{"..." if len(indices) > 4 else ""} of dataset '
          f'{self.name} (split {self.split}) failed: {type(e).__name__}: {e}. '
          + self.rebuild_advice
      ) from e

  def _decode_fast(self, records: Sequence[bytes], images: bool = True
                   ) -> dict[str, np.ndarray]:
    """Records of this package's builders: parse the tf.Example proto, keep what the loader needs.

    That is the image, the 'factors' of ground-truth datasets and the 'label' of labelled ones.
    TFDS's generic decoding would also decode every label feature one Python call at a time;
    this costs a few microseconds per record. `images=False` skips decompressing the images.
    """
    from tensorflow_datasets.proto import tf_example_pb2  # pylint: disable=g-import-not-at-top

    parse, decompress = tf_example_pb2.Example.FromString, zlib.decompress
    size = math.prod(self.image_shape)
    vectors = {'factors': len(self.factor_sizes), 'label': len(self.dataset.label_names)}
    vectors = {k: n for k, n in vectors.items() if n}
    pixels, values = [], {k: [] for k in vectors}
    for record in records:
      feature = parse(record).features.feature
      if images:
        pixels.append(decompress(feature['image'].bytes_list.value[0], bufsize=size))
      for key, out in values.items():
        out.extend(feature[key].int64_list.value)
    data = b''.join(pixels)
    if (images and len(data) != len(records) * size) or any(
        len(values[k]) != len(records) * n for k, n in vectors.items()):
      raise DatasetCorruptedError(
          f'records of dataset {self.name} hold images, factors or labels of the wrong size. '
          + self.rebuild_advice
      )
    batch = {k: np.array(values[k], np.int32).reshape(len(records), n) for k, n in vectors.items()}
    if images:
      batch['image'] = np.frombuffer(data, np.uint8).reshape(len(records), *self.image_shape)
    return batch

  def _decode(self, examples: Sequence[dict]) -> dict[str, np.ndarray]:
    """Real datasets: TFDS has decoded each example (PNG via OpenCV or PIL)."""
    image_key = 'image'
    batch = {'image': np.stack([np.asarray(e[image_key]) for e in examples])}
    if batch['image'].ndim == 3:  # grey images stored without a channel axis
      batch['image'] = batch['image'][..., None]
    if self.dataset.factor_keys:
      batch['factors'] = np.array(
          [[_nested(e, k) for k in self.dataset.factor_keys] for e in examples], np.int32
      ).reshape(len(examples), -1)  # -1: a key may hold a vector of factors
    if self.dataset.label_keys:
      batch['label'] = np.array(
          [[_nested(e, k) for k in self.dataset.label_keys] for e in examples], np.int32
      ).reshape(len(examples), -1)
    return batch

  def table(self, key: str, chunk: int = 4096) -> np.ndarray:
    """`key` ('factors' or 'label') of every record, int32 [N, K]; our own records are read
    without decompressing their images."""
    def part(indices):
      if not self._fast:
        return self.read(indices)[key]
      try:
        return self._decode_fast(self.source.__getitems__(list(indices)), images=False)[key]
      except DatasetCorruptedError:
        raise
      except Exception:  # pylint: disable=broad-except
        return self.read(indices)[key]  # which says what failed

    parts = [part(range(s, min(s + chunk, len(self)))) for s in range(0, len(self), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.int32)

  def factor_table(self, chunk: int = 4096) -> np.ndarray:
    """The factors of every record, int32 [N, K] (reads every record once)."""
    return self.table('factors', chunk)


def open_dataset(name: str, *, builder_config: str | None = None, data_dir: str | None = None,
                 split: str | None = None, build_if_missing: bool = True) -> RecordReader:
  """Opens one split of a catalogue dataset for random access.

  Procedural datasets are built on first use when `build_if_missing` (under a file lock, so
  processes sharing `data_dir` build once). Real datasets are never prepared from here.

  Raises:
    ValueError: unknown dataset, builder config or split.
    DatasetNotFoundError: the dataset is not prepared in `data_dir` (and may not be built).
    DatasetCorruptedError: its files are missing, truncated or unreadable.
  """
  tfds = _tfds()
  dataset = get_dataset(name)
  builder = _builder(dataset, builder_config, data_dir)
  split = split or dataset.train_split
  if not builder.is_prepared():
    if dataset.procedural:
      if not build_if_missing:
        raise DatasetNotFoundError(_not_found_message(dataset, builder))
      _build_procedural(builder)
      builder = _builder(dataset, builder_config, data_dir)
  prepared = builder.is_prepared()
  if prepared:
    for part in split.split('+'):
      _check_files(dataset, builder, part.strip().split('[')[0])
  # Our own records are parsed by `_decode_fast`; a source without files (mock data) decodes.
  fast = dataset.packaged and prepared
  deserialize = (
      tfds.decode.DeserializeMethod.RAW_BYTES if fast
      else tfds.decode.DeserializeMethod.DESERIALIZE_AND_DECODE
  )
  try:
    source = builder.as_data_source(split=split, deserialize_method=deserialize)
  except (ValueError, NotImplementedError, KeyError, AssertionError) as e:
    if not prepared:
      raise DatasetNotFoundError(_not_found_message(dataset, builder)) from e
    if isinstance(e, NotImplementedError):  # prepared, but not as ArrayRecord
      raise DatasetNotFoundError(
          f'dataset {_full_name(builder)} is prepared in {builder.data_dir} as '
          f'{builder.info.file_format.value}, which has no random access. Prepare it as '
          f'ArrayRecord: tfds build {dataset.name} --data_dir={_data_dir_root(builder)} '
          '--file_format=array_record (or convert it with `tfds convert_format`).'
      ) from e
    raise
  # (Not prepared, yet a source: `tfds.testing.mock_data` serves examples without files.)
  reader = RecordReader(
      dataset, builder, split, source,
      factor_sizes=factor_sizes_of(dataset, builder),
      image_shape=builder.info.features['image'].shape,
      fast=fast,
  )
  if dataset.procedural:
    _check_renderer(reader, builder)
  return reader


def _check_renderer(reader: RecordReader, builder) -> None:
  """The stored images are what today's renderer draws (a dataset built by older code is not)."""
  probe = reader.read(sorted({0, len(reader) // 2, len(reader) - 1}))
  grid = builder.ground_truth
  rendered = grid.renderer.render(grid.to_full_factors(probe['factors']), **grid.render_options)
  if not np.array_equal(rendered, probe['image']):
    raise DatasetCorruptedError(
        f'dataset {reader.name} in {builder.data_dir} holds images that the current '
        f'{grid.renderer.__name__.rsplit(".", 1)[-1]} renderer does not draw: it was built by '
        f'an older version of the code. {reader.rebuild_advice}'
    )


def factor_sizes_of(dataset: Dataset, builder) -> tuple[int, ...]:
  if dataset.procedural:
    return tuple(builder.ground_truth.factor_sizes)
  if dataset.prepare:  # the grid of the file it was built from, kept in its metadata
    return tuple(builder.factor_sizes) if dataset.factor_names else ()
  return tuple(int(builder.info.features[k].num_classes) for k in dataset.factor_keys)


# ---------------------------------------------------------------------------------------------
# Descriptions without opening the data.


@dataclasses.dataclass(frozen=True)
class Description:
  """What a dataset config yields, before preprocessing."""

  name: str
  image_shape: tuple[int, int, int]
  factor_names: tuple[str, ...]
  factor_sizes: tuple[int, ...]
  label_names: tuple[str, ...]
  splits: dict[str, int] | None  # records per split; None when unknown without the data
  #: Classes of each label where known without the data (procedural datasets: mixture_of_digits
  #: has (45,) or (28,)); () when unknown.
  label_sizes: tuple[int, ...] = ()


def describe(name: str, *, builder_config: str | None = None, data_dir: str | None = None
             ) -> Description:
  """Shapes, factors and labels of a dataset config (procedural: computed, nothing built)."""
  dataset = get_dataset(name)
  builder = _builder(dataset, builder_config, data_dir)
  if dataset.procedural:
    from disentangle_jax.data.builders import procedural  # pylint: disable=g-import-not-at-top

    grid = builder.ground_truth
    return Description(
        _full_name(builder), tuple(grid.image_shape), tuple(grid.factor_names),
        tuple(grid.factor_sizes), dataset.label_names,
        procedural.num_examples(dataset.name, builder.builder_config.name),
        procedural.label_sizes(dataset.name, builder.builder_config.name),
    )
  features = builder.info.features
  shape = tuple(features['image'].shape)
  if len(shape) == 2:
    shape = (*shape, 1)
  splits = {k: v.num_examples for k, v in builder.info.splits.items()} or None
  return Description(
      _full_name(builder), shape, dataset.factor_names, factor_sizes_of(dataset, builder),
      dataset.label_names, splits,
  )


# ---------------------------------------------------------------------------------------------
# Ground truth.


class PreprocessedGroundTruth(ground_truth_lib.GroundTruthData):
  """Another ground truth's grid, with its images preprocessed as the loader preprocesses them.

  Factors are sampled as the base samples them (from its split, when it is one).
  """

  def __init__(self, base: ground_truth_lib.GroundTruthData,
               preprocess_fn: Callable[[np.ndarray], np.ndarray], image_shape):
    self.base = base
    self.factor_names = base.factor_names
    self.factor_sizes = base.factor_sizes
    self.image_shape = tuple(image_shape)
    self._preprocess = preprocess_fn

  def __getattr__(self, attribute):
    # A split's membership and size are the base's; nothing that depends on the image size is.
    if attribute in ('contains', 'num_examples', 'factors') and 'base' in self.__dict__:
      return getattr(self.base, attribute)
    raise AttributeError(attribute)

  def sample_factors(self, rng: np.random.Generator, n: int) -> np.ndarray:
    return self.base.sample_factors(rng, n)

  def images_for(self, factors: np.ndarray) -> np.ndarray:
    return self._preprocess(self.base.images_for(factors))


def _procedural_split_factors(builder, split: str) -> np.ndarray:
  """The factors (on the config's grid) of one split of a procedural builder, without building."""
  keys = builder.split_keys(builder.builder_config)
  parts = [p.strip() for p in split.split('+')]
  for part in parts:
    if part not in keys:
      raise ValueError(
          f'{_full_name(builder)} has no split {part!r}; splits: {list(keys)} (slices such as '
          "'train[:10%]' are not supported for ground truth)"
      )
  return np.concatenate([builder.factors_of_keys(p, keys[p]) for p in parts])


def ground_truth(name: str, *, builder_config: str | None = None, data_dir: str | None = None,
                 preprocessing: preprocess.Preprocessing | None = None,
                 build_if_missing: bool = True, split: str | None = None
                 ) -> ground_truth_lib.GroundTruthData | None:
  """The factor grid of a dataset, or None for datasets without ground-truth factors.

  Procedural datasets render images directly (nothing is read or built). Real ones look images
  up in their records: the factor table is read once (seconds for dSprites).
  `preprocessing` is applied to the images as the loader applies it (its `pixel_max` is ignored:
  `images_for` already returns [0, 1]).

  `split` (e.g. 'test', or 'validation+test') restricts `sample_factors` to that split's points
  (a `SubsetGroundTruth`), so a metric never meets an image of another split. None keeps each
  dataset's default: the whole grid for procedural grids (sprites: all three splits), the
  dataset's `ground_truth_split` otherwise.
  """
  dataset = get_dataset(name)
  split = split or dataset.ground_truth_split
  if dataset.procedural:
    builder = _builder(dataset, builder_config, data_dir)
    base = builder.ground_truth
    stored_shape = base.image_shape
    if split is not None:
      base = ground_truth_lib.SubsetGroundTruth(
          base, _procedural_split_factors(builder, split), name=split)
  elif dataset.factor_keys:
    reader = open_dataset(name, builder_config=builder_config, data_dir=data_dir,
                          split=split, build_if_missing=build_if_missing)
    to_float = preprocess.Preprocessing(pixel_max=dataset.pixel_max)
    record_factors = reader.factor_table()
    whole = split == dataset.ground_truth_split
    base = ground_truth_lib.IndexedGroundTruth(
        lambda idx: to_float(reader.read(idx)['image']), record_factors,
        dataset.factor_names, reader.factor_sizes, image_shape=reader.image_shape,
        complete=whole,
    )
    if not whole:
      base = ground_truth_lib.SubsetGroundTruth(base, record_factors, name=split)
    stored_shape = reader.image_shape
  else:
    return None
  if preprocessing is None or (preprocessing.crop is None and preprocessing.image_size is None):
    return base
  geometry = dataclasses.replace(preprocessing, pixel_max=1)
  return PreprocessedGroundTruth(base, geometry, geometry.output_shape(stored_shape))


# ---------------------------------------------------------------------------------------------
# From a data config (see `disentangle_jax.data.pipeline` for the schema).


def preprocessing_for(data_config) -> preprocess.Preprocessing:
  """The loader's preprocessing for a data config: its crop/image_size over the catalogue's.

  `crop=None` and `image_size=None` take the dataset's defaults (CelebA: centre crop, 64×64;
  smallNORB: 64×64; others: native); `crop='none'` or `image_size=0` ask for none.
  """
  dataset = get_dataset(data_config.name)
  crop = data_config.get('crop', None)
  if crop is None:
    crop = dataset.crop
  elif crop == 'none':
    crop = None
  elif isinstance(crop, str) and crop.isdigit():
    crop = int(crop)
  size = data_config.get('image_size', None)
  size = dataset.image_size if size is None else (size or None)
  return preprocess.Preprocessing(pixel_max=dataset.pixel_max, crop=crop, image_size=size)


def check_channels(data_config, image_shape: Sequence[int]) -> None:
  """`data_config.channels`, when set, must match the stored images' channels."""
  channels = data_config.get('channels', None)
  if channels is not None and channels != image_shape[-1]:
    raise ValueError(
        f'data.channels={channels} but {data_config.name} images have {image_shape[-1]} '
        f'channel{"s" if image_shape[-1] != 1 else ""} (shape {tuple(image_shape)}); set '
        f'data.channels={image_shape[-1]} or None, or use a dataset with {channels} channels'
    )


def get_ground_truth(data_config, split: str | None = None
                     ) -> ground_truth_lib.GroundTruthData | None:
  """The ground-truth factor grid of a data config's dataset (None if it has no factors).

  Images come preprocessed exactly as the loader yields them. `split` restricts the sampled
  factors to one split's points (see `ground_truth`); None keeps the dataset's default.
  """
  return ground_truth(
      data_config.name, builder_config=data_config.get('builder_config', None),
      data_dir=data_config.get('data_dir', None), preprocessing=preprocessing_for(data_config),
      build_if_missing=data_config.get('build_if_missing', True), split=split,
  )

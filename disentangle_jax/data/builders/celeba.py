"""CelebA at 64×64, built from the official files without TensorFlow (TFDS name `celeb_a64`).

    python launch/prepare_celeba.py --source_dir=~/celeba --data_dir=~/tensorflow_datasets

reads, from `source_dir`, the three files of the CelebA release (Liu, Luo, Wang, Tang, "Deep
Learning Face Attributes in the Wild", ICCV 2015) that a user downloads by hand:

  img_align_celeba.zip     the 202,599 aligned and cropped JPEGs, 178 wide × 218 high (an
                           extracted `img_align_celeba/` directory works as well)
  list_attr_celeba.txt     the 40 binary attributes of every image (+1 / -1)
  list_eval_partition.txt  the official partition: 0 train (162,770), 1 validation (19,867),
                           2 test (19,962)

Each image is centre-cropped to a `crop` × `crop` square, resized to 64 × 64 with the loader's
antialiased linear filter (`preprocess.resize`) and stored as an ArrayRecord record like the
procedural datasets': a zlib-compressed uint8 tensor, decoded without TensorFlow or an image codec.
The builder configs are the crops in use for 64×64 CelebA:

  crop178 (default)  the largest centred square (the full width: rows 20..197): the whole aligned
                     face with hair and some background. `celeb_a` prepared by TFDS and cropped and
                     resized by the loader gives the same images (up to the JPEG decoder and
                     rounding).
  crop148            a tighter square (rows 35..182, columns 15..162), common in VAE code.
  crop108            a face-only square (rows 55..162, columns 35..142), common in GAN code.

Features of every record:
  image:     uint8 [64, 64, 3], zlib-encoded tensor.
  label:     bool [40], the attributes in the order of `datasets.CELEBA_ATTRIBUTES` (the order of
             `list_attr_celeba.txt`'s header); the loader's `batch['label']`, int32 0/1.
  image_id:  int32, the image's number (1-based line of `list_eval_partition.txt`, the number in
             its file name), to find it in the other annotation files.

Splits: `train`, `validation`, `test`, the official partition (a partition without images has
no split: TFDS writes no empty splits).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io
import os
import threading
import zipfile
from typing import Iterator, Sequence

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from disentangle_jax.data.builders import manual

ARCHIVE = 'img_align_celeba.zip'
IMAGE_DIR = 'img_align_celeba'
ATTRIBUTES_FILE = 'list_attr_celeba.txt'
PARTITION_FILE = 'list_eval_partition.txt'
SPLITS = ('train', 'validation', 'test')  # partition values 0, 1, 2

#: Images decoded, cropped and resized per batch while building.
_CHUNK = 256

_HOW_TO_GET = (
    'download them from the CelebA site (mmlab.ie.cuhk.edu.hk/projects/CelebA.html: '
    '"Align&Cropped Images" and the "Anno" and "Eval" folders)'
)


class CelebASourceError(FileNotFoundError):
  """An official CelebA file is missing or does not read as the release's format."""


@dataclasses.dataclass(eq=False)
class CelebAConfig(tfds.core.BuilderConfig):
  """A crop of the aligned images.

  Attributes:
    crop: side of the centred square cut from each 178×218 image before resizing.
    image_size: side of the stored images.
  """

  crop: int = 178
  image_size: int = 64


# ---------------------------------------------------------------------------------------------
# The official files.


@dataclasses.dataclass(frozen=True)
class SourceFiles:
  """Where the official files are: `images` is the zip archive or the extracted directory."""

  images: str
  attributes: str
  partition: str


def find_source_files(source_dir: str) -> SourceFiles:
  """The official files in `source_dir`; a missing one is an error naming each and where.

  Raises:
    CelebASourceError: one line naming every missing file and the directory searched.
  """
  source_dir = os.path.expanduser(os.fspath(source_dir))
  archive = os.path.join(source_dir, ARCHIVE)
  extracted = os.path.join(source_dir, IMAGE_DIR)
  if os.path.isdir(os.path.join(extracted, IMAGE_DIR)):  # unzipped into a folder of its name
    extracted = os.path.join(extracted, IMAGE_DIR)
  images = archive if os.path.isfile(archive) else extracted if os.path.isdir(extracted) else None
  missing = [] if images else [f'{ARCHIVE} (or an extracted {IMAGE_DIR}/)']
  paths = {}
  for name in (ATTRIBUTES_FILE, PARTITION_FILE):
    paths[name] = os.path.join(source_dir, name)
    if not os.path.isfile(paths[name]):
      missing.append(name)
  if missing:
    raise CelebASourceError(
        f'CelebA files missing from {source_dir}: {", ".join(missing)}; {_HOW_TO_GET} into '
        f'{source_dir}, or pass --source_dir=<the directory that holds them>.'
    )
  return SourceFiles(images, paths[ATTRIBUTES_FILE], paths[PARTITION_FILE])


def read_partition(path: str) -> tuple[list[str], np.ndarray]:
  """`list_eval_partition.txt` -> (file names in file order, int8 partition 0/1/2 of each)."""
  names, parts = [], []
  with open(path) as f:
    for line_number, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != 2 or fields[1] not in ('0', '1', '2'):
        raise CelebASourceError(
            f'{path} line {line_number} is not "<image> <0|1|2>": {line.strip()!r}; it is not '
            f'the official {PARTITION_FILE}.'
        )
      names.append(fields[0])
      parts.append(int(fields[1]))
  return names, np.array(parts, np.int8)


def read_attributes(path: str, attribute_names: Sequence[str]) -> dict[str, np.ndarray]:
  """`list_attr_celeba.txt` -> {file name: int32 [len(attribute_names)] of 0/1}.

  Columns are matched by the header's names, so the result is in `attribute_names`' order.
  """
  with open(path) as f:
    lines = f.read().splitlines()
  if len(lines) < 2:
    raise CelebASourceError(f'{path} has no header: it is not the official {ATTRIBUTES_FILE}.')
  header = lines[1].split()
  absent = [a for a in attribute_names if a not in header]
  if absent:
    raise CelebASourceError(
        f'{path} has no column for {", ".join(absent)} (its header: {" ".join(header[:5])} ...); '
        f'it is not the official {ATTRIBUTES_FILE}.'
    )
  columns = np.array([header.index(a) for a in attribute_names])
  table = {}
  for line_number, line in enumerate(lines[2:], 3):
    fields = line.split()
    if not fields:
      continue
    values = fields[1:]
    if len(values) != len(header) or any(v not in ('1', '-1') for v in values):
      raise CelebASourceError(
          f'{path} line {line_number} is not "<image>" and {len(header)} values of 1/-1: '
          f'{line[:60]!r}...'
      )
    table[fields[0]] = (np.array(values, np.int32)[columns] > 0).astype(np.int32)
  return table


class _ImageFiles:
  """Reads image files by name from the zip archive (any folder inside) or a directory."""

  def __init__(self, path: str):
    self.path = path
    self._lock = threading.Lock()
    if os.path.isdir(path):
      self._zip, self._members = None, None
    else:
      self._zip = zipfile.ZipFile(path)
      self._members = {
          os.path.basename(info.filename): info
          for info in self._zip.infolist() if not info.is_dir()
      }

  def missing(self, names: Sequence[str]) -> list[str]:
    if self._zip is not None:
      return [n for n in names if n not in self._members]
    return [n for n in names if not os.path.isfile(os.path.join(self.path, n))]

  def read(self, name: str) -> bytes:
    if self._zip is None:
      with open(os.path.join(self.path, name), 'rb') as f:
        return f.read()
    with self._lock:
      return self._zip.read(self._members[name])

  def close(self):
    if self._zip is not None:
      self._zip.close()


def _centre_crop(image: np.ndarray, crop: int, name: str) -> np.ndarray:
  height, width = image.shape[:2]
  if crop > min(height, width):
    raise CelebASourceError(
        f'image {name} is {width}x{height}, smaller than the {crop}x{crop} crop; the aligned '
        f'CelebA images are 178x218.'
    )
  top, left = (height - crop) // 2, (width - crop) // 2
  return image[top : top + crop, left : left + crop]


@functools.lru_cache(maxsize=8)
def _resize_matrix(in_size: int, out_size: int) -> np.ndarray:
  """The loader's resize filter (`preprocess.resize_taps`) as a dense [out, in] matrix."""
  from disentangle_jax.data import preprocess  # pylint: disable=g-import-not-at-top

  index, weights = preprocess.resize_taps(in_size, out_size)
  matrix = np.zeros((out_size, in_size), np.float32)
  rows = np.repeat(np.arange(out_size), index.shape[1])
  np.add.at(matrix, (rows, index.ravel()), weights.ravel())  # clamped taps add up
  return matrix


def crop_and_resize(images: np.ndarray, image_size: int) -> np.ndarray:
  """uint8 [b, h, w, c] -> uint8 [b, image_size, image_size, c] with the loader's filter.

  The same weights as `preprocess.resize`, applied as two matrix products (about twice as fast
  on 178×178 crops); the result is rounded to the nearest level.
  """
  b, h, w, c = images.shape
  x = np.ascontiguousarray(images.transpose(0, 1, 3, 2), dtype=np.float32)  # [b, h, c, w]
  x = x.reshape(-1, w) @ _resize_matrix(w, image_size).T  # [b*h*c, size]
  x = np.ascontiguousarray(x.reshape(b, h, c, image_size).transpose(0, 2, 3, 1))  # [b, c, s, h]
  x = x.reshape(-1, h) @ _resize_matrix(h, image_size).T  # [b*c*s, size]
  x = x.reshape(b, c, image_size, image_size).transpose(0, 3, 2, 1)  # [b, rows, cols, c]
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _decode(files: _ImageFiles, name: str, crop: int) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    with Image.open(io.BytesIO(files.read(name))) as image:
      array = np.asarray(image.convert('RGB'))
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise CelebASourceError(
        f'image {name} of {files.path} cannot be read ({e}): the file is damaged; download '
        f'{ARCHIVE} again.'
    ) from e
  return _centre_crop(array, crop, name)


# ---------------------------------------------------------------------------------------------
# The builder.


class CelebA64(tfds.core.GeneratorBasedBuilder):
  """CelebA's aligned faces centre-cropped and resized to 64×64, with the 40 attributes."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Put {ARCHIVE} (or the extracted {IMAGE_DIR}/), {ATTRIBUTES_FILE} and {PARTITION_FILE} '
      f'in one directory ({_HOW_TO_GET}) and run python launch/prepare_celeba.py '
      '--source_dir=<that directory>.'
  )
  BUILDER_CONFIGS = [
      CelebAConfig(name='crop178', crop=178,
                   description='The largest centred square (178x178), resized to 64x64.'),
      CelebAConfig(name='crop148', crop=148,
                   description='A centred 148x148 square, resized to 64x64.'),
      CelebAConfig(name='crop108', crop=108,
                   description='A centred 108x108 face crop, resized to 64x64.'),
  ]

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # As the procedural builders: TFDS's lookup needs `importlib_resources`; nothing is
    # downloaded, so no checksums file is looked for.
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    from disentangle_jax.data import datasets  # pylint: disable=g-import-not-at-top

    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=(self.__doc__ or '').strip(),
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(
                shape=(size, size, 3), dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB
            ),
            # bool, as TFDS's celeb_a: stored as 0/1 integers, and mock data draws 0/1.
            'label': tfds.features.Tensor(shape=(len(datasets.CELEBA_ATTRIBUTES),),
                                          dtype=np.bool_),
            'image_id': tfds.features.Tensor(shape=(), dtype=np.int32),
        }),
        homepage='https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html',
        metadata=tfds.core.MetadataDict(
            attribute_names=list(datasets.CELEBA_ATTRIBUTES),
            crop=self.builder_config.crop,
            image_size=size,
        ),
    )

  def _split_generators(self, dl_manager):
    from disentangle_jax.data import datasets  # pylint: disable=g-import-not-at-top

    files = find_source_files(os.fspath(dl_manager.manual_dir))
    names, parts = read_partition(files.partition)
    if not names:
      raise CelebASourceError(f'{files.partition} lists no images.')
    attributes = read_attributes(files.attributes, datasets.CELEBA_ATTRIBUTES)
    unlabelled = [n for n in names if n not in attributes]
    if unlabelled:
      raise CelebASourceError(
          f'{len(unlabelled)} images of {files.partition} have no line in {files.attributes} '
          f'(e.g. {unlabelled[0]}): the two files are not from the same release.'
      )
    images = _ImageFiles(files.images)
    try:
      absent = images.missing(names)
    finally:
      images.close()
    if absent:
      raise CelebASourceError(
          f'{len(absent)} images listed in {files.partition} are not in {files.images} (e.g. '
          f'{absent[0]}): the archive is incomplete; download {ARCHIVE} again.'
      )
    ids = np.arange(1, len(names) + 1)
    return {
        split: self._generate_examples(
            files.images, [names[i] for i in np.flatnonzero(parts == p)],
            ids[parts == p], attributes,
        )
        for p, split in enumerate(SPLITS) if (parts == p).any()  # TFDS rejects empty splits
    }

  def _generate_examples(self, images_path: str, names: list[str], ids: np.ndarray,
                         attributes: dict[str, np.ndarray]) -> Iterator[tuple[str, dict]]:
    config = self.builder_config
    files = _ImageFiles(images_path)

    def load(start: int) -> np.ndarray:
      chunk = names[start : start + _CHUNK]
      crops = list(decoders.map(lambda n: _decode(files, n, config.crop), chunk))
      return crop_and_resize(np.stack(crops), config.image_size)

    # JPEG decoding releases the GIL: decode a chunk in threads while TFDS serialises the last.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as decoders, \
        concurrent.futures.ThreadPoolExecutor(1) as ahead:
      try:
        pending = ahead.submit(load, 0) if names else None
        for start in range(0, len(names), _CHUNK):
          images = pending.result()
          if start + _CHUNK < len(names):
            pending = ahead.submit(load, start + _CHUNK)
          for j, name in enumerate(names[start : start + _CHUNK]):
            yield name, {
                'image': images[j],
                'label': attributes[name].astype(bool),
                'image_id': np.int32(ids[start + j]),
            }
      finally:
        files.close()


def prepare(source_dir: str, *, data_dir: str | None = None, config: str = 'crop178') -> str:
  """Builds `celeb_a64/<config>` in `data_dir` from the official files in `source_dir`.

  Args:
    source_dir: the directory holding img_align_celeba.zip (or img_align_celeba/),
      list_attr_celeba.txt and list_eval_partition.txt.
    data_dir: the TFDS data dir to write to (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    config: the crop, one of `CelebA64.builder_configs` (crop178, crop148, crop108).

  Returns:
    The directory of the prepared dataset (already prepared: nothing is read or written).

  Raises:
    CelebASourceError: a file is missing or not in the release's format (one line naming it).
    ValueError: an unknown config.
  """
  if config not in CelebA64.builder_configs:
    raise ValueError(
        f'celeb_a64 has no config {config!r}; known: {", ".join(CelebA64.builder_configs)}'
    )
  builder = CelebA64(config=config, data_dir=data_dir, file_format='array_record')
  if builder.is_prepared():
    return os.fspath(builder.data_dir)
  source_dir = os.path.abspath(os.path.expanduser(source_dir))
  find_source_files(source_dir)  # the missing-file error before TFDS starts
  return manual.build_from(builder, source_dir)

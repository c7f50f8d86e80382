"""Tiny stand-ins for the official CelebA and MPI3D files, laid out as the releases lay them out.

For tests and smoke runs of `launch/prepare_celeba.py` and `launch/prepare_mpi3d.py` on machines
without the real downloads:

    fake = write_fake_celeba('/tmp/celeba', num_images=12)
    celeba.prepare('/tmp/celeba', data_dir='/tmp/tfds')   # celeb_a64/crop178, 12 records

Each writer returns what it wrote (the decoded images, the labels, the partition), so a test can
compare the prepared records with them.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from typing import Sequence

import numpy as np

from disentangle_jax.data import datasets

CELEBA_SHAPE = (218, 178)  # height, width of the aligned images


def _smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A random image with large-scale structure (JPEG keeps it within a few levels)."""
  coarse = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
  rows = np.linspace(0, coarse.shape[0] - 1.001, height)
  cols = np.linspace(0, coarse.shape[1] - 1.001, width)
  r0, c0 = rows.astype(int), cols.astype(int)
  fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
  top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
  bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
  return np.rint(top * (1 - fr) + bottom * fr).astype(np.uint8)


def write_fake_celeba(directory: str, *, num_images: int = 12,
                      partition: Sequence[int] | None = None, labels: np.ndarray | None = None,
                      images: np.ndarray | None = None, image_format: str = 'jpg',
                      extracted: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
  """Writes img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt.

  Args:
    directory: where to write them (created).
    num_images: images 000001.<ext>, ...
    partition: 0/1/2 (train/validation/test) of each image; default: about 60/20/20 %, every
      partition non-empty.
    labels: int [num_images, 40] of 0/1 in `datasets.CELEBA_ATTRIBUTES` order; default random.
    images: uint8 [num_images, H, W, 3]; default smooth random 218×178 images.
    image_format: 'jpg' (as the release) or 'png' (lossless, for exact comparisons).
    extracted: write an `img_align_celeba/` directory instead of the zip.
    seed: seeds the random defaults.

  Returns:
    {'images': the images as a reader decodes them (uint8 [N, H, W, 3]), 'labels': int32
    [N, 40], 'partition': int [N], 'names': the file names}.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(seed)
  if partition is None:
    partition = np.arange(num_images) % 5 // 3 + (np.arange(num_images) % 5 == 4)
  partition = np.asarray(partition, np.int64)
  if labels is None:
    rates = rng.uniform(0.05, 0.95, len(datasets.CELEBA_ATTRIBUTES))
    labels = (rng.random((num_images, len(rates))) < rates).astype(np.int32)
  labels = np.asarray(labels, np.int32)
  if images is None:
    images = np.stack([_smooth_image(rng, *CELEBA_SHAPE) for _ in range(num_images)])
  names = [f'{i + 1:06d}.{image_format}' for i in range(num_images)]
  os.makedirs(directory, exist_ok=True)

  decoded = []
  encoded = []
  for image in images:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG' if image_format == 'jpg' else 'PNG',
                                quality=95)
    encoded.append(buffer.getvalue())
    with Image.open(io.BytesIO(encoded[-1])) as reread:
      decoded.append(np.asarray(reread.convert('RGB')))
  if extracted:
    folder = os.path.join(directory, 'img_align_celeba')
    os.makedirs(folder, exist_ok=True)
    for name, data in zip(names, encoded):
      with open(os.path.join(folder, name), 'wb') as f:
        f.write(data)
  else:
    with zipfile.ZipFile(os.path.join(directory, 'img_align_celeba.zip'), 'w') as archive:
      for name, data in zip(names, encoded):
        archive.writestr(f'img_align_celeba/{name}', data)

  with open(os.path.join(directory, 'list_attr_celeba.txt'), 'w') as f:
    f.write(f'{num_images}\n{" ".join(datasets.CELEBA_ATTRIBUTES)} \n')
    for name, row in zip(names, labels):
      f.write(name + ' ' + ' '.join(f'{2 * v - 1:>2d}' for v in row) + '\n')
  with open(os.path.join(directory, 'list_eval_partition.txt'), 'w') as f:
    f.writelines(f'{name} {p}\n' for name, p in zip(names, partition))
  return {'images': np.stack(decoded), 'labels': labels, 'partition': partition,
          'names': np.array(names)}


def fake_mpi3d_images(factor_sizes: Sequence[int], seed: int = 0) -> np.ndarray:
  """uint8 [prod(factor_sizes), 64, 64, 3] whose corner pixel spells the image's grid index.

  Pixel (0, 0) holds the index in base 256 (channel 0 the lowest digit); the rest is noise.
  """
  n = math.prod(factor_sizes)
  images = np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
  index = np.arange(n)
  for c in range(3):
    images[:, 0, 0, c] = (index >> (8 * c)) & 255
  return images


def write_fake_mpi3d(path: str, factor_sizes: Sequence[int] = (2, 2, 1, 1, 1, 3, 3), *,
                     store_factor_sizes: bool = True, compressed: bool = False,
                     seed: int = 0) -> np.ndarray:
  """Writes an MPI3D-layout `.npz` (an `images` array in factor order) with reduced sizes.

  Args:
    path: the `.npz` to write (its directory is created).
    factor_sizes: the 7 factor sizes; the images are their row-major grid.
    store_factor_sizes: also store a `factor_sizes` array, which the builder reads (a real
      release has none).
    compressed: deflate the archive (`np.savez_compressed`) rather than store it.
    seed: seeds the noise.

  Returns:
    The images written, uint8 [prod(factor_sizes), 64, 64, 3] (see `fake_mpi3d_images`).
  """
  images = fake_mpi3d_images(factor_sizes, seed)
  arrays = {'images': images}
  if store_factor_sizes:
    arrays['factor_sizes'] = np.asarray(factor_sizes, np.int64)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  (np.savez_compressed if compressed else np.savez)(path, **arrays)
  return images

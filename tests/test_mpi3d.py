"""MPI3D built from an `.npz` of the release's layout (reduced factor sizes), without TensorFlow.

The fake images carry their grid index in pixel (0, 0), so every record's image can be checked
against its factors.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import disentangle_jax  # noqa: F401  (registers the builders)
from disentangle_jax.data import datasets
from disentangle_jax.data import fake_sources
from disentangle_jax.data import ground_truth as gt_lib
from disentangle_jax.data import pipeline
from disentangle_jax.data.builders import mpi3d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (2, 3, 1, 2, 1, 3, 2)  # 72 images


def _config(data_dir, **overrides):
  config = pipeline.default_data_config()
  config.name = 'mpi3d'
  config.data_dir = data_dir
  config.update(overrides)
  return config


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  root = tmp_path_factory.mktemp('mpi3d')
  images = fake_sources.write_fake_mpi3d(str(root / 'source' / 'mpi3d_toy.npz'), SIZES)
  data_dir = str(root / 'tfds')
  mpi3d.prepare(str(root / 'source'), variant='toy', data_dir=data_dir)
  return images, data_dir


def test_every_grid_point_is_one_record_holding_its_image(prepared):
  images, data_dir = prepared
  reader = datasets.open_dataset('mpi3d', data_dir=data_dir)
  assert len(reader) == math.prod(SIZES) and reader.factor_sizes == SIZES
  batch = reader.read(range(len(reader)))
  index = np.ravel_multi_index(batch['factors'].T, SIZES)
  assert sorted(index.tolist()) == list(range(math.prod(SIZES)))
  np.testing.assert_array_equal(batch['image'], images[index])
  assert index[:8].tolist() != list(range(8))  # TFDS's hashed order, not the file's
  np.testing.assert_array_equal(reader.factor_table(), batch['factors'])


def test_the_loader_and_the_ground_truth_read_it_by_name(prepared):
  images, data_dir = prepared
  config = _config(data_dir)
  info = pipeline.dataset_info(config)
  assert info.name == 'mpi3d/toy' and info.image_shape == (64, 64, 3)
  assert info.factor_names == mpi3d.FACTOR_NAMES and info.factor_sizes == SIZES
  assert info.num_examples == math.prod(SIZES) and info.label_names == ()
  batch = next(pipeline.make_train_iterator(config, global_batch_size=8, seed=0,
                                            process_index=0, process_count=1))
  assert batch['image'].shape == (8, 64, 64, 3) and batch['factors'].shape == (8, 7)
  index = np.ravel_multi_index(batch['factors'].T, SIZES)
  np.testing.assert_allclose(batch['image'], images[index] / 255, atol=1e-6)
  truth = datasets.get_ground_truth(config)
  assert isinstance(getattr(truth, 'base', truth), gt_lib.IndexedGroundTruth)
  assert truth.factor_sizes == SIZES and truth.factor_names == mpi3d.FACTOR_NAMES
  factors = np.array([[1, 2, 0, 1, 0, 2, 1], [0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 1, 0]])
  np.testing.assert_allclose(truth.images_for(factors),
                             images[np.ravel_multi_index(factors.T, SIZES)] / 255, atol=1e-6)
  sampled = truth.sample_factors(np.random.default_rng(0), 50)
  assert ((sampled >= 0) & (sampled < np.array(SIZES))).all()


def test_a_compressed_npz_without_sizes_takes_them_from_the_caller(tmp_path):
  sizes = (1, 2, 1, 1, 1, 2, 3)
  images = fake_sources.write_fake_mpi3d(str(tmp_path / 'src' / 'mpi3d_real.npz'), sizes,
                                         store_factor_sizes=False, compressed=True)
  with pytest.raises(mpi3d.Mpi3dSourceError, match='holds 12 images, the image count of no'):
    mpi3d.prepare(str(tmp_path / 'src'), variant='real', data_dir=str(tmp_path / 'tfds'))
  with pytest.raises(mpi3d.Mpi3dSourceError, match=r'\[1, 2, 1, 1, 1, 2, 2\] do not fit'):
    mpi3d.prepare(str(tmp_path / 'src'), variant='real', data_dir=str(tmp_path / 'tfds'),
                  factor_sizes=(1, 2, 1, 1, 1, 2, 2))
  mpi3d.prepare(str(tmp_path / 'src'), variant='real', data_dir=str(tmp_path / 'tfds'),
                factor_sizes=sizes)
  reader = datasets.open_dataset('mpi3d', builder_config='real', data_dir=str(tmp_path / 'tfds'))
  assert reader.factor_sizes == sizes
  batch = reader.read(range(len(reader)))
  np.testing.assert_array_equal(batch['image'],
                                images[np.ravel_multi_index(batch['factors'].T, sizes)])


class _Header:
  """What `factor_sizes_for` reads of an `.npz` (a full release is 12.7 GB)."""

  def __init__(self, n, factor_sizes=None):
    self.n, self.factor_sizes, self.path = n, factor_sizes, f'/data/{n}.npz'

  def __len__(self):
    return self.n


def test_factor_sizes_are_derived_from_the_image_count_of_a_release():
  full, complex_ = mpi3d.Mpi3d.builder_configs['toy'], mpi3d.Mpi3d.builder_configs['complex']
  assert mpi3d.factor_sizes_for(_Header(1_036_800), full.factor_sizes) == (6, 6, 2, 3, 3, 40, 40)
  assert mpi3d.factor_sizes_for(_Header(460_800), complex_.factor_sizes) == (4, 4, 2, 3, 3, 40,
                                                                              40)
  # The challenge's 4x4 subset of a toy/real release.
  assert mpi3d.factor_sizes_for(_Header(460_800), full.factor_sizes) == (4, 4, 2, 3, 3, 40, 40)
  assert mpi3d.factor_sizes_for(_Header(72, SIZES), full.factor_sizes) == SIZES
  with pytest.raises(mpi3d.Mpi3dSourceError, match='7 positive sizes'):
    mpi3d.factor_sizes_for(_Header(72, (8, 9)), full.factor_sizes)
  # A full toy/real file under the complex variant (4 colours x 4 shapes) is the wrong variant.
  with pytest.raises(mpi3d.Mpi3dSourceError, match="exceed the grid of this variant's release"):
    mpi3d.factor_sizes_for(_Header(1_036_800), complex_.factor_sizes)


def test_mock_data_draws_factors_inside_the_release_grid(tmp_path):
  from disentangle_jax.data import testing  # pylint: disable=g-import-not-at-top

  config = _config(str(tmp_path / 'empty'), builder_config='complex')
  with testing.mock_real_data(num_examples=16):
    info = pipeline.dataset_info(config)
    batch = next(pipeline.make_train_iterator(config, global_batch_size=8, seed=0,
                                              process_index=0, process_count=1))
  assert info.factor_sizes == mpi3d.FOUR_BY_FOUR_SIZES
  assert batch['factors'].shape == (8, 7)
  assert ((batch['factors'] >= 0) & (batch['factors'] < np.array(info.factor_sizes))).all()


def test_records_carry_tfds_style_factor_labels(prepared):
  _, data_dir = prepared
  source = tfds.data_source('mpi3d/toy', split='train', data_dir=data_dir, download=False)
  record = source[0]
  assert [record[f'label_{n}'] for n in mpi3d.FACTOR_NAMES] == record['factors'].tolist()


def test_missing_or_foreign_files_are_named(tmp_path):
  with pytest.raises(mpi3d.Mpi3dSourceError) as error:
    mpi3d.prepare(str(tmp_path), variant='realistic', data_dir=str(tmp_path / 'tfds'))
  message = str(error.value)
  assert 'mpi3d_realistic.npz' in message and str(tmp_path) in message and '\n' not in message
  np.savez(tmp_path / 'mpi3d_toy.npz', imgs=np.zeros((2, 64, 64, 3), np.uint8))
  with pytest.raises(mpi3d.Mpi3dSourceError, match='holds no `images` array .* imgs'):
    mpi3d.prepare(str(tmp_path), data_dir=str(tmp_path / 'tfds'))
  np.savez(tmp_path / 'mpi3d_toy.npz', images=np.zeros((2, 32, 32, 3), np.uint8))
  with pytest.raises(mpi3d.Mpi3dSourceError, match=r'uint8 \[2, 32, 32, 3\]'):
    mpi3d.prepare(str(tmp_path), data_dir=str(tmp_path / 'tfds'))
  with pytest.raises(ValueError, match="no variant 'tiny'; known: toy, realistic, real, complex"):
    mpi3d.prepare(str(tmp_path), variant='tiny')


def test_a_missing_dataset_says_how_to_prepare_it(tmp_path):
  data_dir = str(tmp_path / 'empty')
  with pytest.raises(datasets.DatasetNotFoundError) as error:
    pipeline.dataset_info(_config(data_dir, builder_config='real'))
  message = str(error.value)
  assert 'mpi3d/real' in message and data_dir in message
  assert 'python launch/prepare_mpi3d.py --variant=real' in message
  assert 'mpi3d_real.npz' in message and f'--data_dir={data_dir}' in message
  with pytest.raises(datasets.DatasetNotFoundError, match='prepare_mpi3d.py'):
    datasets.get_ground_truth(_config(data_dir))


def test_the_command_prepares_it(tmp_path):
  fake_sources.write_fake_mpi3d(str(tmp_path / 'src' / 'real3d_complicated_shapes_ordered.npz'),
                                SIZES, store_factor_sizes=False)
  sizes = ','.join(map(str, SIZES))
  done = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'prepare_mpi3d.py'), '--variant=complex',
       f'--source_dir={tmp_path / "src"}', f'--data_dir={tmp_path / "tfds"}',
       f'--factor_sizes={sizes}'],
      capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert done.returncode == 0, done.stderr[-2000:]
  builder = tfds.builder('mpi3d/complex', data_dir=str(tmp_path / 'tfds'))
  assert builder.is_prepared() and builder.factor_sizes == SIZES
  assert builder.info.splits['train'].num_examples == math.prod(SIZES)

"""CelebA built from the official files without TensorFlow (`celeb_a64`), on tiny fake archives.

Checked: the records hold each image cropped and resized as documented, its 40 attributes in
`CELEBA_ATTRIBUTES` order and the official partition; the loader reads the dataset by name; every
missing file is named with the directory searched; a missing dataset says how to prepare it.
"""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

import disentangle_jax  # noqa: F401  (registers the builders)
from disentangle_jax.data import datasets
from disentangle_jax.data import fake_sources
from disentangle_jax.data import pipeline
from disentangle_jax.data import preprocess
from disentangle_jax.data.builders import celeba

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLITS = ('train', 'validation', 'test')


def _config(data_dir, **overrides):
  config = pipeline.default_data_config()
  config.name = 'celeb_a64'
  config.data_dir = data_dir
  config.update(overrides)
  return config


def _records(data_dir, config, split):
  """Every record of a split, decoded by TFDS (image, label, image_id), in record order."""
  source = tfds.data_source(f'celeb_a64/{config}', split=split, data_dir=data_dir,
                            download=False)
  return [source[i] for i in range(len(source))]


def _expected(images, crop):
  """What the builder should store: the centred crop, resized by the loader's filter."""
  return celeba.crop_and_resize(preprocess.center_crop(images, crop), 64)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  """12 fake JPEG images prepared as celeb_a64/crop178."""
  root = tmp_path_factory.mktemp('celeba')
  fake = fake_sources.write_fake_celeba(str(root / 'source'), num_images=12, seed=3)
  data_dir = str(root / 'tfds')
  celeba.prepare(str(root / 'source'), data_dir=data_dir)
  return fake, data_dir


def test_records_hold_the_cropped_images_the_40_attributes_and_the_official_partition(prepared):
  fake, data_dir = prepared
  seen = []
  for p, split in enumerate(SPLITS):
    records = _records(data_dir, 'crop178', split)
    ids = np.array([r['image_id'] for r in records])
    assert sorted(ids - 1) == np.flatnonzero(fake['partition'] == p).tolist()
    seen.extend(ids)
    originals = fake['images'][ids - 1]
    stored = np.stack([r['image'] for r in records])
    assert stored.shape == (len(records), 64, 64, 3) and stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, _expected(originals, 178))
    labels = np.stack([r['label'] for r in records]).astype(np.int32)
    np.testing.assert_array_equal(labels, fake['labels'][ids - 1])
  assert sorted(seen) == list(range(1, 13))  # every image once


def test_crop178_equals_the_loaders_crop_and_resize_of_the_full_images(prepared):
  # What `celeb_a` prepared by TFDS yields after the loader's centre crop and resize.
  fake, data_dir = prepared
  records = _records(data_dir, 'crop178', 'train')
  ids = np.array([r['image_id'] for r in records])
  loader = preprocess.Preprocessing(crop='center', image_size=64)(fake['images'][ids - 1])
  stored = np.stack([r['image'] for r in records]) / 255
  np.testing.assert_allclose(stored, loader, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize('config,crop,window', [
    ('crop148', 148, (slice(35, 183), slice(15, 163))),
    ('crop108', 108, (slice(55, 163), slice(35, 143))),
])
def test_other_crops_take_the_documented_window(config, crop, window, tmp_path):
  # Lossless PNGs whose pixels encode their own row and column: the crop's position is exact.
  rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing='ij')
  base = np.stack([rows, cols, (rows + 2 * cols) % 256], axis=-1).astype(np.uint8)
  images = np.stack([base, 255 - base, np.roll(base, 1, axis=-1)])
  fake = fake_sources.write_fake_celeba(str(tmp_path / 'source'), num_images=3, images=images,
                                        image_format='png', partition=[0, 0, 0])
  celeba.prepare(str(tmp_path / 'source'), data_dir=str(tmp_path / 'tfds'), config=config)
  records = _records(str(tmp_path / 'tfds'), config, 'train')
  ids = np.array([r['image_id'] for r in records])
  stored = np.stack([r['image'] for r in records])
  window_images = fake['images'][ids - 1][:, window[0], window[1]]
  assert window_images.shape[1:3] == (crop, crop)
  np.testing.assert_array_equal(stored, celeba.crop_and_resize(window_images, 64))
  # The window's corner rows/columns: the top-left output pixel averages rows near the top.
  assert abs(int(stored[ids.tolist().index(1), 0, 0, 0]) - window[0].start) <= crop / 64 + 1


def test_crop_and_resize_is_the_loaders_resize_rounded():
  rng = np.random.default_rng(0)
  for shape in [(3, 178, 178, 3), (2, 108, 108, 3), (2, 50, 70, 1)]:
    images = rng.integers(0, 256, shape).astype(np.uint8)
    ours = celeba.crop_and_resize(images, 64).astype(np.float32)
    loader = preprocess.resize(images.astype(np.float32), 64)
    assert ours.shape == (shape[0], 64, 64, shape[3])
    assert np.abs(ours - loader).max() <= 0.5 + 1e-3  # rounded to the nearest level
  flat = np.full((1, 178, 178, 3), 77, np.uint8)
  np.testing.assert_array_equal(celeba.crop_and_resize(flat, 64), 77)


def test_an_extracted_image_directory_works_like_the_archive(tmp_path):
  fake = fake_sources.write_fake_celeba(str(tmp_path / 'source'), num_images=5, extracted=True)
  assert not os.path.exists(tmp_path / 'source' / 'img_align_celeba.zip')
  celeba.prepare(str(tmp_path / 'source'), data_dir=str(tmp_path / 'tfds'))
  records = _records(str(tmp_path / 'tfds'), 'crop178', 'train')
  ids = np.array([r['image_id'] for r in records])
  np.testing.assert_array_equal(np.stack([r['image'] for r in records]),
                                _expected(fake['images'][ids - 1], 178))
  # Unzipped into a folder of the archive's name: img_align_celeba/img_align_celeba/*.jpg.
  outer = tmp_path / 'nested' / 'img_align_celeba'
  os.makedirs(outer)
  os.rename(tmp_path / 'source' / 'img_align_celeba', outer / 'img_align_celeba')
  for name in ('list_attr_celeba.txt', 'list_eval_partition.txt'):
    os.rename(tmp_path / 'source' / name, tmp_path / 'nested' / name)
  assert celeba.find_source_files(str(tmp_path / 'nested')).images == str(
      outer / 'img_align_celeba')


# ---------------------------------------------------------------------------------------------
# The loader.


def test_the_loader_reads_it_as_celeb_a64_with_labels_and_official_splits(prepared):
  fake, data_dir = prepared
  config = _config(data_dir)
  info = pipeline.dataset_info(config)
  assert info.name == 'celeb_a64/crop178'
  assert info.image_shape == (64, 64, 3) and info.factor_sizes == ()
  assert info.label_names == tuple(datasets.CELEBA_ATTRIBUTES)
  assert info.num_examples == int((fake['partition'] == 0).sum())
  batch = next(pipeline.make_train_iterator(config, global_batch_size=4, seed=0,
                                            process_index=0, process_count=1))
  assert batch['image'].shape == (4, 64, 64, 3) and batch['image'].dtype == np.float32
  assert batch['label'].shape == (4, 40) and batch['label'].dtype == np.int32
  assert set(np.unique(batch['label'])) <= {0, 1}
  # The default evaluation split is the official test partition, in full.
  evaluation = list(pipeline.make_eval_iterator(config, batch_size=10))
  test_ids = np.flatnonzero(fake['partition'] == 2)
  assert sum(len(b['image']) for b in evaluation) == len(test_ids)
  records = _records(data_dir, 'crop178', 'test')
  np.testing.assert_array_equal(
      evaluation[0]['label'], np.stack([r['label'] for r in records]).astype(np.int32))
  np.testing.assert_allclose(evaluation[0]['image'],
                             np.stack([r['image'] for r in records]) / 255, atol=1e-6)
  validation = datasets.open_dataset('celeb_a64', data_dir=data_dir, split='validation')
  assert len(validation) == int((fake['partition'] == 1).sum())


def test_mock_data_serves_celeb_a64_with_binary_labels(tmp_path):
  from disentangle_jax.data import testing  # pylint: disable=g-import-not-at-top

  config = _config(str(tmp_path / 'empty'))
  with testing.mock_real_data(num_examples=12):
    info = pipeline.dataset_info(config)
    batch = next(pipeline.make_train_iterator(config, global_batch_size=6, seed=0,
                                              process_index=0, process_count=1))
  assert len(info.label_names) == 40
  assert batch['label'].shape == (6, 40) and set(np.unique(batch['label'])) <= {0, 1}


def test_a_missing_dataset_says_how_to_prepare_it_with_the_new_command(tmp_path):
  data_dir = str(tmp_path / 'empty')
  with pytest.raises(datasets.DatasetNotFoundError) as error:
    pipeline.make_train_iterator(_config(data_dir), global_batch_size=4, seed=0,
                                 process_index=0, process_count=1)
  message = str(error.value)
  assert 'celeb_a64/crop178' in message and data_dir in message
  assert 'python launch/prepare_celeba.py' in message and f'--data_dir={data_dir}' in message
  assert 'img_align_celeba.zip' in message and '--config=crop178' in message
  with pytest.raises(datasets.DatasetNotFoundError, match='prepare_celeba.py'):
    pipeline.dataset_info(_config(data_dir))
  # TFDS's celeb_a keeps its own instructions and names the TensorFlow-free route.
  with pytest.raises(datasets.DatasetNotFoundError) as error:
    pipeline.dataset_info(_config(data_dir, name='celeb_a'))
  message = str(error.value)
  assert 'tfds build celeb_a' in message and f'{data_dir}/downloads/manual' in message
  assert "data.name='celeb_a64'" in message and 'python launch/prepare_celeba.py' in message


# ---------------------------------------------------------------------------------------------
# Bad source files.


@pytest.mark.parametrize('remove', [
    ('img_align_celeba.zip',), ('list_attr_celeba.txt',), ('list_eval_partition.txt',),
    ('img_align_celeba.zip', 'list_attr_celeba.txt', 'list_eval_partition.txt'),
])
def test_each_missing_file_is_named_with_the_directory_searched(remove, tmp_path):
  source = tmp_path / 'source'
  fake_sources.write_fake_celeba(str(source), num_images=3)
  for name in remove:
    os.remove(source / name)
  with pytest.raises(celeba.CelebASourceError) as error:
    celeba.prepare(str(source), data_dir=str(tmp_path / 'tfds'))
  message = str(error.value)
  assert '\n' not in message and str(source) in message
  for name in ('img_align_celeba.zip', 'list_attr_celeba.txt', 'list_eval_partition.txt'):
    assert (name in message) == (name in remove), name
  assert not os.path.exists(tmp_path / 'tfds' / 'celeb_a64' / 'crop178' / '1.0.0')


def test_an_archive_missing_a_listed_image_is_an_error_naming_it(tmp_path):
  source = tmp_path / 'source'
  fake_sources.write_fake_celeba(str(source), num_images=4)
  with zipfile.ZipFile(source / 'img_align_celeba.zip') as archive:
    kept = {n: archive.read(n) for n in archive.namelist() if not n.endswith('000003.jpg')}
  with zipfile.ZipFile(source / 'img_align_celeba.zip', 'w') as archive:
    for name, data in kept.items():
      archive.writestr(name, data)
  with pytest.raises(celeba.CelebASourceError, match=r'1 images .* \(e\.g\. 000003\.jpg\)'):
    celeba.prepare(str(source), data_dir=str(tmp_path / 'tfds'))


def test_a_damaged_image_is_an_error_naming_it_and_a_killed_builds_leftovers_go(tmp_path):
  source = tmp_path / 'source'
  fake_sources.write_fake_celeba(str(source), num_images=4)
  with zipfile.ZipFile(source / 'img_align_celeba.zip') as archive:
    members = {n: archive.read(n) for n in archive.namelist()}
  members['img_align_celeba/000002.jpg'] = b'not a jpeg'
  with zipfile.ZipFile(source / 'img_align_celeba.zip', 'w') as archive:
    for name, data in members.items():
      archive.writestr(name, data)
  with pytest.raises(celeba.CelebASourceError, match='image 000002.jpg .* cannot be read'):
    celeba.prepare(str(source), data_dir=str(tmp_path / 'tfds'))
  config_dir = tmp_path / 'tfds' / 'celeb_a64' / 'crop178'
  assert not (config_dir / '1.0.0').exists()
  os.makedirs(config_dir / 'incomplete.ABC123_1.0.0' / 'x')  # what a killed build leaves
  fake_sources.write_fake_celeba(str(source), num_images=4)
  celeba.prepare(str(source), data_dir=str(tmp_path / 'tfds'))
  assert sorted(os.listdir(config_dir)) == ['1.0.0']


def test_an_attribute_file_without_a_column_names_the_column(tmp_path):
  source = tmp_path / 'source'
  fake_sources.write_fake_celeba(str(source), num_images=3)
  path = source / 'list_attr_celeba.txt'
  path.write_text(path.read_text().replace('Wearing_Hat', 'Wearing_Cap'))
  with pytest.raises(celeba.CelebASourceError, match='no column for Wearing_Hat'):
    celeba.read_attributes(str(path), datasets.CELEBA_ATTRIBUTES)


def test_attributes_are_matched_by_name_not_position(tmp_path):
  path = tmp_path / 'list_attr_celeba.txt'
  path.write_text('2\nYoung Male\n000001.jpg  1 -1\n000002.jpg -1  1\n')
  table = celeba.read_attributes(str(path), ('Male', 'Young'))
  np.testing.assert_array_equal(table['000001.jpg'], [0, 1])
  np.testing.assert_array_equal(table['000002.jpg'], [1, 0])


# ---------------------------------------------------------------------------------------------
# The command.


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, os.path.join(ROOT, 'launch', 'prepare_celeba.py'),
                         *args], capture_output=True, text=True, env=env, timeout=300)


def test_the_command_prepares_and_reports_missing_files_in_one_line(tmp_path):
  missing = _run(f'--source_dir={tmp_path / "nothing"}', f'--data_dir={tmp_path / "tfds"}')
  assert missing.returncode != 0
  error = [l for l in missing.stderr.splitlines() if l.startswith('error:')]
  assert len(error) == 1 and 'list_attr_celeba.txt' in error[0] and 'Traceback' not in (
      missing.stderr)
  fake_sources.write_fake_celeba(str(tmp_path / 'source'), num_images=5)
  done = _run(f'--source_dir={tmp_path / "source"}', f'--data_dir={tmp_path / "tfds"}',
              '--config=crop108')
  assert done.returncode == 0, done.stderr[-2000:]
  assert 'celeb_a64/crop108 prepared in' in done.stdout
  reader = datasets.open_dataset('celeb_a64', builder_config='crop108',
                                 data_dir=str(tmp_path / 'tfds'), split='train')
  assert len(reader) == 3 and reader.read([0])['label'].shape == (1, 40)

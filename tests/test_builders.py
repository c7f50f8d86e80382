"""The procedural TFDS builders: what they write, and what an interrupted or damaged build leaves."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

import disentangle_jax.data.builders  # noqa: F401  (registers the builders)
from disentangle_jax.data import datasets
from disentangle_jax.data import ground_truth as gt_lib
from disentangle_jax.data.builders import procedural

SMALL = [(name, 'small') for name in procedural.BUILDERS] + [('disks', 'holdout'),
                                                            ('disks', 'grey'),
                                                            ('procedural_sprites', 'tiny')]
#: Renderers too slow to render a whole small grid in a test (~0.5 ms an image): these builds
#: stop after this many examples, in a private data dir.
CAPPED = {('procedural_sprites', 'small'): 2048, ('procedural_shapes3d', 'small'): 2048}


def _built(name, config, data_dir):
  """The builder of `name/config` in `data_dir`, built once per test session."""
  builder = tfds.builder(name, config=config, data_dir=data_dir, file_format='array_record')
  if not builder.is_prepared():
    datasets.open_dataset(name, builder_config=config, data_dir=data_dir)
    builder = tfds.builder(name, config=config, data_dir=data_dir)
  return builder


def _capped_build(name, config, data_dir, max_examples):
  builder = tfds.builder(name, config=config, data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(max_examples_per_split=max_examples))
  return builder


def test_every_builder_is_registered_and_listed():
  names = set(tfds.list_builders(with_community_datasets=False))
  assert set(procedural.BUILDERS) <= names
  assert set(procedural.BUILDERS) == {
      'procedural_dsprites', 'procedural_shapes3d', 'disks', 'ellipses', 'procedural_sprites',
      'procedural_digits', 'mixture_of_digits'}
  assert [c.name for c in procedural.ProceduralDsprites.BUILDER_CONFIGS] == [
      'full', 'antialiased', 'small']


def test_full_grid_sizes_without_building():
  assert procedural.num_examples('procedural_dsprites') == {'train': 737_280}
  assert procedural.num_examples('procedural_dsprites', 'antialiased') == {'train': 737_280}
  assert procedural.num_examples('procedural_shapes3d') == {'train': 480_000}
  assert procedural.num_examples('disks') == {'train': 128}
  holdout = procedural.num_examples('disks', 'holdout')
  assert holdout['train'] + holdout['holdout'] == 128 and holdout['holdout'] == 29
  assert procedural.num_examples('procedural_digits') == {'train': 49_000, 'test': 11_900}
  assert procedural.num_examples('disks', 'grey') == {'train': 2_176}
  assert procedural.num_examples('procedural_digits', 'small') == {'train': 2_160, 'test': 450}


@pytest.mark.parametrize('name,config', SMALL)
def test_records_match_the_renderer(name, config, tfds_data_dir, tmp_path):
  expected = procedural.num_examples(name, config)
  if (name, config) in CAPPED:
    data_dir = str(tmp_path)
    builder = _capped_build(name, config, data_dir, CAPPED[name, config])
    expected = {k: min(v, CAPPED[name, config]) for k, v in expected.items()}
  else:
    data_dir = tfds_data_dir
    builder = _built(name, config, data_dir)
  grid = builder.ground_truth
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == expected
  assert builder.info.metadata['factor_sizes'] == list(grid.factor_sizes)

  source = tfds.data_source(f'{name}/{config}', split='train', data_dir=data_dir,
                            download=False)
  assert len(source) == expected['train']
  rng = np.random.default_rng(0)
  keys = sorted(set(rng.integers(0, len(source), 24).tolist()) | {0, len(source) - 1})
  records = source.__getitems__(keys)
  factors = np.stack([r['factors'] for r in records])
  images = np.stack([r['image'] for r in records])
  assert images.dtype == np.uint8 and images.shape == (len(keys), *grid.image_shape)
  assert factors.dtype == np.int32 and factors.shape == (len(keys), grid.num_factors)
  assert ((factors >= 0) & (factors < np.array(grid.factor_sizes))).all()
  for k, factor in enumerate(grid.factor_names):
    np.testing.assert_array_equal([r[f'label_{factor}'] for r in records], factors[:, k])
  rendered = grid.renderer.render(grid.to_full_factors(factors), **grid.render_options)
  np.testing.assert_array_equal(images, rendered)


@pytest.mark.parametrize('name', ['disks', 'ellipses'])
def test_small_grid_is_covered_exactly_once(name, tfds_data_dir):
  _built(name, 'small', tfds_data_dir)
  reader = datasets.open_dataset(name, builder_config='small', data_dir=tfds_data_dir)
  grid = gt_lib.RenderedGroundTruth(grid_renderer := gt_lib.get_renderer(name),
                                    strides=grid_renderer.REDUCED_STRIDES)
  index = np.sort(grid.factors_to_index(reader.factor_table()))
  np.testing.assert_array_equal(index, np.arange(grid.num_points))


def test_disks_holdout_moves_radii_11_to_18_out_of_train(tfds_data_dir):
  _built('disks', 'holdout', tfds_data_dir)
  radius = gt_lib.get_renderer('disks').factor_values('radius')
  train = datasets.open_dataset('disks', builder_config='holdout', data_dir=tfds_data_dir)
  held = datasets.open_dataset('disks', builder_config='holdout', data_dir=tfds_data_dir,
                               split='holdout')
  train_r = radius[train.factor_table()[:, 0]]
  held_r = radius[held.factor_table()[:, 0]]
  assert ((train_r < 11) | (train_r > 18)).all()
  assert ((held_r >= 11) & (held_r <= 18)).all()
  assert len(set(train_r) | set(held_r)) == 128


def test_records_are_written_in_hashed_not_grid_order(tfds_data_dir):
  # The first records of an unshuffled read are then a spread of the grid (as TFDS's dsprites),
  # not 64 copies of the smallest square.
  _built('procedural_dsprites', 'small', tfds_data_dir)
  reader = datasets.open_dataset('procedural_dsprites', builder_config='small',
                                 data_dir=tfds_data_dir)
  first = reader.read(range(64))['factors']
  assert len(np.unique(first[:, 0])) == 3 and len(np.unique(first[:, 2])) > 5


_KILLED_BUILD = """
import sys
import disentangle_jax.data.builders, tensorflow_datasets as tfds
tfds.builder('ellipses', config='small', data_dir=sys.argv[1],
             file_format='array_record').download_and_prepare()
"""


def test_a_killed_build_is_not_mistaken_for_a_dataset_and_is_rebuilt(tmp_path):
  data_dir = str(tmp_path)
  config_dir = os.path.join(data_dir, 'ellipses', 'small')
  proc = subprocess.Popen([sys.executable, '-c', _KILLED_BUILD, data_dir],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
      entries = os.listdir(config_dir) if os.path.isdir(config_dir) else []
      if any(e.startswith('incomplete') for e in entries):
        break
      time.sleep(0.01)
    time.sleep(0.2)  # inside the generation of 6,750 examples (a second or more)
    assert proc.poll() is None, 'the build finished before it could be interrupted'
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert any(e.startswith('incomplete') for e in os.listdir(config_dir))

  builder = tfds.builder('ellipses', config='small', data_dir=data_dir)
  assert not builder.is_prepared()
  with pytest.raises(datasets.DatasetNotFoundError, match='ellipses/small'):
    datasets.open_dataset('ellipses', builder_config='small', data_dir=data_dir,
                          build_if_missing=False)
  reader = datasets.open_dataset('ellipses', builder_config='small', data_dir=data_dir)
  assert len(reader) == 6_750
  assert not any(e.startswith('incomplete') for e in os.listdir(config_dir))


def _shard(builder):
  [instruction] = builder.info.splits['train'].file_instructions
  return os.fspath(instruction.filename)


@pytest.fixture
def disks_copy(tmp_path, tfds_data_dir):
  """A private copy of a built `disks/small`, free to damage."""
  import shutil

  _built('disks', 'small', tfds_data_dir)
  shutil.copytree(os.path.join(tfds_data_dir, 'disks'), os.path.join(tmp_path, 'disks'))
  return str(tmp_path)


def test_truncated_shard_is_a_corruption_error_that_says_how_to_rebuild(disks_copy):
  path = _shard(tfds.builder('disks', config='small', data_dir=disks_copy))
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(datasets.DatasetCorruptedError) as error:
    datasets.open_dataset('disks', builder_config='small', data_dir=disks_copy)
  message = str(error.value)
  assert 'disks/small' in message and path in message and 'rebuilt' in message


def test_missing_shard_is_a_corruption_error(disks_copy):
  os.remove(_shard(tfds.builder('disks', config='small', data_dir=disks_copy)))
  with pytest.raises(datasets.DatasetCorruptedError, match='disks/small'):
    datasets.open_dataset('disks', builder_config='small', data_dir=disks_copy)


def test_garbled_records_are_a_corruption_error(disks_copy):
  path = _shard(tfds.builder('disks', config='small', data_dir=disks_copy))
  size = os.path.getsize(path)
  with open(path, 'r+b') as f:
    f.seek(size // 8)
    f.write(np.random.default_rng(0).integers(0, 256, size // 2, np.uint8).tobytes())
  with pytest.raises(datasets.DatasetCorruptedError) as error:
    reader = datasets.open_dataset('disks', builder_config='small', data_dir=disks_copy)
    for start in range(0, len(reader), 8):
      reader.read(range(start, min(start + 8, len(reader))))
  assert 'disks/small' in str(error.value) and 'Delete' in str(error.value)


def test_a_dataset_built_by_another_renderer_is_refused(disks_copy, monkeypatch):
  renderer = gt_lib.get_renderer('disks')
  render = renderer.render
  monkeypatch.setattr(renderer, 'render', lambda factors, **kw: 255 - render(factors, **kw))
  with pytest.raises(datasets.DatasetCorruptedError, match='older version.*Delete'):
    datasets.open_dataset('disks', builder_config='small', data_dir=disks_copy)


# --- Sprites: splits over disjoint characters. ----------------------------------------------


def test_sprites_splits_are_disjoint_characters_balanced_in_every_attribute():
  sizes = procedural.num_examples('procedural_sprites')
  assert sizes == {'train': 80_640, 'validation': 8_064, 'test': 8_064}
  assert sum(sizes.values()) == 96_768
  assert procedural.num_examples('procedural_sprites', 'small') == {
      'train': 40_320, 'validation': 4_032, 'test': 4_032}
  # The tests' grid: every character in 8 poses (every 21st), the same splits.
  assert procedural.num_examples('procedural_sprites', 'tiny') == {
      'train': 3_840, 'validation': 384, 'test': 384}
  for name, poses, total in (('full', 168, 96_768), ('tiny', 8, 4_608)):
    config = procedural.ProceduralSprites.builder_configs[name]
    keys = procedural.ProceduralSprites.split_keys(config)
    grid = procedural.ground_truth_for('sprites', config)
    assert grid.factor_sizes == (2, 4, 3, 6, 2, 2, poses)
    characters = {}
    for split, index in keys.items():
      factors = grid.index_to_factors(index)
      characters[split] = {tuple(f) for f in factors[:, :6].tolist()}
      # Every character of a split comes in all the grid's poses.
      assert len(factors) == poses * len(characters[split])
      for k, size in enumerate(grid.factor_sizes[:6]):
        counts = np.bincount(factors[:, k], minlength=size)
        assert (counts == counts[0]).all(), (name, split, grid.factor_names[k], counts)
    assert len(characters['test']) == len(characters['validation']) == 48
    assert not characters['test'] & characters['train']
    assert not characters['validation'] & characters['train']
    assert not characters['validation'] & characters['test']
    assert np.array_equal(np.sort(np.concatenate(list(keys.values()))), np.arange(total))
  # tiny's poses: all four directions, two actions each.
  tiny = procedural.ground_truth_for('sprites',
                                    procedural.ProceduralSprites.builder_configs['tiny'])
  direction, action, _ = gt_lib.get_renderer('sprites').split_pose(
      tiny.to_full_factors(tiny.index_to_factors(np.arange(8)))[:, 6])
  assert set(zip(direction.tolist(), action.tolist())) == {(d, a) for d in range(4) for a in (0, 3)}


def test_get_ground_truth_of_a_split(tfds_data_dir):
  import ml_collections

  config = ml_collections.ConfigDict({'name': 'procedural_sprites', 'builder_config': 'small',
                                      'data_dir': tfds_data_dir, 'image_size': 32})
  whole = datasets.get_ground_truth(config)
  assert not hasattr(whole, 'contains')  # the default is unchanged: the whole grid
  test = datasets.get_ground_truth(config, split='test')
  assert test.image_shape == (32, 32, 3) and test.factor_sizes == whole.factor_sizes
  factors = test.sample_factors(np.random.default_rng(0), 500)
  full = gt_lib.RenderedGroundTruth('sprites', sprites_strides := (1,) * 6 + (2,))
  assert sprites_strides == gt_lib.get_renderer('sprites').REDUCED_STRIDES
  assert (gt_lib.get_renderer('sprites').split_of(full.to_full_factors(factors)) == 'test').all()
  assert test.images_for(factors[:3]).shape == (3, 32, 32, 3)
  assert test.num_examples == 4_032 and test.contains(factors).all()
  both = datasets.get_ground_truth(config, split='validation+test')
  assert both.num_examples == 8_064
  with pytest.raises(ValueError, match="no split 'tset'.*'validation'"):
    datasets.get_ground_truth(config, split='tset')


def test_digits_test_split_holds_only_test_scans(tfds_data_dir):
  _built('procedural_digits', 'small', tfds_data_dir)
  renderer = gt_lib.get_renderer('digits')
  instance_stride = renderer.REDUCED_STRIDES[3]
  tables = {}
  for split in ('train', 'test'):
    reader = datasets.open_dataset('procedural_digits', builder_config='small',
                                   data_dir=tfds_data_dir, split=split)
    tables[split] = reader.factor_table()
  assert len(tables['train']) == 2_160 and len(tables['test']) == 450
  assert (tables['train'][:, 3] * instance_stride < renderer.NUM_TRAIN_INSTANCES).all()
  assert (tables['test'][:, 3] * instance_stride >= renderer.NUM_TRAIN_INSTANCES).all()
  # Metrics on the test split draw only test scans.
  truth = datasets.ground_truth('procedural_digits', builder_config='small',
                                data_dir=tfds_data_dir, split='test')
  factors = truth.sample_factors(np.random.default_rng(0), 1_000)
  assert (factors[:, 3] * instance_stride >= renderer.NUM_TRAIN_INSTANCES).all()
  assert truth.num_examples == 450 and truth.image_shape == (32, 32, 1)


# --- Mixture of digits. ---------------------------------------------------------------------


def test_mixture_of_digits_configs_sizes_and_disjoint_scans():
  for config, classes in (('pairs', 45), ('distractors', 28), ('small', 45)):
    cfg = procedural.MixtureOfDigits.builder_configs[config]
    sizes = procedural.num_examples('mixture_of_digits', config)
    assert sizes == {'train': cfg.num_train, 'validation': cfg.num_validation}
    train = procedural.mixture_factors(cfg, 'train')
    valid = procedural.mixture_factors(cfg, 'validation')
    assert len(train) == cfg.num_train and len(valid) == cfg.num_validation
    renderer = gt_lib.get_renderer('digit_mixture')
    for table in (train, valid):
      labels = renderer.pair_label(table[:, 0], table[:, 1], cfg.class_digits)
      counts = np.bincount(labels, minlength=classes)
      assert counts.size == classes and counts.max() - counts.min() <= 1
    scans = lambda t: {(d, i) for cols in ((0, 2), (1, 3), (8, 9))  # noqa: E731
                       for d, i in t[:, cols].tolist() if d != renderer.NO_DISTRACTOR}
    assert not scans(train) & scans(valid)
  assert procedural.num_examples('mixture_of_digits') == {'train': 20_000, 'validation': 5_000}


def test_mixture_of_digits_records_carry_the_pair_label(tfds_data_dir):
  reader = datasets.open_dataset('mixture_of_digits', builder_config='small',
                                 data_dir=tfds_data_dir, split='validation')
  batch = reader.read(range(64))
  renderer = gt_lib.get_renderer('digit_mixture')
  np.testing.assert_array_equal(
      batch['label'][:, 0], renderer.pair_label(batch['factors'][:, 0], batch['factors'][:, 1]))
  np.testing.assert_array_equal(batch['image'], renderer.render(batch['factors']))
  info = datasets.describe('mixture_of_digits', builder_config='small', data_dir=tfds_data_dir)
  assert info.label_names == ('pair',) and info.image_shape == (56, 56, 1)
  assert info.label_sizes == (45,) and procedural.label_sizes('mixture_of_digits',
                                                              'distractors') == (28,)
  assert datasets.describe('procedural_sprites', builder_config='small').label_sizes == ()
  truth = datasets.ground_truth('mixture_of_digits', builder_config='small',
                                data_dir=tfds_data_dir)
  assert truth.num_examples == 500  # the validation records, drawn as they are
  factors = truth.sample_factors(np.random.default_rng(0), 200)
  assert truth.contains(factors).all()


def test_grey_disks_config_has_radius_and_grey_level(tfds_data_dir):
  info = datasets.describe('disks', builder_config='grey', data_dir=tfds_data_dir)
  assert info.factor_names == ('radius', 'grey_level') and info.factor_sizes == (128, 17)
  truth = datasets.ground_truth('disks', builder_config='grey', data_dir=tfds_data_dir)
  factors = np.array([[40, 0], [40, 16]])
  images = truth.images_for(factors)
  np.testing.assert_allclose(images[0].max(), 0.2, atol=0.003)
  np.testing.assert_allclose(images[1].max(), 1.0)

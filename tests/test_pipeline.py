"""The input pipeline on procedural data: batches, shuffling, shards, resume, preprocessing, errors."""

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from disentangle_jax.data import datasets
from disentangle_jax.data import ground_truth as gt_lib
from disentangle_jax.data import pipeline
from disentangle_jax.data import preprocess


def _config(data_dir, name='procedural_dsprites', builder_config='small', **overrides):
  config = pipeline.default_data_config()
  config.name = name
  config.builder_config = builder_config
  config.data_dir = data_dir
  config.update(overrides)
  return config


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _train(config, batch=16, seed=0, index=0, count=1):
  return pipeline.make_train_iterator(config, global_batch_size=batch, seed=seed,
                                      process_index=index, process_count=count)


def test_batches_have_the_promised_shapes_and_match_the_renderer(tfds_data_dir):
  config = _config(tfds_data_dir)
  info = pipeline.dataset_info(config)
  assert info.name == 'procedural_dsprites/small' and info.image_shape == (64, 64, 1)
  assert info.num_examples == 46_080 and info.factor_sizes == (3, 3, 20, 16, 16)
  assert info.label_names == ()
  iterator = _train(config, batch=32)
  assert isinstance(iterator, grain.DatasetIterator)
  batch = next(iterator)
  assert set(batch) == {'image', 'factors'}
  assert batch['image'].shape == (32, 64, 64, 1) and batch['image'].dtype == np.float32
  assert batch['factors'].shape == (32, 5) and batch['factors'].dtype == np.int32
  assert batch['image'].min() == 0.0 and batch['image'].max() == 1.0
  truth = datasets.get_ground_truth(config)
  np.testing.assert_array_equal(truth.images_for(batch['factors']), batch['image'])


def test_same_seed_same_batches_other_seed_other_batches(tfds_data_dir):
  config = _config(tfds_data_dir)
  first = [b['factors'] for b in _take(_train(config, seed=3), 4)]
  again = [b['factors'] for b in _take(_train(config, seed=3), 4)]
  other = [b['factors'] for b in _take(_train(config, seed=4), 4)]
  np.testing.assert_array_equal(np.stack(first), np.stack(again))
  assert not np.array_equal(np.stack(first), np.stack(other))


def _radii(batches):
  return np.concatenate([b['factors'][:, 0] for b in batches])


def test_epochs_visit_every_record_once_in_a_new_order(tfds_data_dir):
  # disks/small: 32 records, one per radius index.
  config = _config(tfds_data_dir, name='disks', num_epochs=2)
  batches = list(_train(config, batch=8))
  assert len(batches) == 8  # 2 epochs × 32 records / 8, then the iterator ends
  radii = _radii(batches)
  epoch1, epoch2 = radii[:32], radii[32:]
  assert sorted(epoch1) == sorted(epoch2) == list(range(32))
  assert not np.array_equal(epoch1, epoch2)


def test_drop_remainder_drops_the_last_partial_batch(tfds_data_dir):
  config = _config(tfds_data_dir, name='disks', num_epochs=1)
  assert [len(b['factors']) for b in _train(config, batch=10)] == [10, 10, 10]


def test_process_shards_are_disjoint_equal_and_cover_the_data(tfds_data_dir):
  config = _config(tfds_data_dir, name='disks', builder_config='full', num_epochs=1)
  shards = [set(_radii(_train(config, batch=6, seed=1, index=i, count=3)).tolist())
            for i in range(3)]
  assert [len(s) for s in shards] == [42, 42, 42]  # 128 records: 2 left over, dropped
  assert not (shards[0] & shards[1]) and not (shards[0] & shards[2]) and not (
      shards[1] & shards[2])
  assert len(shards[0] | shards[1] | shards[2]) == 126
  # Each process reads per-process batches: global batch 6 over 3 processes = 2 each.
  assert next(_train(config, batch=6, index=1, count=3))['factors'].shape == (2, 1)


def test_global_batch_must_divide_across_processes(tfds_data_dir):
  with pytest.raises(ValueError, match='not divisible'):
    _train(_config(tfds_data_dir, name='disks'), batch=10, index=0, count=3)


def test_resume_from_an_orbax_checkpoint_gives_the_exact_batch_sequence(tfds_data_dir, tmp_path):
  config = _config(tfds_data_dir)
  iterator = _train(config, seed=7)
  _take(iterator, 5)
  options = ocp.CheckpointManagerOptions(max_to_keep=2)
  handlers = {'data': grain.checkpoint.CheckpointHandler()}
  with ocp.CheckpointManager(tmp_path / 'ckpt', options=options,
                             item_handlers=handlers) as manager:
    manager.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(iterator)))
    manager.wait_until_finished()
  expected = _take(iterator, 6)

  resumed = _train(config, seed=7)
  next(resumed)  # a fresh iterator elsewhere in the sequence; restoring must move it
  with ocp.CheckpointManager(tmp_path / 'ckpt', options=options,
                             item_handlers=handlers) as manager:
    manager.restore(manager.latest_step(),
                    args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(resumed)))
  got = _take(resumed, 6)
  for want, have in zip(expected, got):
    np.testing.assert_array_equal(want['factors'], have['factors'])
    np.testing.assert_array_equal(want['image'], have['image'])


def test_eval_iterator_is_one_pass_in_record_order(tfds_data_dir):
  config = _config(tfds_data_dir, name='disks')
  batches = list(pipeline.make_eval_iterator(config, batch_size=10))
  assert [len(b['factors']) for b in batches] == [10, 10, 10, 2]
  again = list(pipeline.make_eval_iterator(config, batch_size=10))
  np.testing.assert_array_equal(_radii(batches), _radii(again))
  assert sorted(_radii(batches)) == list(range(32))
  first = list(pipeline.make_eval_iterator(config, batch_size=4, num_examples=6))
  assert [len(b['factors']) for b in first] == [4, 2]
  np.testing.assert_array_equal(_radii(first), _radii(batches)[:6])


def test_resize_and_crop_in_the_pipeline_and_in_the_ground_truth(tfds_data_dir):
  config = _config(tfds_data_dir, image_size=32, crop='48')
  info = pipeline.dataset_info(config)
  assert info.image_shape == (32, 32, 1)
  batch = next(_train(config, batch=8))
  assert batch['image'].shape == (8, 32, 32, 1)
  assert 0.0 <= batch['image'].min() and batch['image'].max() <= 1.0
  truth = datasets.get_ground_truth(config)
  assert truth.image_shape == (32, 32, 1)
  np.testing.assert_allclose(truth.images_for(batch['factors']), batch['image'], atol=1e-6)


def test_resize_keeps_constants_range_and_centre():
  index, weights = preprocess.resize_taps(178, 64)
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
  assert index.min() >= 0 and index.max() <= 177
  flat = np.full((2, 178, 178, 3), 0.25, np.float32)
  np.testing.assert_allclose(preprocess.resize(flat, 64), 0.25, rtol=1e-6)
  # A centred square stays centred and keeps its mean brightness (area) when shrunk or grown.
  image = np.zeros((1, 64, 64, 1), np.float32)
  image[:, 24:40, 24:40] = 1.0
  for size in (32, 17, 100):
    out = preprocess.resize(image, size)
    assert out.shape == (1, size, size, 1) and out.min() >= 0 and out.max() <= 1 + 1e-6
    ys, xs = np.mgrid[:size, :size] + 0.5
    mass = out[0, ..., 0]
    assert abs((mass * ys).sum() / mass.sum() - size / 2) < 1e-3
    assert abs((mass * xs).sum() / mass.sum() - size / 2) < 1e-3
    np.testing.assert_allclose(out.mean(), image.mean(), rtol=0.02)
  # The largest centred square of a 5x7 image drops one column on each side.
  crop = preprocess.center_crop(np.arange(2 * 5 * 7).reshape(2, 5, 7, 1))
  np.testing.assert_array_equal(crop[0, :, :, 0], np.arange(35).reshape(5, 7)[:, 1:6])


def test_uint8_becomes_float_in_0_1():
  images = np.array([[[[0]], [[128]], [[255]]]], np.uint8)
  out = preprocess.Preprocessing()(images)
  assert out.dtype == np.float32
  np.testing.assert_allclose(out.ravel(), [0.0, 128 / 255, 1.0])
  binary = preprocess.Preprocessing(pixel_max=1)(np.array([[[[0]], [[1]]]], np.uint8))
  np.testing.assert_array_equal(binary.ravel(), [0.0, 1.0])


def test_wrong_channel_count_is_a_clear_error(tfds_data_dir):
  config = _config(tfds_data_dir, channels=3)
  with pytest.raises(ValueError, match='data.channels=3 .* 1 channel'):
    pipeline.dataset_info(config)
  with pytest.raises(ValueError, match='data.channels=3'):
    _train(config)


def test_unknown_dataset_names_the_known_ones():
  config = _config(None, name='dsprite')
  with pytest.raises(ValueError, match="unknown dataset 'dsprite'.*procedural_dsprites.*celeb_a"):
    pipeline.dataset_info(config)


def test_unknown_builder_config_names_the_known_ones(tfds_data_dir):
  with pytest.raises(ValueError, match='tiny.*full, antialiased, small'):
    pipeline.dataset_info(_config(tfds_data_dir, builder_config='tiny'))


def test_missing_procedural_dataset_without_build_if_missing(tmp_path):
  config = _config(str(tmp_path), build_if_missing=False)
  with pytest.raises(datasets.DatasetNotFoundError) as error:
    _train(config)
  assert 'procedural_dsprites/small' in str(error.value) and str(tmp_path) in str(error.value)


def test_procedural_dataset_info_does_not_build(tmp_path):
  info = pipeline.dataset_info(_config(str(tmp_path), builder_config='full'))
  assert info.num_examples == 737_280
  assert not (tmp_path / 'procedural_dsprites').exists()


def test_ground_truth_of_procedural_data_is_the_renderer():
  config = _config(None, name='procedural_shapes3d', builder_config=None)
  truth = datasets.get_ground_truth(config)
  assert isinstance(truth, gt_lib.RenderedGroundTruth)
  assert truth.factor_sizes == (10, 10, 10, 8, 4, 15) and truth.image_shape == (64, 64, 3)
  small = datasets.get_ground_truth(_config(None, name='procedural_shapes3d'))
  assert small.factor_sizes == (5, 5, 5, 4, 4, 8)


def test_worker_processes_give_the_same_batches(tfds_data_dir):
  config = _config(tfds_data_dir, name='disks')
  threads = [b['factors'] for b in _take(_train(config, batch=4, seed=2), 5)]
  config.worker_processes = 1
  workers = [b['factors'] for b in _take(_train(config, batch=4, seed=2), 5)]
  np.testing.assert_array_equal(np.stack(threads), np.stack(workers))

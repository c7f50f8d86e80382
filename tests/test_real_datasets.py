"""Real datasets: mock_data pipelines, files in TFDS's own format, and missing-dataset errors.

Nothing here downloads or needs TensorFlow. Besides `tfds.testing.mock_data`, each real dataset is
also written to disk by its own TFDS builder class (images PNG-encoded with PIL, which TFDS's
`Image` feature accepts as bytes without TensorFlow), so the loader reads real files: PNG decoding,
nested label features, dSprites' 0/1 pixels, CelebA's crop and resize.
"""

import inspect
import io
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from disentangle_jax.data import datasets
from disentangle_jax.data import ground_truth as gt_lib
from disentangle_jax.data import pipeline
from disentangle_jax.data import testing

# name -> (image shape the loader yields, factor sizes, number of label columns)
EXPECTED = {
    'dsprites': ((64, 64, 1), (3, 6, 40, 32, 32), 0),
    'shapes3d': ((64, 64, 3), (10, 10, 10, 8, 4, 15), 0),
    'smallnorb': ((64, 64, 1), (5, 10, 9, 18, 6), 0),
    'mnist': ((28, 28, 1), (), 1),
    'celeb_a': ((64, 64, 3), (), 40),
}


def _config(name, data_dir, **overrides):
  config = pipeline.default_data_config()
  config.name = name
  config.data_dir = data_dir
  config.update(overrides)
  return config


def _check_batch(name, batch, size, info):
  shape, factor_sizes, labels = EXPECTED[name]
  assert info.image_shape == shape
  assert info.factor_sizes == factor_sizes and len(info.label_names) == labels
  assert batch['image'].shape == (size, *shape) and batch['image'].dtype == np.float32
  assert 0.0 <= batch['image'].min() and batch['image'].max() <= 1.0
  if factor_sizes:
    assert batch['factors'].shape == (size, len(factor_sizes))
    assert ((batch['factors'] >= 0) & (batch['factors'] < np.array(factor_sizes))).all()
  else:
    assert 'factors' not in batch
  if labels:
    assert batch['label'].shape == (size, labels) and batch['label'].dtype == np.int32
  else:
    assert 'label' not in batch


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_mock_data_pipeline(name, tmp_path):
  config = _config(name, str(tmp_path))
  with testing.mock_real_data(num_examples=24):
    info = pipeline.dataset_info(config)
    assert info.num_examples == 24
    train = pipeline.make_train_iterator(config, global_batch_size=8, seed=0, process_index=0,
                                         process_count=1)
    batches = [next(train) for _ in range(4)]  # past one epoch of 3 batches
    evaluation = list(pipeline.make_eval_iterator(config, batch_size=10))
  for batch in batches:
    _check_batch(name, batch, 8, info)
  assert [len(b['image']) for b in evaluation] == [10, 10, 4]
  _check_batch(name, evaluation[0], 10, info)


# ---------------------------------------------------------------------------------------------
# Files written by the real builders' own classes.


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format='PNG')
  return buffer.getvalue()


def _fake_value(feature, rng, binary: bool):
  if isinstance(feature, tfds.features.FeaturesDict):
    return {k: _fake_value(f, rng, binary) for k, f in feature.items()}
  if isinstance(feature, tfds.features.Image):
    high = 2 if binary else 256
    return _png(rng.integers(0, high, feature.shape, dtype=np.uint8))
  if isinstance(feature, tfds.features.ClassLabel):
    return int(rng.integers(feature.num_classes))
  return np.zeros(feature.shape, feature.np_dtype)


def write_real_format(name: str, data_dir: str, num_examples: int, seed: int = 0):
  """Prepares `num_examples` random examples of `name` in `data_dir`, as TFDS would lay it out."""
  real = tfds.builder_cls(name)

  class Fake(real, skip_registration=True):

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
      return epath.Path(inspect.getfile(real))

    def _split_generators(self, dl_manager):
      return {split: self._fakes(split) for split in ('train', 'test')}

    def _fakes(self, split):
      rng = np.random.default_rng([seed, len(split)])
      for i in range(num_examples):
        yield i, _fake_value(self.info.features, rng, binary=name == 'dsprites')

  Fake.name = real.name
  builder = Fake(data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()
  return builder


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_prepared_files_are_read_without_tensorflow(name, tmp_path):
  write_real_format(name, str(tmp_path), num_examples=12)
  config = _config(name, str(tmp_path))
  info = pipeline.dataset_info(config)
  assert info.num_examples == 12
  batch = next(pipeline.make_train_iterator(config, global_batch_size=6, seed=0,
                                            process_index=0, process_count=1))
  _check_batch(name, batch, 6, info)
  source = tfds.data_source(name, split=datasets.get_dataset(name).eval_split,
                            data_dir=str(tmp_path), download=False)
  first = next(pipeline.make_eval_iterator(config, batch_size=3))
  raw = [source[i] for i in range(3)]
  if name == 'dsprites':  # stored 0/1: white must come out as 1.0
    np.testing.assert_array_equal(first['image'], np.stack([r['image'] for r in raw]))
    assert set(np.unique(first['image'])) == {0.0, 1.0}
  if name == 'mnist':
    np.testing.assert_allclose(first['image'], np.stack([r['image'] for r in raw]) / 255)
    np.testing.assert_array_equal(first['label'][:, 0], [r['label'] for r in raw])
  if name == 'celeb_a':
    np.testing.assert_array_equal(
        first['label'][:, datasets.CELEBA_ATTRIBUTES.index('Male')],
        [r['attributes']['Male'] for r in raw])
  if EXPECTED[name][1]:
    keys = datasets.get_dataset(name).factor_keys
    np.testing.assert_array_equal(first['factors'], [[r[k] for k in keys] for r in raw])


def test_celeba_is_centre_cropped_then_resized(tmp_path):
  write_real_format('celeb_a', str(tmp_path), num_examples=3)
  source = tfds.data_source('celeb_a', split='test', data_dir=str(tmp_path), download=False)
  stored = np.stack([source[i]['image'] for i in range(3)]).astype(np.float32) / 255
  expected = pipeline.preprocess.resize(stored[:, 20:198], 64)
  config = _config('celeb_a', str(tmp_path))
  batch = next(pipeline.make_eval_iterator(config, batch_size=3))
  np.testing.assert_allclose(batch['image'], expected, atol=1e-6)
  native = next(pipeline.make_eval_iterator(_config('celeb_a', str(tmp_path), crop='none',
                                                    image_size=0), batch_size=3))
  np.testing.assert_allclose(native['image'], stored, atol=1e-6)


def test_corrupted_real_dataset_says_how_to_prepare_it_again(tmp_path):
  builder = write_real_format('mnist', str(tmp_path), num_examples=12)
  for instruction in builder.info.splits['train'].file_instructions:
    with open(instruction.filename, 'r+b') as f:
      f.truncate(10)
  with pytest.raises(datasets.DatasetCorruptedError) as error:
    next(pipeline.make_train_iterator(_config('mnist', str(tmp_path)), global_batch_size=4,
                                      seed=0, process_index=0, process_count=1))
  assert 'mnist' in str(error.value) and 'tfds build mnist' in str(error.value)


# ---------------------------------------------------------------------------------------------
# Missing datasets.


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_missing_dataset_error_says_which_where_and_how(name, tmp_path):
  data_dir = str(tmp_path / 'empty')
  config = _config(name, data_dir)
  with mock.patch.object(tfds.core.DatasetBuilder, 'download_and_prepare',
                         side_effect=AssertionError('must not download')):
    start = time.monotonic()
    with pytest.raises(datasets.DatasetNotFoundError) as error:
      pipeline.make_train_iterator(config, global_batch_size=4, seed=0, process_index=0,
                                   process_count=1)
    with pytest.raises(datasets.DatasetNotFoundError):
      pipeline.dataset_info(config)
    assert time.monotonic() - start < 30
  message = str(error.value)
  assert name in message and data_dir in message
  assert "pip install 'disentangle_jax[prepare]'" in message
  assert f'tfds build {name} --data_dir={data_dir} --file_format=array_record' in message
  if name == 'celeb_a':
    assert f'{data_dir}/downloads/manual' in message and 'img_align_celeba.zip' in message


# ---------------------------------------------------------------------------------------------
# Ground truth of stored records.


class FakeGrid(tfds.core.GeneratorBasedBuilder):
  """A 2×3 factor grid stored as PNG records, each image's grey level encoding its factors."""

  VERSION = tfds.core.Version('1.0.0')

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return epath.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(8, 8, 1)),
        'label_a': tfds.features.ClassLabel(num_classes=2),
        'label_b': tfds.features.ClassLabel(num_classes=3),
    }))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    for i, (a, b) in enumerate([(a, b) for a in range(2) for b in range(3)][::-1]):
      grey = np.full((8, 8, 1), 40 * a + 10 * b + 5, np.uint8)
      yield i, {'image': _png(grey), 'label_a': a, 'label_b': b}


def test_ground_truth_of_real_records_looks_images_up_by_factors(tmp_path, monkeypatch):
  FakeGrid(data_dir=str(tmp_path), file_format='array_record').download_and_prepare()
  entry = datasets.Dataset('fake_grid', factor_keys=('label_a', 'label_b'),
                           factor_names=('a', 'b'), ground_truth_split='train')
  monkeypatch.setitem(datasets.CATALOGUE, 'fake_grid', entry)
  truth = datasets.get_ground_truth(_config('fake_grid', str(tmp_path)))
  assert isinstance(truth, gt_lib.IndexedGroundTruth)
  assert truth.factor_sizes == (2, 3) and truth.image_shape == (8, 8, 1)
  factors = np.array([[1, 2], [0, 0], [0, 1]])
  images = truth.images_for(factors)
  np.testing.assert_allclose(images[:, 0, 0, 0], (40 * factors[:, 0] + 10 * factors[:, 1] + 5)
                             / 255, rtol=1e-6)
  smaller = datasets.get_ground_truth(_config('fake_grid', str(tmp_path), image_size=4))
  assert smaller.image_shape == (4, 4, 1) and smaller.images_for(factors).shape == (3, 4, 4, 1)
  np.testing.assert_allclose(smaller.images_for(factors)[:, 2, 2, 0], images[:, 0, 0, 0],
                             rtol=1e-5)


def test_a_cpu_sized_config_on_a_missing_real_dataset_says_how_to_get_it(tmp_path):
  # `runlocal` configs ask for builder_config='small', which real datasets do not have.
  config = _config('dsprites', str(tmp_path / 'empty'), builder_config='small')
  with pytest.raises(datasets.DatasetNotFoundError, match='tfds build dsprites'):
    pipeline.dataset_info(config)
  write_real_format('mnist', str(tmp_path), num_examples=4)
  with pytest.raises(ValueError, match="mnist has no builder config 'small'"):
    pipeline.dataset_info(_config('mnist', str(tmp_path), builder_config='small'))

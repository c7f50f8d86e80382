"""The CelebA attribute study: known answers on hand-made labels, and the command on fake files."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import disentangle_jax  # noqa: F401  (registers the builders)
from disentangle_jax.data import attribute_study
from disentangle_jax.data import datasets
from disentangle_jax.data import fake_sources
from disentangle_jax.data.builders import celeba

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A = datasets.CELEBA_ATTRIBUTES


def test_correlation_known_answers():
  a = np.array([1, 1, 0, 0])
  b = np.array([1, 0, 1, 0])  # independent of a on these four points
  labels = np.stack([a, 1 - a, b, a, np.ones(4, int)], axis=1)
  corr = attribute_study.correlation_matrix(labels)
  np.testing.assert_allclose(corr[:4, :4], [[1, -1, 0, 1], [-1, 1, 0, -1], [0, 0, 1, 0],
                                            [1, -1, 0, 1]], atol=1e-12)
  assert np.isnan(corr[4]).all() and np.isnan(corr[:, 4]).all()  # a constant attribute
  # The phi coefficient of a 2x2 table: (n11 n00 - n10 n01) / sqrt(n1. n0. n.1 n.0).
  x = np.array([1, 1, 1, 0, 0, 0, 1, 0])
  y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
  n11, n00, n10, n01 = 2, 3, 2, 1
  phi = (n11 * n00 - n10 * n01) / np.sqrt(4 * 4 * 3 * 5)
  assert attribute_study.correlation_matrix(np.stack([x, y], 1))[0, 1] == pytest.approx(phi)


def test_balance_known_answers():
  names = ('p', 'q')
  labels = {
      'test': np.array([[1, 0], [1, 0], [0, 0], [0, 1]]),
      'train': np.array([[1, 1], [1, 0], [1, 0], [0, 0], [1, 1]]),
      'validation': np.array([[0, 1]]),
  }
  result = attribute_study.study(labels, names)
  assert result.splits == ('train', 'validation', 'test')
  np.testing.assert_array_equal(result.counts, [5, 1, 4, 10])
  np.testing.assert_allclose(result.frequencies, [[0.8, 0.4], [0.0, 1.0], [0.5, 0.25],
                                                  [0.6, 0.4]])
  # Train's majority: p -> 1 (right on half the test images), q -> 0 (right on 3 of 4).
  np.testing.assert_allclose(result.majority_baseline, [0.5, 0.75])
  on_train = attribute_study.study(labels, names, correlation_split='train')
  np.testing.assert_allclose(on_train.correlation,
                             attribute_study.correlation_matrix(labels['train']))
  with pytest.raises(ValueError, match="correlation_split 'dev'"):
    attribute_study.study(labels, names, correlation_split='dev')
  with pytest.raises(ValueError, match='not 0/1'):
    attribute_study.study({'train': np.array([[1, -1]])}, names)


def _correlated_labels(n, seed=0):
  """Random labels with planted structure: Male vs Heavy_Makeup -1, Smiling = Mouth open."""
  rng = np.random.default_rng(seed)
  labels = (rng.random((n, 40)) < rng.uniform(0.1, 0.9, 40)).astype(np.int32)
  labels[:, A.index('Heavy_Makeup')] = 1 - labels[:, A.index('Male')]
  labels[:, A.index('Mouth_Slightly_Open')] = labels[:, A.index('Smiling')]
  return labels


@pytest.fixture(scope='module')
def source(tmp_path_factory):
  directory = tmp_path_factory.mktemp('celeba') / 'source'
  n = 40
  fake = fake_sources.write_fake_celeba(
      str(directory), num_images=n, labels=_correlated_labels(n),
      images=np.zeros((n, 218, 178, 3), np.uint8))
  return str(directory), fake


def test_study_of_the_text_files_and_of_the_prepared_dataset_agree(source, tmp_path):
  directory, fake = source
  from_files = attribute_study.labels_from_source_files(directory)
  for p, split in enumerate(('train', 'validation', 'test')):
    np.testing.assert_array_equal(from_files[split], fake['labels'][fake['partition'] == p])
  celeba.prepare(directory, data_dir=str(tmp_path / 'tfds'))
  from_records, names = attribute_study.labels_from_dataset('celeb_a64',
                                                            data_dir=str(tmp_path / 'tfds'))
  assert names == tuple(A) and sorted(from_records) == sorted(from_files)
  a = attribute_study.study(from_files, A)
  b = attribute_study.study(from_records, names)  # records are in another order: same numbers
  np.testing.assert_array_equal(a.counts, b.counts)
  np.testing.assert_allclose(a.frequencies, b.frequencies)
  np.testing.assert_allclose(a.correlation, b.correlation, atol=1e-12, equal_nan=True)
  male, makeup = A.index('Male'), A.index('Heavy_Makeup')
  assert a.correlation[male, makeup] == pytest.approx(-1.0)
  assert a.strongest_pairs(1)[0] == ('Mouth_Slightly_Open', 'Smiling', pytest.approx(1.0))
  assert a.strongest_pairs(1)[1] == ('Heavy_Makeup', 'Male', pytest.approx(-1.0))


def test_the_command_writes_tables_and_pictures(source, tmp_path):
  directory, fake = source
  out = tmp_path / 'study'
  done = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'attribute_study.py'),
       f'--source_dir={directory}', f'--output_dir={out}'],
      capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert done.returncode == 0, done.stderr[-2000:]
  with open(out / 'attribute_balance.csv') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['attribute', 'train', 'validation', 'test', 'all', 'majority_baseline']
  assert rows[1][1:5] == [str(int((fake['partition'] == p).sum())) for p in range(3)] + ['40']
  assert [r[0] for r in rows[2:]] == list(A)
  smiling = rows[2 + A.index('Smiling')]
  train = fake['labels'][fake['partition'] == 0, A.index('Smiling')]
  assert float(smiling[1]) == pytest.approx(train.mean(), abs=1e-6)
  with open(out / 'attribute_correlation.csv') as f:
    matrix = np.array([r[1:] for r in list(csv.reader(f))[1:]], float)
  assert matrix.shape == (40, 40)
  np.testing.assert_allclose(matrix, matrix.T)
  assert matrix[A.index('Male'), A.index('Heavy_Makeup')] == pytest.approx(-1.0)
  markdown = (out / 'attribute_balance.md').read_text()
  assert '| Smiling |' in markdown and markdown.count('\n| ') == 41
  assert '| Heavy_Makeup | Male | -1.000 |' in (out / 'attribute_correlation.md').read_text()
  for picture in ('attribute_correlation.png', 'attribute_balance.png'):
    with Image.open(out / picture) as image:
      assert image.size[0] > 400 and image.size[1] > 400


def test_missing_label_files_and_datasets_say_what_to_do(tmp_path):
  with pytest.raises(celeba.CelebASourceError) as error:
    attribute_study.run_attribute_study(str(tmp_path / 'out'), source_dir=str(tmp_path))
  message = str(error.value)
  assert 'list_attr_celeba.txt' in message and 'list_eval_partition.txt' in message
  assert str(tmp_path) in message and '\n' not in message
  with pytest.raises(datasets.DatasetNotFoundError, match='prepare_celeba.py'):
    attribute_study.run_attribute_study(str(tmp_path / 'out'), data_dir=str(tmp_path / 'none'))
  with pytest.raises(ValueError, match='no labels'):
    attribute_study.labels_from_dataset('procedural_dsprites')

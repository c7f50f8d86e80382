"""Nearest-neighbour retrieval mAP (Hu et al. 2018's protocol): exact conventions and known answers."""

import itertools
import warnings

import numpy as np
import pytest
from scipy.spatial import distance
from sklearn import metrics as sk_metrics

from disentangle_jax.metrics import retrieval


def sklearn_leave_one_out_ap(codes, labels, metric='euclidean'):
  """The reference: sklearn's average_precision_score per query, on negated distances."""
  dist = distance.cdist(codes, codes, metric=metric)
  n = codes.shape[0]
  out = np.zeros((n, labels.shape[1]))
  for q in range(n):
    others = np.arange(n) != q
    for a in range(labels.shape[1]):
      relevant = labels[others, a] == labels[q, a]
      if relevant.any():
        out[q, a] = sk_metrics.average_precision_score(relevant, -dist[q, others])
      else:
        with warnings.catch_warnings():
          warnings.simplefilter('ignore')
          out[q, a] = sk_metrics.average_precision_score(relevant, -dist[q, others])
  return out


@pytest.mark.parametrize('case', ['ties', 'no_ties', 'cosine', 'duplicates'])
def test_ap_agrees_with_sklearn_per_query(case):
  rng = np.random.default_rng(0)
  n = 70
  labels = rng.integers(0, [2, 5, 30], size=(n, 3))  # 30 values: some queries have R = 0
  metric = 'euclidean'
  if case == 'ties':
    codes = rng.integers(0, 3, size=(n, 2)).astype(float)  # exact ties everywhere
  elif case == 'no_ties':
    codes = rng.normal(size=(n, 3))
  elif case == 'cosine':
    codes, metric = rng.normal(size=(n, 4)), 'cosine'
  else:
    codes = np.repeat(rng.normal(size=(n // 2, 3)), 2, axis=0)  # every point twice
  ours = retrieval.retrieval_average_precision(codes, labels, metric=metric, block_elements=700)
  ref = sklearn_leave_one_out_ap(codes, labels, metric)
  np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


def test_blocks_and_threads_do_not_change_the_result():
  rng = np.random.default_rng(1)
  codes = rng.integers(0, 4, size=(200, 3)).astype(float)
  labels = rng.integers(0, 3, size=(200, 2))
  whole = retrieval.retrieval_average_precision(codes, labels, num_threads=1)
  blocks = retrieval.retrieval_average_precision(codes, labels, block_elements=1000, num_threads=3)
  np.testing.assert_array_equal(whole, blocks)
  single = retrieval.retrieval_average_precision(codes, labels[:, 0])
  np.testing.assert_array_equal(single, whole[:, 0])


@pytest.mark.parametrize('gallery_size', [1, 2, 3, 6])
def test_expected_random_ap_closed_form_by_enumeration(gallery_size):
  """E[AP] over every ranking of M items with R relevant equals the closed form (§1.8.7)."""
  m = gallery_size
  for r in range(0, m + 1):
    aps = []
    for relevant_positions in itertools.combinations(range(m), r):
      ranks = np.array(relevant_positions)
      aps.append(retrieval.average_precision_from_ranks(ranks[None, :])[0] if r else 0.0)
    assert float(retrieval.expected_random_ap(m, r)) == pytest.approx(np.mean(aps), abs=1e-12)
  # It is not the prior for small galleries, and tends to it for large ones.
  assert float(retrieval.expected_random_ap(10, 2)) > 2 / 10 + 0.05
  assert float(retrieval.expected_random_ap(100_000, 25_000)) == pytest.approx(0.25, abs=1e-3)


def test_random_features_map_equals_the_closed_form():
  """Small galleries, where E[AP] differs from the prior: average over many random draws."""
  rng = np.random.default_rng(0)
  labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4])  # R varies, one value with R = 0
  expected = float(retrieval.expected_random_map(labels))
  prior = np.mean([(np.sum(labels == v) - 1) / (labels.size - 1) for v in labels])
  maps = [retrieval.retrieval_map(rng.normal(size=(labels.size, 3)), labels) for _ in range(3000)]
  assert abs(expected - prior) > 0.05
  assert np.mean(maps) == pytest.approx(expected, abs=0.005)


def test_random_features_map_is_the_class_prior_for_large_galleries():
  """The Sprites 'Random' row: mAP = 1 / (number of values) for balanced attributes."""
  rng = np.random.default_rng(2)
  n = 3000
  labels = np.stack([rng.permutation(np.arange(n) % k) for k in (2, 4, 6)], 1)
  maps = retrieval.retrieval_map(rng.normal(size=(n, 4)), labels)
  np.testing.assert_allclose(maps, retrieval.expected_random_map(labels), atol=0.005)
  np.testing.assert_allclose(maps, [1 / 2, 1 / 4, 1 / 6], atol=0.01)


def test_constant_features_tie_everything():
  """All items tied: precision at the single group end is the prior R/M for every query."""
  labels = np.array([0, 0, 1, 1, 1, 2])
  ap = retrieval.retrieval_average_precision(np.zeros((6, 2)), labels)
  np.testing.assert_allclose(ap, [1 / 5, 1 / 5, 2 / 5, 2 / 5, 2 / 5, 0.0])


def test_informative_chunk_gives_one_and_is_selected():
  rng = np.random.default_rng(3)

  def make(n):
    labels = rng.integers(0, [3, 5], size=(n, 2))
    chunks = rng.normal(size=(n, 3, 2))  # chunk 0: noise
    chunks[:, 1] = np.eye(5)[labels[:, 1]][:, :2] * 10 + 0.01 * rng.normal(size=(n, 2))
    chunks[:, 1, 0] += 20 * labels[:, 1]  # chunk 1: attribute 1 only
    chunks[:, 2] = labels[:, :1] * 10 + 0.01 * rng.normal(size=(n, 2))  # chunk 2: attribute 0
    return chunks, labels

  val_codes, val_labels = make(150)
  test_codes, test_labels = make(200)
  per_chunk = retrieval.retrieval_map_per_chunk(test_codes, test_labels)
  assert per_chunk.shape == (3, 2)
  assert per_chunk[2, 0] == pytest.approx(1.0) and per_chunk[1, 1] == pytest.approx(1.0)
  assert per_chunk[0].max() < 0.6
  flat = test_codes.reshape(200, -1)
  np.testing.assert_allclose(
    retrieval.retrieval_map_per_chunk(flat, test_labels, num_chunks=3), per_chunk
  )

  out = retrieval.retrieval_evaluation(
    val_codes.reshape(150, -1), val_labels, flat, test_labels, num_chunks=3, mapping=[0, [1, 2]]
  )
  np.testing.assert_array_equal(out['chunk_for_attribute'], [2, 1])
  np.testing.assert_allclose(out['map'], 1.0)
  assert out['map_mean'] == pytest.approx(1.0)
  np.testing.assert_allclose(out['map_per_chunk'], per_chunk)
  assert out['map_all_chunks'].shape == (2,)
  np.testing.assert_allclose(out['map_mapping'][0], per_chunk[0, 0])
  np.testing.assert_allclose(out['random_map'], retrieval.expected_random_map(test_labels))


def test_degenerate_inputs_are_defined_or_clear_errors():
  with pytest.raises(ValueError, match='at least 2'):
    retrieval.retrieval_map(np.zeros((1, 2)), np.zeros(1))
  with pytest.raises(ValueError, match='NaN'):
    retrieval.retrieval_map(np.array([[0.0], [np.nan]]), np.zeros(2))
  with pytest.raises(ValueError, match='chunks'):
    retrieval.retrieval_map_per_chunk(np.zeros((4, 5)), np.zeros(4), num_chunks=2)
  with pytest.raises(ValueError, match='metric'):
    retrieval.retrieval_map(np.zeros((4, 2)), np.zeros(4), metric='manhattan')
  with pytest.raises(ValueError, match='mapping'):
    retrieval.retrieval_evaluation(
      np.zeros((4, 2)), np.arange(4) % 2, np.zeros((4, 2)), np.arange(4) % 2, num_chunks=2,
      mapping=[5],
    )
  with pytest.raises(ValueError, match='every attribute is constant'):
    retrieval.retrieval_evaluation(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.zeros(4),
                                   num_chunks=2)
  # Every value unique: no query has a relevant item, AP = 0 (sklearn's value), not NaN.
  ap = retrieval.retrieval_average_precision(np.arange(8.0)[:, None], np.arange(8))
  np.testing.assert_array_equal(ap, 0.0)
  # Zero vectors under cosine: at distance 1 from everything, a defined value.
  ap = retrieval.retrieval_average_precision(
    np.zeros((4, 3)), np.array([0, 0, 1, 1]), metric='cosine'
  )
  np.testing.assert_allclose(ap, 1 / 3)

"""Unit alignment (precision@k, at recall, AP) and ablation effect (Mixture-of-MNIST check)."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from disentangle_jax.metrics import unit_alignment as ua


def test_a_unit_equal_to_the_label_scores_one():
  rng = np.random.default_rng(0)
  labels = rng.random(1000) < 0.2
  unit = labels.astype(float)  # binary activations: two big tie groups
  assert labels.sum() > 150
  np.testing.assert_allclose(ua.precision_at_k(unit, labels, [1, 50, 150]), [[1.0, 1.0, 1.0]])
  np.testing.assert_allclose(
    ua.precision_at_recall(unit, labels, [0.25, 0.5, 1.0]), [[1.0, 1.0, 1.0]]
  )
  np.testing.assert_allclose(ua.average_precision(unit, labels), [1.0])


def test_random_and_constant_units_score_the_base_rate():
  rng = np.random.default_rng(1)
  n = 20_000
  labels = rng.random(n) < 0.2
  base = labels.mean()
  random_units = rng.normal(size=(n, 3))
  p_at_k = ua.precision_at_k(random_units, labels, [2000, 5000])
  np.testing.assert_allclose(p_at_k, base, atol=0.03)
  np.testing.assert_allclose(ua.precision_at_recall(random_units, labels), base, atol=0.03)
  np.testing.assert_allclose(ua.average_precision(random_units, labels), base, atol=0.02)
  # A constant unit ties every image: exactly the base rate, whatever the order of the images.
  constant = np.zeros((n, 1))
  np.testing.assert_allclose(ua.precision_at_k(constant, labels, [1, 100, n]), base, rtol=1e-12)
  np.testing.assert_allclose(ua.precision_at_recall(constant, labels), base, rtol=1e-12)
  np.testing.assert_allclose(ua.average_precision(constant, labels), base, rtol=1e-12)


def test_hand_computed_small_case_with_ties():
  scores = np.array([5.0, 4.0, 4.0, 4.0, 3.0, 2.0, 1.0])
  labels = np.array([1, 1, 0, 0, 1, 0, 1], bool)
  # Top 1: one positive. Top 2: the positive at 5 plus 1 of the 3-way tie (1 positive in 3).
  expected_p2 = (1 + 1 * (1 / 3)) / 2
  expected_p4 = (1 + 1) / 4
  np.testing.assert_allclose(
    ua.precision_at_k(scores, labels, [1, 2, 4, 5, 7]),
    [[1.0, expected_p2, expected_p4, 3 / 5, 4 / 7]],
  )
  # P = 4. Recall 0.25 is reached at rank 1 (precision 1); 0.5 needs the tie group: 2 of 4 seen,
  # precision 2/4; 0.75 at rank 5: 3/5; 1.0 at rank 7: 4/7.
  np.testing.assert_allclose(
    ua.precision_at_recall(scores, labels, [0.25, 0.5, 0.75, 1.0]), [[1.0, 0.5, 0.6, 4 / 7]]
  )


@pytest.mark.parametrize('ties', [False, True])
def test_average_precision_agrees_with_sklearn(ties):
  rng = np.random.default_rng(2)
  n = 500
  labels = rng.random(n) < 0.3
  scores = rng.normal(size=(n, 4)) + labels[:, None] * np.array([0.0, 0.5, 1.0, 3.0])
  if ties:
    scores = np.round(scores)
  ours = ua.average_precision(scores, labels)
  ref = [sk_metrics.average_precision_score(labels, scores[:, u]) for u in range(4)]
  np.testing.assert_allclose(ours, ref, atol=1e-12)
  assert np.all(np.diff(ours) > 0)  # stronger alignment, higher AP


def test_alignment_scores_pick_each_units_concept():
  rng = np.random.default_rng(3)
  n = 3000
  digits = rng.integers(0, 10, size=(n, 2))
  concepts = np.zeros((n, 10), bool)
  concepts[np.arange(n), digits[:, 0]] = True
  concepts[np.arange(n), digits[:, 1]] = True
  # Unit u detects digit (3 u) % 10, with noise; unit 3 is noise.
  acts = np.stack(
    [concepts[:, (3 * u) % 10] + 0.3 * rng.normal(size=n) for u in range(3)] + [rng.normal(size=n)],
    1,
  )
  out = ua.alignment_scores(acts, concepts, ks=(100, 300), recalls=(0.25, 0.5))
  np.testing.assert_array_equal(out['best_concept'][:3], [0, 3, 6])
  assert np.all(out['alignment'][:3] > 0.9)
  assert out['alignment'][3] < 0.35
  assert out['ap'].shape == (4, 10)
  assert out['precision_at_k'].shape == (4, 2) and out['precision_at_recall'].shape == (4, 2)
  assert np.all(out['precision_at_k'][:3] > 0.98)
  np.testing.assert_allclose(out['base_rate'], concepts.mean(0))


def test_degenerate_inputs():
  labels = np.array([0, 1, 0, 1], bool)
  with pytest.raises(ValueError, match='NaN'):
    ua.precision_at_k(np.array([0.0, np.nan, 1.0, 2.0]), labels, [1])
  with pytest.raises(ValueError, match='k must'):
    ua.precision_at_k(np.arange(4.0), labels, [5])
  with pytest.raises(ValueError, match='recall'):
    ua.precision_at_recall(np.arange(4.0), labels, [0.0])
  with pytest.raises(ValueError, match='labels'):
    ua.average_precision(np.arange(4.0), labels[:3])
  no_positive = np.zeros(4, bool)
  assert ua.precision_at_recall(np.arange(4.0), no_positive).tolist() == [[0.0, 0.0, 0.0]]
  assert ua.average_precision(np.arange(4.0), no_positive).tolist() == [0.0]
  assert ua.precision_at_k(np.arange(4.0), no_positive, [2]).tolist() == [[0.0]]


def _toy_network():
  """GAP features of 4 units -> 3 classes. Unit 0 alone decides class 0 vs the rest; unit 3 is
  unused; units 1 and 2 are redundant copies deciding class 1 vs 2."""
  rng = np.random.default_rng(4)
  n = 600
  labels = rng.integers(0, 3, size=n)
  feats = np.zeros((n, 4), np.float32)
  feats[:, 0] = labels == 0
  feats[:, 1] = labels == 1
  feats[:, 2] = labels == 1
  feats[:, 3] = rng.normal(size=n)
  weights = np.array([[4.0, 0, 0], [0, 2, -2], [0, 2, -2], [0, 0, 0]], np.float32)
  bias = np.array([-2.0, 0.0, 0.5], np.float32)
  feats_j, weights_j, bias_j = jnp.asarray(feats), jnp.asarray(weights), jnp.asarray(bias)

  def predict_fn(keep):
    return (feats_j * keep) @ weights_j + bias_j

  return predict_fn, labels


def test_ablation_effect_known_answers():
  predict_fn, labels = _toy_network()
  out = ua.ablation_effect(predict_fn, labels, 4)
  assert out['baseline_accuracy'] == 1.0
  # Unit 0 removed: class 0 (about a third) is lost; units 1, 2 are redundant; unit 3 unused.
  assert out['accuracy_drop'][0] == pytest.approx(np.mean(labels == 0))
  np.testing.assert_allclose(out['accuracy_drop'][1:], 0.0)
  assert out['probability_drop'][0] > 0.2 and abs(out['probability_drop'][3]) < 1e-6
  assert out['probability_drop'][1] > 0  # redundancy keeps the decision, not the confidence
  # Both redundant units removed at once is the caller's mask; here: a subset of units.
  sub = ua.ablation_effect(predict_fn, labels, 4, units=[2, 0])
  np.testing.assert_allclose(sub['accuracy_drop'], out['accuracy_drop'][[2, 0]])


def test_ablation_effect_in_and_out_of_group_and_python_loop():
  predict_fn, labels = _toy_network()
  in_group = np.stack([labels == 0, labels == 1, labels == 1, labels == 2], 1)
  out = ua.ablation_effect(predict_fn, labels, 4, in_group=in_group, batch_size=2)
  assert out['accuracy_drop_in'][0] == pytest.approx(1.0)
  assert out['accuracy_drop_out'][0] == pytest.approx(0.0)
  assert out['selectivity'][0] == pytest.approx(1.0)
  looped = ua.ablation_effect(predict_fn, labels, 4, in_group=in_group, traceable=False)
  for key in ('accuracy', 'accuracy_drop_in', 'selectivity', 'probability_drop'):
    np.testing.assert_allclose(looped[key], out[key], atol=1e-6)
  # An empty group side gives 0, not NaN.
  empty = ua.ablation_effect(predict_fn, labels, 4, in_group=np.zeros(len(labels), bool))
  np.testing.assert_array_equal(empty['accuracy_drop_in'], 0.0)
  with pytest.raises(ValueError, match='in_group'):
    ua.ablation_effect(predict_fn, labels, 4, in_group=np.zeros((3, 4), bool))
  with pytest.raises(ValueError, match='units'):
    ua.ablation_effect(predict_fn, labels, 4, units=[4])

"""Unfairness (dlib's fairness metric): TV-distance core, known orderings, dlib agreement."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import fairness

SIZES = (3, 4, 2)


def test_inter_group_fairness_hand_computed():
  # Predictions independent of the sensitive group: TV 0.
  assert fairness.inter_group_fairness(np.array([[5, 5], [5, 5]]))[0] == 0.0
  # Group 0 always predicts class 0, group 1 always class 1: pooled (1/2, 1/2), TV 1/2 each.
  mean, worst = fairness.inter_group_fairness(np.array([[10, 0], [0, 10]]))
  assert mean == 0.5 and worst == 0.5


def test_inter_group_fairness_matches_dlib():
  ref = data.dlib('fairness')
  counts = np.random.default_rng(0).integers(0, 50, (6, 4))
  np.testing.assert_allclose(fairness.inter_group_fairness(counts),
                             ref.inter_group_fairness(counts), rtol=1e-6)
  metric = np.random.default_rng(1).random((4, 4))
  ours = fairness.scores_dict(metric, 'mean_fairness')
  theirs = ref.compute_scores_dict(metric, 'mean_fairness')
  assert ours.keys() == theirs.keys()
  for key in theirs:
    assert abs(ours[key] - theirs[key]) < 1e-9, key


def _encode(noise, leak):
  """factors -> codes of factors 0 and 1 only; `leak` mixes factor 2 into factor 0's code, so a
  classifier of factor 0 cannot undo it and its predictions depend on factor 2."""
  def fn(f):
    z = data.identity_code(f, SIZES, noise=noise, seed=int(f.sum()) % 1000)[:, :2]
    z[:, 0] = z[:, 0] + leak * f[:, 2]
    return z
  return fn


def test_entangled_code_is_less_fair():
  f = data.factors(1500, SIZES)
  results = []
  for leak in (0.0, 0.5):
    encode = _encode(0.05, leak)
    inter = fairness.sample_intervened_codes(encode, SIZES, num_points=100, random_state=0)
    out = fairness.fairness(encode(f), f, inter)
    results.append(out['mean_fairness:mean_pred:mean_sens'])
    assert np.all(np.isfinite(out['mean_fairness']))
  assert results[0] < 0.05 < results[1], results


def test_degenerate_inputs():
  f = data.factors(300, SIZES)
  encode = _encode(0.1, 0.0)
  inter = fairness.sample_intervened_codes(encode, SIZES, num_points=20)
  with pytest.raises(ValueError):
    fairness.fairness(encode(f), f[:, :1], inter[:1])
  with pytest.raises(ValueError):
    fairness.fairness(encode(f), f, inter[:2])

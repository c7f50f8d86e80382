"""MIG-sup, DCIMIG, JEMMIG, MED and top-k MED: known answers on MI matrices and on codes."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax import metrics
from disentangle_jax.metrics import information, mig

SIZES = (4, 5, 6)


def test_mig_sup_known_answer():
  mi = np.array([[1.0, 0.0], [0.0, 0.5], [0.5, 0.5]])
  out = information.mig_sup_from_mutual_info(mi, np.array([1.0, 0.5]))
  # Normalised MI rows: (1, 0), (0, 1), (0.5, 1): gaps 1, 1, 0.5.
  np.testing.assert_allclose(out['mig_sup_per_code'], [1.0, 1.0, 0.5])
  assert out['mig_sup'] == pytest.approx(2.5 / 3)


def test_dcimig_known_answer():
  mi = np.array([[1.0, 0.2], [0.1, 0.6], [0.9, 0.0], [0.0, 0.0]])
  out = information.dcimig_from_mutual_info(mi, np.array([1.2, 0.8]))
  # Codes choose factors 0, 1, 0 (the last knows nothing) with gaps 0.8, 0.5, 0.9; each factor
  # keeps its best gap: (0.9 + 0.5) / (1.2 + 0.8).
  np.testing.assert_allclose(out['dcimig_gap_per_code'], [0.8, 0.5, 0.9, 0.0])
  np.testing.assert_allclose(out['dcimig_per_factor'], [0.9, 0.5])
  assert out['dcimig'] == pytest.approx(0.7)


def test_jemmig_known_answer():
  mi = np.array([[0.6], [0.1]])
  out = information.jemmig_from_mutual_info(mi, np.array([0.7]), np.array([1.5, 2.0]), 20)
  # H(z0, v) = 1.5 + 0.7 - 0.6 = 1.6; JEMMIG = 1.6 - 0.6 + 0.1 = 1.1, over H(v) + log 20.
  np.testing.assert_allclose(out['jemmig_unnormalised_per_factor'], [1.1])
  assert out['jemmig'] == pytest.approx(1.1 / (0.7 + np.log(20)))


def test_med_and_top_k_med_known_answers():
  mi = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0], [0.0, 0.0]])
  out = information.med_from_mutual_info(mi, top_k=1)
  np.testing.assert_allclose(out['med_importance'][:, 0], [0.5, 0.5, 0.0, 0.0])
  assert out['med_disentanglement'] == pytest.approx(1.0, abs=1e-6)
  # Factor 0 is split over two of four codes: C_0 = 1 - log 2 / log 4 = 0.5; factor 1 has C = 1;
  # both weigh half.
  assert out['med_completeness'] == pytest.approx(0.75, abs=1e-6)
  # Top-1 keeps one code per factor (the first of the tied pair, and code 2): C = 1.
  np.testing.assert_array_equal(out['topk_med_codes'], [0, 2])
  assert out['topk_med_completeness'] == pytest.approx(1.0, abs=1e-6)
  with pytest.raises(ValueError, match='top_k'):
    information.med_from_mutual_info(mi, top_k=0)


def _codes(kind, f):
  z = data.identity_code(f, SIZES)
  if kind == 'identity':
    return z
  if kind == 'duplicated':
    return np.concatenate([z, z[:, :1]], axis=1)
  if kind == 'mixed':
    return np.stack([z[:, 0] + z[:, 1], z[:, 0] - z[:, 1], z[:, 2]], axis=1)
  return np.random.default_rng(1).standard_normal(z.shape)


def test_known_answers_on_codes():
  f = data.factors(3000, SIZES)
  score = {kind: information.information_scores(_codes(kind, f), f)
           for kind in ('identity', 'duplicated', 'mixed', 'random')}
  for key in ('mig_sup', 'dcimig', 'med_disentanglement', 'topk_med_disentanglement'):
    assert score['identity'][key] > 0.97, key
    assert score['random'][key] < 0.02, key
    assert score['mixed'][key] < score['identity'][key] - 0.3, key
  assert score['identity']['jemmig'] < 0.01 and score['random']['jemmig'] > 0.8
  assert score['mixed']['jemmig'] > 0.3
  # A duplicated factor: MIG halves its gap, MIG-sup and DCIMIG do not (the point of both),
  # MED's completeness drops while top-1 MED's does not.
  assert mig.mig(_codes('duplicated', f), f)['discrete_mig'] < 0.7
  assert score['duplicated']['mig_sup'] > 0.97 and score['duplicated']['dcimig'] > 0.97
  assert score['duplicated']['med_completeness'] < 0.85
  assert score['duplicated']['topk_med_completeness'] > 0.97


def test_registered_and_consistent():
  f = data.factors(500, SIZES)
  z = data.identity_code(f, SIZES, noise=0.05)
  full = information.information_scores(z, f, top_k=2)
  for name, key in (('mig_sup', 'mig_sup'), ('dcimig', 'dcimig'), ('jemmig', 'jemmig'),
                    ('med', 'topk_med_disentanglement')):
    metric = metrics.get_metric(name)
    assert metric.inputs == 'sample'
    kwargs = {'top_k': 2} if name == 'med' else {}
    assert metric.fn(z, f, **kwargs)[key] == pytest.approx(full[key])

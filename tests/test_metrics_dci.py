"""DCI (boosted-tree and Lasso importances) and the vectorised boosted trees behind it."""

import numpy as np
import pytest
from sklearn import ensemble

import _metrics_data as data
from disentangle_jax.metrics import dci, gbt

SIZES = (3, 4, 5, 2)


def test_scores_from_importance_known_answers():
  eye = dci.scores_from_importance(np.eye(4))
  assert abs(float(eye['disentanglement']) - 1) < 1e-6 and abs(float(eye['completeness']) - 1) < 1e-6
  flat = dci.scores_from_importance(np.ones((4, 4)))
  assert abs(float(flat['disentanglement'])) < 1e-6 and abs(float(flat['completeness'])) < 1e-6
  # One code explains two factors equally: D_0 = 1 - log 2 / log 2 = 0 for that code.
  r = np.array([[1.0, 1.0], [0.0, 0.0]])
  out = dci.scores_from_importance(r)
  assert abs(float(out['disentanglement'])) < 1e-6
  assert abs(float(out['completeness']) - 1) < 1e-6


@pytest.mark.parametrize('importance', ['gbt', 'lasso'])
def test_identity_high_random_low_rotated_lower(importance):
  xtr, ftr, xte, fte = data.train_test(1000, 500, SIZES, noise=0.02)
  ident = dci.dci(xtr, ftr, xte, fte, importance=importance)
  assert ident['disentanglement'] > 0.9 and ident['completeness'] > 0.9
  if importance == 'gbt':
    assert ident['informativeness_test'] > 0.95
  rng = np.random.default_rng(0)
  random = dci.dci(rng.standard_normal(xtr.shape), ftr, rng.standard_normal(xte.shape), fte,
                   importance=importance)
  if importance == 'gbt':
    assert random['disentanglement'] < 0.3 and random['completeness'] < 0.3
  else:
    # Lasso keeps a few tiny coefficients of a random code: its R^2 is the meaningful zero.
    assert random['informativeness_test'] < 0.02
  rot = dci.dci(data.rotate_pairs(xtr, 45), ftr, data.rotate_pairs(xte, 45), fte,
                importance=importance)
  assert rot['disentanglement'] < ident['disentanglement'] - 0.1


def test_falls_with_noise_and_rotation():
  by_noise = []
  for s in (0.02, 0.1, 0.3, 1.0):
    xtr, ftr, xte, fte = data.train_test(1000, 500, SIZES, noise=s)
    out = dci.dci(xtr, ftr, xte, fte)
    by_noise.append((out['disentanglement'], out['informativeness_test']))
  for i in range(2):
    assert data.strictly_decreasing([v[i] for v in by_noise]), by_noise
  xtr, ftr, xte, fte = data.train_test(1000, 500, SIZES, noise=0.02)
  by_angle = [dci.dci(data.rotate_pairs(xtr, a), ftr, data.rotate_pairs(xte, a), fte,
                      importance='lasso')['disentanglement'] for a in (0, 15, 30, 45)]
  assert data.strictly_decreasing(by_angle), by_angle


def test_degenerate_inputs_and_determinism():
  xtr, ftr, xte, fte = data.train_test(600, 300, SIZES, noise=0.1)
  xtr[:, 1] = 0.5
  ftr[:, 0] = 1
  out = dci.dci(xtr, ftr, xte, fte)
  assert np.all(out['importance_matrix'][:, 0] == 0)
  assert np.all(out['importance_matrix'][1] == 0)
  assert all(np.isfinite(out[k]) for k in ('disentanglement', 'completeness',
                                           'informativeness_test'))
  gbt.clear_fit_cache()  # a fresh fit, not the memoised one
  again = dci.dci(xtr, ftr, xte, fte)
  np.testing.assert_array_equal(out['importance_matrix'], again['importance_matrix'])
  with pytest.raises(ValueError):
    dci.dci(xtr, np.zeros_like(ftr), xte, fte)
  with pytest.raises(ValueError):
    dci.dci(xtr, ftr, xte, fte, importance='forest')


def test_fits_are_memoised_by_content():
  xtr, ftr, _, _ = data.train_test(300, 10, SIZES, noise=0.1)
  gbt.clear_fit_cache()
  first = gbt.fit_gbt(xtr, ftr, num_stages=5)
  assert gbt.fit_gbt(xtr.copy(), ftr.copy(), num_stages=5) is first  # same contents: shared
  assert gbt.fit_gbt(xtr, ftr, num_stages=6) is not first  # other settings: a new fit
  changed = xtr.copy()
  changed[0, 0] += 1.0
  assert gbt.fit_gbt(changed, ftr, num_stages=5) is not first
  gbt.clear_fit_cache()
  fresh = gbt.fit_gbt(xtr, ftr, num_stages=5)
  assert fresh is not first
  np.testing.assert_array_equal(fresh.importances, first.importances)
  np.testing.assert_array_equal(fresh.leaf_values, first.leaf_values)


def test_dci_fit_is_shared_with_the_boosted_downstream_task(monkeypatch):
  # The downstream task fits smaller sizes before its largest; DCI's fit must outlive them.
  from disentangle_jax.metrics import downstream

  xtr, ftr, xte, fte = data.train_test(400, 50, SIZES, noise=0.1)
  gbt.clear_fit_cache()
  dci.dci(xtr, ftr, xte, fte)
  sizes = []
  real_fit = gbt._fit_gbt
  monkeypatch.setattr(gbt, '_fit_gbt', lambda x, y, **k: sizes.append(len(x)) or real_fit(x, y, **k))
  downstream.downstream_task(xtr, ftr, xte, fte, predictor='boosted', train_sizes=(10, 50, 400))
  assert sizes == [10, 50]


def test_boosted_trees_agree_with_sklearn():
  xtr, ftr, xte, fte = data.train_test(1000, 500, SIZES, noise=0.05, extra_dims=2)
  model = gbt.fit_gbt(xtr, ftr)
  pred = model.predict(xte)
  for k in range(ftr.shape[1]):
    ref = ensemble.GradientBoostingClassifier(random_state=0).fit(xtr, ftr[:, k])
    assert np.abs(model.importances[:, k] - ref.feature_importances_).max() < 0.03
    assert abs((pred[:, k] == fte[:, k]).mean() - (ref.predict(xte) == fte[:, k]).mean()) < 0.02
    assert abs((model.train_predictions[:, k] == ftr[:, k]).mean()
               - (ref.predict(xtr) == ftr[:, k]).mean()) < 0.02


def test_matches_dlib():
  ref = data.dlib('dci')
  xtr, ftr, xte, fte = data.train_test(1000, 500, SIZES, noise=0.05, extra_dims=2)
  imp, tr, te = ref.compute_importance_gbt(xtr.T, ftr.T, xte.T, fte.T)
  out = dci.dci(xtr, ftr, xte, fte)
  assert abs(out['disentanglement'] - ref.disentanglement(imp)) < 0.02
  assert abs(out['completeness'] - ref.completeness(imp)) < 0.02
  assert abs(out['informativeness_train'] - tr) < 0.02
  assert abs(out['informativeness_test'] - te) < 0.02

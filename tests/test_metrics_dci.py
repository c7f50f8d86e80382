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


# Entangled codes with dSprites-like factors (a 3-valued one, several many-valued ones), small
# enough for scikit-learn's exact trees in a test.
ENTANGLED_SIZES = (3, 6, 12, 10, 10)


def entangled(kind, n, seed):
  """Codes that mix factors: 'rotation' (45 degrees within pairs), 'mixing' (a dense random
  matrix), 'pairs' (each dimension a factor plus half the next), 'duplicated' (identity plus
  copies of three dimensions); Gaussian noise 0.1 on standardised factors."""
  f = data.factors(n, ENTANGLED_SIZES, seed)
  rng = np.random.default_rng(seed + 7)
  z = (f - f.mean(0)) / f.std(0)
  if kind == 'rotation':
    z = data.rotate_pairs(np.concatenate([z, rng.standard_normal((n, 1))], 1), 45,
                          ((0, 1), (2, 3), (4, 5)))
  elif kind == 'mixing':
    z = z @ np.random.default_rng(3).standard_normal((5, 8))
  elif kind == 'pairs':
    z = z + 0.5 * np.roll(z, 1, axis=1)
  z = z + 0.1 * rng.standard_normal(z.shape)
  if kind == 'duplicated':
    z = np.concatenate([z, z[:, :3]], 1)
  return z, f


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['rotation', 'mixing', 'pairs', 'duplicated'])
def test_fast_dci_within_0_02_of_exact_trees_on_entangled_codes(kind):
  # The documented fidelity of the default (binned search, exact thresholds): D and C within
  # 0.02 of scikit-learn's exact trees (protocol='dlib').
  xtr, ftr = entangled(kind, 800, 0)
  xte, fte = entangled(kind, 400, 100)
  fast = dci.dci(xtr, ftr, xte, fte)
  exact = dci.dci(xtr, ftr, xte, fte, protocol='dlib')
  for key in ('disentanglement', 'completeness'):
    assert abs(fast[key] - exact[key]) <= 0.02, (key, fast[key], exact[key])
  for key in ('informativeness_train', 'informativeness_test'):
    assert abs(fast[key] - exact[key]) <= 0.03, (key, fast[key], exact[key])


@pytest.mark.slow
def test_exact_bins_are_sklearns_trees():
  # With a bin per distinct value the search is exact: the trees are scikit-learn's, up to splits
  # whose gains agree to rounding (on overlapping classes a few training predictions differ).
  xtr, ftr = entangled('rotation', 300, 1)
  model = gbt.fit_gbt(xtr, ftr, num_stages=20, num_bins=512, precision='float64')
  for k in range(ftr.shape[1]):
    ref = ensemble.GradientBoostingClassifier(n_estimators=20, random_state=0).fit(xtr, ftr[:, k])
    assert np.abs(model.importances[:, k] - ref.feature_importances_).max() < 0.01
    assert (model.train_predictions[:, k] == ref.predict(xtr)).mean() >= 0.95


def test_tie_rule_shares_the_gain_among_duplicated_features():
  # A split that several features make equally well (here an exact and a rescaled copy) is made
  # once, and its gain is shared equally: the copies get equal importance, which is
  # scikit-learn's importance averaged over its random feature order.
  xtr, ftr, _, _ = data.train_test(500, 10, SIZES, noise=0.1)
  x = np.concatenate([xtr, xtr[:, :1], 3.0 * xtr[:, :1]], axis=1)  # dims 0, 4 and 5 tie
  model = gbt.fit_gbt(x, ftr)
  imp = model.importances
  np.testing.assert_allclose(imp[4], imp[0], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(imp[5], imp[0], rtol=1e-5, atol=1e-7)
  # scikit-learn, averaged over its feature orders, splits the importance the same way.
  refs = [ensemble.GradientBoostingClassifier(n_estimators=20, random_state=s).fit(
    x, ftr[:, 0]).feature_importances_ for s in range(4)]
  ours = gbt.fit_gbt(x, ftr[:, :1], num_stages=20).importances[:, 0]
  assert abs(ours[[0, 4, 5]].sum() - np.mean(refs, 0)[[0, 4, 5]].sum()) < 0.02
  assert np.abs(ours[[0, 4, 5]] - ours[0]).max() < 1e-6


def test_blocked_cumsum_matches_numpy():
  import jax.numpy as jnp

  rng = np.random.default_rng(0)
  for w in (1, 7, 16, 100, 128, 512):
    v = rng.standard_normal((3, w)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(gbt._window_cumsum(jnp.asarray(v))),
                               np.cumsum(v.astype(np.float64), -1), atol=1e-5)
    i = rng.integers(0, 2**16, (2, w, 3)).astype(np.int32)
    np.testing.assert_array_equal(np.asarray(gbt._prefix(jnp.asarray(i))), np.cumsum(i, 1))


def test_padded_small_fits_equal_unpadded_ones(monkeypatch):
  # Small fits are padded to gbt.SMALL_FIT rows of zero weight (and trees to as many). In float64
  # the padding changes nothing: trees, importances and predictions are equal. In float32 the
  # padded sums round differently (their order depends on the vector width of the CPU), which
  # can re-break near-exact ties between splits: the predictions stay equal, the importances
  # move a little.
  xtr, ftr, xte, _ = data.train_test(60, 40, SIZES, noise=0.2, extra_dims=2)
  fits = {}
  for small_fit in (gbt.SMALL_FIT, 0):
    monkeypatch.setattr(gbt, 'SMALL_FIT', small_fit)
    for precision in ('float32', 'float64'):
      fits[small_fit > 0, precision] = gbt._fit_gbt(xtr, ftr, num_stages=20, learning_rate=0.1,
                                                    num_bins=128, precision=precision)
  padded, plain = fits[True, 'float64'], fits[False, 'float64']
  np.testing.assert_array_equal(padded.features, plain.features)
  np.testing.assert_array_equal(padded.thresholds, plain.thresholds)
  np.testing.assert_allclose(padded.leaf_values, plain.leaf_values, atol=1e-12)
  np.testing.assert_allclose(padded.importances, plain.importances, atol=1e-12)
  np.testing.assert_array_equal(padded.train_predictions, plain.train_predictions)
  np.testing.assert_array_equal(padded.predict(xte), plain.predict(xte))
  padded, plain = fits[True, 'float32'], fits[False, 'float32']
  np.testing.assert_array_equal(padded.train_predictions, plain.train_predictions)
  np.testing.assert_array_equal(padded.predict(xte), plain.predict(xte))
  np.testing.assert_allclose(padded.importances, plain.importances, atol=0.02)


def test_small_fits_share_one_compilation():
  xtr, ftr, _, _ = data.train_test(120, 10, SIZES, noise=0.2)
  gbt.fit_gbt(xtr[:100], ftr[:100], num_stages=5)
  before = gbt._fit._cache_size()
  gbt.fit_gbt(xtr[:12], ftr[:12], num_stages=5)  # fewer classes seen, fewer rows: same shapes
  assert gbt._fit._cache_size() == before

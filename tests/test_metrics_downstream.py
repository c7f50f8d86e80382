"""Downstream accuracy (LogisticRegressionCV and boosted trees) at several label budgets."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import linear_model, model_selection

import _metrics_data as data
from disentangle_jax.metrics import downstream

SIZES = (3, 4, 5)


def test_kfold_masks_match_sklearn():
  for n in (10, 23, 100):
    masks = downstream.kfold_masks(n)
    for mask, (_, test) in zip(masks, model_selection.KFold(5).split(np.zeros(n))):
      np.testing.assert_array_equal(np.nonzero(mask)[0], test)


@pytest.mark.parametrize('predictor', ['logistic', 'boosted'])
def test_identity_high_random_chance_and_noise(predictor):
  by_noise = []
  for s in (0.02, 0.3, 1.0):
    xtr, ftr, xte, fte = data.train_test(600, 400, SIZES, noise=s)
    out = downstream.downstream_task(xtr, ftr, xte, fte, predictor=predictor, train_sizes=(600,))
    by_noise.append(out['600:mean_test_accuracy'])
  assert by_noise[0] > 0.95
  assert data.strictly_decreasing(by_noise), by_noise
  rng = np.random.default_rng(0)
  out = downstream.downstream_task(rng.standard_normal((600, 3)), ftr, rng.standard_normal((400, 3)),
                                   fte, predictor=predictor, train_sizes=(600,))
  chance = np.mean([np.max(np.bincount(fte[:, k])) / len(fte) for k in range(3)])
  assert out['600:mean_test_accuracy'] < chance + 0.08


def test_keys_sizes_and_degenerate_inputs():
  xtr, ftr, xte, fte = data.train_test(200, 100, SIZES, noise=0.1)
  ftr[:, 0] = 1  # constant factor: predicted as that value
  out = downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(10, 200))
  for key in ('10:mean_train_accuracy', '200:min_test_accuracy', '200:test_accuracy_factor_2'):
    assert np.isfinite(out[key])
  assert out['200:train_accuracy_factor_0'] == 1.0
  with pytest.raises(ValueError):
    downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(1000,))
  with pytest.raises(ValueError):
    downstream.downstream_task(xtr, ftr, xte, fte, predictor='svm')


def test_logistic_matches_dlib():
  ref = data.dlib('downstream')
  xtr, ftr, xte, fte = data.train_test(500, 500, SIZES, noise=0.2)
  ours = downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(500,))
  tr, te = ref._compute_loss(
    xtr, ftr.T, xte, fte.T,
    lambda: linear_model.LogisticRegressionCV(Cs=10, cv=model_selection.KFold(n_splits=5)))
  assert abs(ours['500:mean_train_accuracy'] - np.mean(tr)) < 0.02
  assert abs(ours['500:mean_test_accuracy'] - np.mean(te)) < 0.02


def test_fit_path_matches_sklearn_when_converged():
  from disentangle_jax.metrics import _logistic

  rng = np.random.default_rng(0)
  x = rng.standard_normal((300, 3))
  ys = [np.argmax(x @ rng.standard_normal((3, 4)) + rng.standard_normal((300, 4)), 1),
        (x[:, 0] + rng.standard_normal(300) > 0).astype(int)]  # multinomial, binomial
  cs = np.array([0.01, 1.0])
  xa = jnp.asarray(np.concatenate([x, np.ones((300, 1))], 1), jnp.float32)
  binomial = np.array([[False], [True]])
  valid = np.array([[True] * 4, [True, True, False, False]])
  free = np.where(binomial, np.arange(4) == 1, valid)
  theta, _ = _logistic.fit_path(
    jnp.stack([xa, xa]), jnp.asarray(np.stack(ys), jnp.int32), jnp.ones((2, 300)),
    jnp.asarray(valid), jnp.asarray(free), jnp.asarray(np.tile(1 / cs, (2, 1)), jnp.float32),
    jnp.zeros((2, 4, 4)), max_iter=500, tol=1e-5)
  for j, c in enumerate(cs):
    multi = linear_model.LogisticRegression(C=c, tol=1e-10, max_iter=1000).fit(x, ys[0])
    ours = np.asarray(theta[0, j])
    np.testing.assert_allclose(ours[:3].T, multi.coef_, atol=2e-3)
    # The multinomial intercepts are defined up to a shift: compare centred.
    b = ours[3] - ours[3].mean()
    np.testing.assert_allclose(b, multi.intercept_ - multi.intercept_.mean(), atol=2e-3)
    bino = linear_model.LogisticRegression(C=c, tol=1e-10, max_iter=1000).fit(x, ys[1])
    np.testing.assert_allclose(np.asarray(theta[1, j])[:, 1], np.r_[bino.coef_[0], bino.intercept_],
                               atol=2e-3)
    np.testing.assert_array_equal(np.asarray(theta[1, j])[:, [0, 2, 3]], 0)


def test_logistic_matches_sklearn_larger():
  sizes = (4, 12)
  xtr, ftr, xte, fte = data.train_test(1500, 1000, sizes, noise=0.1, extra_dims=3)
  ours = downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(1500,))
  for k in range(len(sizes)):
    ref = linear_model.LogisticRegressionCV(Cs=10, cv=model_selection.KFold(n_splits=5))
    ref.fit(xtr, ftr[:, k])
    assert abs(ours[f'1500:train_accuracy_factor_{k}'] - ref.score(xtr, ftr[:, k])) < 0.02
    assert abs(ours[f'1500:test_accuracy_factor_{k}'] - ref.score(xte, fte[:, k])) < 0.02


def test_padded_logistic_fits_equal_unpadded_ones():
  # Padding rows (zero weight), classes (invalid) and problems (no parameters) for fewer
  # compilations leaves converged fits as they are.
  from disentangle_jax.metrics import _logistic

  rng = np.random.default_rng(0)
  x = rng.standard_normal((3, 50, 4)).astype(np.float32)
  x[..., -1] = 1.0
  y = rng.integers(0, 3, (3, 50)).astype(np.int32)
  y[1] = y[1] % 2
  weights = np.ones((3, 50), np.float32)
  valid, free, _ = _logistic.class_masks([3, 2, 3], 3)
  l2 = np.tile([[10.0, 1.0, 0.1]], (3, 1)).astype(np.float32)
  theta0 = np.zeros((3, 4, 3), np.float32)
  ref, _ = _logistic.fit_path(*(jnp.asarray(a) for a in (x, y, weights, valid, free, l2, theta0)),
                              max_iter=300)
  padded, _ = _logistic.fit_path_padded(x, y, weights, valid, free, l2, theta0, max_iter=300)
  assert padded.shape == ref.shape
  # Both stop at the gradient tolerance (1e-4): the solutions agree to about that precision.
  np.testing.assert_allclose(np.asarray(padded), np.asarray(ref), atol=1e-3)


def test_small_training_sizes_share_compilations():
  from disentangle_jax.metrics import _logistic

  xtr, ftr, xte, fte = data.train_test(200, 50, (3, 7, 11), noise=0.1)
  downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(20,))
  before = _logistic.fit_path._cache_size()
  downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(40, 90))
  assert _logistic.fit_path._cache_size() == before  # padded to the shapes of the size-20 fits


def test_padded_rows_and_problem_blocks_leave_fits_unchanged():
  # Rows of zero weight (here with arbitrary inputs and labels, as a fold's held-out rows are),
  # problems fitted in blocks of 8 and a single penalty padded to a path of 10 give the fit of
  # the unpadded problem.
  from disentangle_jax.metrics import _logistic

  rng = np.random.default_rng(1)
  p, m, extra = 11, 60, 25
  x = rng.standard_normal((p, m + extra, 4)).astype(np.float32)
  x[..., -1] = 1.0
  y = rng.integers(0, 3, (p, m + extra)).astype(np.int32)
  weights = np.ones((p, m + extra), np.float32)
  weights[:, m:] = 0.0
  valid, free, _ = _logistic.class_masks([3] * p, 3)
  l2 = np.ones((p, 1), np.float32)
  theta0 = np.zeros((p, 4, 3), np.float32)
  ref, _ = _logistic.fit_path(*(jnp.asarray(a) for a in (x[:, :m], y[:, :m], weights[:, :m],
                                                         valid, free, l2, theta0)), max_iter=300)
  padded, evals = _logistic.fit_path_padded(x, y, weights, valid, free, l2, theta0, max_iter=300)
  assert padded.shape == ref.shape and evals.shape == (p, 1)
  np.testing.assert_allclose(np.asarray(padded), np.asarray(ref), atol=1e-3)


def test_folds_refit_and_explicitness_share_one_compilation():
  # The cross-validation's folds see all rows (held-out ones with zero weight), so the folds, the
  # refit and a single-penalty fit_per_factor on the same rows compile fit_path once per class
  # bucket.
  from disentangle_jax.metrics import _logistic
  from disentangle_jax.metrics._common import label_encode

  xtr, ftr, xte, fte = data.train_test(300, 50, (20, 30), noise=0.1)
  downstream.downstream_task(xtr, ftr, xte, fte, train_sizes=(300,))
  before = _logistic.fit_path._cache_size()
  downstream.downstream_task(xtr[:290], ftr[:290], xte, fte, train_sizes=(290,))
  enc, sizes = label_encode(ftr)
  assert max(sizes) > 24  # the same class bucket (32) as the downstream fits
  _logistic.fit_per_factor(xtr, enc, sizes, l2=1.0)
  assert _logistic.fit_path._cache_size() == before

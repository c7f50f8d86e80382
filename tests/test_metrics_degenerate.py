"""The package's one policy for degenerate metric inputs, case by case (see `metrics.__doc__`)."""

import numpy as np
import pytest

from disentangle_jax import metrics
from disentangle_jax.metrics import (
  _common,
  dci,
  infomec,
  irs,
  linear_probe,
  mig,
  modularity,
  retrieval,
  unsupervised,
)

# Metrics that take codes, with small settings; the sampled ('ground_truth') ones check their
# samples through the same cores.
SMALL = {
  'downstream_logistic': {'train_sizes': (10,)},
  'downstream_boosted': {'train_sizes': (10,)},
  'retrieval': {'num_validation': 100},
}
CODE_METRICS = [n for n in metrics.available() if metrics.get_metric(n).inputs != 'ground_truth']


def _sample(n, seed=0, sizes=(4, 5)):
  rng = np.random.default_rng(seed)
  f = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
  x = np.concatenate([f / (np.asarray(sizes) - 1.0), rng.standard_normal((n, 1))], axis=1)
  return x + 0.05 * rng.standard_normal(x.shape), f


def _run(name, x, f, xte=None, fte=None):
  xte, fte = (x, f) if xte is None else (xte, fte)
  return metrics.evaluate_samples([name], train_codes=x, train_targets=f, test_codes=xte,
                                  test_targets=fte, settings={name: SMALL.get(name, {})})[name]


# --- too few samples ----------------------------------------------------------------------------


@pytest.mark.parametrize('name', CODE_METRICS)
def test_one_sample_is_a_clear_error(name):
  """One training point has no variation: every metric refuses it (IRS, SAP, modularity and the
  linear probe used to return 0.0)."""
  x, f = _sample(1)
  xte, fte = _sample(20, seed=1)
  with pytest.raises(ValueError, match='at least') as e:
    _run(name, x, f, xte, fte)
  assert '\n' not in str(e.value)


def test_minimum_sample_sizes():
  x, f = _sample(2)
  assert np.isfinite(mig.mig(x, f)['discrete_mig'])
  assert np.isfinite(irs.irs(x, f)['IRS'])
  # Two points in three non-constant dimensions: the covariance is singular (the total correlation
  # used to come out infinite); more points than dimensions are needed.
  with pytest.raises(ValueError, match='more points than non-constant code dimensions'):
    unsupervised.unsupervised_scores(x)
  assert np.isfinite(unsupervised.unsupervised_scores(_sample(4)[0])['gaussian_total_correlation'])
  with pytest.raises(ValueError, match='at least 5 points'):
    metrics.get_metric('downstream_logistic').fn(*_sample(40), *_sample(10), train_sizes=(4,))
  with pytest.raises(ValueError, match='exceeds'):
    metrics.get_metric('downstream_boosted').fn(*_sample(40), *_sample(10), train_sizes=(50,))


def test_collinear_dimensions_in_a_large_sample_have_infinite_total_correlation():
  x, _ = _sample(200)
  x = np.concatenate([x, 2.0 * x[:, :1]], axis=1)
  assert unsupervised.unsupervised_scores(x)['gaussian_total_correlation'] == np.inf


# --- shapes -------------------------------------------------------------------------------------


def test_one_dimensional_codes():
  """Retrieval reads [N] as one dimension (it raised IndexError); the others ask for [N, 1]."""
  x, f = _sample(60)
  flat = retrieval.retrieval_evaluation(x[:, 0], f, x[:, 0], f)
  column = retrieval.retrieval_evaluation(x[:, :1], f, x[:, :1], f, num_chunks=1)
  np.testing.assert_allclose(flat['map'], column['map'])
  registered = metrics.get_metric('retrieval').fn(x[:, 0], f, x[:, 0], f)
  np.testing.assert_allclose(registered['map'], column['map'])
  with pytest.raises(ValueError, match=r'codes\[:, None\]'):
    mig.mig(x[:, 0], f)


# --- constant code dimensions -------------------------------------------------------------------


def test_modularity_scores_a_constant_dimension_zero():
  """A constant code's leftover MI (about 2e-16 nats) used to pass `theta > 0` and score 1.0."""
  x, f = _sample(500)
  x[:, 2] = 0.7
  out = modularity.modularity(x, f)
  assert out['modularity_per_code'][2] == 0.0
  np.testing.assert_array_equal(out['mutual_info'][2], 0.0)
  assert out['modularity_per_code'][0] > 0.5
  # The core's test has a tolerance: MI at rounding level is no information.
  core = modularity.modularity_from_mutual_info(np.array([[2e-16, 0.0], [0.5, 0.01]]))
  assert float(core['modularity_per_code'][0]) == 0.0
  assert float(core['modularity_per_code'][1]) == pytest.approx(1 - 0.01**2 / 0.5**2)


def test_constant_dims_are_decided_with_a_tolerance():
  rng = np.random.default_rng(0)
  x = np.stack([np.full(100, 0.3), 0.3 + 1e-9 * rng.standard_normal(100),
                np.zeros(100), rng.standard_normal(100), 1e-9 * rng.standard_normal(100)], 1)
  np.testing.assert_array_equal(_common.constant_dims(x), [True, True, True, False, False])
  checked = _common.check_codes(x)
  assert np.ptp(checked[:, 1]) == 0.0  # made exactly constant
  np.testing.assert_array_equal(checked[:, 3:], x[:, 3:])  # small but varying: kept
  (z,) = _common.standardise(checked)
  np.testing.assert_array_equal(z[:, :3], 0.0)


@pytest.mark.parametrize('name', [n for n in CODE_METRICS if n not in ('downstream_logistic',)])
def test_a_dead_unit_scores_as_an_exactly_constant_one(name):
  """Rounding noise (1e-9) on a constant dimension gives the same numbers as the constant."""
  x, f = _sample(300)
  exact = np.concatenate([x, np.full((300, 1), 0.25)], axis=1)
  noisy = exact.copy()
  noisy[:, -1] += 1e-9 * np.random.default_rng(5).standard_normal(300)
  a = metrics.scalar_results({name: _run(name, exact, f)})
  b = metrics.scalar_results({name: _run(name, noisy, f)})
  assert a.keys() == b.keys()
  for key in a:
    assert b[key] == pytest.approx(a[key], abs=1e-6), key


def test_all_constant_codes_take_the_documented_values():
  _, f = _sample(300)
  x = np.full((300, 3), 0.3)
  assert mig.mig(x, f)['discrete_mig'] == 0.0
  assert modularity.modularity(x, f)['modularity_score'] == 0.0
  assert irs.irs(x, f)['IRS'] == 0.0 and irs.irs(x, f)['num_active_dims'] == 0
  # InfoMEC used to fail with a numpy reduction error here.
  info = infomec.infomec(x, f)
  assert (info['infom'], info['infoc']) == (0.0, 0.0)
  assert info['infoe'] == pytest.approx(0.0, abs=1e-6)
  u = unsupervised.unsupervised_scores(x)
  for key in ('gaussian_total_correlation', 'gaussian_wasserstein_correlation',
              'gaussian_wasserstein_correlation_norm', 'mutual_info_score'):
    assert u[key] == 0.0, key
  d = dci.dci(x, f, x, f, importance='lasso')
  assert d['disentanglement'] == pytest.approx(0.0, abs=1e-12)
  assert d['completeness'] == pytest.approx(0.0, abs=1e-12)
  assert modularity.explicitness(x, f, x, f)['explicitness_score_test'] == pytest.approx(0.5)
  majority = linear_probe.majority_accuracy(f, f)
  probe = linear_probe.linear_probe_evaluation(x, f, x, f)
  np.testing.assert_allclose(probe['accuracy'], majority, atol=1e-12)


# --- single-valued factors ----------------------------------------------------------------------


def test_a_single_valued_factor_is_left_out_of_the_averages():
  x, f = _sample(400)
  g = np.concatenate([f, np.full((400, 1), 3)], axis=1)
  out = mig.mig(x, g)
  assert out['discrete_mig'] == pytest.approx(mig.mig(x, f)['discrete_mig'])
  assert out['mig_per_factor'][2] == 0.0
  d_f = dci.dci(x, f, x, f, importance='lasso')
  d_g = dci.dci(x, g, x, g, importance='lasso')
  assert d_g['informativeness_test'] == pytest.approx(d_f['informativeness_test'])
  assert d_g['disentanglement'] == pytest.approx(d_f['disentanglement'], abs=1e-6)
  np.testing.assert_array_equal(d_g['importance_matrix'][:, 2], 0.0)
  e_f, e_g = modularity.explicitness(x, f, x, f), modularity.explicitness(x, g, x, g)
  assert e_g['explicitness_score_test'] == pytest.approx(e_f['explicitness_score_test'], abs=1e-6)
  i_f, i_g = infomec.infomec(x, f), infomec.infomec(x, g)
  # InfoE's unpenalised fits stop where the optimiser stops (about 1e-3, see `infomec`).
  assert i_g['infoe'] == pytest.approx(i_f['infoe'], abs=5e-3)
  assert i_g['infoc'] == pytest.approx(i_f['infoc'], abs=1e-6)


@pytest.mark.parametrize('name', [n for n in CODE_METRICS if metrics.get_metric(n).needs_targets])
def test_no_varying_factor_is_a_clear_error(name):
  x, _ = _sample(60)
  f = np.zeros((60, 2), np.int64)
  with pytest.raises(ValueError, match='constant: there is nothing to measure'):
    _run(name, x, f)

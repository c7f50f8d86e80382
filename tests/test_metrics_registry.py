"""The one metric registry: names, input kinds, start-up checks and runs on encoded samples."""

import importlib.util

import numpy as np
import pytest

from disentangle_jax import metrics
from disentangle_jax.metrics import linear_probe, mig, registry, sap, unsupervised
import _metrics_data as data


def test_every_metric_has_one_of_the_input_kinds():
  names = metrics.available()
  assert {'betavae', 'factorvae', 'fairness', 'mig', 'sap', 'dci', 'dci_lasso', 'irs', 'infomec',
          'modularity', 'modularity_explicitness', 'explicitness', 'unsupervised', 'retrieval',
          'linear_probe', 'downstream_logistic', 'downstream_boosted',
          'sap_continuous'} <= set(names)
  for name in names:
    metric = metrics.get_metric(name)
    assert metric.name == name
    assert metric.inputs in ('sample', 'train_test', 'codes', 'ground_truth')
    assert metric.description
  assert metrics.get_metric('mig').inputs == 'sample'
  assert metrics.get_metric('dci').inputs == 'train_test'
  assert metrics.get_metric('unsupervised').inputs == 'codes'
  assert metrics.get_metric('factorvae').inputs == 'ground_truth'


def test_there_is_one_registry():
  assert importlib.util.find_spec('disentangle_jax.metrics._registry_core') is None
  assert not hasattr(metrics, '_KNOWN_CORES')
  assert metrics.METRICS is registry.METRICS
  with pytest.raises(ValueError, match='registered twice'):
    metrics.register_metric('mig', lambda c, f: {}, 'sample')


def test_check_metrics_fails_at_start_up_with_one_line():
  metrics.check_metrics(['mig', 'betavae', 'unsupervised'], has_ground_truth=True,
                        has_targets=False)
  metrics.check_metrics(['mig', 'linear_probe', 'unsupervised'], has_ground_truth=False,
                        has_targets=True)
  metrics.check_metrics(['unsupervised'], has_ground_truth=False, has_targets=False)
  with pytest.raises(ValueError, match="unknown metric 'no_such'") as e:
    metrics.check_metrics(['mig', 'no_such'], has_ground_truth=True, has_targets=True)
  assert '\n' not in str(e.value)
  with pytest.raises(ValueError, match="'factorvae' renders its own observations") as e:
    metrics.check_metrics(['mig', 'factorvae'], has_ground_truth=False, has_targets=True)
  assert '\n' not in str(e.value)
  with pytest.raises(ValueError, match="'linear_probe' scores codes against"):
    metrics.check_metrics(['linear_probe'], has_ground_truth=False, has_targets=False)


def _celeba_like(n, seed):
  """Binary attributes, each carried by one code dimension (plus a noise dimension)."""
  rng = np.random.default_rng(seed)
  targets = rng.integers(0, 2, (n, 3))
  codes = np.concatenate([targets + 0.1 * rng.standard_normal((n, 3)),
                          rng.standard_normal((n, 1))], axis=1)
  return codes, targets


def test_evaluate_samples_runs_code_metrics_on_labelled_codes():
  xtr, ytr = _celeba_like(400, 0)
  xte, yte = _celeba_like(300, 1)
  names = ['mig', 'sap', 'linear_probe', 'unsupervised', 'retrieval']
  out = metrics.evaluate_samples(
    names, train_codes=xtr, train_targets=ytr, test_codes=xte, test_targets=yte,
    settings={'retrieval': {'num_validation': 200}, 'mig': {'num_train': 300}},
    target_names=('smiling', 'male', 'young'),
  )
  assert sorted(out) == sorted(names)
  # Each metric is its function on the given samples ('sample' kinds on the train sample).
  assert out['mig']['discrete_mig'] == pytest.approx(mig.mig(xtr[:300], ytr[:300])['discrete_mig'])
  assert out['sap']['SAP_score'] == pytest.approx(sap.sap(xtr, ytr, xte, yte)['SAP_score'])
  probe = linear_probe.linear_probe_evaluation(xtr, ytr, xte, yte)
  np.testing.assert_allclose(out['linear_probe']['accuracy'], probe['accuracy'])
  assert out['unsupervised']['gaussian_total_correlation'] == pytest.approx(
    unsupervised.unsupervised_scores(xtr)['gaussian_total_correlation'])
  # Informative codes: every attribute is found by its own dimension.
  assert out['mig']['discrete_mig'] > 0.5
  np.testing.assert_array_equal(out['retrieval']['chunk_for_attribute'], [0, 1, 2])
  assert np.all(out['linear_probe']['accuracy'] > 0.95)
  assert out['linear_probe']['target_names'] == ('smiling', 'male', 'young')
  assert 'target_names' not in out['unsupervised']
  scalars = metrics.scalar_results(out)
  assert 'mig/discrete_mig' in scalars and 'sap/SAP_score' in scalars


def test_evaluate_samples_refuses_what_it_cannot_run():
  xtr, ytr = _celeba_like(50, 0)
  kw = dict(train_codes=xtr, train_targets=ytr, test_codes=xtr, test_targets=ytr)
  with pytest.raises(ValueError, match="'betavae' renders its own observations"):
    metrics.evaluate_samples(['mig', 'betavae'], **kw)
  with pytest.raises(ValueError, match='unknown metric'):
    metrics.evaluate_samples(['nope'], **kw)
  with pytest.raises(ValueError, match='2 target_names for 3'):
    metrics.evaluate_samples(['mig'], target_names=('a', 'b'), **kw)
  with pytest.raises(ValueError, match='integer labels'):
    metrics.evaluate_samples(['mig'], **{**kw, 'train_targets': ytr + 0.5})
  with pytest.raises(ValueError, match='train and test samples disagree'):
    metrics.evaluate_samples(['mig'], **{**kw, 'test_codes': xtr[:, :2]})
  with pytest.raises(ValueError, match='rows like train_codes'):
    metrics.evaluate_samples(['mig'], **{**kw, 'train_targets': ytr[:10]})


def test_evaluate_samples_matches_evaluate_on_the_same_sample():
  """The ground-truth path and the encoded-sample path give the same numbers on the same codes."""
  xtr, ftr, xte, fte = data.train_test(300, 200, sizes=(3, 4, 5))
  out = metrics.evaluate_samples(['mig', 'dci_lasso'], train_codes=xtr, train_targets=ftr,
                                 test_codes=xte, test_targets=fte)
  assert out['dci_lasso']['disentanglement'] == pytest.approx(
    metrics.get_metric('dci_lasso').fn(xtr, ftr, xte, fte)['disentanglement'])
  assert out['mig']['discrete_mig'] > 0.9


def test_fairness_runs_through_evaluate():
  from test_metrics_sampling import GT, identity_encoder  # pylint: disable=g-import-not-at-top

  out = metrics.evaluate(['fairness'], ground_truth=GT, encode_fn=identity_encoder, rng_seed=0,
                         settings={'fairness': {'num_train': 300, 'num_points': 20}})
  # An identity code: predicting one factor does not depend on intervening on another.
  assert out['fairness']['mean_fairness:mean_pred:mean_sens'] < 0.05
  assert out['fairness']['mean_fairness'].shape == (3, 3)

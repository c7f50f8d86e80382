"""The metric sanity suite: every metric on synthetic representations of known structure.

Five representations of three factors (sizes 4, 5, 6), each code dimension a factor in [0, 1]
plus noise 0.02 unless said otherwise:
- identity: one dimension per factor;
- rotation: factors 0 and 1 rotated by 45 degrees in their two dimensions;
- duplication: identity plus a second (noisy) copy of factor 0;
- noise: Gaussian codes that know nothing;
- mixing: dimension 0 carries factor 0 + factor 1, dimension 1 factor 1.
What every metric must do, or why it does not:
- identity scores clearly better than noise: all metrics with targets. The unsupervised scores
  measure dependence between code dimensions, not alignment with factors; they pass their own
  test instead (dependent codes score higher than independent ones).
- rotation and mixing score worse than identity: the disentanglement scores. The informativeness
  scores (explicitness, the downstream tasks, the linear probe) read a classifier off the whole
  code, which a rotation does not change: they stay within 0.05 by design.
- duplication: the scores that reward one code per factor (MIG, SAP, DCI's completeness, JEMMIG,
  unified MIG) drop; those that look at one code at a time (MIG-sup, DCIMIG, MED, modularity,
  IRS, InfoM, DCI's disentanglement, retrieval per chunk) and the informativeness scores do not.
InfoM is the one score that ranks rotation below noise (random codes give InfoM near 0.5-0.8,
see `infomec`): its test is identity against both, not their order.
"""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax import metrics

SIZES = (4, 5, 6)
# The headline score of each metric and whether higher is better.
KEY = {
  'mig': ('discrete_mig', 1), 'mig_sup': ('mig_sup', 1), 'dcimig': ('dcimig', 1),
  'jemmig': ('jemmig', -1), 'med': ('med_disentanglement', 1),
  'modularity': ('modularity_score', 1), 'irs': ('IRS', 1), 'infomec': ('infom', 1),
  'sap': ('SAP_score', 1), 'sap_continuous': ('SAP_score', 1), 'dci': ('disentanglement', 1),
  'dci_lasso': ('disentanglement', 1), 'explicitness': ('explicitness_score_test', 1),
  'modularity_explicitness': ('modularity_score', 1),
  'downstream_logistic': ('600:mean_test_accuracy', 1),
  'downstream_boosted': ('600:mean_test_accuracy', 1), 'retrieval': ('map_mean', 1),
  'linear_probe': ('accuracy_mean', 1), 'unified': ('mutual_information_matrix.mig', 1),
  'unsupervised': ('gaussian_total_correlation', 1),
}
SETTINGS = {
  'downstream_logistic': {'train_sizes': (600,)},
  'downstream_boosted': {'train_sizes': (600,)},
  'retrieval': {'num_validation': 300},
}
INFORMATIVENESS = {'explicitness', 'downstream_logistic', 'downstream_boosted', 'linear_probe'}
DUPLICATION_PENALISED = {'mig', 'sap', 'sap_continuous', 'jemmig', 'unified'}
SLOW = {'dci', 'downstream_logistic', 'downstream_boosted', 'explicitness', 'linear_probe', 'sap',
        'infomec', 'unified'}


def _representations(seed):
  f = data.factors(900, SIZES, seed=seed)
  z = data.identity_code(f, SIZES, noise=0.02, seed=seed + 1)
  rng = np.random.default_rng(seed + 2)
  c = np.cos(np.pi / 4)
  return f, {
    'identity': z,
    'rotation': np.stack([c * (z[:, 0] - z[:, 1]), c * (z[:, 0] + z[:, 1]), z[:, 2]], 1),
    'duplication': np.concatenate([z, z[:, :1] + 0.02 * rng.standard_normal((len(z), 1))], 1),
    'noise': rng.standard_normal(z.shape),
    'mixing': np.stack([z[:, 0] + z[:, 1], z[:, 1], z[:, 2]], 1),
  }


_CACHE = {}


def _scores(name):
  """{representation: (headline score as higher-is-better, the full result)} for one metric."""
  if name not in _CACHE:
    f_train, train = _representations(0)
    f_test, test = _representations(10)
    key, sign = KEY[name]
    out = {}
    for kind in train:
      result = metrics.evaluate_samples(
        [name], train_codes=train[kind][:600], train_targets=f_train[:600],
        test_codes=test[kind][:300], test_targets=f_test[:300],
        settings={name: SETTINGS.get(name, {})})[name]
      out[kind] = (sign * float(result[key]), result)
    _CACHE[name] = out
  return _CACHE[name]


def _params(names):
  return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def test_every_code_metric_is_in_the_suite():
  code_metrics = {n for n in metrics.available() if metrics.get_metric(n).inputs != 'ground_truth'}
  assert code_metrics == set(KEY)


@pytest.mark.parametrize('name', _params(sorted(set(KEY) - {'unsupervised'})))
def test_identity_beats_noise(name):
  s = _scores(name)
  assert s['identity'][0] > s['noise'][0] + 0.1


@pytest.mark.parametrize('name', _params(sorted(set(KEY) - {'unsupervised'})))
def test_rotation_and_mixing(name):
  s = _scores(name)
  for kind in ('rotation', 'mixing'):
    if name in INFORMATIVENESS:
      assert s[kind][0] == pytest.approx(s['identity'][0], abs=0.05), kind
    else:
      assert s[kind][0] < s['identity'][0] - 0.05, kind


@pytest.mark.parametrize('name', _params(sorted(set(KEY) - {'unsupervised'})))
def test_duplication(name):
  s = _scores(name)
  if name in DUPLICATION_PENALISED:
    assert s['duplication'][0] < s['identity'][0] - 0.05
  else:
    assert s['duplication'][0] == pytest.approx(s['identity'][0], abs=0.05)
  if name == 'dci':  # completeness is DCI's duplication-sensitive half
    assert (s['duplication'][1]['completeness']
            < s['identity'][1]['completeness'] - 0.05)


def test_unsupervised_scores_see_dependence_not_alignment():
  s = _scores('unsupervised')
  independent = max(s[k][0] for k in ('identity', 'rotation', 'noise'))
  assert independent < 0.05
  assert s['duplication'][0] > independent + 0.5 and s['mixing'][0] > independent + 0.1

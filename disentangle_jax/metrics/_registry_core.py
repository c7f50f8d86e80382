"""The array-core metrics by name, for the lead to merge into `disentangle_jax.metrics`' registry.

Each entry maps a metric name to (function, signature kind):
- 'codes_factors': fn(codes, factors) on one set (dlib: 10,000 points);
- 'train_test': fn(codes_train, factors_train, codes_test, factors_test) (10,000 / 5,000);
- 'codes': fn(codes) (unsupervised);
- 'models': fn(list of codes, list of per-dimension KL) (UDR);
- 'interventions': fn(codes_train, factors_train, intervened_codes) (fairness).
Keyword arguments select the variants listed in each function's docstring.
"""

import functools

from disentangle_jax.metrics import (
  dci,
  downstream,
  fairness,
  infomec,
  irs,
  mig,
  modularity,
  sap,
  udr,
  unsupervised,
)

CORE_METRICS = {
  'mig': (mig.mig, 'codes_factors'),
  'modularity': (modularity.modularity, 'codes_factors'),
  'irs': (irs.irs, 'codes_factors'),
  'infomec': (infomec.infomec, 'codes_factors'),
  'unsupervised': (unsupervised.unsupervised_scores, 'codes'),
  'sap': (sap.sap, 'train_test'),
  'sap_continuous': (functools.partial(sap.sap, continuous_factors=True), 'codes_factors'),
  'dci': (dci.dci, 'train_test'),
  'dci_lasso': (functools.partial(dci.dci, importance='lasso'), 'train_test'),
  'explicitness': (modularity.explicitness, 'train_test'),
  'modularity_explicitness': (modularity.modularity_explicitness, 'train_test'),
  'downstream_logistic': (
    functools.partial(downstream.downstream_task, predictor='logistic'), 'train_test'),
  'downstream_boosted': (
    functools.partial(downstream.downstream_task, predictor='boosted'), 'train_test'),
  'fairness': (fairness.fairness, 'interventions'),
  'udr': (udr.udr, 'models'),
  'udr_spearman': (functools.partial(udr.udr, correlation='spearman'), 'models'),
}

"""Disentanglement metrics over encoded representations, and one call that runs a set of them.

Every metric is a pure core on arrays behind a thin sampling wrapper. Metrics are found by name in
one registry (`registry`: `get_metric(name)`, `available()`, `check_metrics(...)`), and
`evaluate(names, ground_truth=..., encode_fn=..., rng_seed=...)` runs a list of them on an
encoder, sampling once where metrics can share samples; `evaluate_samples(names, train_codes=...,
train_targets=..., test_codes=..., test_targets=...)` runs those that take codes on a labelled
sample encoded beforehand (`suite`).

A registered metric (`Metric`) says which inputs it takes (`Metric.inputs`):
  'sample'        fn(codes [N, D], factors [N, K], **settings): one sample (MIG, IRS, ...);
  'train_test'    fn(train_codes, train_factors, test_codes, test_factors, **settings): a train
                  sample and a test sample (DCI, SAP, retrieval, linear probe, ...);
  'codes'         fn(codes [N, D], **settings): codes only (unsupervised scores);
  'ground_truth'  fn(ground_truth, encode_fn, rng: np.random.Generator, **settings): the metric
                  samples for itself (BetaVAE, FactorVAE, fairness).
Each returns a dict of scalars (and the arrays behind them). To add a metric, write its function
and add one line to `registry._BUILTIN` (or call `register_metric` from your own code).

Degenerate inputs: one policy for every metric, tested case by case in
`tests/test_metrics_degenerate.py`; each function's docstring gives its own values.
- Bad values: codes that are not [N, D] (a 1-D array too: pass `codes[:, None]`; retrieval alone
  reads [N] as one dimension), NaN or infinite codes, non-integer factors: ValueError.
- Too few samples: ValueError naming the metric, the minimum and the count. Every sample a metric
  estimates or fits from needs at least 2 points (`_common.MIN_POINTS`; one point has no
  variation); a test sample needs 1. Stricter minimums: the unsupervised Gaussian scores need more
  points than non-constant code dimensions (fewer give a singular covariance and an infinite total
  correlation whatever the code); the logistic downstream task 5 points per training size (one
  per fold); retrieval 2 per split (a query and a gallery).
- Constant code dimensions, decided with a tolerance: a dimension whose range is at most
  `_common.CONSTANT_RTOL` (1e-6) times its largest magnitude is constant, so float32 rounding on a
  dead unit counts as constant, and is made exactly constant before any metric sees it. It
  carries no information: MI 0 with every factor (MIG, modularity scores it 0, the unsupervised
  MI), zero importance (DCI), dropped (IRS; the Gaussian unsupervised scores), NMI 0 and inactive
  (InfoMEC), standardised to 0 (explicitness, probes, InfoE). Mutual information at or below
  `_common.MI_TOL` (1e-12 nats, rounding) counts as 0. All codes constant: MIG, modularity, IRS,
  DCI's D and C, InfoM/InfoC/InfoE and the unsupervised scores are 0; classifiers score the
  majority class (accuracies) or chance (AUC 0.5).
- Single-valued factors (entropy 0): left out of the averages they would make 0/0 (MIG, DCI's
  informativeness, explicitness, InfoC, InfoE), with per-factor entries documented per metric;
  when no factor varies, ValueError ("nothing to measure").
"""

from __future__ import annotations

from disentangle_jax.metrics import registry
from disentangle_jax.metrics import sampling
from disentangle_jax.metrics import suite
from disentangle_jax.metrics import unit_alignment

# The modules `betavae_score` and `factorvae_score` keep their names here (their functions of the
# same names are `betavae_score.betavae_score` and `factorvae_score.factorvae_score`).
from disentangle_jax.metrics import betavae_score
from disentangle_jax.metrics import factorvae_score
from disentangle_jax.metrics.betavae_score import betavae_score_from_features
from disentangle_jax.metrics.factorvae_score import factorvae_accuracy_from_votes
from disentangle_jax.metrics.linear_probe import linear_probe_evaluation, probe_accuracy
from disentangle_jax.metrics.registry import (
  INPUT_KINDS,
  METRICS,
  Metric,
  available,
  check_metrics,
  get_metric,
  register_metric,
)
from disentangle_jax.metrics.retrieval import (
  expected_random_ap,
  expected_random_map,
  retrieval_average_precision,
  retrieval_evaluation,
  retrieval_map,
  retrieval_map_per_chunk,
)
from disentangle_jax.metrics.sampling import irs_sampled, sample_codes_and_factors
from disentangle_jax.metrics.suite import (
  SIZE_KEYS,
  evaluate,
  evaluate_samples,
  scalar_results,
  stream,
)
from disentangle_jax.metrics.unit_alignment import (
  ablation_effect,
  alignment_scores,
  precision_at_k,
  precision_at_recall,
)

__all__ = [
  'INPUT_KINDS',
  'METRICS',
  'Metric',
  'ablation_effect',
  'alignment_scores',
  'available',
  'check_metrics',
  'betavae_score',
  'betavae_score_from_features',
  'evaluate',
  'evaluate_samples',
  'scalar_results',
  'expected_random_ap',
  'expected_random_map',
  'factorvae_accuracy_from_votes',
  'factorvae_score',
  'get_metric',
  'irs_sampled',
  'linear_probe_evaluation',
  'precision_at_k',
  'precision_at_recall',
  'probe_accuracy',
  'register_metric',
  'registry',
  'retrieval_average_precision',
  'retrieval_evaluation',
  'retrieval_map',
  'retrieval_map_per_chunk',
  'sample_codes_and_factors',
  'stream',
  'unit_alignment',
]

"""The metric registry: every metric by name, with the one vocabulary of inputs it takes.

A registered `Metric` says which inputs it takes (`Metric.inputs`):
  'sample'        fn(codes [N, D], factors [N, K], **settings): one sample of codes with integer
                  factors or labels (MIG, IRS, modularity, InfoMEC, ...);
  'train_test'    fn(train_codes, train_factors, test_codes, test_factors, **settings): a train and
                  a test sample (DCI, SAP, explicitness, downstream tasks, retrieval, linear probe);
  'codes'         fn(codes [N, D], **settings): codes only (the unsupervised scores);
  'ground_truth'  fn(ground_truth, encode_fn, rng: np.random.Generator, **settings): the metric
                  renders and encodes the observations it needs itself (BetaVAE, FactorVAE,
                  fairness): it needs a ground-truth dataset and an encoder, not codes.
Each returns a dict of scalars (and the arrays behind them).

`check_metrics(names, has_ground_truth=..., has_targets=...)` says, before anything runs, whether a
dataset can feed every named metric. UDR compares several trained models and is called directly
(`disentangle_jax.metrics.udr.udr`), not through the registry.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from disentangle_jax.metrics import (
  betavae_score,
  dci,
  downstream,
  factorvae_score,
  fairness,
  infomec,
  information,
  irs,
  linear_probe,
  mig,
  modularity,
  retrieval,
  sap,
  strong_downstream,
  unified,
  unsupervised,
)

INPUT_KINDS = ('sample', 'train_test', 'codes', 'ground_truth')


@dataclasses.dataclass(frozen=True)
class Metric:
  """A metric by name: its function and which inputs it takes (see the module docstring).

  Attributes:
    name: the registered name.
    fn: the function (signature given by `inputs`).
    inputs: one of `INPUT_KINDS`.
    description: one line for listings.
  """

  name: str
  fn: Callable[..., Mapping[str, Any]]
  inputs: str
  description: str = ''

  def __post_init__(self):
    if self.inputs not in INPUT_KINDS:
      raise ValueError(
        f'metric {self.name!r}: inputs must be one of {INPUT_KINDS}, got {self.inputs!r}'
      )

  @property
  def needs_ground_truth(self) -> bool:
    """Whether the metric renders its own observations (a ground-truth dataset and an encoder)."""
    return self.inputs == 'ground_truth'

  @property
  def needs_targets(self) -> bool:
    """Whether the metric scores codes against factors or labels."""
    return self.inputs in ('sample', 'train_test')


METRICS: dict[str, Metric] = {}


def register_metric(
  name: str, fn: Callable[..., Mapping[str, Any]], inputs: str, description: str = ''
) -> Metric:
  """Makes `fn` available as `get_metric(name)`; registering one name twice is an error."""
  metric = Metric(name, fn, inputs, description)
  if name in METRICS and METRICS[name].fn is not fn:
    raise ValueError(f'metric {name!r} registered twice')
  METRICS[name] = metric
  return metric


def available() -> list[str]:
  """The names of every registered metric, sorted."""
  return sorted(METRICS)


def get_metric(name: str) -> Metric:
  """The metric registered as `name`; a clear error lists the known names."""
  if name not in METRICS:
    raise ValueError(f'unknown metric {name!r}; known metrics: {", ".join(available())}')
  return METRICS[name]


def check_metrics(names: Iterable[str], *, has_ground_truth: bool, has_targets: bool) -> None:
  """Raises a one-line ValueError when a metric is unknown or the dataset cannot feed it.

  Call it at start-up, before training, with what the dataset offers.

  Args:
    names: metric names.
    has_ground_truth: the dataset has ground-truth factors and can render the images of any
      factor values (what 'ground_truth' metrics sample from; it also provides factors as targets).
    has_targets: the dataset has integer labels per example (e.g. CelebA's 40 attributes) that the
      'sample' and 'train_test' metrics can score codes against.

  Raises:
    ValueError: naming the first metric that is unknown or cannot run, and why.
  """
  for name in names:
    metric = get_metric(name)
    if metric.needs_ground_truth and not has_ground_truth:
      raise ValueError(
        f'metric {name!r} renders its own observations from ground-truth factors, which this '
        f'dataset does not have; remove it from the evaluators or use a dataset with a renderer'
      )
    if metric.needs_targets and not (has_targets or has_ground_truth):
      raise ValueError(
        f'metric {name!r} scores codes against factors or labels, which this dataset does not '
        f'have; remove it from the evaluators or use a labelled dataset'
      )


# --- the built-in metrics -----------------------------------------------------------------------


def _retrieval_metric(
  train_codes,
  train_factors,
  test_codes,
  test_factors,
  *,
  num_validation: int = 2_000,
  num_chunks: int | None = None,
  **kwargs,
):
  """Retrieval mAP per code dimension (or chunk) and factor; chunks chosen on the train sample."""
  train_codes = np.asarray(train_codes)
  if train_codes.ndim == 1:  # one code dimension, as retrieval reads [N] everywhere
    train_codes, test_codes = train_codes[:, None], np.asarray(test_codes).reshape(-1, 1)
  if num_chunks is None:
    num_chunks = train_codes.shape[1]
  return retrieval.retrieval_evaluation(
    train_codes[:num_validation],
    np.asarray(train_factors)[:num_validation],
    test_codes,
    test_factors,
    num_chunks=num_chunks,
    **kwargs,
  )


def _fairness_sampled(
  ground_truth,
  encode_fn,
  rng: np.random.Generator,
  *,
  num_train: int = 10_000,
  num_points: int = 100,
  batch_size: int = 16,
  num_bins: int = 128,
):
  """Unfairness (Locatello et al. 2019): train on a sample, classify intervened observations."""
  from disentangle_jax.metrics import sampling  # pylint: disable=g-import-not-at-top

  codes, factors = sampling.sample_codes_and_factors(
    ground_truth, encode_fn, num_train, rng, batch_size
  )
  intervened = fairness.sample_intervened_codes(
    lambda f: sampling.codes_for_factors(ground_truth, encode_fn, f, batch_size),
    ground_truth.factor_sizes,
    num_points=num_points,
    random_state=rng,
  )
  return fairness.fairness(codes, factors, intervened, num_bins=num_bins)


_BUILTIN = (
  ('betavae', betavae_score.betavae_score, 'ground_truth',
   'BetaVAE score (Higgins et al. 2017), dlib sampling; score: eval_accuracy'),
  ('factorvae', factorvae_score.factorvae_score, 'ground_truth',
   'FactorVAE score (Kim & Mnih 2018), dlib pruning; score: eval_accuracy'),
  ('fairness', _fairness_sampled, 'ground_truth',
   'unfairness of boosted classifiers under interventions (Locatello et al. 2019)'),
  ('strong_downstream', strong_downstream.strong_downstream_task, 'ground_truth',
   'downstream accuracy under an intervention shift (dlib strong_downstream_task)'),
  ('mig', mig.mig, 'sample', 'discrete MIG (Chen et al. 2018), dlib estimator'),
  ('modularity', modularity.modularity, 'sample', 'modularity (Ridgeway & Mozer 2018)'),
  ('irs', irs.irs, 'sample', 'interventional robustness score (Suter et al. 2019)'),
  ('infomec', infomec.infomec, 'sample', 'InfoM, InfoC, InfoE (Hsu et al. 2023)'),
  ('mig_sup', information.mig_sup, 'sample',
   'MIG-sup, the gap per code dimension (Li et al. 2020)'),
  ('dcimig', information.dcimig, 'sample', 'DCIMIG (Sepliarskaia et al. 2019)'),
  ('jemmig', information.jemmig, 'sample',
   'JEMMIG, normalised, lower is better (Do & Tran 2020)'),
  ('med', information.med, 'sample', 'MED and top-k MED (Cao et al. 2022)'),
  ('sap_continuous', functools.partial(sap.sap, continuous_factors=True), 'sample',
   'SAP with squared correlations (Kumar et al. 2018)'),
  ('sap', sap.sap, 'train_test', 'SAP with 1-D linear SVMs (Kumar et al. 2018), dlib setting'),
  ('dci', dci.dci, 'train_test', 'DCI with boosted trees (Eastwood & Williams 2018)'),
  ('dci_lasso', functools.partial(dci.dci, importance='lasso'), 'train_test',
   'DCI with Lasso importances (Eastwood & Williams 2018)'),
  ('explicitness', modularity.explicitness, 'train_test', 'explicitness (Ridgeway & Mozer 2018)'),
  ('modularity_explicitness', modularity.modularity_explicitness, 'train_test',
   'modularity and explicitness (Ridgeway & Mozer 2018), as dlib'),
  ('downstream_logistic', functools.partial(downstream.downstream_task, predictor='logistic'),
   'train_test', 'downstream accuracy of LogisticRegressionCV per factor (Locatello et al. 2019)'),
  ('downstream_boosted', functools.partial(downstream.downstream_task, predictor='boosted'),
   'train_test', 'downstream accuracy of boosted trees per factor (Locatello et al. 2019)'),
  ('unified', unified.unified_scores, 'train_test',
   'every code-factor matrix under every aggregation (dlib unified_scores)'),
  ('retrieval', _retrieval_metric, 'train_test',
   'nearest-neighbour retrieval mAP per chunk and factor (Hu et al. 2018)'),
  ('linear_probe', linear_probe.linear_probe_evaluation, 'train_test',
   'logistic-regression probe accuracy per factor or attribute'),
  ('unsupervised', unsupervised.unsupervised_scores, 'codes',
   'Gaussian total correlation, Wasserstein dependency, mean pairwise MI (dlib)'),
)

for _entry in _BUILTIN:
  register_metric(*_entry)
del _entry

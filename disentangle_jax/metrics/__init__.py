"""Disentanglement metrics over encoded representations, and one call that runs a set of them.

Every metric is a pure core on arrays behind a thin sampling wrapper. Metrics are found by name
(`get_metric(name)`, `available()`), and `evaluate(names, ground_truth=..., encode_fn=...,
rng_seed=...)` runs a list of them on an encoder, sampling once where metrics can share samples.

A registered metric (`Metric`) says which inputs it takes (`Metric.inputs`):
  'sample'        fn(codes [N, D], factors [N, K], **settings): one shared sample (MIG, IRS, ...);
  'train_test'    fn(train_codes, train_factors, test_codes, test_factors, **settings): a shared
                  train sample and a shared test sample (DCI, SAP, retrieval, linear probe, ...);
  'codes'         fn(codes [N, D], **settings): the shared sample's codes only (unsupervised);
  'ground_truth'  fn(ground_truth, encode_fn, rng: np.random.Generator, **settings): the metric
                  samples for itself (BetaVAE, FactorVAE, ...).
Each returns a dict of scalars (and the arrays behind them).

Shared samples follow dlib's sizes: `num_train = 10,000` points (the single sample of 'sample'
and 'codes' metrics is the train sample) and `num_test = 5,000`, encoded `batch_size = 64` at a
time (dlib encodes 16 at a time; the batch size changes throughput, not codes). A metric's
settings may change its own sizes (`num_train`, `num_test`, `batch_size`): each shared sample is
drawn once, at the largest size asked of it, and every metric gets the prefix it asked for.

Randomness: named streams. The train sample, the test sample and every 'ground_truth' metric draw
from `np.random.default_rng([rng_seed, crc32(stream name)])`, so adding or removing a metric never
changes another's numbers.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from typing import Any, Callable, Iterable, Mapping
import zlib

import numpy as np

from disentangle_jax.metrics import linear_probe as linear_probe_lib
from disentangle_jax.metrics import retrieval as retrieval_lib
from disentangle_jax.metrics import sampling
from disentangle_jax.metrics import unit_alignment

# The modules `betavae_score` and `factorvae_score` keep their names here (their functions of the
# same names are `betavae_score.betavae_score` and `factorvae_score.factorvae_score`).
from disentangle_jax.metrics import betavae_score
from disentangle_jax.metrics import factorvae_score
from disentangle_jax.metrics.betavae_score import betavae_score_from_features
from disentangle_jax.metrics.factorvae_score import factorvae_accuracy_from_votes
from disentangle_jax.metrics.linear_probe import linear_probe_evaluation, probe_accuracy
from disentangle_jax.metrics.retrieval import (
  expected_random_ap,
  expected_random_map,
  retrieval_average_precision,
  retrieval_evaluation,
  retrieval_map,
  retrieval_map_per_chunk,
)
from disentangle_jax.metrics.sampling import irs_sampled, sample_codes_and_factors
from disentangle_jax.metrics.unit_alignment import (
  ablation_effect,
  alignment_scores,
  precision_at_k,
  precision_at_recall,
)

INPUT_KINDS = ('sample', 'train_test', 'codes', 'ground_truth')
SIZE_KEYS = ('num_train', 'num_test', 'batch_size')


@dataclasses.dataclass(frozen=True)
class Metric:
  """A metric by name: its function and which inputs it takes (see the module docstring)."""

  name: str
  fn: Callable[..., Mapping[str, Any]]
  inputs: str
  description: str = ''

  def __post_init__(self):
    if self.inputs not in INPUT_KINDS:
      raise ValueError(
        f'metric {self.name!r}: inputs must be one of {INPUT_KINDS}, got {self.inputs!r}'
      )


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
  if num_chunks is None:
    num_chunks = train_codes.shape[1]
  return retrieval_lib.retrieval_evaluation(
    train_codes[:num_validation],
    train_factors[:num_validation],
    test_codes,
    test_factors,
    num_chunks=num_chunks,
    **kwargs,
  )


def _linear_probe_metric(train_codes, train_factors, test_codes, test_factors, **kwargs):
  """Linear-probe accuracy of every factor, from the whole code (and per chunk with num_chunks)."""
  return linear_probe_lib.linear_probe_evaluation(
    train_codes, train_factors, test_codes, test_factors, **kwargs
  )


register_metric(
  'betavae',
  betavae_score.betavae_score,
  'ground_truth',
  'BetaVAE score (Higgins et al. 2017), dlib sampling; score: eval_accuracy',
)
register_metric(
  'factorvae',
  factorvae_score.factorvae_score,
  'ground_truth',
  'FactorVAE score (Kim & Mnih 2018), dlib pruning; score: eval_accuracy',
)
register_metric(
  'retrieval',
  _retrieval_metric,
  'train_test',
  'nearest-neighbour retrieval mAP per chunk and factor (methods.md §1.8)',
)
register_metric(
  'linear_probe',
  _linear_probe_metric,
  'train_test',
  'logistic-regression probe accuracy per factor',
)

_CORE_REGISTRY = 'disentangle_jax.metrics._registry_core'
_core_loaded = False

#: Array cores registered by name when `_registry_core` does not list them:
#: (metric name, module, function, inputs). IRS on the shared sample is dlib's IRS (10,000 points);
#: `sampling.irs_sampled` is the same with a sample of its own.
_KNOWN_CORES = (
  ('mig', 'mig', 'mig', 'sample'),
  ('irs', 'irs', 'irs', 'sample'),
  ('modularity_explicitness', 'modularity', 'modularity_explicitness', 'train_test'),
  ('unsupervised', 'unsupervised', 'unsupervised_scores', 'codes'),
)


def _load_core_registry():
  """Registers the array-core metrics, once.

  `_registry_core.METRICS`, where that module exists, maps names to `Metric`s, or to
  `(fn, inputs)` / `(fn, inputs, description)` tuples; `_KNOWN_CORES` fills in the rest.
  """
  global _core_loaded
  if _core_loaded:
    return
  _core_loaded = True
  try:
    core = importlib.import_module(_CORE_REGISTRY)
  except ModuleNotFoundError as e:
    if e.name != _CORE_REGISTRY:
      raise
    core = None
  entries = dict(getattr(core, 'METRICS', {})) if core is not None else {}
  # `CORE_METRICS` names its input kinds differently; metrics of several models (UDR) or of
  # interventions (fairness) are called directly, not through `evaluate`.
  kinds = {'codes_factors': 'sample', 'train_test': 'train_test', 'codes': 'codes'}
  for name, (fn, kind) in getattr(core, 'CORE_METRICS', {}).items():
    if kind in kinds and name not in entries:
      doc = (getattr(fn, '__doc__', None) or getattr(getattr(fn, 'func', None), '__doc__', '') or '')
      entries[name] = (fn, kinds[kind], doc.strip().split('\n')[0])
  for name, entry in entries.items():
    if isinstance(entry, Metric):
      METRICS.setdefault(name, entry)
    elif name not in METRICS:
      register_metric(name, *entry)
  for name, module_name, fn_name, inputs in _KNOWN_CORES:
    module_path = f'{__name__}.{module_name}'
    if name in METRICS or importlib.util.find_spec(module_path) is None:
      continue
    fn = getattr(importlib.import_module(module_path), fn_name, None)
    if fn is not None:
      register_metric(name, fn, inputs, (fn.__doc__ or '').strip().split('\n')[0])


def available() -> list[str]:
  """The names of every registered metric."""
  _load_core_registry()
  return sorted(METRICS)


def get_metric(name: str) -> Metric:
  """The metric registered as `name`; a clear error lists the known names."""
  _load_core_registry()
  if name not in METRICS:
    raise ValueError(f'unknown metric {name!r}; known metrics: {", ".join(available())}')
  return METRICS[name]


def stream(rng_seed: int, name: str) -> np.random.Generator:
  """The named random stream `name` of seed `rng_seed`."""
  return np.random.default_rng([int(rng_seed), zlib.crc32(name.encode())])


def scalar_results(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
  """`{'metric/key': float}` for every numeric scalar of `evaluate`'s results (no arrays, no tags)."""
  out = {}
  for name, result in results.items():
    for key, value in result.items():
      array = np.asarray(value)
      if array.ndim == 0 and (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        out[f'{name}/{key}'] = float(array)
  return out


def evaluate(
  metric_names: Iterable[str],
  *,
  ground_truth,
  encode_fn: sampling.EncodeFn,
  rng_seed: int,
  settings: Mapping[str, Mapping[str, Any]] | None = None,
  num_train: int = 10_000,
  num_test: int = 5_000,
  batch_size: int = 64,
) -> dict[str, dict[str, Any]]:
  """Runs metrics on an encoder over a ground-truth dataset.

  Args:
    metric_names: registered names (`available()`).
    ground_truth: a `GroundTruthData` (factor sizes, `sample_factors`, `images_for`).
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`, e.g. a jitted posterior mean.
    rng_seed: the seed of every random stream.
    settings: per metric, keyword arguments for it; `num_train` / `num_test` / `batch_size` there
      change that metric's share of the shared samples.
    num_train: size of the shared train sample (also the single sample of 'sample' metrics).
    num_test: size of the shared test sample.
    batch_size: images per `encode_fn` call for the shared samples.

  Returns:
    `{metric name: {key: float or array}}`.
  """
  names = list(metric_names)
  settings = {name: dict((settings or {}).get(name, {})) for name in names}
  metrics = {name: get_metric(name) for name in names}

  # Each shared sample is drawn once, at the largest size any metric asks of it; a metric gets a
  # prefix. The train and test samples have their own streams, whatever the sizes.
  sizes: dict[tuple[str, int], int] = {}
  for name in names:
    if metrics[name].inputs == 'ground_truth':
      continue
    batch = settings[name].get('batch_size', batch_size)
    splits = ('train', 'test') if metrics[name].inputs == 'train_test' else ('train',)
    for split in splits:
      default = num_train if split == 'train' else num_test
      sizes[split, batch] = max(
        sizes.get((split, batch), 0), int(settings[name].get(f'num_{split}', default))
      )
  samples = {
    (split, batch): sample_codes_and_factors(
      ground_truth, encode_fn, size, stream(rng_seed, f'shared_{split}'), batch
    )
    for (split, batch), size in sizes.items()
  }

  def shared(split: str, size: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = samples[split, batch]
    return codes[:size], factors[:size]

  results = {}
  for name in names:
    metric, kwargs = metrics[name], dict(settings[name])
    if metric.inputs == 'ground_truth':
      results[name] = dict(metric.fn(ground_truth, encode_fn, stream(rng_seed, name), **kwargs))
      continue
    n_train = kwargs.pop('num_train', num_train)
    n_test = kwargs.pop('num_test', num_test)
    batch = kwargs.pop('batch_size', batch_size)
    train_codes, train_factors = shared('train', n_train, batch)
    if metric.inputs == 'sample':
      out = metric.fn(train_codes, train_factors, **kwargs)
    elif metric.inputs == 'codes':
      out = metric.fn(train_codes, **kwargs)
    else:
      test_codes, test_factors = shared('test', n_test, batch)
      out = metric.fn(train_codes, train_factors, test_codes, test_factors, **kwargs)
    results[name] = dict(out)
  return results


__all__ = [
  'INPUT_KINDS',
  'METRICS',
  'Metric',
  'ablation_effect',
  'alignment_scores',
  'available',
  'betavae_score',
  'betavae_score_from_features',
  'evaluate',
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
  'retrieval_average_precision',
  'retrieval_evaluation',
  'retrieval_map',
  'retrieval_map_per_chunk',
  'sample_codes_and_factors',
  'stream',
  'unit_alignment',
]

"""Runs a set of registered metrics: on an encoder over a ground truth, or on encoded samples.

- `evaluate(names, ground_truth=, encode_fn=, rng_seed=)`: draws the shared train and test samples
  from a ground-truth dataset once (dlib's sizes: 10,000 and 5,000 points), encodes them, and runs
  every metric; 'ground_truth' metrics sample for themselves.
- `evaluate_samples(names, train_codes=, train_targets=, test_codes=, test_targets=)`: runs the
  metrics that take codes ('sample', 'train_test', 'codes') on codes already encoded, with integer
  targets per example: a labelled dataset without a renderer (CelebA's 40 attributes).

Settings: per metric, keyword arguments for it. `num_train` / `num_test` there take a prefix of
the shared samples (each sample is drawn once, at the largest size asked of it) and `batch_size`
the encoding batch (`evaluate` only).

Randomness: named streams. The train sample, the test sample and every 'ground_truth' metric draw
from `np.random.default_rng([rng_seed, crc32(stream name)])`, so adding or removing a metric never
changes another's numbers.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence
import zlib

import numpy as np

from disentangle_jax.metrics import sampling
from disentangle_jax.metrics.registry import check_metrics, get_metric

SIZE_KEYS = ('num_train', 'num_test', 'batch_size')


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


def _run(metric, kwargs, train, test):
  """Calls a code metric on its share of the samples: train/test are (codes, targets) or None."""
  if metric.inputs == 'sample':
    return dict(metric.fn(*train, **kwargs))
  if metric.inputs == 'codes':
    return dict(metric.fn(train[0], **kwargs))
  return dict(metric.fn(*train, *test, **kwargs))


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

  The shared samples follow dlib's sizes: `num_train = 10,000` points (also the single sample of
  'sample' and 'codes' metrics) and `num_test = 5,000`, encoded `batch_size = 64` at a time (dlib
  encodes 16 at a time; the batch size changes throughput, not codes).

  Args:
    metric_names: registered names (`available()`).
    ground_truth: a `GroundTruthData` (factor sizes, `sample_factors`, `images_for`).
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`, e.g. a jitted posterior mean.
    rng_seed: the seed of every random stream.
    settings: per metric, keyword arguments for it; `num_train` / `num_test` / `batch_size` there
      change that metric's share of the shared samples.
    num_train: size of the shared train sample.
    num_test: size of the shared test sample.
    batch_size: images per `encode_fn` call for the shared samples.

  Returns:
    `{metric name: {key: float or array}}`.
  """
  names = list(metric_names)
  check_metrics(names, has_ground_truth=True, has_targets=True)
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
    (split, batch): sampling.sample_codes_and_factors(
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
    train = shared('train', n_train, batch)
    test = shared('test', n_test, batch) if metric.inputs == 'train_test' else None
    results[name] = _run(metric, kwargs, train, test)
  return results


def _check_sample(codes, targets, split: str) -> tuple[np.ndarray, np.ndarray]:
  codes, targets = np.asarray(codes), np.asarray(targets)
  if codes.ndim != 2:
    raise ValueError(f'{split}_codes must be [N, D], got shape {codes.shape}')
  if targets.ndim == 1:
    targets = targets[:, None]
  if targets.ndim != 2 or targets.shape[0] != codes.shape[0]:
    raise ValueError(
      f'{split}_targets must be [N, K] with N = {codes.shape[0]} rows like {split}_codes, got '
      f'shape {targets.shape}'
    )
  if not np.issubdtype(targets.dtype, np.integer) and not np.issubdtype(targets.dtype, np.bool_):
    raise ValueError(
      f'{split}_targets must hold integer labels (e.g. 0/1 attributes), got dtype {targets.dtype}'
    )
  return codes, targets.astype(np.int64)


def evaluate_samples(
  metric_names: Iterable[str],
  *,
  train_codes,
  train_targets,
  test_codes,
  test_targets,
  settings: Mapping[str, Mapping[str, Any]] | None = None,
  target_names: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
  """Runs metrics on encoded samples with integer targets (a labelled dataset, no renderer).

  'sample' and 'codes' metrics run on the train sample; 'train_test' metrics on both. A metric's
  `num_train` / `num_test` settings take a prefix of the sample (`batch_size` is ignored: the
  codes are already encoded).

  Args:
    metric_names: registered names; 'ground_truth' metrics cannot run here (ValueError).
    train_codes: [N, D] codes of the train sample.
    train_targets: [N, K] (or [N]) integer targets, e.g. CelebA's 40 binary attributes.
    test_codes: [M, D] codes of the test sample.
    test_targets: [M, K] (or [M]).
    settings: per metric, keyword arguments for it.
    target_names: K names; checked against K and returned in each result as 'target_names', so
      that a report can label the per-target arrays.

  Returns:
    `{metric name: {key: float or array}}`.

  Raises:
    ValueError: an unknown metric, a 'ground_truth' metric, or inconsistent shapes.
  """
  names = list(metric_names)
  check_metrics(names, has_ground_truth=False, has_targets=True)
  train = _check_sample(train_codes, train_targets, 'train')
  test = _check_sample(test_codes, test_targets, 'test')
  if train[0].shape[1] != test[0].shape[1] or train[1].shape[1] != test[1].shape[1]:
    raise ValueError(
      f'train and test samples disagree: codes {train[0].shape[1]} vs {test[0].shape[1]} '
      f'dimensions, targets {train[1].shape[1]} vs {test[1].shape[1]} columns'
    )
  if target_names is not None and len(target_names) != train[1].shape[1]:
    raise ValueError(
      f'{len(target_names)} target_names for {train[1].shape[1]} target columns'
    )
  settings = settings or {}
  results = {}
  for name in names:
    metric, kwargs = get_metric(name), dict(settings.get(name, {}))
    n_train = kwargs.pop('num_train', None)
    n_test = kwargs.pop('num_test', None)
    kwargs.pop('batch_size', None)
    tr = tuple(a[:n_train] for a in train)
    te = tuple(a[:n_test] for a in test)
    out = _run(metric, kwargs, tr, te)
    if target_names is not None and metric.needs_targets:
      out['target_names'] = tuple(target_names)
    results[name] = out
  return results

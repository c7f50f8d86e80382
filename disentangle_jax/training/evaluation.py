"""Evaluation hooks: run the configured metrics on the current representation.

`config.evaluators` maps a metric name (see `disentangle_jax.metrics`) to its settings; an empty
ConfigDict runs nothing. Two kinds of data are scored:
  * ground truth (a renderer or a complete factor grid): every metric, sampling images by factors
    (`metrics.evaluate`), as disentanglement_lib does;
  * labelled data without a renderer (CelebA's 40 attributes): the train split's first
    `num_train` and the eval split's first `num_test` examples are encoded with their
    conditions and scored against their labels (`metrics.evaluate_samples`): the linear probe,
    retrieval mAP and every other metric of codes against targets. `config.eval_targets`
    ('labels' or 'factors') picks the targets where a dataset has both. Conditional models are
    scored this way on every dataset, since their codes need each image's condition.
`check_evaluators` runs at step 0, so a metric the dataset cannot feed fails before training.

With `progress=True` (what `launch/evaluate.py` asks for) the work shows as one line on stderr
that says what runs, how many images are encoded of how many, the rate and an ETA
(`training.progress.TaskProgress`), and ends with a line per stage. Ground-truth scoring then runs
in stages, each sampled metric alone and then the metrics of the shared samples together
(`evaluate_in_stages`); the numbers are those of a single `metrics.evaluate` call.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from disentangle_jax import metrics as metrics_lib
from disentangle_jax.data import datasets, pipeline
from disentangle_jax.data.info import DatasetInfo
from disentangle_jax.metrics import sampling
from disentangle_jax.training.progress import StatusLine, TaskProgress

#: Sample sizes of labelled evaluation (dlib's sizes for ground-truth data).
NUM_TRAIN, NUM_TEST, BATCH_SIZE = 10_000, 5_000, 256


def metric_names(config) -> list[str]:
  return sorted(config.get('evaluators', {}).keys())


def target_key(config, info: DatasetInfo) -> str | None:
  """'label' or 'factors': the batch key that labelled evaluation scores codes against."""
  choice = config.get('eval_targets', None)
  if choice not in (None, 'labels', 'factors'):
    raise ValueError(f"config.eval_targets must be 'labels', 'factors' or None, got {choice!r}")
  if choice == 'labels' or (choice is None and info.has_labels):
    return 'label' if info.has_labels else None
  return 'factors' if info.has_factors else None


def samples_by_factors(objective, info: DatasetInfo) -> bool:
  """Whether metrics may render images by factors and encode them without a condition."""
  return info.has_ground_truth and not objective.is_conditional


def check_evaluators(config, info: DatasetInfo, objective) -> None:
  """Raises a one-line ValueError when a configured metric is unknown or the data cannot feed
  it (run before anything is trained)."""
  names = metric_names(config)
  sampled = [n for n in names if n in metrics_lib.available()
             and metrics_lib.get_metric(n).inputs == 'ground_truth']
  if sampled and info.has_ground_truth and objective.is_conditional:
    raise ValueError(
        f'metrics {sampled} encode images rendered by factors without a condition, which the '
        f'conditional objective {objective.name!r} needs; use metrics of codes against factors '
        '(mig, dci, linear_probe, ...)')
  if names:
    metrics_lib.check_metrics(names, has_ground_truth=samples_by_factors(objective, info),
                              has_targets=target_key(config, info) is not None)


def encode_split(objective, params, model_state, data_config, split: str | None,
                 num_examples: int, key: str, batch_size: int = BATCH_SIZE, *,
                 progress: TaskProgress | None = None):
  """Codes [N, D] and targets `batch[key]` [N, K] of a split's first `num_examples` records,
  each batch encoded with its own condition (counted on `progress` if given)."""
  encode = objective.jitted('encode')
  codes, targets = [], []
  it = pipeline.make_eval_iterator(data_config, batch_size=batch_size, split=split,
                                   num_examples=num_examples)
  for batch in it:
    cond = objective.condition(batch)
    codes.append(np.asarray(encode(params, model_state, batch['image'], cond)))
    targets.append(np.asarray(batch[key]).reshape(len(codes[-1]), -1))
    if progress is not None:
      progress.advance(len(codes[-1]))
  return np.concatenate(codes), np.concatenate(targets)


def make_encode_fn(objective, params, model_state) -> sampling.EncodeFn:
  """`encode_fn(images [b, H, W, C]) -> codes [b, D]` (numpy) of an unconditional objective: its
  jitted `encode` with the variables put on the device once, not with every batch."""
  encode = objective.jitted('encode')
  params, model_state = jax.device_put((params, model_state))

  def encode_fn(images):
    return np.asarray(encode(params, model_state, images))

  return encode_fn


def _settings_with_defaults(fn, settings: Mapping[str, Any]) -> dict[str, Any]:
  """A metric function's keyword defaults, overridden by `settings`."""
  defaults = {name: p.default for name, p in inspect.signature(fn).parameters.items()
              if p.default is not inspect.Parameter.empty}
  return {**defaults, **settings}


def expected_images(name: str, settings: Mapping[str, Any] | None = None) -> int | None:
  """Images a sampled ('ground_truth') metric encodes with these settings; None if not known.

  BetaVAE encodes two images per pair, `batch_size` pairs per point, for `num_train + num_eval`
  points; FactorVAE `num_variance_estimate` images for the variances, then `batch_size` per vote
  (`num_train + num_eval` votes; fewer when no dimension is active). Unset settings take the
  metric function's defaults. Only the progress line's total and ETA depend on this.
  """
  s = _settings_with_defaults(metrics_lib.get_metric(name).fn, settings or {})
  if name == 'betavae':
    return 2 * int(s['batch_size']) * (int(s['num_train']) + int(s['num_eval']))
  if name == 'factorvae':
    return int(s['num_variance_estimate']) + int(s['batch_size']) * (
        int(s['num_train']) + int(s['num_eval']))
  return None


def shared_sample_images(names: Sequence[str], settings: Mapping[str, Mapping[str, Any]],
                         num_train: int, num_test: int) -> int:
  """Images `metrics.evaluate` encodes for the shared train and test samples of `names`: each
  (split, batch size) sample once, at the largest size a metric asks of it."""
  default_batch = inspect.signature(metrics_lib.evaluate).parameters['batch_size'].default
  sizes: dict[tuple[str, int], int] = {}
  for name in names:
    inputs = metrics_lib.get_metric(name).inputs
    if inputs == 'ground_truth':
      continue
    s = settings.get(name, {})
    batch = s.get('batch_size', default_batch)
    for split in ('train', 'test') if inputs == 'train_test' else ('train',):
      size = int(s.get(f'num_{split}', num_train if split == 'train' else num_test))
      sizes[split, batch] = max(sizes.get((split, batch), 0), size)
  return sum(sizes.values())


def evaluate_in_stages(names: Sequence[str], *, ground_truth, encode_fn, rng_seed: int,
                       settings: Mapping[str, Mapping[str, Any]], num_train: int, num_test: int,
                       line: StatusLine | None = None) -> dict:
  """`metrics.evaluate(names, ...)` with a progress line: each sampled metric in turn, then the
  metrics of the shared samples together, each stage counting its encoded images.

  The results equal one `metrics.evaluate` call's: a sampled metric draws from its own named
  stream and the shared samples are drawn for the other metrics alone (`metrics.suite`).
  """
  line = line if line is not None else StatusLine()
  sampled = [n for n in names if metrics_lib.get_metric(n).inputs == 'ground_truth']
  others = [n for n in names if n not in sampled]
  stages = [([n], n, expected_images(n, settings.get(n))) for n in sampled]
  if others:
    total = shared_sample_images(others, settings, num_train, num_test)
    stages.append((others, ', '.join(others), total))
  results = {}
  for i, (stage_names, what, total) in enumerate(stages):
    label = f'[{i + 1}/{len(stages)}] {what}' if len(stages) > 1 else what
    with TaskProgress(label, total, unit='images', line=line) as task:

      def on_encoded(n, task=task, total=total):
        task.advance(n)
        if total is not None and task.done >= total:
          task.set_note('scoring')

      with sampling.report_encoded(on_encoded):
        results.update(metrics_lib.evaluate(
            stage_names, ground_truth=ground_truth, encode_fn=encode_fn, rng_seed=rng_seed,
            settings={n: settings[n] for n in stage_names if n in settings},
            num_train=num_train, num_test=num_test))
  return {name: results[name] for name in names}


class Evaluator:
  """Computes the configured metrics on process 0 and writes them as `eval/<metric>/<key>`."""

  def __init__(self, objective, config, writer, info: DatasetInfo | None = None, *,
               progress: bool = False):
    """Args:
      objective, config, writer: the run's objective, config and metric writer (None: none).
      info: the dataset's description (default: read from `config.data`).
      progress: show the work as a progress line on stderr (`evaluate_in_stages`).
    """
    self.objective = objective
    self.config = config
    self.writer = writer
    self.info = info if info is not None else pipeline.dataset_info(config.data)
    self.progress = progress
    self._ground_truth = None

  @property
  def metric_names(self) -> list[str]:
    return metric_names(self.config)

  def ground_truth(self):
    """The factor grid metrics sample from: every point, or one split's (`config.eval_ground_truth_split`,
    e.g. the sprites' 'test', so that no test image has a duplicate in training)."""
    if self._ground_truth is None:
      self._ground_truth = datasets.get_ground_truth(
          self.config.data, split=self.config.get('eval_ground_truth_split', None))
    return self._ground_truth

  def evaluate(self, params, model_state, names=None, settings=None, *, seed=None,
               num_train: int | None = None, num_test: int | None = None) -> dict:
    """{metric: results} of `names` (default: the configured evaluators) for these variables.

    Args:
      params, model_state: the objective's variables (host or device arrays).
      names: metric names; None: `config.evaluators`.
      settings: {metric: keyword arguments}; None: the evaluators' settings.
      seed: the seed of every sampling stream (default `config.seed`).
      num_train, num_test: the shared sample sizes (default: dlib's 10,000 / 5,000).
    """
    names = self.metric_names if names is None else list(names)
    if settings is None:
      settings = {name: dict(self.config.evaluators[name]) for name in names}
    seed = self.config.seed if seed is None else seed
    num_train, num_test = num_train or NUM_TRAIN, num_test or NUM_TEST
    if samples_by_factors(self.objective, self.info):
      kwargs = dict(ground_truth=self.ground_truth(),
                    encode_fn=make_encode_fn(self.objective, params, model_state), rng_seed=seed,
                    settings=settings, num_train=num_train, num_test=num_test)
      if self.progress:
        return evaluate_in_stages(names, **kwargs)
      return metrics_lib.evaluate(names, **kwargs)
    key = target_key(self.config, self.info)
    if key is None:
      raise ValueError(f'dataset {self.info.name!r} has neither ground-truth factors nor labels '
                       'to score a representation against')
    sizes = list(settings.values())
    num_train = max([int(s.get('num_train', num_train)) for s in sizes] or [num_train])
    num_test = max([int(s.get('num_test', num_test)) for s in sizes] or [num_test])
    data = self.config.data
    splits = {}
    for name, split, size in (('train', data.get('split', 'train'), num_train),
                              ('test', None, num_test)):
      task = TaskProgress(f'encoding the {name} sample', size) if self.progress else None
      with task if task is not None else contextlib.nullcontext():
        splits[name] = encode_split(self.objective, params, model_state, data, split, size, key,
                                    progress=task)
    train, test = splits['train'], splits['test']
    logging.info('Labelled evaluation on %d / %d encoded examples.', len(train[0]), len(test[0]))
    return metrics_lib.evaluate_samples(
        names, train_codes=train[0], train_targets=train[1], test_codes=test[0],
        test_targets=test[1], settings=settings, target_names=list(self.target_names()),
    )

  def target_names(self) -> tuple[str, ...]:
    """What the targets of the metrics' matrices are called (factor or label names)."""
    if samples_by_factors(self.objective, self.info):
      return tuple(self.info.factor_names)
    key = target_key(self.config, self.info)
    return tuple(self.info.label_names if key == 'label' else self.info.factor_names)

  def own_scores(self, params, model_state) -> dict[str, float]:
    """The objective's own held-out scores (`Objective.evaluate`), e.g. validation accuracy."""
    return self.objective.evaluate(params, model_state, self.config.data,
                                   num_examples=self.config.get('objective_eval_examples', None))

  def __call__(self, step: int, state) -> dict:
    if jax.process_index() != 0:
      return {}
    params, model_state = jax.device_get((state.variables(), state.model_state))
    results = self.evaluate(params, model_state) if self.metric_names else {}
    scalars = {f'eval/{k}': v for k, v in metrics_lib.scalar_results(results).items()}
    own = self.own_scores(params, model_state)
    scalars.update({f'eval/{self.objective.name}/{k}': float(v) for k, v in own.items()})
    if scalars:
      self.writer.write_scalars(step, scalars)
    return {**results, **({self.objective.name: own} if own else {})}

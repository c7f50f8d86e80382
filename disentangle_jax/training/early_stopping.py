"""Early stopping on a validation loss, resumable with the run.

Config (`config.early_stopping`; `every = 0` turns it off):
  every:         validate every this many steps
  patience:      stop after this many validations in a row without improvement
  min_delta:     an improvement must lower the best loss by more than this
  loss:          the loss to watch, a key of `Objective.validation_losses` (None: the first group's)
  num_examples:  validation examples (the first of the split, the same every time)
  split:         the split to validate on (None: the dataset's eval split)

Every validation is appended to `<workdir>/early_stopping.json`; a resumed run keeps only the
validations up to its checkpoint's step, so it takes the decisions an uninterrupted run would.
A run that stopped early stays stopped when rerun.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import jax
import numpy as np

from disentangle_jax.data import pipeline

FILENAME = 'early_stopping.json'


@dataclasses.dataclass
class EarlyStopping:
  every: int
  patience: int
  min_delta: float
  loss: str | None
  num_examples: int
  split: str | None
  path: str
  history: list = dataclasses.field(default_factory=list)  # [(step, value)]
  _batches: list | None = None

  @classmethod
  def from_config(cls, config, workdir: str, resume_step: int) -> 'EarlyStopping | None':
    spec = config.get('early_stopping', None)
    if not spec or not int(spec.get('every', 0) or 0):
      return None
    stopper = cls(
        every=int(spec.every), patience=int(spec.get('patience', 5)),
        min_delta=float(spec.get('min_delta', 0.0)), loss=spec.get('loss', None),
        num_examples=int(spec.get('num_examples', 1024)), split=spec.get('split', None),
        path=os.path.join(workdir, FILENAME),
    )
    if stopper.patience < 1 or stopper.num_examples < 1:
      raise ValueError('config.early_stopping: patience and num_examples must be at least 1')
    if os.path.exists(stopper.path):
      with open(stopper.path) as f:
        history = json.load(f)['history']
      stopper.history = [(int(s), float(v)) for s, v in history if int(s) <= resume_step]
    return stopper

  @property
  def stopped_at(self) -> int | None:
    """The step of the validation that ran out of patience, if any."""
    best, bad = np.inf, 0
    for step, value in self.history:
      if value < best - self.min_delta:
        best, bad = value, 0
      else:
        bad += 1
        if bad >= self.patience:
          return step
    return None

  def batches(self, data_config, batch_size: int) -> list:
    if self._batches is None:
      it = pipeline.make_eval_iterator(data_config, batch_size=batch_size, split=self.split,
                                       num_examples=self.num_examples)
      self._batches = [dict(b) for b in it]
    return self._batches

  def validate(self, objective, state, config, step: int) -> dict[str, float]:
    """The mean of `objective.validation_losses` over the validation examples."""
    params, model_state = jax.device_get((state.variables(), state.model_state))
    fn = objective.jitted('validation_losses')
    rng = jax.random.fold_in(jax.random.key(config.seed), 2)
    totals, count = {}, 0
    for batch in self.batches(config.data, min(self.num_examples, 256)):
      n = len(batch['image'])
      losses = jax.device_get(fn(params, model_state, batch, rng, np.int32(step)))
      for k, v in losses.items():
        totals[k] = totals.get(k, 0.0) + float(v) * n
      count += n
    means = {k: v / count for k, v in totals.items()}
    key = self.loss or objective.groups[0]
    if key not in means:
      raise ValueError(f'config.early_stopping.loss={key!r} is not one of the validation losses '
                       f'{sorted(means)}')
    self.history.append((step, means[key]))
    if jax.process_index() == 0:
      with open(self.path + '.tmp', 'w') as f:
        json.dump({'loss': key, 'history': self.history}, f)
      os.replace(self.path + '.tmp', self.path)
    if self.stopped_at is not None:
      logging.info('Early stopping at step %d: validation %s has not improved on %.6g for %d '
                   'validations.', step, key, min(v for _, v in self.history), self.patience)
    return means

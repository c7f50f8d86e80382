"""Evaluation hooks: run the configured metrics on the current representation.

`config.evaluators` maps a metric name (see `disentangle_jax.metrics`) to its settings; an empty
ConfigDict runs nothing. Evaluators need a dataset with ground-truth factors.
"""

import jax
import numpy as np

from disentangle_jax import metrics as metrics_lib
from disentangle_jax.data import datasets


class Evaluator:
  """Computes the configured metrics on process 0 and writes them as `eval/<metric>/<key>`."""

  def __init__(self, objective, config, writer):
    self.objective = objective
    self.config = config
    self.writer = writer
    self._encode = jax.jit(objective.encode)
    self._ground_truth = None

  @property
  def metric_names(self) -> list[str]:
    return sorted(self.config.get('evaluators', {}).keys())

  def ground_truth(self):
    if self._ground_truth is None:
      self._ground_truth = datasets.get_ground_truth(self.config.data)
      if self._ground_truth is None:
        raise ValueError(
            f'evaluators {self.metric_names} need ground-truth factors, which dataset '
            f'{self.config.data.name!r} does not have'
        )
    return self._ground_truth

  def __call__(self, step: int, state) -> dict:
    if not self.metric_names or jax.process_index() != 0:
      return {}
    params, model_state = jax.device_get((state.params, state.model_state))

    def encode_fn(images):
      return np.asarray(self._encode(params, model_state, images))

    settings = {name: dict(self.config.evaluators[name]) for name in self.metric_names}
    results = metrics_lib.evaluate(
        self.metric_names, ground_truth=self.ground_truth(), encode_fn=encode_fn,
        rng_seed=self.config.seed, settings=settings,
    )
    scalars = {f'eval/{k}': v for k, v in metrics_lib.scalar_results(results).items()}
    self.writer.write_scalars(step, scalars)
    return results

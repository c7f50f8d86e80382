"""Does a β-VAE on finetuned aggregated features disentangle better than one on pixels?

Seitzer, Foltyn and Kemeth (NeurIPS 2019 Disentanglement Challenge report, arXiv 2002.12356)
claim it does: their feature-aggregation VAE topped the challenge's FactorVAE and DCI columns on
MPI3D. This experiment trains, on the Shapes3D-equivalent and one budget:
  * the feature route (`configs/featvae_shapes3d.py:runlocal`): the narrow extractor finetuned from
    scratch with one head per factor, its aggregated features, the β-VAE on them;
  * the pixel baseline (`configs/betavae_shapes3d.py:runlocal`): dlib's convolutional β-VAE on
    the images, for about the wall time the feature route took;
and scores both with the challenge's table (FactorVAE, DCI, SAP, IRS, MIG) on the same samples.

`run(output_dir, budget=...)` writes `<output_dir>/featvae/` (the pipeline's workdir),
`<output_dir>/pixel_betavae/`, `runs.json` (scores, step-1 validation accuracy, wall times),
`comparison.md` and `comparison.png` (the scores as grouped bars); a rerun resumes unfinished
runs and reuses finished ones.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import numpy as np

from disentangle_jax.experiments.configs import load_config
from disentangle_jax.pipelines import featvae
from disentangle_jax.training import train as train_lib
from disentangle_jax.training import workdir as workdir_lib
from disentangle_jax.visualization import images as image_lib, plots

#: The public leaderboard's MPI3D-real scores (Seitzer et al. 2020, Table 1).
PAPER_ROWS = {
    'paper, MPI3D-real: stage 2 (finetuned VGG19-BN)':
        {'FactorVAE': 0.992, 'DCI': 0.809, 'SAP': 0.223, 'IRS': 0.547, 'MIG': 0.297},
    'paper, MPI3D-real: stage 1 (ImageNet R-MAC)':
        {'FactorVAE': 0.792, 'DCI': 0.527, 'SAP': 0.166, 'IRS': 0.623, 'MIG': 0.292},
}


@dataclasses.dataclass(frozen=True)
class Budget:
  """Epochs of the feature route's steps 1 and 3 on the small grid (16,000 images), and the pixel
  baseline's steps (batch 64; chosen so that it trains about as long as the feature route)."""

  finetune_epochs: float
  featvae_epochs: float
  pixel_steps: int
  conv_impl: str = 'auto'
  # Metric sample sizes are the runlocal table's divided by this (tests score on small samples).
  table_divisor: int = 1
  # Both routes read only the training split's first `examples` records (the feature route
  # finetunes on their first 80 % and validates on the rest; epochs count these records); None:
  # the whole split. For tests: step 2 extracts, and step 1 validates on, fewer images.
  examples: int | None = None
  # The pixel baseline's batch size; None: its config's (64). For tests: an unoptimised XLA build
  # ran a batch-64 step of the convolutional β-VAE in 8 s.
  pixel_batch_size: int | None = None


BUDGETS = {
    # Minutes, mostly compilation: for tests.
    'tiny': Budget(finetune_epochs=0.02, featvae_epochs=0.1, pixel_steps=10, conv_impl='xla',
                   table_divisor=10),
    # About 35 minutes of a 2-core CPU for both routes, scoring included.
    'cpu': Budget(finetune_epochs=15.0, featvae_epochs=20.0, pixel_steps=8_000),
}


def _feature_config(budget: Budget, seed: int, data_dir: str | None, configs_dir: str | None):
  config = load_config('featvae_shapes3d', f'runlocal,seed={seed}', configs_dir=configs_dir)
  config.finetune_epochs = budget.finetune_epochs
  config.featvae_epochs = budget.featvae_epochs
  for run in (config.finetune, config.featvae):
    run.model.conv_impl = budget.conv_impl
    run.log_every = 200
    if data_dir:
      run.data.data_dir = data_dir
  if budget.examples is not None:
    n = int(budget.examples)
    fit = int(0.8 * n)
    config.finetune.data.split = f'train[:{fit}]'
    config.finetune_validation_split = f'train[{fit}:{n}]'
    config.featvae.data.split = f'train[:{n}]'
  return config


def _pixel_config(budget: Budget, seed: int, data_dir: str | None, configs_dir: str | None):
  config = load_config('betavae_shapes3d', f'runlocal,seed={seed}', configs_dir=configs_dir)
  steps = budget.pixel_steps
  config.total_steps = steps
  config.objective.beta_schedule = f'linear_warmup,warmup_steps={max(1, steps // 2)}'
  config.model.conv_impl = budget.conv_impl
  if budget.pixel_batch_size is not None:
    config.batch_size = int(budget.pixel_batch_size)
  config.evaluators = {}
  config.log_every = max(1, min(200, steps // 10))
  config.checkpoint_every = max(1, min(1_000, steps))
  config.image_every = steps
  config.eval_every = 0
  if data_dir:
    config.data.data_dir = data_dir
  if budget.examples is not None:
    config.data.split = f'train[:{int(budget.examples)}]'
  return config


def _timed(wall: dict, key: str, fn):
  """Runs fn and adds its wall time to `wall[key]` when it trained (a finished run is only
  loaded, in seconds); a run resumed after a kill thus counts all of its parts."""
  start = time.perf_counter()
  out = fn()
  seconds = time.perf_counter() - start
  if seconds > 30:
    wall[key] = wall.get(key, 0.0) + seconds
  return out


def comparison_plot(rows: dict[str, dict[str, float]]) -> np.ndarray:
  """The scores per metric as grouped bars, one bar per model (uint8 RGB)."""
  return plots.grouped_bar_chart(
      featvae.COLUMNS, {name: [row[c] for c in featvae.COLUMNS] for name, row in rows.items()},
      ylabel='score', size=(9.0, 5.0))


def run(output_dir: str, *, budget: str | Budget = 'cpu', seed: int = 0,
        data_dir: str | None = None, configs_dir: str | None = None) -> dict:
  """Trains (or resumes) both routes and scores them; returns what `runs.json` holds."""
  budget = BUDGETS[budget] if isinstance(budget, str) else budget
  os.makedirs(output_dir, exist_ok=True)
  record_path = os.path.join(output_dir, 'runs.json')
  record = {}
  if os.path.isfile(record_path):
    with open(record_path) as f:
      record = json.load(f)
  wall = record.setdefault('wall_seconds', {})

  feature_config = _feature_config(budget, seed, data_dir, configs_dir)
  feature_dir = os.path.join(output_dir, 'featvae')
  logging.info('The feature route: %s', feature_dir)
  result = _timed(wall, 'feature_route',
                  lambda: featvae.run_pipeline(feature_config, feature_dir, score=False))

  pixel_dir = os.path.join(output_dir, 'pixel_betavae')
  logging.info('The pixel baseline: %s', pixel_dir)
  _timed(wall, 'pixel_betavae',
         lambda: train_lib.train_and_evaluate(_pixel_config(budget, seed, data_dir, configs_dir),
                                              pixel_dir))

  settings = {metric: {key: max(10, value // budget.table_divisor) for key, value in sizes.items()}
              for metric, sizes in feature_config.table.to_dict().items()}
  scores = {
      'feature route (finetuned narrow extractor + β-VAE on features)': featvae.challenge_table(
          featvae.step_dirs(feature_dir)['featvae'], settings, seed=seed),
      'pixel β-VAE (dlib conv, β = 4)': featvae.challenge_table(pixel_dir, settings, seed=seed),
  }
  record.update(budget=dataclasses.asdict(budget), seed=seed, scores=scores,
                validation_accuracy=result['validation']['accuracy'])
  workdir_lib.write_text_atomically(record_path, json.dumps(record, indent=1))
  rows = {**scores, **PAPER_ROWS}
  table = featvae.format_rows(rows)
  accuracy = featvae.format_accuracy(record['validation_accuracy'])
  text = f'{table}\n\nStep 1 validation accuracy per factor: {accuracy}\n'
  workdir_lib.write_text_atomically(os.path.join(output_dir, 'comparison.md'), text)
  image_lib.write_atomic(os.path.join(output_dir, 'comparison.png'),
                         image_lib.encode_png(comparison_plot(rows)))
  return record

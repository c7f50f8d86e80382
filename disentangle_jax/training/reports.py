"""Evaluate trained runs and compare them: metrics JSON, CSV/Markdown tables, heatmaps.

What `launch/evaluate.py` does, importable: a run is rebuilt from its workdir alone
(`config.json` plus a checkpoint, through `restore`), scored by the same `Evaluator` that runs
during training (ground-truth or labelled data), and reported.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import sys
from typing import Any, Mapping, Sequence

import numpy as np

from disentangle_jax import metrics as metrics_lib
from disentangle_jax.errors import UserError
from disentangle_jax.training.evaluation import Evaluator
from disentangle_jax.training.restore import load_trained_model
from disentangle_jax.visualization.heatmap import heatmap_png



#: The sampled scores whose sample is counted in votes (`num_train` points, `num_eval` for test).
VOTING_METRICS = ('betavae', 'factorvae')


def evaluate_workdir(
    workdir: str, metric_names: Sequence[str], *, step: int | None = None, seed: int = 0,
    settings: Mapping[str, Mapping[str, Any]] | None = None, num_train: int | None = None,
    num_test: int | None = None, progress: bool = False,
) -> tuple[int, dict[str, dict[str, Any]], tuple[str, ...]]:
  """Scores the checkpoint at `step` (default: newest) of `workdir`.

  With `progress`, the evaluation shows as a progress line on stderr (see `Evaluator`).

  Returns:
    `(step, results, target_names)`; the factor (or label) names label the heatmaps.
  """
  model = load_trained_model(workdir, step)
  evaluator = Evaluator(model.objective, model.config, writer=None, info=model.info,
                        progress=progress)
  names = list(metric_names)
  settings = {name: dict((settings or {}).get(name, {})) for name in names}
  results = evaluator.evaluate(model.params, model.model_state, names, settings, seed=seed,
                               num_train=num_train, num_test=num_test)
  return model.step, results, evaluator.target_names()


def evaluate_runs(workdirs: Sequence[str], metric_names: Sequence[str], *,
                  step: int | None = None, seed: int = 0,
                  settings: Mapping[str, Mapping[str, Any]] | None = None,
                  num_votes: int | None = None, num_train: int | None = None,
                  num_test: int | None = None, output_dir: str | None = None,
                  progress: bool = True) -> dict:
  """Scores every run, writes each run's JSON and heatmaps, and with several runs the comparison
  tables (per run, and mean ± std over runs that differ only in their seed) and a bar plot per
  metric (`<output_dir>/plots/<metric>.png`); prints each run's scalars (and the table); returns
  {run name: {metric/key: value}}.

  `num_votes` sets the training points of the sampled scores (BetaVAE, FactorVAE; evaluation
  uses half) unless `settings` does. `progress` shows each run's evaluation as a progress line on
  stderr (a line per stage when stderr is not a terminal).
  """
  unknown = sorted(set(metric_names) - set(metrics_lib.available()))
  if unknown:
    raise UserError(f'unknown metrics {unknown}; known: {", ".join(metrics_lib.available())}')
  settings = {k: dict(v) for k, v in (settings or {}).items()}
  if num_votes:
    for name in metric_names:
      if name in VOTING_METRICS:
        settings.setdefault(name, {}).setdefault('num_train', num_votes)
        settings[name].setdefault('num_eval', max(1, num_votes // 2))
  rows = {}
  for i, workdir in enumerate(workdirs):
    if progress:
      count = f' ({i + 1}/{len(workdirs)})' if len(workdirs) > 1 else ''
      sys.stderr.write(f'evaluating {workdir}{count}: {", ".join(metric_names)}\n')
      sys.stderr.flush()
    run_step, results, target_names = evaluate_workdir(
        workdir, metric_names, step=step, seed=seed, settings=settings, num_train=num_train,
        num_test=num_test, progress=progress,
    )
    path = write_metrics_json(workdir, run_step, results)
    write_heatmaps(os.path.join(workdir, f'eval_{run_step}'), '', results, target_names)
    scalars = rows[os.path.basename(os.path.normpath(workdir))] = scalars_of(results)
    logging.info('%s step %d -> %s', workdir, run_step, path)
    if progress:
      sys.stderr.write(f'{workdir}: step {run_step} scored, results in {path}\n')
    for key, value in sorted(scalars.items()):
      print(f'{workdir}\t{key}\t{value:.4f}')
  if len(workdirs) > 1:
    output_dir = output_dir or os.path.dirname(os.path.normpath(workdirs[0]))
    os.makedirs(output_dir, exist_ok=True)
    table_csv, table_md = comparison_tables(rows)
    groups = seed_groups(workdirs)
    aggregated = aggregate_seeds(rows, groups)
    aggregated_md = aggregated_table(aggregated)
    for name, text in (('comparison.csv', table_csv), ('comparison.md', table_md),
                       ('comparison_over_seeds.md', aggregated_md)):
      with open(os.path.join(output_dir, name), 'w') as f:
        f.write(text)
    write_bar_plots(os.path.join(output_dir, 'plots'), aggregated)
    print(table_md)
    if any(len(runs) > 1 for runs in groups.values()):
      print(aggregated_md)
  return rows


def _jsonable(value):
  array = np.asarray(value)
  if array.ndim == 0:
    item = array.item()
    return item if not isinstance(item, float) or np.isfinite(item) else str(item)
  return array.tolist()


def scalars_of(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
  """`{'metric/key': value}` for every numeric scalar result."""
  return metrics_lib.scalar_results(results)


def matrices_of(results: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
  """`{'metric/key': matrix}` for every 2-D numeric result (MI, importance, score matrices)."""
  out = {}
  for name, result in results.items():
    for key, value in result.items():
      array = np.asarray(value)
      if array.ndim == 2 and np.issubdtype(array.dtype, np.number):
        out[f'{name}/{key}'] = array
  return out


def write_metrics_json(workdir: str, step: int, results) -> str:
  """Writes `<workdir>/metrics_<step>.json` atomically; returns its path."""
  path = os.path.join(workdir, f'metrics_{step}.json')
  payload = {
      'step': step,
      'results': {n: {k: _jsonable(v) for k, v in r.items()} for n, r in results.items()},
  }
  with open(path + '.tmp', 'w') as f:
    json.dump(payload, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)
  return path


def write_heatmaps(directory: str, prefix: str, results, factor_names: Sequence[str]) -> list[str]:
  """One PNG per metric matrix; rows are code dimensions or factors, labelled by their size."""
  os.makedirs(directory, exist_ok=True)
  paths = []
  for name, matrix in matrices_of(results).items():
    rows, cols = matrix.shape

    def labels(n, prefix_letter):
      if n == len(factor_names):
        return list(factor_names)
      return [f'{prefix_letter}{i}' for i in range(n)]

    path = os.path.join(directory, f'{prefix}{re.sub(r"[^A-Za-z0-9_.-]", "_", name)}.png')
    heatmap_png(
        path, matrix, row_labels=labels(rows, 'z'), col_labels=labels(cols, 'z'),
        title=f'{prefix}{name}',
    )
    paths.append(path)
  return paths


def comparison_tables(rows: Mapping[str, Mapping[str, float]]) -> tuple[str, str]:
  """CSV and Markdown tables: one row per run, one column per scalar metric."""
  columns = sorted({c for row in rows.values() for c in row})
  buffer = io.StringIO()
  writer = csv.writer(buffer)
  writer.writerow(['run', *columns])
  for run, row in rows.items():
    writer.writerow([run, *(row.get(c, '') for c in columns)])

  def fmt(v):
    return '' if v is None else f'{v:.4f}'

  md = ['| run | ' + ' | '.join(columns) + ' |', '|---' * (len(columns) + 1) + '|']
  md += [f'| {run} | ' + ' | '.join(fmt(row.get(c)) for c in columns) + ' |'
         for run, row in rows.items()]
  return buffer.getvalue(), '\n'.join(md) + '\n'



_SEED_IN_NAME = re.compile(r'[_\-.,]?seed[=_\-]?\d+')


def seed_groups(workdirs: Sequence[str]) -> dict[str, list[str]]:
  """Runs that differ only in their seed, grouped: {label: [workdir, ...]} in the given order.

  Configs are compared without `seed` (and without the paths and intervals that do not change a
  model); a group's label is its first run's directory name with any 'seed<N>' part removed.
  """
  from disentangle_jax.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

  ignored = ('seed', 'data.data_dir', 'log_every', 'image_every', 'checkpoint_every',
             'keep_checkpoints', 'eval_every')
  groups: dict[str, list[str]] = {}
  labels: dict[str, str] = {}
  for workdir in workdirs:
    flat = workdir_lib.flat_config(workdir_lib.read_config(workdir))
    key = json.dumps({k: v for k, v in flat.items() if k not in ignored}, sort_keys=True,
                     default=str)
    if key not in labels:
      name = os.path.basename(os.path.normpath(workdir))
      label = _SEED_IN_NAME.sub('', name) or name
      while label in groups:
        label += "'"
      labels[key] = label
    groups.setdefault(labels[key], []).append(workdir)
  return groups


def aggregate_seeds(rows: Mapping[str, Mapping[str, float]], groups: Mapping[str, Sequence[str]]
                    ) -> dict[str, dict[str, tuple[float, float, int]]]:
  """{group: {metric: (mean, std, n)}} over each group's runs (std with ddof=0; 0 for one run).

  Args:
    rows: {run name (the workdir's directory name): {metric: value}}.
    groups: `seed_groups`' output.
  """
  out = {}
  for label, workdirs in groups.items():
    runs = [rows[os.path.basename(os.path.normpath(w))] for w in workdirs]
    columns = sorted({c for run in runs for c in run})
    out[label] = {}
    for column in columns:
      values = np.array([run[column] for run in runs if column in run], np.float64)
      out[label][column] = (float(values.mean()), float(values.std()), len(values))
  return out


def aggregated_table(aggregated: Mapping[str, Mapping[str, tuple[float, float, int]]]) -> str:
  """Markdown: one row per group, 'mean ± std (n)' per metric."""
  columns = sorted({c for row in aggregated.values() for c in row})
  md = ['| run | ' + ' | '.join(columns) + ' |', '|---' * (len(columns) + 1) + '|']
  for label, row in aggregated.items():
    cells = []
    for column in columns:
      if column in row:
        mean, std, n = row[column]
        cells.append(f'{mean:.4f} ± {std:.4f} ({n})')
      else:
        cells.append('')
    md.append(f'| {label} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(md) + '\n'


def write_bar_plots(directory: str, aggregated) -> list[str]:
  """One PNG per metric: a bar per group at its mean, the standard deviation over seeds as the
  error bar."""
  from disentangle_jax.visualization import images as image_lib  # pylint: disable=g-import-not-at-top
  from disentangle_jax.visualization import plots  # pylint: disable=g-import-not-at-top

  os.makedirs(directory, exist_ok=True)
  paths = []
  columns = sorted({c for row in aggregated.values() for c in row})
  for column in columns:
    labels = [label for label, row in aggregated.items() if column in row]
    means = [aggregated[label][column][0] for label in labels]
    stds = [aggregated[label][column][1] for label in labels]
    image = plots.bar_chart(labels, means, errors=stds, ylabel=column, title=column)
    path = os.path.join(directory, re.sub(r'[^A-Za-z0-9_.-]', '_', column) + '.png')
    image_lib.save_png(path, image)
    paths.append(path)
  return paths

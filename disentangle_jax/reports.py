"""Evaluate trained runs and compare them: metrics JSON, CSV/Markdown tables, heatmaps.

What `launch/evaluate.py` does, importable: a run is rebuilt from its workdir alone
(`config.json` plus a checkpoint), encoded over its dataset's ground truth, and scored.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from disentangle_jax import metrics as metrics_lib
from disentangle_jax.data import datasets
from disentangle_jax.training.restore import load_trained_model
from disentangle_jax.visualization.heatmap import heatmap_png

DEFAULT_METRICS = (
    'betavae', 'factorvae', 'mig', 'sap', 'dci', 'modularity_explicitness', 'irs', 'unsupervised',
)


def evaluate_workdir(
    workdir: str, metric_names: Sequence[str], *, step: int | None = None, seed: int = 0,
    settings: Mapping[str, Mapping[str, Any]] | None = None, **sizes,
) -> tuple[int, dict[str, dict[str, Any]], tuple[str, ...]]:
  """Scores the checkpoint at `step` (default: newest) of `workdir`.

  Returns:
    `(step, results, factor_names)`; the factor names label the heatmaps.
  """
  model = load_trained_model(workdir, step)
  ground_truth = datasets.get_ground_truth(model.config.data)
  if ground_truth is None:
    raise ValueError(
        f'{workdir}: dataset {model.config.data.name!r} has no ground-truth factors to score against'
    )
  encode = jax.jit(model.objective.encode)

  def encode_fn(images):
    return np.asarray(encode(model.params, model.model_state, images))

  results = metrics_lib.evaluate(
      list(metric_names), ground_truth=ground_truth, encode_fn=encode_fn, rng_seed=seed,
      settings=settings, **sizes,
  )
  return model.step, results, tuple(ground_truth.factor_names)


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


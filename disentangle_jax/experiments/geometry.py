"""The geometric-attribute experiments: disk interpolation and ellipse attribute correlations.

Disks (Newson, Almansa, Gousseau, Ladjal, "Processing simple geometric attributes with
autoencoders", JMIV 2020): 1-D autoencoders of centred disks trained without the radii of a band
(11..18 px), with no regulariser, distance preservation, denoising or encoder weight decay (and the
unregularised network without biases). For each variant: its code against the radius over the
full range (the band shaded), the Spearman correlation of code and radius inside the band (is the
code monotone where it saw no data?), how far the band's codes are from the straight line between
the band's edges (`code_interpolation_error`), and the reconstruction error in the band relative
to the trained radii.

Ellipses (Ladjal, Newson, Pham 2019; Pham, Ladjal, Newson, JMIV 2022): a 3-component PCA-like AE
against a plain AE, a β-VAE and the PCA-like AE without its covariance loss, all with the same
networks and step budget. On fresh ellipses: |Pearson correlation| of every component with the
notebook's attributes (area S = the sum of pixels, the axis ratio H = row-31 sum / column-31 sum,
the diagonal ratio V = trace / anti-diagonal trace) and the true factors, as a table and heatmap;
|correlation| between components; latent navigation grids (each component swept over ±2 standard
deviations around the mean code, one row per component).

`run(output_dir, budget=...)` does both; `bench/reproduce_geometry.py` is its command line.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
from typing import Sequence

import jax
import numpy as np
from scipy import stats

from disentangle_jax.data import pipeline
from disentangle_jax.data.renderers import disks as disks_renderer
from disentangle_jax.data.renderers import ellipses as ellipses_renderer
from disentangle_jax.data.renderers import grey_disks as grey_disks_renderer
from disentangle_jax.experiments.configs import load_config
from disentangle_jax.training import train as train_lib
from disentangle_jax.visualization import heatmap, images as image_lib, plots

BAND = (11.0, 18.0)
# (name, ae_disks.py argument)
DISK_VARIANTS = (
    ('none', 'regularizer=none'),
    ('distance', 'regularizer=distance'),
    ('denoising', 'regularizer=denoising'),
    ('encoder_weight_decay', 'regularizer=encoder_weight_decay'),
    ('none_nobias', 'regularizer=none,bias=False'),
)
ELLIPSE_MODELS = ('pcaae', 'ae', 'betavae', 'pcaae_no_cov')
ATTRIBUTES = ('area', 'axis_ratio', 'diagonal_ratio', 'semi_axis_x', 'semi_axis_y', 'rotation')


@dataclasses.dataclass(frozen=True)
class Budget:
  """Steps of one run: disk AEs train `disk_steps`; each PCA-AE stage `ellipse_stage_steps` (the
  other ellipse models 3× that, the same total)."""

  disk_steps: int
  ellipse_stage_steps: int
  ellipse_data: str = 'small'
  batch_size: int = 64
  num_test_ellipses: int = 1000
  # 'xla' compiles fast and runs slowly on a CPU, 'auto' (the CPU fast path) the other way round:
  # compiling the three-head PCA-like AE's fast path took minutes on a busy 2-core machine.
  conv_impl: str = 'auto'


BUDGETS = {
    'tiny': Budget(disk_steps=20, ellipse_stage_steps=10, num_test_ellipses=200, conv_impl='xla'),
    'small': Budget(disk_steps=1_000, ellipse_stage_steps=300),
    'modest': Budget(disk_steps=3_000, ellipse_stage_steps=1_000),
    'paper': Budget(disk_steps=20_000, ellipse_stage_steps=4_000, ellipse_data='full',
                    batch_size=512),
}


def _quiet(config, steps: int, data_dir: str | None, seed: int, budget: Budget):
  config.seed = seed
  config.batch_size = budget.batch_size
  config.model.conv_impl = budget.conv_impl
  config.total_steps = steps
  config.log_every = max(1, steps // 10)
  config.checkpoint_every = steps
  config.keep_checkpoints = 1
  config.image_every = steps
  config.eval_every = 0
  if data_dir:
    config.data.data_dir = data_dir
  return config


def _train(config, workdir: str):
  """Trains (or resumes, or finds finished) a run; returns (objective, state)."""
  state = train_lib.train_and_evaluate(config, workdir)
  info = pipeline.dataset_info(config.data)
  objective = train_lib.build_objective(config, info)
  return objective, state


def _batched(fn, x: np.ndarray, batch: int = 256) -> np.ndarray:
  return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


# -- disks ----------------------------------------------------------------------------------------


def disk_scores(radius: np.ndarray, code: np.ndarray, errors: np.ndarray,
                band: tuple[float, float] = BAND) -> dict[str, float]:
  """Scores of a 1-D code of disks against their radius.

  Args:
    radius: [n] radii in px, increasing.
    code: [n] the code of each disk.
    errors: [n] the reconstruction error of each disk.
    band: the radii missing from training.

  Returns:
    spearman_band: Spearman correlation of code and radius inside the band (±1: monotone there);
    spearman_all: the same over every radius;
    code_interpolation_error: mean |code − the straight line between the codes of the nearest
      trained radii on each side of the band| inside the band, over |the codes' difference across
      the band| (0: the band is filled linearly; ≥ 1: the code leaves the edges' interval);
    holdout_error, train_error: mean reconstruction error inside and outside the band, and their
      ratio holdout_error_ratio.
  """
  radius, code, errors = (np.asarray(a, np.float64) for a in (radius, code, errors))
  inside = (radius >= band[0]) & (radius <= band[1])
  lo = np.flatnonzero(~inside & (radius < band[0]))[-1]
  hi = np.flatnonzero(~inside & (radius > band[1]))[0]
  t = (radius[inside] - radius[lo]) / (radius[hi] - radius[lo])
  line = code[lo] + t * (code[hi] - code[lo])
  span = abs(code[hi] - code[lo])
  deviation = float(np.mean(np.abs(code[inside] - line)))

  def spearman(mask):
    if np.ptp(code[mask]) == 0:
      return 0.0
    return float(stats.spearmanr(radius[mask], code[mask]).statistic)

  holdout, train = float(np.mean(errors[inside])), float(np.mean(errors[~inside]))
  return {
      'spearman_band': spearman(inside),
      'spearman_all': spearman(np.ones_like(inside)),
      'code_interpolation_error': deviation / span if span > 0 else float('inf'),
      'holdout_error': holdout,
      'train_error': train,
      'holdout_error_ratio': holdout / train if train > 0 else float('inf'),
  }


def run_disks(output_dir: str, budget: Budget, *, data_dir: str | None = None, seed: int = 0,
              variants: Sequence[tuple[str, str]] = DISK_VARIANTS,
              configs_dir: str | None = None) -> dict[str, dict[str, float]]:
  """Trains every disk variant and writes the curves, the scores (JSON, CSV, markdown) and the
  band's reconstructions under `output_dir`; returns {variant: scores}."""
  os.makedirs(output_dir, exist_ok=True)
  indices = np.arange(disks_renderer.FACTOR_SIZES[0])
  radius = disks_renderer.factor_values('radius')
  images = disks_renderer.render(indices[:, None]).astype(np.float32) / 255.0
  scores, codes, errors, band_recons = {}, {}, {}, {}
  band_idx = np.flatnonzero((radius >= BAND[0] - 2) & (radius <= BAND[1] + 2))[::4]
  for name, arg in variants:
    logging.info('disks: training %r for %d steps', name, budget.disk_steps)
    config = _quiet(load_config('ae_disks', arg, configs_dir=configs_dir), budget.disk_steps,
                    data_dir, seed, budget)
    objective, state = _train(config, os.path.join(output_dir, 'runs', name))
    variables = state.variables()
    encode = jax.jit(lambda x: objective.encode(variables, state.model_state, x))
    decode = jax.jit(lambda z: objective.decode(variables, state.model_state, z))
    z = _batched(encode, images)
    recon = _batched(decode, z)
    codes[name] = z[:, 0]
    errors[name] = np.sum(np.square(recon - images), axis=(1, 2, 3))
    band_recons[name] = recon[band_idx]
    scores[name] = disk_scores(radius, codes[name], errors[name])
    logging.info('disks %s: %s', name, scores[name])

  def normalised(c):
    c = c - c.min()
    c = c / c.max() if c.max() > 0 else c
    return c if np.corrcoef(radius, c)[0, 1] >= 0 else 1.0 - c

  names = [n for n, _ in variants]
  image_lib.save_png(os.path.join(output_dir, 'code_vs_radius.png'), plots.line_plot(
      radius, [normalised(codes[n]) for n in names], labels=names, shade=BAND,
      shade_label='held out in training', xlabel='radius (px)',
      ylabel='code (min-max normalised, oriented)',
      title=f'1-D code of centred disks, {budget.disk_steps} steps'))
  image_lib.save_png(os.path.join(output_dir, 'code_vs_radius_raw.png'), plots.line_plot(
      radius, [codes[n] for n in names], labels=names, shade=BAND, xlabel='radius (px)',
      ylabel='code', title='1-D code of centred disks (raw)'))
  image_lib.save_png(os.path.join(output_dir, 'error_vs_radius.png'), plots.line_plot(
      radius, [np.maximum(errors[n], 1e-6) for n in names], labels=names, shade=BAND, logy=True,
      xlabel='radius (px)', ylabel='‖D(E(x)) − x‖² per image',
      title='reconstruction error against radius'))
  grid = np.stack([images[band_idx]] + [band_recons[n] for n in names])
  image_lib.save_png(os.path.join(output_dir, 'band_reconstructions.png'), image_lib.labelled_grid(
      np.clip(grid, 0, 1), row_labels=['input'] + names,
      col_labels=[f'{r:g}' for r in radius[band_idx]],
      title=f'radii around the held-out band {BAND[0]:g}-{BAND[1]:g} px'))
  _write_tables(output_dir, 'disk_scores', scores)
  with open(os.path.join(output_dir, 'codes.json'), 'w') as f:
    json.dump({'radius': radius.tolist(), **{n: codes[n].tolist() for n in names}}, f)
  return scores


# -- ellipses -------------------------------------------------------------------------------------


def ellipse_attributes(images: np.ndarray) -> dict[str, np.ndarray]:
  """The PCA-AE notebook's attributes of [n, 64, 64(, 1)] ellipse images in [0, 1]: area (sum of
  pixels), axis_ratio (row 31 sum / column 31 sum) and diagonal_ratio (trace / anti-diagonal
  trace)."""
  x = np.asarray(images, np.float64).reshape(len(images), images.shape[1], images.shape[2])
  tiny = 1e-6
  return {
      'area': x.sum(axis=(1, 2)),
      'axis_ratio': x[:, 31, :].sum(1) / (x[:, :, 31].sum(1) + tiny),
      'diagonal_ratio': np.trace(x, axis1=1, axis2=2) /
                        (np.trace(x[:, :, ::-1], axis1=1, axis2=2) + tiny),
  }


def fresh_ellipses(num: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """`num` ellipses drawn as the notebook draws them (semi-axes randint(2, 32), rotation
  randint(0, 90)); returns (float images [num, 64, 64, 1], {attribute: [num]})."""
  rng = np.random.default_rng(seed)
  rx, ry = rng.integers(2, 32, num), rng.integers(2, 32, num)
  rotation = rng.integers(0, 90, num)
  images = ellipses_renderer.render_continuous(rx, ry, rotation).astype(np.float32) / 255.0
  attributes = ellipse_attributes(images)
  attributes.update(semi_axis_x=rx.astype(np.float64), semi_axis_y=ry.astype(np.float64),
                    rotation=rotation.astype(np.float64))
  return images, attributes


def abs_correlations(codes: np.ndarray, columns: Sequence[np.ndarray]) -> np.ndarray:
  """|Pearson correlation| [D, len(columns)] of each code component with each column (0 where one
  is constant)."""
  out = np.zeros((codes.shape[1], len(columns)))
  for i in range(codes.shape[1]):
    for j, col in enumerate(columns):
      a, b = codes[:, i], np.asarray(col, np.float64)
      if np.std(a) > 0 and np.std(b) > 0:
        out[i, j] = abs(np.corrcoef(a, b)[0, 1])
  return out


def _ellipse_config(model: str, budget: Budget, data_dir, seed, configs_dir):
  config = load_config('pcaae_ellipses', 'runlocal', configs_dir=configs_dir)
  config.data.builder_config = budget.ellipse_data
  num_stages = int(config.objective.num_stages)
  steps = budget.ellipse_stage_steps * num_stages
  if model in ('pcaae', 'pcaae_no_cov'):
    config.objective.steps_per_stage = budget.ellipse_stage_steps
    if model == 'pcaae_no_cov':
      config.objective.cov_weight = 0.0
  else:
    import ml_collections  # pylint: disable=g-import-not-at-top

    objective = {'name': model, 'latent_dim': num_stages, 'likelihood': 'bernoulli',
                 'event_reduction': 'mean'}
    if model == 'betavae':
      # β = 4 [ours] (Higgins et al.'s dSprites value), given as their normalised β·M/N so that
      # the reconstruction is the per-pixel mean BCE of the other models.
      objective = {'name': 'betavae', 'latent_dim': num_stages, 'likelihood': 'bernoulli',
                   'beta': 4.0 * num_stages / 4096, 'beta_mode': 'normalized'}
    with config.unlocked():
      config.objective = ml_collections.ConfigDict(objective)
  return _quiet(config, steps, data_dir, seed, budget)


def _navigation(objective, variables, model_state, codes: np.ndarray, steps: int = 9):
  """[D, steps, H, W, C]: component i swept over mean ± 2 std, the others at their means."""
  mean, std = codes.mean(0), codes.std(0)
  values = np.linspace(-2, 2, steps)
  z = np.tile(mean, (codes.shape[1], steps, 1))
  for i in range(codes.shape[1]):
    z[i, :, i] = mean[i] + values * std[i]
  # One compiled decode of every row at once (eagerly, each of its ops compiles on its own).
  decoded = jax.jit(objective.decode)(variables, model_state,
                                      z.reshape(-1, codes.shape[1]).astype(np.float32))
  return np.asarray(decoded).reshape(codes.shape[1], steps, *decoded.shape[1:]), values


def _score_components(output_dir: str, model: str, objective, state, images: np.ndarray,
                      columns: Sequence[np.ndarray], names: Sequence[str]) -> dict:
  """Encodes `images`; writes `<model>_attributes.png` (|corr| of each component with each
  column), `<model>_components.png` (between components) and `<model>_navigation.png`; returns
  {'attributes': [[...]], 'components': [[...]]}."""
  variables = state.variables()
  # The weights are arguments, not constants compiled in: models of one architecture share the
  # compiled program (and JAX's compilation cache, where it is on).
  encode = jax.jit(objective.encode)
  codes = _batched(lambda x: encode(variables, state.model_state, x), images).astype(np.float64)
  table = abs_correlations(codes, columns)
  between = abs_correlations(codes, [codes[:, j] for j in range(codes.shape[1])])
  labels = [f'z{i + 1}' for i in range(codes.shape[1])]
  heatmap.heatmap_png(os.path.join(output_dir, f'{model}_attributes.png'), table,
                      row_labels=labels, col_labels=list(names), vmin=0.0, vmax=1.0,
                      title=f'{model}: |corr(component, attribute)|')
  heatmap.heatmap_png(os.path.join(output_dir, f'{model}_components.png'), between,
                      row_labels=labels, col_labels=labels, vmin=0.0, vmax=1.0,
                      title=f'{model}: |corr(z_i, z_j)|')
  grid, values = _navigation(objective, variables, state.model_state, codes)
  image_lib.save_png(os.path.join(output_dir, f'{model}_navigation.png'),
                     image_lib.labelled_grid(
                         np.clip(grid, 0, 1), row_labels=labels,
                         col_labels=[f'{v:+.1f} sd' for v in values],
                         title=f'{model}: one component swept, the others at their mean'))
  return {'attributes': table.tolist(), 'components': between.tolist()}


def run_ellipses(output_dir: str, budget: Budget, *, data_dir: str | None = None, seed: int = 0,
                 models: Sequence[str] = ELLIPSE_MODELS, configs_dir: str | None = None) -> dict:
  """Trains every ellipse model and writes the correlation tables, heatmaps and navigation grids
  under `output_dir`; returns {model: {'attributes': [[...]], 'components': [[...]]}}."""
  os.makedirs(output_dir, exist_ok=True)
  images, attributes = fresh_ellipses(budget.num_test_ellipses, seed + 1000)
  columns = [attributes[a] for a in ATTRIBUTES]
  results = {}
  for model in models:
    config = _ellipse_config(model, budget, data_dir, seed, configs_dir)
    logging.info('ellipses: training %r for %d steps', model, config.total_steps)
    objective, state = _train(config, os.path.join(output_dir, 'runs', model))
    results[model] = _score_components(output_dir, model, objective, state, images, columns,
                                       ATTRIBUTES)
  _write_component_results(output_dir, 'attribute_correlations', 'ellipse_results', results,
                           ATTRIBUTES)
  return results


# -- grey-level disks -----------------------------------------------------------------------------


GREY_MODELS = ('pcaae', 'pcaae_no_cov')


def run_grey_disks(output_dir: str, budget: Budget, *, data_dir: str | None = None, seed: int = 0,
                   models: Sequence[str] = GREY_MODELS, configs_dir: str | None = None) -> dict:
  """The seed's failure case: a two-component PCA-like AE (and the same without the covariance
  loss) on disks whose radius and grey level vary. Writes |corr(component, radius / grey level)|
  over the whole grid (`grey_correlations.md`, `<model>_attributes.png`), between components and
  navigation grids; returns {model: {'attributes': [[...]], 'components': [[...]]}}."""
  os.makedirs(output_dir, exist_ok=True)
  sizes = grey_disks_renderer.FACTOR_SIZES
  factors = np.stack(np.meshgrid(*[np.arange(n) for n in sizes], indexing='ij'), -1).reshape(-1, 2)
  images = grey_disks_renderer.render(factors).astype(np.float32) / 255.0
  columns = [grey_disks_renderer.factor_values(name)[factors[:, i]]
             for i, name in enumerate(grey_disks_renderer.FACTOR_NAMES)]
  results = {}
  for model in models:
    config = load_config('pcaae_disks', 'runlocal', configs_dir=configs_dir)
    config.objective.steps_per_stage = budget.ellipse_stage_steps
    if model == 'pcaae_no_cov':
      config.objective.cov_weight = 0.0
    config = _quiet(config, budget.ellipse_stage_steps * int(config.objective.num_stages),
                    data_dir, seed, budget)
    logging.info('grey disks: training %r for %d steps', model, config.total_steps)
    objective, state = _train(config, os.path.join(output_dir, 'runs', model))
    results[model] = _score_components(output_dir, model, objective, state, images, columns,
                                       grey_disks_renderer.FACTOR_NAMES)
  _write_component_results(output_dir, 'grey_correlations', 'grey_results', results,
                           grey_disks_renderer.FACTOR_NAMES)
  return results


# -- both -----------------------------------------------------------------------------------------


def _write_component_results(output_dir: str, table_stem: str, json_stem: str, results: dict,
                             names: Sequence[str]) -> None:
  """The models' |corr| tables as `<table_stem>.{csv,md}` and everything as `<json_stem>.json`."""
  rows = {f'{m}/z{i + 1}': dict(zip(names, r))
          for m, res in results.items() for i, r in enumerate(res['attributes'])}
  _write_tables(output_dir, table_stem, rows)
  with open(os.path.join(output_dir, f'{json_stem}.json'), 'w') as f:
    json.dump(results, f, indent=1)


def _write_tables(output_dir: str, stem: str, rows: dict[str, dict[str, float]]) -> None:
  keys = list(next(iter(rows.values())))
  with open(os.path.join(output_dir, f'{stem}.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['name', *keys])
    for name, row in rows.items():
      writer.writerow([name, *[f'{row[k]:.4g}' for k in keys]])
  lines = ['| name | ' + ' | '.join(keys) + ' |', '|---' * (len(keys) + 1) + '|']
  lines += [f'| {n} | ' + ' | '.join(f'{r[k]:.3f}' for k in keys) + ' |' for n, r in rows.items()]
  with open(os.path.join(output_dir, f'{stem}.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


EXPERIMENTS = ('disks', 'ellipses', 'grey_disks')


def run(output_dir: str, *, budget: str | Budget = 'tiny', experiments: Sequence[str] = EXPERIMENTS,
        data_dir: str | None = None, seed: int = 0,
        configs_dir: str | None = None) -> dict:
  """Runs the chosen experiments under `output_dir/<experiment>/`; returns their results.

  A rerun with the same arguments resumes or reuses the finished runs in `output_dir/*/runs/`.
  """
  if isinstance(budget, str):
    if budget not in BUDGETS:
      raise ValueError(f'budget {budget!r} is not one of {sorted(BUDGETS)}')
    budget = BUDGETS[budget]
  unknown = set(experiments) - set(EXPERIMENTS)
  if unknown:
    raise ValueError(f'unknown experiments {sorted(unknown)}; choose among '
                     f'{", ".join(EXPERIMENTS)}')
  results = {}
  if 'disks' in experiments:
    results['disks'] = run_disks(os.path.join(output_dir, 'disks'), budget, data_dir=data_dir,
                                 seed=seed, configs_dir=configs_dir)
  if 'ellipses' in experiments:
    results['ellipses'] = run_ellipses(os.path.join(output_dir, 'ellipses'), budget,
                                       data_dir=data_dir, seed=seed, configs_dir=configs_dir)
  if 'grey_disks' in experiments:
    results['grey_disks'] = run_grey_disks(os.path.join(output_dir, 'grey_disks'), budget,
                                           data_dir=data_dir, seed=seed, configs_dir=configs_dir)
  summary_file = os.path.join(output_dir, 'results.json')
  summary = {}
  if os.path.isfile(summary_file):  # keep the experiments of an earlier call
    with open(summary_file) as f:
      summary = json.load(f)
    if summary.get('budget') != dataclasses.asdict(budget):
      summary = {}
  summary.update(budget=dataclasses.asdict(budget), **results)
  with open(summary_file, 'w') as f:
    json.dump(summary, f, indent=1)
  return results

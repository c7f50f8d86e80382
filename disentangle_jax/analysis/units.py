"""The Mixture-of-digits unit experiment on a trained classifier (Zhou, "Interpreting deep visual
representations", with W. Zhu; the sanity check behind Network Dissection, Bau et al. CVPR 2017).

A unit's score for an image is its global-average-pooled activation in the last conv layer (the
vector the linear classifier reads). For every unit u and digit d, ranking the validation images
by the score:
* precision@k (k = 100, 300, 500, 700) and precision at recall r (0.25, 0.5, 0.75) of "the image
  contains d" (chance: the share of images with d, 0.2 for 45 balanced pairs);
* the average precision; the unit's digit is the one of highest AP (`label(u)`);
* the ablation effect: the unit's map zeroed before pooling, the accuracy drop on the images that
  contain `label(u)` and on the others (Zhou, Sun, Bau, Torralba 2018, "Revisiting the importance
  of individual units in CNNs via ablation"), and the drop of the mean true-class probability;
* the unit's top-activating images, with its map overlaid.
The distractor variant (pairs of 0-7, an 8 or a 9 in every image) asks whether units align with
the distractors.

`analyse_workdir` writes `units.json`, `units.md` and the figures (`top_images.png`,
`ap.png`: AP per unit and digit, `precision_at_100.png`).
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.analysis import pictures as pictures_lib
from disentangle_jax.metrics import unit_alignment
from disentangle_jax.visualization import heatmap as heatmap_lib
from disentangle_jax.visualization import images as image_lib

NUM_DIGITS = 10
#: Our thresholds for calling a unit a single-digit detector (the talk shows one such unit with
#: precision@100 = 1.00 and AP-like precision ≥ 0.9 up to recall 0.75; it gives no threshold).
DETECTOR_AP = 0.5
DETECTOR_PRECISION_AT_100 = 0.9


def digit_presence(factors: np.ndarray, factor_names: Sequence[str]) -> np.ndarray:
  """Whether each image shows each digit 0-9, bool [N, 10], from digit-mixture factor rows
  ('digit_a', 'digit_b' and, when present, 'distractor' with 10 for none)."""
  names = list(factor_names)
  missing = [n for n in ('digit_a', 'digit_b') if n not in names]
  if missing:
    raise ValueError(f'the data has no factors {missing}: unit analysis needs the digit '
                     'mixture (data.name=mixture_of_digits)')
  factors = np.asarray(factors)
  present = np.zeros((len(factors), NUM_DIGITS), bool)
  rows = np.arange(len(factors))
  for name in ('digit_a', 'digit_b', 'distractor'):
    if name in names:
      digit = factors[:, names.index(name)]
      ok = (digit >= 0) & (digit < NUM_DIGITS)
      present[rows[ok], digit[ok]] = True
  return present


def distractor_digits(factors: np.ndarray, factor_names: Sequence[str]) -> list[int]:
  """The digits added as distractors in these images ([] for the plain mixture)."""
  names = list(factor_names)
  if 'distractor' not in names:
    return []
  values = np.unique(np.asarray(factors)[:, names.index('distractor')])
  return [int(v) for v in values if 0 <= v < NUM_DIGITS]


def _chunked(fn, images: jax.Array, chunk: int) -> jax.Array:
  """`fn` over `images` in chunks of `chunk` with `jax.lax.map` (bounded memory)."""
  n = images.shape[0]
  chunks = math.ceil(n / chunk)
  padded = jnp.concatenate([images, jnp.zeros((chunks * chunk - n, *images.shape[1:]),
                                              images.dtype)])
  out = jax.lax.map(fn, padded.reshape(chunks, chunk, *images.shape[1:]))
  return out.reshape(chunks * chunk, *out.shape[2:])[:n]


def unit_analysis(objective, params, model_state, images: np.ndarray, labels: np.ndarray,
                  presence: np.ndarray, *, layer: str | None = None,
                  ks: Sequence[int] = unit_alignment.DEFAULT_KS,
                  recalls: Sequence[float] = unit_alignment.DEFAULT_RECALLS,
                  chunk: int = 250, num_top: int = 8, ablate: bool = True) -> dict:
  """Scores every unit of `layer` as a digit detector.

  Args:
    objective: a trained `Classifier` whose network returns its activations and takes `ablate`.
    params, model_state: its variables.
    images: [N, H, W, C] validation images; labels: int [N] classes.
    presence: bool [N, D] whether each image shows each digit.
    layer: the conv layer (default: the last one).
    ks, recalls: the precision cut-offs.
    chunk: images per forward pass.
    num_top: top-activating images kept per unit.
    ablate: also measure the ablation effect (one forward pass of the set per unit).

  Returns:
    'layer'; 'scores' [N, U]; per (unit, digit): 'ap' [U, D], 'precision_at_k' [U, D, len(ks)],
    'precision_at_recall' [U, D, len(recalls)]; per unit: 'best_digit' [U], 'alignment' [U];
    'accuracy'; with ablate: 'ablation' (see `unit_alignment.ablation_effect`, in = images with
    the unit's digit); 'top_images' [num_top, U] indices; 'top_maps' [num_top, U, H, W] in [0, 1].
  """
  if not getattr(objective, 'returns_activations', False):
    raise ValueError('unit analysis needs a classifier whose network returns its activations '
                     '(model.network=digits_convnet)')
  images = jnp.asarray(images, jnp.float32)
  presence = np.asarray(presence, bool)
  labels = np.asarray(labels).reshape(-1)

  def acts(x):
    a = objective.activations(params, model_state, x)
    return {k: v for k, v in a.items() if v.ndim == 4}

  conv_layers = list(jax.eval_shape(acts, images[:1]))
  layer = layer or conv_layers[-1]
  if layer not in conv_layers:
    raise ValueError(f'layer {layer!r} is not one of {conv_layers}')
  maps_fn = jax.jit(lambda x: _chunked(lambda c: acts(c)[layer], x, chunk))
  maps = np.asarray(maps_fn(images))  # [N, h, w, U]
  scores = maps.mean(axis=(1, 2))
  num_units = scores.shape[1]
  n = len(labels)
  ks = [int(k) for k in ks if int(k) <= n] or [n]  # cut-offs past the set are dropped
  ap = np.stack([unit_alignment.average_precision(scores, presence[:, d])
                 for d in range(presence.shape[1])], axis=1)
  p_at_k = np.stack([unit_alignment.precision_at_k(scores, presence[:, d], ks)
                     for d in range(presence.shape[1])], axis=1)
  p_at_r = np.stack([unit_alignment.precision_at_recall(scores, presence[:, d], recalls)
                     for d in range(presence.shape[1])], axis=1)
  best = np.argmax(ap, axis=1)
  logits_fn = jax.jit(lambda x: _chunked(lambda c: objective.logits(params, model_state, c), x,
                                         chunk))
  predicted = np.argmax(np.asarray(logits_fn(images)), -1)
  accuracy = float(np.mean(predicted == labels))
  per_class = np.array([np.mean(predicted[labels == c] == c) if np.any(labels == c) else np.nan
                        for c in range(int(labels.max()) + 1)])
  out = {
      'layer': layer, 'scores': scores, 'ap': ap, 'precision_at_k': p_at_k,
      'precision_at_recall': p_at_r, 'best_digit': best,
      'alignment': ap[np.arange(num_units), best], 'base_rate': presence.mean(axis=0),
      'ks': ks, 'recalls': list(recalls), 'accuracy': accuracy,
      'balanced_accuracy': float(np.nanmean(per_class)),
  }
  if ablate:
    # One compiled pass per ablated unit with the images as an argument (not baked into the
    # program as a constant, which a jit over the masks would do).
    ablated = jax.jit(lambda keep, x: _chunked(
        lambda c: objective.logits(params, model_state, c, ablate={layer: keep}), x, chunk))
    out['ablation'] = unit_alignment.ablation_effect(
        lambda keep: ablated(keep, images), labels, num_units, in_group=presence[:, best],
        traceable=False)
  top = np.argsort(-scores, axis=0, kind='stable')[:num_top]
  heat = np.stack([pictures_lib.normalised_maps(maps[top[:, u]][..., u:u + 1],
                                                images.shape[1:3],
                                                scale=[maps[..., u].max()])[..., 0]
                   for u in range(num_units)], axis=1)  # [num_top, U, H, W]
  out['top_images'], out['top_maps'] = top, heat
  return out


def summarize(result: dict, distractors: Sequence[int] = ()) -> dict:
  """Counts of single-digit detectors (AP ≥ 0.5; precision@100 ≥ 0.9) and, with distractors,
  the units whose best digit is one of them.

  AP's chance level is a digit's base rate (the share of images that contain it): 0.2 for each
  digit of the balanced pairs, but about 0.5 for a distractor that appears in every other image.
  So the summary also gives each digit's base rate and, with distractors, the largest lift of AP
  over the base rate (AP − base rate) on a distractor and on a task digit."""
  num_units = len(result['best_digit'])
  best = result['best_digit']
  p100 = result['precision_at_k'][np.arange(num_units), best, 0]
  by_ap = result['alignment'] >= DETECTOR_AP
  by_p100 = p100 >= DETECTOR_PRECISION_AT_100
  summary = {
      'num_units': num_units,
      'accuracy': result['accuracy'],
      'balanced_accuracy': result['balanced_accuracy'],
      'detectors_ap_ge_0.5': int(by_ap.sum()),
      'detectors_precision_at_100_ge_0.9': int(by_p100.sum()),
      'digits_detected': sorted({int(d) for d in best[by_ap]}),
      'mean_alignment': float(result['alignment'].mean()),
      'base_rate': [float(v) for v in result['base_rate']],
  }
  if 'ablation' in result:
    ab = result['ablation']
    summary['mean_accuracy_drop_in'] = float(np.mean(ab['accuracy_drop_in']))
    summary['mean_accuracy_drop_out'] = float(np.mean(ab['accuracy_drop_out']))
    summary['max_accuracy_drop'] = float(np.max(ab['accuracy_drop']))
  if distractors:
    on = np.isin(best, list(distractors))
    summary['distractors'] = list(distractors)
    summary['units_best_on_distractor'] = [int(u) for u in np.flatnonzero(on)]
    summary['detectors_on_distractor_ap_ge_0.5'] = int((on & by_ap).sum())
    summary['max_ap_on_distractor'] = float(result['ap'][:, list(distractors)].max())
    lift = result['ap'] - np.asarray(result['base_rate'])[None, :]
    task = [d for d in range(lift.shape[1]) if d not in distractors]
    summary['max_ap_lift_on_distractor'] = float(lift[:, list(distractors)].max())
    summary['max_ap_lift_on_task_digit'] = float(lift[:, task].max())
    if 'ablation' in result:
      summary['accuracy_drop_of_distractor_units'] = [
          float(result['ablation']['accuracy_drop'][u]) for u in np.flatnonzero(on)]
  return summary


def rows(result: dict) -> list[dict]:
  """One JSON-able row per unit."""
  out = []
  for u, d in enumerate(result['best_digit']):
    row = {
        'unit': u, 'best_digit': int(d), 'ap': float(result['alignment'][u]),
        'precision_at_k': {str(k): float(v) for k, v in
                           zip(result['ks'], result['precision_at_k'][u, d])},
        'precision_at_recall': {str(r): float(v) for r, v in
                                zip(result['recalls'], result['precision_at_recall'][u, d])},
        'ap_per_digit': [float(v) for v in result['ap'][u]],
    }
    if 'ablation' in result:
      ab = result['ablation']
      row.update({k: float(ab[k][u]) for k in ('accuracy_drop', 'accuracy_drop_in',
                                               'accuracy_drop_out', 'selectivity',
                                               'probability_drop')})
    out.append(row)
  return out


def markdown(result: dict, summary: dict, title: str) -> str:
  ks, recalls = result['ks'], result['recalls']
  head = (['unit', 'digit', 'AP'] + [f'p@{k}' for k in ks] + [f'p@r{r}' for r in recalls]
          + (['Δacc in', 'Δacc out', 'selectivity'] if 'ablation' in result else []))
  lines = [f'# {title}', '', f"validation accuracy {summary['accuracy']:.4f}; units "
           f"{summary['num_units']}; detectors: {summary['detectors_ap_ge_0.5']} with AP ≥ 0.5, "
           f"{summary['detectors_precision_at_100_ge_0.9']} with precision@100 ≥ 0.9 "
           f"(chance ≈ {float(np.mean(result['base_rate'])):.2f})", '']
  if 'distractors' in summary:
    lines += [f"distractors {summary['distractors']}: units whose best digit is one "
              f"{summary['units_best_on_distractor']}, best AP on a distractor "
              f"{summary['max_ap_on_distractor']:.3f} (base rate "
              f"{max(summary['base_rate'][d] for d in summary['distractors']):.2f}); largest AP "
              f"above base rate: {summary['max_ap_lift_on_distractor']:+.3f} on a distractor, "
              f"{summary['max_ap_lift_on_task_digit']:+.3f} on a task digit", '']
  lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in rows(result):
    cells = [str(row['unit']), str(row['best_digit']), f"{row['ap']:.3f}"]
    cells += [f'{v:.2f}' for v in row['precision_at_k'].values()]
    cells += [f'{v:.2f}' for v in row['precision_at_recall'].values()]
    if 'ablation' in result:
      cells += [f"{row['accuracy_drop_in']:+.3f}", f"{row['accuracy_drop_out']:+.3f}",
                f"{row['selectivity']:+.3f}"]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def write_figures(result: dict, images: np.ndarray, output_dir: str) -> list[str]:
  """top_images.png, ap.png, precision_at_100.png; returns the paths."""
  num_units = len(result['best_digit'])
  labels = [f"u{u}: {d} AP {a:.2f}" for u, (d, a) in
            enumerate(zip(result['best_digit'], result['alignment']))]
  paths = []
  grid = pictures_lib.top_activation_grid(
      np.asarray(images),
      result['scores'], maps=result['top_maps'], row_labels=labels,
      num=result['top_images'].shape[0], order=result['top_images'],
      title=f"{result['layer']}: each unit's top images by pooled activation (map in red)")
  paths.append(os.path.join(output_dir, 'top_images.png'))
  image_lib.save_png(paths[-1], grid)
  digits = [str(d) for d in range(result['ap'].shape[1])]
  units = [f'u{u}' for u in range(num_units)]
  paths.append(os.path.join(output_dir, 'ap.png'))
  heatmap_lib.heatmap_png(paths[-1], result['ap'], row_labels=units, col_labels=digits,
                          title='average precision of "image contains digit" per unit', vmin=0,
                          vmax=1)
  paths.append(os.path.join(output_dir, 'precision_at_100.png'))
  heatmap_lib.heatmap_png(paths[-1], result['precision_at_k'][..., 0], row_labels=units,
                          col_labels=digits, title=f"precision@{result['ks'][0]} per unit",
                          vmin=0, vmax=1)
  return paths


def analyse_workdir(workdir: str, *, step: int | None = None, split: str | None = None,
                    num_examples: int | None = None, layer: str | None = None,
                    output_dir: str | None = None, ablate: bool = True) -> dict:
  """Unit analysis of a trained classifier run; writes units.json, units.md and the figures to
  `output_dir` (default `<workdir>/units_<step>`) and returns the summary."""
  from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from disentangle_jax.training import restore  # pylint: disable=g-import-not-at-top

  model = restore.load_trained_model(workdir, step)
  objective = model.objective
  if getattr(objective, 'name', '') != 'classifier':
    raise ValueError(f'unit analysis needs a classifier run; {workdir} trained '
                     f'{model.config.objective.name!r} (dissect it with launch/dissect.py)')
  parts = list(pipeline.make_eval_iterator(model.config.data, batch_size=512, split=split,
                                           num_examples=num_examples))
  batch = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
  factor_names = model.info.factor_names
  presence = digit_presence(batch['factors'], factor_names)
  labels = np.asarray(objective.targets({'label': batch['label']}))
  result = unit_analysis(objective, model.params, model.model_state, batch['image'], labels,
                         presence, layer=layer, ablate=ablate)
  summary = summarize(result, distractor_digits(batch['factors'], factor_names))
  output_dir = output_dir or os.path.join(workdir, f'units_{model.step}')
  os.makedirs(output_dir, exist_ok=True)
  record = {'workdir': os.path.abspath(workdir), 'step': model.step,
            'dataset': model.info.name, 'num_images': int(len(labels)),
            'layer': result['layer'], 'summary': summary, 'units': rows(result)}
  variant = model.config.get('model', {}).get('network_kwargs', {}).get('variant', None)
  if variant:
    record['variant'] = variant
  image_lib.write_atomic(os.path.join(output_dir, 'units.json'),
                         json.dumps(record, indent=1).encode())
  title = f"Units of {result['layer']} ({model.info.name}, step {model.step}" + (
      f', {variant})' if variant else ')')
  text = markdown(result, summary, title)
  image_lib.write_atomic(os.path.join(output_dir, 'units.md'), text.encode())
  write_figures(result, batch['image'], output_dir)
  print(text)
  return record

"""Network Dissection of any trained model (Bau, Zhou, Khosla, Oliva, Torralba, CVPR 2017).

The probe set is the dataset's evaluation split; each image's concept masks are drawn by the
dataset's renderer from the record's factors (`ground_truth.concept_masks`: the digits of the
digit mixtures, the sprites' body parts, dSprites' shape, 3D shapes' floor / wall / object), never
stored. For every layer of feature maps of the model's representation (`activations`):

1. pass one: each unit's threshold at the top `top` (0.5 %) of its activations over every position
   of every probe image (exactly, or on a uniform sample of positions when they exceed
   `max_threshold_samples`);
2. pass two: maps upsampled bilinearly to the masks' size, binarised at the thresholds, and the
   intersection and union with every concept's masks summed over the probe set;
3. IoU per (unit, concept); a unit whose best IoU exceeds 0.04 is a detector of that concept.

`dissect_workdir` writes `dissection.json` (per layer and unit: the best concept and IoU, the full
IoU matrix, detector counts, unique concepts), `dissection.md` (the tables), an IoU heatmap per
layer and a grid per layer of each unit's top images with its binarised region (red) over the
best concept's mask (green).
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Callable, Iterator, Sequence

import numpy as np

from disentangle_jax.analysis import activations as activations_lib
from disentangle_jax.analysis import pictures as pictures_lib
from disentangle_jax.metrics import dissection as dissection_lib
from disentangle_jax.visualization import heatmap as heatmap_lib
from disentangle_jax.visualization import images as image_lib

NUM_TOP_IMAGES = 6
MAX_UNITS_SHOWN = 32


def masks_function(data_config) -> Callable[[np.ndarray], tuple[np.ndarray, tuple[str, ...]]]:
  """`factors [n, K] -> (bool masks [n, H, W, C], concept names)` for a data config's dataset,
  from its renderer; a one-line error when the dataset has none."""
  from disentangle_jax.data import datasets  # pylint: disable=g-import-not-at-top

  gt = datasets.get_ground_truth(data_config)
  node = gt
  while node is not None:  # a preprocessed or split ground truth wraps the renderer's
    fn = getattr(node, 'concept_masks', None)
    if fn is not None:
      return fn
    node = getattr(node, 'base', None)
  raise ValueError(f'dataset {data_config.name!r} has no renderer with concept masks; Network '
                   'Dissection needs a procedural dataset (mixture_of_digits, procedural_digits, '
                   'procedural_sprites, procedural_dsprites, procedural_shapes3d)')


def probe_batches(data_config, *, split: str | None = None, num_examples: int | None = None,
                  batch_size: int = 256, with_masks: bool = True) -> Iterator[dict]:
  """Batches of the probe split: 'image', 'factors' and (with_masks) 'masks' and 'concepts'."""
  from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  masks_fn = masks_function(data_config) if with_masks else None
  for batch in pipeline.make_eval_iterator(data_config, batch_size=batch_size, split=split,
                                           num_examples=num_examples):
    batch = {k: np.asarray(v) for k, v in batch.items()}
    if 'factors' not in batch:
      raise ValueError(f'dataset {data_config.name!r} records carry no factors to draw concept '
                       'masks from')
    if masks_fn is not None:
      batch['masks'], batch['concepts'] = masks_fn(batch['factors'])
    yield batch


def dissect(layer_fn: Callable, probe: Callable[[bool], Iterator[dict]], *,
            top: float = dissection_lib.TOP_QUANTILE,
            iou_threshold: float = dissection_lib.IOU_THRESHOLD,
            max_threshold_samples: int = 1_000_000, num_top_images: int = NUM_TOP_IMAGES,
            seed: int = 0) -> dict:
  """Dissects every layer `layer_fn` returns.

  Args:
    layer_fn: `images -> {layer: maps [B, h, w, U]}`.
    probe: `probe(with_masks) -> iterator of batches` ('image', and 'masks' [B, H, W, C] bool and
      'concepts' when `with_masks`), the same images in the same order at every call.
    top: the fraction of activations above each unit's threshold.
    iou_threshold: a unit detects its best concept when the IoU exceeds this.
    max_threshold_samples: positions per unit kept to set the thresholds (uniformly sampled
      beyond this; exact below).
    num_top_images: images kept per unit for the figures (highest map maximum).
    seed: the sampling of positions.

  Returns:
    {layer: {'thresholds' [U], 'intersection' [U, C], 'union' [U, C], 'iou' [U, C],
    'concepts', 'top_images' [k, U] (probe indices), 'summary' (see `metrics.dissection.summarize`)},
    '_probe': {'num_images', 'mask_shape'}}.
  """
  rng = np.random.default_rng(seed)
  # Pass one: thresholds (and each unit's strongest images).
  samples: dict[str, list[np.ndarray]] = {}
  image_max: dict[str, list[np.ndarray]] = {}
  num_images = 0
  total_positions = None
  for batch in probe(False):
    maps = {k: np.asarray(v) for k, v in layer_fn(batch['image']).items()}
    if total_positions is None:
      total_positions = {k: v.shape[1] * v.shape[2] for k, v in maps.items()}
    for name, m in maps.items():
      flat = m.reshape(-1, m.shape[-1])
      samples.setdefault(name, []).append(flat)
      image_max.setdefault(name, []).append(m.max(axis=(1, 2)))
    num_images += len(batch['image'])
    for name in samples:  # subsample as we go so that memory stays bounded
      kept = sum(len(s) for s in samples[name])
      if kept > 2 * max_threshold_samples:
        merged = np.concatenate(samples[name])
        samples[name] = [merged[rng.choice(len(merged), max_threshold_samples, replace=False)]]
  if not num_images:
    raise ValueError('the probe set is empty')
  thresholds = {}
  for name, parts in samples.items():
    merged = np.concatenate(parts)
    if len(merged) > max_threshold_samples:
      merged = merged[rng.choice(len(merged), max_threshold_samples, replace=False)]
    thresholds[name] = dissection_lib.quantile_thresholds(merged, top)
  del samples
  top_images = {name: np.argsort(-np.concatenate(v), axis=0, kind='stable')[:num_top_images]
                for name, v in image_max.items()}

  # Pass two: intersections and unions, and the top images' maps and masks for the figures.
  inter = {k: 0.0 for k in thresholds}
  union = {k: 0.0 for k in thresholds}
  wanted = np.unique(np.concatenate([t.ravel() for t in top_images.values()]))
  kept_images, kept_masks, kept_maps = {}, {}, {k: {} for k in thresholds}
  concepts, mask_shape, offset = None, None, 0
  for batch in probe(True):
    maps = layer_fn(batch['image'])
    masks = np.asarray(batch['masks']).astype(bool)
    concepts = tuple(batch['concepts'])
    mask_shape = masks.shape[1:3]
    for name, m in maps.items():
      i, u = dissection_lib.iou_counts(m, thresholds[name], masks)
      inter[name] = inter[name] + i
      union[name] = union[name] + u
    idx = np.arange(offset, offset + len(masks))
    hit = np.isin(idx, wanted)
    for j in np.flatnonzero(hit):
      kept_images[int(idx[j])] = np.asarray(batch['image'][j])
      kept_masks[int(idx[j])] = masks[j]
      for name, m in maps.items():
        kept_maps[name][int(idx[j])] = np.asarray(m[j])
    offset += len(masks)
  out = {}
  for name in thresholds:
    ious = dissection_lib.iou(inter[name], union[name])
    out[name] = {
        'thresholds': thresholds[name], 'intersection': inter[name], 'union': union[name],
        'iou': ious, 'concepts': concepts, 'top_images': top_images[name],
        'summary': dissection_lib.summarize(ious, concepts, iou_threshold),
    }
  out['_probe'] = {'num_images': num_images, 'mask_shape': tuple(int(s) for s in mask_shape),
                   'images': kept_images, 'masks': kept_masks, 'maps': kept_maps}
  return out


def unit_figure(layer: str, result: dict, probe_info: dict) -> np.ndarray:
  """Rows = units (the best IoUs first, at most 32), columns = each unit's top images: the
  unit's binarised upsampled map in red over its best concept's mask in green."""
  summary = result['summary']
  order = np.argsort(-summary['best_iou'], kind='stable')[:MAX_UNITS_SHOWN]
  rows, labels = [], []
  size = probe_info['mask_shape']
  for u in order:
    cells = []
    c = int(summary['best_concept'][u])
    for i in result['top_images'][:, u]:
      image = np.asarray(probe_info['images'][int(i)], np.float32)
      m = probe_info['maps'][layer][int(i)][None, ..., u:u + 1]
      up = np.asarray(dissection_lib.upsample(m, size))[0, ..., 0]
      region = up > result['thresholds'][u]
      concept = probe_info['masks'][int(i)][..., c]
      if image.shape[:2] != tuple(size):
        image = np.asarray(dissection_lib.upsample(image[None], size))[0]
      rgb = pictures_lib._rgb(image) * 0.5  # pylint: disable=protected-access
      rgb[..., 1] = np.maximum(rgb[..., 1], concept * 0.8)
      rgb[..., 0] = np.maximum(rgb[..., 0], region * 1.0)
      cells.append(rgb)
    rows.append(np.stack(cells))
    flag = '*' if summary['is_detector'][u] else ''
    labels.append(f"u{u} {summary['best_concept_name'][u]} {summary['best_iou'][u]:.3f}{flag}")
  return image_lib.labelled_grid(
      np.stack(rows), row_labels=labels,
      title=f'{layer}: top images; red = unit above its top-0.5% threshold, green = concept '
            '(* detector)')


def _jsonable(result: dict) -> dict:
  s = result['summary']
  return {
      'concepts': list(result['concepts']),
      'num_units': int(len(s['best_iou'])),
      'num_detectors': s['num_detectors'],
      'num_unique_concepts': s['num_unique_concepts'],
      'unique_concepts': s['unique_concepts'],
      'detectors_per_concept': s['detectors_per_concept'],
      'units': [
          {'unit': u, 'best_concept': s['best_concept_name'][u], 'iou': float(s['best_iou'][u]),
           'detector': bool(s['is_detector'][u]), 'threshold': float(result['thresholds'][u])}
          for u in range(len(s['best_iou']))
      ],
      'iou': np.round(result['iou'], 6).tolist(),
  }


def markdown(results: dict, title: str) -> str:
  lines = [f'# {title}', '', '| layer | units | detectors (IoU > thr) | unique concepts | concepts |',
           '|---|---|---|---|---|']
  for layer, r in results.items():
    lines.append(f"| {layer} | {r['num_units']} | {r['num_detectors']} | "
                 f"{r['num_unique_concepts']} | {', '.join(r['unique_concepts'])} |")
  for layer, r in results.items():
    lines += ['', f'## {layer}', '', '| unit | best concept | IoU | detector | threshold |',
              '|---|---|---|---|---|']
    for row in r['units']:
      lines.append(f"| {row['unit']} | {row['best_concept']} | {row['iou']:.4f} | "
                   f"{'yes' if row['detector'] else ''} | {row['threshold']:.4g} |")
  return '\n'.join(lines) + '\n'


def dissect_workdir(workdir: str, *, step: int | None = None, split: str | None = None,
                    num_examples: int | None = None, batch_size: int = 256,
                    layers: Sequence[str] | None = None, output_dir: str | None = None,
                    top: float = dissection_lib.TOP_QUANTILE,
                    iou_threshold: float = dissection_lib.IOU_THRESHOLD, seed: int = 0) -> dict:
  """Dissects a trained run and writes the JSON summary, the table and the figures.

  Args:
    workdir: a run directory (config.json + checkpoints).
    step: the checkpoint (default: the newest).
    split: the probe split (default: the dataset's evaluation split).
    num_examples: the probe's first records (default: all).
    batch_size: images per forward pass.
    layers: layer names (default: every layer of feature maps of the representation).
    output_dir: where files go (default `<workdir>/dissection_<step>`).
    top, iou_threshold, seed: see `dissect`.

  Returns:
    The JSON summary as a dict.
  """
  from disentangle_jax.training import restore  # pylint: disable=g-import-not-at-top

  model = restore.load_trained_model(workdir, step)
  objective, params, state = model.objective, model.params, model.model_state
  if objective.is_conditional:
    raise ValueError('dissection of conditional models is not supported: their representation '
                     'needs each image\'s condition')
  maps_fn = activations_lib.make_layer_fn(objective, layers)
  data = model.config.data
  masks_function(data)  # fails early, naming the problem

  def layer_fn(images):
    return maps_fn(params, state, np.asarray(images, np.float32))

  def probe(with_masks):
    return probe_batches(data, split=split, num_examples=num_examples, batch_size=batch_size,
                         with_masks=with_masks)

  results = dissect(layer_fn, probe, top=top, iou_threshold=iou_threshold, seed=seed)
  probe_info = results.pop('_probe')
  if not results:
    raise ValueError(f'{type(objective).__name__} has no layer of feature maps [B, h, w, U] to '
                     'dissect')
  output_dir = output_dir or os.path.join(workdir, f'dissection_{model.step}')
  os.makedirs(output_dir, exist_ok=True)
  summary = {layer: _jsonable(r) for layer, r in results.items()}
  record = {'workdir': os.path.abspath(workdir), 'step': model.step,
            'objective': model.config.objective.name, 'dataset': model.info.name,
            'num_probe_images': probe_info['num_images'], 'top_quantile': top,
            'iou_threshold': iou_threshold, 'layers': summary}
  image_lib.write_atomic(os.path.join(output_dir, 'dissection.json'),
                         json.dumps(record, indent=1).encode())
  image_lib.write_atomic(
      os.path.join(output_dir, 'dissection.md'),
      markdown(summary, f"Network Dissection of {record['objective']} on {record['dataset']} "
                        f"(step {model.step}, {probe_info['num_images']} probe images)").encode())
  for layer, r in results.items():
    safe = layer.replace('/', '_')
    u = r['iou'].shape[0]
    heatmap_lib.heatmap_png(
        os.path.join(output_dir, f'iou_{safe}.png'), r['iou'][:MAX_UNITS_SHOWN * 4],
        row_labels=[f'u{i}' for i in range(min(u, MAX_UNITS_SHOWN * 4))],
        col_labels=list(r['concepts']), title=f'{layer}: IoU per unit and concept',
        fmt='{:.2f}')
    image_lib.save_png(os.path.join(output_dir, f'units_{safe}.png'),
                       unit_figure(layer, r, probe_info))
  logging.info('Dissection written to %s', output_dir)
  print(markdown(summary, f'Network Dissection ({output_dir})').split('\n\n## ')[0])
  return record

"""Pictures of classifiers and of their units: labelled inputs, unit maps, top-activating images."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.visualization import images as image_lib

MAX_IMAGES = 8


def _rgb(images: np.ndarray) -> np.ndarray:
  images = np.asarray(images, np.float32)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return np.clip(images, 0.0, 1.0)


def normalised_maps(maps: np.ndarray, size: Sequence[int], scale=None) -> np.ndarray:
  """Maps [B, h, w, U] bilinearly upsampled to `size` and divided by `scale` ([U], default each
  map's own maximum), clipped to [0, 1]; [B, H, W, U]."""
  maps = jnp.asarray(maps, jnp.float32)
  up = np.asarray(jax.image.resize(maps, (maps.shape[0], *size, maps.shape[-1]), 'bilinear'))
  up = np.maximum(up, 0.0)
  if scale is None:
    scale = up.max(axis=(1, 2), keepdims=True)
  else:
    scale = np.asarray(scale, np.float32).reshape(1, 1, 1, -1)
  return np.clip(up / np.maximum(scale, 1e-12), 0.0, 1.0)


def overlay(images: np.ndarray, heat: np.ndarray) -> np.ndarray:
  """Greyish images [N, H, W, C] with `heat` [N, H, W] in [0, 1] shown in red; [N, H, W, 3]."""
  rgb = _rgb(images) * 0.6
  heat = np.asarray(heat, np.float32)[..., None]
  red = np.array([1.0, 0.1, 0.1], np.float32)
  return np.clip(rgb * (1 - heat) + red * heat + rgb * heat * 0.4, 0.0, 1.0)


def classifier_pictures(objective, params, model_state, batch) -> dict[str, np.ndarray]:
  """'predictions': inputs labelled 'true / predicted' (softmax head) or with their error count
  (sigmoid head); 'unit_maps' (networks that return activations): each input, then its last conv
  layer's unit maps as red overlays scaled per unit over the batch."""
  images = np.asarray(batch['image'])[:MAX_IMAGES]
  pred = np.asarray(objective.jitted('predict')(params, model_state, jnp.asarray(images)))
  target = np.asarray(objective.targets({'label': np.asarray(batch['label'])[:MAX_IMAGES]}))
  if objective.head == 'softmax':
    labels = [f'{t} / {p}' for t, p in zip(target.tolist(), pred.tolist())]
    title = 'true / predicted class'
  else:
    labels = [f'{int((p != t).sum())} wrong' for p, t in zip(pred, target)]
    title = f'attributes wrong of {target.shape[1]}'
  out = {'predictions': image_lib.labelled_grid(_rgb(images)[None], col_labels=labels,
                                                title=title)}
  if getattr(objective, 'returns_activations', False):
    acts = objective.jitted('activations')(params, model_state, jnp.asarray(images))
    conv = [k for k, v in acts.items() if np.ndim(v) == 4]
    last = np.asarray(acts[conv[-1]])
    heat = normalised_maps(last, images.shape[1:3], scale=last.max(axis=(0, 1, 2)))
    cells = [np.concatenate([_rgb(images[i])[None],
                             overlay(np.repeat(images[i][None], heat.shape[-1], 0),
                                     np.moveaxis(heat[i], -1, 0))]) for i in range(len(images))]
    out['unit_maps'] = image_lib.labelled_grid(
        np.stack(cells), col_labels=['input'] + [f'u{u}' for u in range(heat.shape[-1])],
        title=f'{conv[-1]} unit maps (red; scaled per unit over these images)')
  return out


def top_activation_grid(images: np.ndarray, scores: np.ndarray, *, maps: np.ndarray | None = None,
                        row_labels: Sequence[str] | None = None, num: int = 8,
                        title: str | None = None, order: np.ndarray | None = None) -> np.ndarray:
  """One row per unit: its `num` top-scoring images (left = highest).

  Args:
    images: [N, H, W, C] in [0, 1].
    scores: [N, U] per-image unit scores.
    maps: optional [num, U, H, W] heat in [0, 1] of the shown images (row u: unit u's map on its
      own top images, in `order`), overlaid in red.
    row_labels: U strings.
    num: images per row.
    title: a line above the grid.
    order: [N_top, U] precomputed indices (default: argsort of `scores`).

  Returns:
    uint8 [H', W', 3].
  """
  scores = np.asarray(scores)
  if order is None:
    order = np.argsort(-scores, axis=0, kind='stable')[:num]  # [num, U]
  rows = []
  for u in range(scores.shape[1]):
    idx = order[:, u]
    shown = images[idx]
    if maps is not None:
      rows.append(overlay(shown, maps[:, u]))
    else:
      rows.append(_rgb(shown))
  return image_lib.labelled_grid(np.stack(rows), row_labels=row_labels, title=title)

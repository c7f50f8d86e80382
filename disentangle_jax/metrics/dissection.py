"""Network Dissection's unit-concept IoU (Bau, Zhou, Khosla, Oliva, Torralba, CVPR 2017, §2-3).

For each unit k of a layer:
1. its threshold `T_k` is the level exceeded by the top `top` fraction (0.5 %) of its activations
   over every spatial position of every probe image (`quantile_thresholds`);
2. each activation map is upsampled bilinearly to the annotation resolution (`upsample`) and
   binarised, `M_k(x) = S_k(x) > T_k` (strictly, as the released NetDissect code compares: a unit
   that is 0 on more than 99.5 % of positions, common after a ReLU, has T_k = 0 and must not
   light up everywhere; a constant unit selects nothing);
3. for each concept c with per-pixel masks `L_c(x)`, the dataset-wide
   `IoU_{k,c} = Σ_x |M_k(x) ∧ L_c(x)| / Σ_x |M_k(x) ∨ L_c(x)|` (`iou_counts` accumulates the
   intersections and unions batch by batch);
4. the unit detects `argmax_c IoU_{k,c}` when that IoU exceeds 0.04 (`summarize`); a layer's
   interpretability is its number of detectors and of unique detected concepts.
Arrays in, arrays out; no model, no data set.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

TOP_QUANTILE = 0.005
IOU_THRESHOLD = 0.04


def quantile_thresholds(values: np.ndarray, top: float = TOP_QUANTILE) -> np.ndarray:
  """Per-unit level exceeded by the top `top` fraction of `values`.

  Args:
    values: [..., U] activations (every leading axis is pooled: images, rows, columns).
    top: the fraction above the threshold, in (0, 1).

  Returns:
    float64 [U]: the (1 - top) quantile of each unit's values (linear interpolation), so that
    a fraction `top` of them lies above it (up to ties and one value of discreteness).
  """
  if not 0.0 < top < 1.0:
    raise ValueError(f'top must lie in (0, 1), got {top}')
  values = np.asarray(values, np.float64)
  if values.ndim < 1 or values.size == 0:
    raise ValueError(f'values must be [..., U] and non-empty, got shape {values.shape}')
  flat = values.reshape(-1, values.shape[-1])
  if not np.all(np.isfinite(flat)):
    raise ValueError('activations contain NaN or infinite values')
  return np.quantile(flat, 1.0 - top, axis=0)


def upsample(maps: jax.Array, size: Sequence[int]) -> jax.Array:
  """Bilinear upsampling of maps [B, h, w, U] to [B, H, W, U] (pixel centres aligned, as
  `jax.image.resize`; an identity when the sizes agree)."""
  maps = jnp.asarray(maps, jnp.float32)
  if maps.ndim != 4:
    raise ValueError(f'maps must be [B, h, w, U], got shape {maps.shape}')
  size = tuple(int(s) for s in size)
  if maps.shape[1:3] == size:
    return maps
  return jax.image.resize(maps, (maps.shape[0], *size, maps.shape[-1]), method='bilinear')


@jax.jit
def _counts(maps, thresholds, masks):
  up = upsample(maps, masks.shape[1:3])
  active = (up > thresholds).astype(jnp.float32)  # [B, H, W, U]
  masks = masks.astype(jnp.float32)  # [B, H, W, C]
  inter = jnp.einsum('bhwu,bhwc->uc', active, masks, precision=jax.lax.Precision.HIGHEST)
  return inter, active.sum(axis=(0, 1, 2)), masks.sum(axis=(0, 1, 2))


def iou_counts(maps, thresholds, masks) -> tuple[np.ndarray, np.ndarray]:
  """Intersections and unions of one batch's binarised maps with its concept masks.

  Args:
    maps: [B, h, w, U] activation maps (upsampled here to the masks' size).
    thresholds: [U] per-unit thresholds.
    masks: bool [B, H, W, C] concept masks.

  Returns:
    (intersection [U, C], union [U, C]) pixel counts as float64, to be summed over batches.
  """
  maps = jnp.asarray(maps)
  masks = jnp.asarray(masks)
  thresholds = jnp.asarray(thresholds, jnp.float32).reshape(-1)
  if masks.ndim != 4 or maps.ndim != 4 or masks.shape[0] != maps.shape[0]:
    raise ValueError(f'maps [B, h, w, U] and masks [B, H, W, C] must share B; got {maps.shape} '
                     f'and {masks.shape}')
  if thresholds.shape[0] != maps.shape[-1]:
    raise ValueError(f'{thresholds.shape[0]} thresholds for {maps.shape[-1]} units')
  inter, unit_area, concept_area = (np.asarray(a, np.float64) for a in
                                    _counts(maps, thresholds, masks))
  union = unit_area[:, None] + concept_area[None, :] - inter
  return inter, union


def iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
  """IoU [U, C] from summed counts (0 where the union is empty)."""
  intersection, union = np.asarray(intersection, np.float64), np.asarray(union, np.float64)
  return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def summarize(ious: np.ndarray, concept_names: Sequence[str],
              threshold: float = IOU_THRESHOLD) -> dict:
  """Each unit's best concept and whether it is a detector.

  Args:
    ious: [U, C] dataset-wide IoUs.
    concept_names: C names.
    threshold: a unit is a detector when its best IoU exceeds this.

  Returns:
    'best_concept' [U] (indices), 'best_concept_name' (U names), 'best_iou' [U],
    'is_detector' bool [U], 'num_detectors', 'unique_concepts' (sorted names),
    'num_unique_concepts', 'detectors_per_concept' {name: count}.
  """
  ious = np.asarray(ious, np.float64)
  names = list(concept_names)
  if ious.ndim != 2 or ious.shape[1] != len(names):
    raise ValueError(f'ious must be [U, {len(names)}], got {ious.shape}')
  best = np.argmax(ious, axis=1)
  best_iou = ious[np.arange(len(best)), best]
  detector = best_iou > threshold
  unique = sorted({names[c] for c in best[detector]}, key=names.index)
  return {
      'best_concept': best,
      'best_concept_name': [names[c] for c in best],
      'best_iou': best_iou,
      'is_detector': detector,
      'num_detectors': int(detector.sum()),
      'unique_concepts': unique,
      'num_unique_concepts': len(unique),
      'detectors_per_concept': {n: int(np.sum(detector & (best == i))) for i, n in
                                enumerate(names)},
  }

"""Unfairness of downstream classifiers (Locatello et al., NeurIPS 2019; dlib's `fairness`).

For a target factor i and a sensitive factor j != i: a classifier for i is trained on codes (dlib's
study: `GradientBoostingClassifier()` on 10,000 points); M base factor vectors are drawn, and for
every value c of j the base vectors with j set to c are rendered and encoded and classified. With
`counts[a, c]` the number of predictions a under intervention j = c, the unfairness is the total
variation distance between each intervention's prediction distribution and the pooled one:
`TV_c = 0.5 * sum_a |counts[a, c] / n_c - sum_c' counts[a, c'] / n|`, reported as the mean over c
weighted by n_c ('mean_fairness') and the max over c ('max_fairness'). The matrices [K, K] (diagonal
unused) are then summarised over targets and sensitive factors under dlib's key names; the paper's
score is 'mean_fairness:mean_pred:mean_sens'.

Here the array core takes the codes of the interventions (`intervened_codes[j]`: [V_j, M, D]);
`sample_intervened_codes` builds them from a factors -> codes function. One model fits all targets
at once and each sensitive factor's interventions are classified for every target in one call.
Difference from dlib: dlib draws new base vectors for every (target, sensitive) pair; here the
base vectors of a sensitive factor are shared by all targets.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics import gbt as gbt_lib
from disentangle_jax.metrics._common import MIN_POINTS, check_codes, check_factors, label_encode


def inter_group_fairness(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean (weighted by group size) and max TV distance from the pooled prediction distribution.

  Args:
    counts: [..., A, C] prediction counts (A predicted classes, C sensitive groups).

  Returns:
    (mean TV [...], max TV [...]). Empty groups are left out.
  """
  counts = np.asarray(counts, np.float64)
  per_group = counts.sum(-2)  # [..., C]
  pooled = counts.sum(-1) / np.maximum(counts.sum((-2, -1)), 1)[..., None]  # [..., A]
  dist = counts / np.maximum(per_group, 1)[..., None, :]
  tv = 0.5 * np.abs(dist - pooled[..., :, None]).sum(-2)  # [..., C]
  tv = np.where(per_group > 0, tv, 0.0)
  mean = (tv * per_group).sum(-1) / np.maximum(per_group.sum(-1), 1)
  return mean, tv.max(-1)


def scores_dict(metric: np.ndarray, prefix: str) -> dict[str, float]:
  """dlib's summaries of a [K, K] (target, sensitive) matrix, diagonal excluded."""
  k = metric.shape[0]
  off = ~np.eye(k, dtype=bool)
  out = {}
  for i in range(k):
    for j in range(k):
      if i != j:
        out[f'{prefix}:pred{i}:sens{j}'] = float(metric[i, j])
  masked = np.where(off, metric, np.nan)
  row_mean, row_max = np.nanmean(masked, 1), np.nanmax(masked, 1)
  col_mean, col_max = np.nanmean(masked, 0), np.nanmax(masked, 0)
  for i in range(k):
    out[f'{prefix}:pred{i}:mean_sens'] = float(row_mean[i])
    out[f'{prefix}:pred{i}:max_sens'] = float(row_max[i])
  for j in range(k):
    out[f'{prefix}:sens{j}:mean_pred'] = float(col_mean[j])
    out[f'{prefix}:sens{j}:max_pred'] = float(col_max[j])
  out[f'{prefix}:mean_sens:mean_pred'] = float(col_mean.mean())
  out[f'{prefix}:mean_sens:max_pred'] = float(col_max.mean())
  out[f'{prefix}:max_sens:mean_pred'] = float(col_mean.max())
  out[f'{prefix}:max_sens:max_pred'] = float(col_max.max())
  out[f'{prefix}:mean_pred:mean_sens'] = float(row_mean.mean())
  out[f'{prefix}:mean_pred:max_sens'] = float(row_max.mean())
  out[f'{prefix}:max_pred:mean_sens'] = float(row_mean.max())
  out[f'{prefix}:max_pred:max_sens'] = float(row_max.max())
  return out


def sample_intervened_codes(
  encode_factors_fn: Callable[[np.ndarray], np.ndarray],
  factor_sizes: Sequence[int],
  *,
  num_points: int = 100,
  random_state: int | np.random.Generator = 0,
) -> list[np.ndarray]:
  """Codes of interventions on each factor: list over j of [V_j, num_points, D].

  Args:
    encode_factors_fn: factors [B, K] (ints in 0..V_k-1) -> codes [B, D] (render, then encode).
    factor_sizes: V_k per factor.
    num_points: base vectors per sensitive factor (dlib: num_test_points_per_class = 100).
    random_state: seed or numpy Generator; base factors are drawn uniformly per factor.
  """
  rng = np.random.default_rng(random_state)
  out = []
  for j, size in enumerate(factor_sizes):
    base = np.stack([rng.integers(0, v, num_points) for v in factor_sizes], axis=1)
    batch = np.repeat(base[None], size, axis=0)
    batch[:, :, j] = np.arange(size)[:, None]
    codes = np.asarray(encode_factors_fn(batch.reshape(-1, len(factor_sizes))))
    out.append(codes.reshape(size, num_points, -1))
  return out


def fairness(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  intervened_codes: Sequence[ArrayLike],
  *,
  num_bins: int = 128,
) -> dict:
  """dlib's unfairness scores of boosted-tree classifiers.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer labels to train on.
    intervened_codes: for each factor j, [V_j, M, D] codes with factor j set to each of its V_j
      values (`sample_intervened_codes`).
    num_bins: split bins of the boosted trees.

  Returns:
    dlib's 'mean_fairness:*' and 'max_fairness:*' keys (floats) plus the matrices
    'mean_fairness' and 'max_fairness' [K, K] (target, sensitive; diagonal 0).

  Degenerate inputs: NaN/inf raise ValueError; fewer than two factors or two training points,
  ValueError. A target
  factor with a single training value is always predicted as that value (unfairness 0).
  """
  x = check_codes(codes_train, 'codes_train', min_points=MIN_POINTS, metric='fairness')
  x = x.astype(np.float64)
  y = check_factors(factors_train, x.shape[0], 'factors_train')
  k = y.shape[1]
  if k < 2:
    raise ValueError('fairness needs at least two factors')
  if len(intervened_codes) != k:
    raise ValueError(f'need intervened codes for each of the {k} factors')
  _, sizes = label_encode(y)
  model = gbt_lib.fit_gbt(x, y, num_bins=num_bins)
  mean = np.zeros((k, k))
  worst = np.zeros((k, k))
  for j, codes in enumerate(intervened_codes):
    codes = np.asarray(codes)
    if codes.ndim != 3:
      raise ValueError(f'intervened_codes[{j}] must be [V_j, M, D], got {codes.shape}')
    v, m, d = codes.shape
    pred = model.predict(check_codes(codes.reshape(v * m, d), 'intervened codes'))
    pred = pred.reshape(v, m, k)
    # counts[i, a, c]: target i predicted as a under intervention j = c, for all targets at once.
    width = max(sizes)
    flat = (np.arange(k)[None, None, :] * width + pred) * v + np.arange(v)[:, None, None]
    counts = np.bincount(flat.reshape(-1), minlength=k * width * v).reshape(k, width, v)
    mean[:, j], worst[:, j] = inter_group_fairness(counts)
    mean[j, j] = worst[j, j] = 0.0
  out = scores_dict(mean, 'mean_fairness')
  out.update(scores_dict(worst, 'max_fairness'))
  out['mean_fairness'] = mean
  out['max_fairness'] = worst
  return out

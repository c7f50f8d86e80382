"""Unsupervised Disentanglement Ranking (Duan et al., ICLR 2020), as dlib's `udr_sklearn`.

For models trained with different seeds and hyperparameters, on the same observations
(dlib: 1,000 points):
1. standardise each model's mean codes, and zero the dimensions whose average KL is <= 0.01;
2. for each ordered pair (i, j), i != j, a similarity matrix R [D_i, D_j]: either the absolute
   coefficients of a Lasso (alpha = 0.1) regression of model j's codes on model i's ('lasso',
   UDR_L) or the absolute Spearman correlations ('spearman', UDR_S);
3. keep the rows of informative dimensions of i and the columns of informative dimensions of j
   (KL > threshold) and score `0.5 * [mean_cols(max_rows R^2 / sum_rows R) +
   mean_rows(max_cols R^2 / sum_cols R)]`, a 0/0 ratio counting as 0;
4. a model's score is the median of the scores of the pairs (j, i), j != i.

The Spearman matrices of all pairs come from one rank transform and one matmul; the Lasso fits
use scikit-learn (one multi-output fit per ordered pair, as dlib). dlib quirk: it zeroes
dimensions with KL <= 0.01 whatever its `kl_filter_threshold`; here `kl_threshold` is used for
both (identical at the default 0.01).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.stats
from jax.typing import ArrayLike
from sklearn import linear_model

from disentangle_jax.metrics._common import MIN_POINTS, check_codes, standardise


def relative_strength(corr: np.ndarray) -> float:
  """dlib's `relative_strength_disentanglement` of a non-negative [A, B] matrix (0/0 -> 0)."""
  if corr.size == 0:
    return 0.0
  with np.errstate(divide='ignore', invalid='ignore'):
    x = np.nan_to_num(corr.max(0) ** 2 / corr.sum(0))
    y = np.nan_to_num(corr.max(1) ** 2 / corr.sum(1))
  return float((x.mean() + y.mean()) / 2)


def _standardise(x: np.ndarray) -> np.ndarray:
  return standardise(x)[0]


def spearman_matrices(codes: Sequence[np.ndarray]) -> np.ndarray:
  """|Spearman correlation| between every pair of dimensions of every pair of models.

  Returns [M, M, D, D] (constant dimensions correlate 0 with everything; scipy gives NaN).
  """
  ranks = np.stack([scipy.stats.rankdata(c, axis=0) for c in codes])  # [M, N, D]
  z = ranks - ranks.mean(1, keepdims=True)
  norm = np.sqrt((z**2).sum(1, keepdims=True))
  z = z / np.where(norm > 0, norm, 1.0)
  return np.abs(np.einsum('ind,jne->ijde', z, z))


def udr(
  codes: Sequence[ArrayLike],
  kl: Sequence[ArrayLike],
  *,
  correlation: str = 'lasso',
  kl_threshold: float = 0.01,
  filter_low_kl: bool = True,
  alpha: float = 0.1,
) -> dict:
  """UDR scores of M models from their codes of the same observations.

  Args:
    codes: M arrays [N, D] of mean codes (same N and D for all; rows = the same observations).
    kl: M arrays [D] of each dimension's average KL to the prior, `0.5 * mean_n(mu^2 + sigma^2 -
      log sigma^2 - 1)`.
    correlation: 'lasso' (UDR_L, dlib's default) or 'spearman' (UDR_S).
    kl_threshold: dimensions with KL <= threshold are uninformative.
    filter_low_kl: drop uninformative rows/columns before scoring (dlib default True).
    alpha: Lasso penalty.

  Returns:
    'model_scores' [M], 'pairwise_disentanglement_scores' [M, M] (diagonal 0),
    'raw_correlations' [M, M, D, D].

  Degenerate inputs: NaN/inf raise ValueError; fewer than two models or two points, ValueError. A pair with no
  informative dimension on either side scores 0 (dlib: mean of an empty array, NaN).
  """
  if correlation not in ('lasso', 'spearman'):
    raise ValueError(f"correlation must be 'lasso' or 'spearman', got {correlation!r}")
  m = len(codes)
  if m < 2 or len(kl) != m:
    raise ValueError('UDR needs at least two models, each with codes and KL')
  reps = [check_codes(c, f'codes[{i}]', min_points=MIN_POINTS, metric='udr').astype(np.float64)
          for i, c in enumerate(codes)]
  if len({r.shape for r in reps}) != 1:
    raise ValueError('all models must have codes of the same shape')
  kls = [np.asarray(k, np.float64).reshape(-1) for k in kl]
  d = reps[0].shape[1]
  if any(k.size != d for k in kls):
    raise ValueError('each KL vector must have one entry per code dimension')
  masks = [k > kl_threshold for k in kls]
  reps = [_standardise(r) * mask for r, mask in zip(reps, masks)]
  if correlation == 'spearman':
    raw = spearman_matrices(reps)
  else:
    raw = np.zeros((m, m, d, d))
    for i in range(m):
      for j in range(m):
        if i != j:
          # Multi-output Lasso: one independent fit per target dimension of model j.
          coef = linear_model.Lasso(alpha=alpha).fit(reps[i], reps[j]).coef_
          raw[i, j] = np.abs(np.atleast_2d(coef)).T
  pairwise = np.zeros((m, m))
  for i in range(m):
    for j in range(m):
      if i != j:
        r = raw[i, j][masks[i]][:, masks[j]] if filter_low_kl else raw[i, j]
        pairwise[i, j] = relative_strength(r)
  model_scores = np.array([np.median(np.delete(pairwise[:, i], i)) for i in range(m)])
  for i in range(m):
    raw[i, i] = 0.0
  return {
    'model_scores': model_scores,
    'pairwise_disentanglement_scores': pairwise,
    'raw_correlations': raw,
  }

"""Scores of the code-factor mutual-information matrix: MIG-sup, DCIMIG, JEMMIG, MED, top-k MED.

All five start where MIG does: each code dimension discretised into dlib's 20 equal-width bins,
the discrete mutual information `I[j, k] = I(z_j; v_k)` (nats) of every (code, factor) pair and
the factor entropies `H(v_k)` (`discretize.codes_factors_mutual_info`). They aggregate it
differently:

- **MIG-sup** (Li, Murkute, Gyawali & Wang, ICLR 2020, "Progressive learning and disentanglement
  of hierarchical representations"): MIG's gap taken per code dimension instead of per
  factor, so that it penalises a code that carries several factors (MIG penalises a factor
  spread over several codes):
  `(1/D) sum_j (Ihat[j, k1] - Ihat[j, k2])` with `Ihat = I / H(v)` and k1, k2 the two factors
  with the largest normalised MI with z_j. Higher is better; 1 for a one-to-one code.
- **DCIMIG** (Sepliarskaia, Kiseleva & de Rijke 2019, "How to not measure disentanglement"):
  per code dimension j, its gap `g_j = I[j, k_j] - max_{k != k_j} I[j, k]` with
  `k_j = argmax_k I[j, k]`; per factor, the best gap among the codes that chose it,
  `S_k = max_{j: k_j = k} g_j` (0 if none); `DCIMIG = sum_k S_k / sum_k H(v_k)`. It penalises
  mixing (the gap) and missing factors (S_k = 0) and, unlike MIG, not a factor copied into two
  codes. Higher is better.
- **JEMMIG** (Do & Tran, ICLR 2020, "Theory and evaluation metrics for learning disentangled
  representations"): per factor, with j1 and j2 the codes with the largest and second
  largest MI, `JEMMIG_k = H(z_j1, v_k) - I(z_j1; v_k) + I(z_j2; v_k)`, the joint entropy being
  `H(z_j1) + H(v_k) - I(z_j1; v_k)` on the binned code. It is 0 for a code whose bins and the
  factor's values determine each other and no other code knows the factor; lower is better.
  Normalised by its bound `H(v_k) + log(num_bins)`, it lies in [0, 1]: 'jemmig' is the mean of
  the normalised values. Do & Tran estimate the entropies from the encoder's distribution with a
  quantised code; here they are plug-in estimates on dlib's binning, like MIG's.
- **MED** and **top-k MED** (Cao, Nai, Yang, Ji, Wang, Ren & Zhou, NeurIPS 2022, "An empirical
  study on disentanglement of negative-free contrastive learning"): DCI's
  disentanglement and completeness (`dci.scores_from_importance`) with the importance matrix
  `R[j, k] = I[j, k] / sum_j I[j, k]` (each factor's MI normalised over codes). Top-k MED keeps,
  for every factor, the k codes of highest per-code disentanglement among those whose largest
  importance is that factor, and scores the union of the kept codes: a high-dimensional
  representation is not drowned by its many uninformative dimensions.

A factor with a single value (entropy 0) is left out where it would divide by 0 (its column
of `Ihat` is 0; it adds nothing to DCIMIG's sums; JEMMIG's mean skips it). A constant code
dimension has MI 0 (the package's degenerate-input policy).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics import dci as dci_lib
from disentangle_jax.metrics._common import (
  MI_TOL,
  MIN_POINTS,
  check_codes,
  float64,
  require_varying,
)
from disentangle_jax.metrics.discretize import (
  codes_factors_mutual_info,
  discrete_entropy,
  histogram_discretize,
)


def _top_two(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(largest, second largest, argmax) along `axis`; the second is 0 when the axis has length 1."""
  order = np.argsort(-values, axis=axis, kind='stable')
  top = np.take_along_axis(values, np.take(order, [0], axis=axis), axis=axis).squeeze(axis)
  if values.shape[axis] > 1:
    second = np.take_along_axis(values, np.take(order, [1], axis=axis), axis=axis).squeeze(axis)
  else:
    second = np.zeros_like(top)
  return top, second, np.take(order, 0, axis=axis)


def mig_sup_from_mutual_info(mutual_info: np.ndarray, entropy: np.ndarray) -> dict:
  """MIG-sup of a [D, K] MI matrix and [K] factor entropies: (mean, per code [D])."""
  valid = entropy > MI_TOL
  nmi = np.where(valid[None], mutual_info / np.where(valid, entropy, 1.0)[None], 0.0)
  top, second, _ = _top_two(nmi, axis=1)
  gap = top - second
  return {'mig_sup': float(gap.mean()), 'mig_sup_per_code': gap}


def dcimig_from_mutual_info(mutual_info: np.ndarray, entropy: np.ndarray) -> dict:
  """DCIMIG of a [D, K] MI matrix and [K] factor entropies."""
  top, second, choice = _top_two(mutual_info, axis=1)
  gap = np.where(top > MI_TOL, top - second, 0.0)  # an uninformative code chooses nothing
  k = mutual_info.shape[1]
  per_factor = np.zeros(k)
  np.maximum.at(per_factor, choice, gap)
  total = entropy.sum()
  return {
    'dcimig': float(per_factor.sum() / total) if total > MI_TOL else 0.0,
    'dcimig_per_factor': per_factor,
    'dcimig_gap_per_code': gap,
  }


def jemmig_from_mutual_info(
  mutual_info: np.ndarray, entropy: np.ndarray, code_entropy: np.ndarray, num_bins: int
) -> dict:
  """JEMMIG of a [D, K] MI matrix, [K] factor and [D] binned-code entropies."""
  top, second, best = _top_two(mutual_info, axis=0)
  joint = code_entropy[best] + entropy - top
  raw = joint - top + second
  bound = entropy + np.log(num_bins)
  normalised = raw / bound
  valid = entropy > MI_TOL
  return {
    'jemmig': float(normalised[valid].mean()),
    'jemmig_per_factor': normalised,
    'jemmig_unnormalised_per_factor': raw,
  }


def med_from_mutual_info(mutual_info: np.ndarray, top_k: int | None = None) -> dict:
  """MED (and with `top_k`, top-k MED) of a [D, K] MI matrix."""
  total = mutual_info.sum(axis=0)
  importance = np.where(total > MI_TOL, mutual_info / np.where(total > MI_TOL, total, 1.0), 0.0)
  with float64():
    full = {k: np.asarray(v) for k, v in dci_lib.scores_from_importance(
      jnp.asarray(importance)).items()}
  out = {
    'med_disentanglement': float(full['disentanglement']),
    'med_completeness': float(full['completeness']),
    'med_importance': importance,
  }
  if top_k is not None:
    if top_k < 1:
      raise ValueError(f'top_k must be >= 1, got {top_k}')
    kept = select_top_k(importance, full['disentanglement_per_code'], top_k)
    with float64():
      sub = dci_lib.scores_from_importance(jnp.asarray(importance[kept]))
      out['topk_med_disentanglement'] = float(sub['disentanglement'])
      out['topk_med_completeness'] = float(sub['completeness'])
    out['topk_med_codes'] = kept
  return out


def select_top_k(importance: np.ndarray, per_code: np.ndarray, k: int) -> np.ndarray:
  """Top-k MED's codes: per factor, the k most disentangled codes whose largest importance is that
  factor (ties by index); returns the sorted union of their indices."""
  choice = np.argmax(importance, axis=1)
  informative = importance.max(axis=1) > 0
  kept = []
  for f in range(importance.shape[1]):
    codes = np.nonzero((choice == f) & informative)[0]
    order = codes[np.argsort(-per_code[codes], kind='stable')]
    kept.extend(order[:k].tolist())
  return np.array(sorted(kept), np.int64)


def information_scores(
  codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20, top_k: int = 1,
  metric: str = 'information',
) -> dict:
  """MIG-sup, DCIMIG, JEMMIG, MED and top-k MED of codes against factors.

  Args:
    codes: [N, D] codes; factors: [N, K] integer labels.
    num_bins: histogram bins per code dimension (dlib: 20).
    top_k: the k of top-k MED (the paper reports k = 1 and larger ks on wide representations).
    metric: the name errors give.

  Returns:
    'mig_sup', 'dcimig', 'jemmig' (lower is better), 'med_disentanglement',
    'med_completeness', 'topk_med_disentanglement', 'topk_med_completeness' (floats); per-code and
    per-factor arrays behind them; 'mutual_info' [D, K] and 'factor_entropy' [K].

  Degenerate inputs (the package's policy): NaN/inf and fewer than 2 points raise ValueError; no
  varying factor, ValueError.
  """
  x = check_codes(codes, min_points=MIN_POINTS, metric=metric)
  mi, h, _, sizes = codes_factors_mutual_info(x, factors, num_bins, metric=metric)
  require_varying(sizes, metric)
  with float64():
    code_h = np.asarray(discrete_entropy(jnp.asarray(histogram_discretize(x, num_bins)),
                                         num_values=num_bins + 1))
  out = {'mutual_info': mi, 'factor_entropy': h}
  out.update(mig_sup_from_mutual_info(mi, h))
  out.update(dcimig_from_mutual_info(mi, h))
  out.update(jemmig_from_mutual_info(mi, h, code_h, num_bins))
  out.update(med_from_mutual_info(mi, top_k))
  return out


def _subset(prefixes, codes, factors, **kwargs):
  out = information_scores(codes, factors, metric=prefixes[0], **kwargs)
  return {k: v for k, v in out.items()
          if k.startswith(prefixes) or k in ('mutual_info', 'factor_entropy')}


def mig_sup(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20) -> dict:
  """MIG-sup (Li et al. 2020): 'mig_sup', 'mig_sup_per_code' [D] (see `information_scores`)."""
  return _subset(('mig_sup',), codes, factors, num_bins=num_bins)


def dcimig(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20) -> dict:
  """DCIMIG (Sepliarskaia et al. 2019): 'dcimig' and its per-factor and per-code terms."""
  return _subset(('dcimig',), codes, factors, num_bins=num_bins)


def jemmig(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20) -> dict:
  """JEMMIG (Do & Tran 2020), normalised to [0, 1], lower is better: 'jemmig' and per factor."""
  return _subset(('jemmig',), codes, factors, num_bins=num_bins)


def med(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20, top_k: int = 1) -> dict:
  """MED and top-k MED (Cao et al. 2022): 'med_*' and 'topk_med_*' (see `information_scores`)."""
  return _subset(('med', 'topk_med'), codes, factors, num_bins=num_bins, top_k=top_k)

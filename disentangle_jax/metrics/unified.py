"""dlib's unified scores: every code-factor matrix under every aggregation (Locatello et al.).

disentanglement_lib's `unified_scores` (Locatello, Bauer, Lucic, Rätsch, Gelly, Schölkopf &
Bachem, JMLR 2020, "A sober look at the unsupervised learning of disentangled representations
and their evaluation") observes that DCI, MIG, SAP and modularity each build a matrix
relating codes to factors and then aggregate it, and crosses the two choices:

matrices [D, K]:
- 'importance_gbt_matrix': DCI's boosted-tree importances (`dci.gbt_importance`);
- 'mutual_information_matrix': MIG's discrete MI on 20-bin codes;
- 'accuracy_svm_matrix': SAP's test accuracies of the 1-D linear SVMs;
aggregations of each matrix M:
- 'dci_disentanglement', 'dci_completeness' (and 'dci', the disentanglement again, as dlib):
  DCI's entropy aggregation;
- 'mig': mean over factors of (largest - second largest entry of the column) / H(factor);
- 'sap': mean over factors of the same gap, not normalised;
- 'modularity': Ridgeway & Mozer's modularity of the rows;
- 'area_precision', 'max_precision': the threshold curve of the number of independent groups,
  the connected components (with at least one edge) of the bipartite code-factor graph that keeps
  the entries at or above a threshold, over the thresholds at every entry in decreasing order:
  its trapezoid area and its maximum.
Keys are `'<matrix>.<aggregation>'`, as dlib's namespaced results. The MI matrix under 'mig',
the SVM matrix under 'sap', the GBT matrix under 'dci_*' and the MI matrix under 'modularity'
are the four original scores.

Differences from dlib: the per-code and per-factor entries are returned as arrays (dlib makes one
key each); no plots; a single-valued factor (dlib divides by its zero entropy) has a 'mig' gap of
0 and is left out of the mean; the package's degenerate-input policy applies.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from jax.typing import ArrayLike

from disentangle_jax.metrics import dci as dci_lib
from disentangle_jax.metrics import dlib_protocol
from disentangle_jax.metrics import modularity as modularity_lib
from disentangle_jax.metrics import sap as sap_lib
from disentangle_jax.metrics._common import (
  MI_TOL,
  MIN_POINTS,
  check_codes,
  check_factors,
  float64,
  require_varying,
)
from disentangle_jax.metrics.discretize import codes_factors_mutual_info

MATRICES = ('importance_gbt_matrix', 'mutual_information_matrix', 'accuracy_svm_matrix')


def independent_groups(matrix: np.ndarray, threshold: float) -> int:
  """Connected components with an edge in the code-factor graph of entries >= threshold (> 0)."""
  edges = (matrix >= threshold) & (matrix != 0)
  d, k = matrix.shape
  graph = scipy.sparse.bmat([[None, scipy.sparse.csr_matrix(edges)],
                             [scipy.sparse.csr_matrix(edges.T), None]], format='csr')
  _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
  with_edge = np.zeros(d + k, bool)
  rows, cols = np.nonzero(edges)
  with_edge[rows] = with_edge[d + cols] = True
  return int(np.unique(labels[with_edge]).size)


def precision_curve_values(matrix: np.ndarray) -> dict[str, float]:
  """'area_precision' (trapezoids over the decreasing entries) and 'max_precision'."""
  thresholds = np.sort(matrix.reshape(-1))[::-1]
  groups = np.array([independent_groups(matrix, t) for t in thresholds], np.float64)
  area = float(np.sum((groups[:-1] + groups[1:]) * (thresholds[:-1] - thresholds[1:]) * 0.5))
  return {'area_precision': area, 'max_precision': float(groups.max())}


def aggregate(matrix: np.ndarray, factor_entropy: np.ndarray) -> dict:
  """Every aggregation of one [D, K] matrix (see the module docstring)."""
  with float64():
    d = {k: np.asarray(v) for k, v in dci_lib.scores_from_importance(jnp.asarray(matrix)).items()}
    modularity = modularity_lib.modularity_from_mutual_info(jnp.asarray(matrix))
    modularity_per_code = np.asarray(modularity['modularity_per_code'])
  ordered = np.sort(matrix, axis=0)[::-1]
  gap = ordered[0] - (ordered[1] if matrix.shape[0] > 1 else 0.0)
  valid = factor_entropy > MI_TOL
  mig_per_factor = np.where(valid, gap / np.where(valid, factor_entropy, 1.0), 0.0)
  out = {
    'dci_disentanglement': float(d['disentanglement']),
    'dci_completeness': float(d['completeness']),
    'dci': float(d['disentanglement']),
    'dci_disentanglement_per_code': d['disentanglement_per_code'],
    'dci_completeness_per_factor': d['completeness_per_factor'],
    'mig': float(mig_per_factor[valid].mean()),
    'mig_per_factor': mig_per_factor,
    'sap': float(gap.mean()),
    'sap_per_factor': gap,
    'modularity': float(modularity_per_code.mean()),
    'modularity_per_code': modularity_per_code,
  }
  out.update(precision_curve_values(matrix))
  return out


def unified_scores(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  codes_test: ArrayLike,
  factors_test: ArrayLike,
  *,
  matrices: Sequence[str] = MATRICES,
  num_bins: int = 20,
  protocol: str = 'fast',
) -> dict:
  """dlib's unified scores.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer factors (dlib: 10,000).
    codes_test, factors_test: [M, D], [M, K] (the GBT and SVM matrices are scored on them).
    matrices: which of `MATRICES` to build.
    num_bins: code bins of the MI matrix and of nothing else.
    protocol: 'fast' (the JAX boosted trees and exact SVMs of DCI and SAP) or 'dlib'
      (scikit-learn's `GradientBoostingClassifier()` and `LinearSVC`, as disentanglement_lib 1.5;
      see `dlib_protocol`). The MI matrix is the same under both.

  Returns:
    `'<matrix>.<aggregation>'` floats and arrays, and `'<matrix>'` itself [D, K].

  Degenerate inputs (the package's policy): NaN/inf, fewer than 2 training points or no varying
  factor raise ValueError.
  """
  unknown = sorted(set(matrices) - set(MATRICES))
  if unknown:
    raise ValueError(f'unknown matrices {unknown}; choose from {MATRICES}')
  xtr = check_codes(codes_train, 'codes_train', min_points=MIN_POINTS, metric='unified')
  xte = check_codes(codes_test, 'codes_test')
  ytr = check_factors(factors_train, xtr.shape[0], 'factors_train')
  yte = check_factors(factors_test, xte.shape[0], 'factors_test')
  mi, entropy, _, sizes = codes_factors_mutual_info(xtr, ytr, num_bins, metric='unified')
  require_varying(sizes, 'unified')
  dlib_protocol.check_protocol(protocol)
  dlib = protocol == 'dlib'
  built = {}
  if 'importance_gbt_matrix' in matrices:
    fit = dlib_protocol.gbt_importance if dlib else dci_lib.gbt_importance
    built['importance_gbt_matrix'] = fit(xtr, ytr, xte, yte)[0]
  if 'mutual_information_matrix' in matrices:
    built['mutual_information_matrix'] = mi
  if 'accuracy_svm_matrix' in matrices:
    if dlib:
      built['accuracy_svm_matrix'] = dlib_protocol.sap_score_matrix(xtr, ytr, xte, yte)
    else:
      built['accuracy_svm_matrix'] = sap_lib.discrete_score_matrix(xtr, ytr, xte, yte)[0]
  out = {}
  for name, matrix in built.items():
    out[name] = np.asarray(matrix, np.float64)
    for key, value in aggregate(out[name], entropy).items():
      out[f'{name}.{key}'] = value
  return out

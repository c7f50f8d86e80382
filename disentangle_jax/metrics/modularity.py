"""Modularity and explicitness (Ridgeway & Mozer 2018) as dlib computes them.

Modularity: with m_ik the discrete MI between 20-bin code i and factor k and theta_i = max_k m_ik,
`modularity_i = 1 - (sum_k m_ik^2 - theta_i^2) / (theta_i^2 (K - 1))` (0 when theta_i = 0); the score
is the mean over codes. Explicitness: codes standardised with the training mean and std, one
default `LogisticRegression()` (C = 1, lbfgs, multinomial) per factor on the whole code, and the
macro ROC-AUC of its probabilities against the one-hot labels; the score is the mean over factors,
on the training and the test set.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jax.typing import ArrayLike

from disentangle_jax.metrics import _logistic, dlib_protocol
from disentangle_jax.metrics._common import (
  MI_TOL,
  MIN_POINTS,
  check_codes,
  check_factors,
  float64,
  label_encode,
  require_varying,
  standardise,
)
from disentangle_jax.metrics.discretize import codes_factors_mutual_info


@jax.jit
def modularity_from_mutual_info(mutual_info: jax.Array) -> dict[str, jax.Array]:
  """[D, K] mutual information -> 'modularity_score' and 'modularity_per_code' [D].

  A code with no information about any factor (theta <= `MI_TOL`: rounding leaves about 1e-16
  nats on a constant code, which dlib's `theta > 0` test lets through as a perfect score) scores
  0. With a single factor (K = 1, dlib: 0/0) an informative code scores 1.
  """
  sq = jnp.square(mutual_info)
  top = jnp.max(sq, axis=1)
  informative = jnp.max(mutual_info, axis=1) > MI_TOL
  k = mutual_info.shape[1]
  if k > 1:
    delta = (jnp.sum(sq, axis=1) - top) / jnp.where(informative, top * (k - 1), 1.0)
  else:
    delta = jnp.zeros_like(top)
  per_code = jnp.where(informative, 1.0 - delta, 0.0)
  return {'modularity_score': jnp.mean(per_code), 'modularity_per_code': per_code}


def modularity(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20) -> dict:
  """dlib's modularity score.

  Args:
    codes: [N, D] codes; factors: [N, K] integer labels; num_bins: code histogram bins (20).

  Returns:
    'modularity_score' (float), 'modularity_per_code' [D], 'mutual_info' [D, K].

  Degenerate inputs (the package's policy): NaN/inf codes and fewer than 2 points raise
  ValueError; a constant code scores 0 (dlib: 1.0 from rounding); a constant factor has MI 0 and
  still counts in K - 1, as in dlib; no varying factor, ValueError.
  """
  mi, _, _, sizes = codes_factors_mutual_info(codes, factors, num_bins, metric='modularity')
  require_varying(sizes, 'modularity')
  with float64():
    out = modularity_from_mutual_info(jnp.asarray(mi))
    per_code = np.asarray(out['modularity_per_code'])
  return {
    'modularity_score': float(per_code.mean()),
    'modularity_per_code': per_code,
    'mutual_info': mi,
  }


def macro_roc_auc(proba: np.ndarray, labels: np.ndarray) -> float:
  """Macro ROC-AUC of [N, C] class scores against labels in 0..C-1, one-vs-rest per class.

  This is `roc_auc_score(one_hot(labels), proba)` (sklearn, average='macro'), computed for all
  classes at once from average ranks (Mann-Whitney U, ties counted half). Classes with no positive
  or no negative in `labels` are left out (sklearn would raise).
  """
  onehot = labels[:, None] == np.arange(proba.shape[1])[None, :]
  pos = onehot.sum(0)
  neg = onehot.shape[0] - pos
  ranks = scipy.stats.rankdata(proba, axis=0)
  u = (ranks * onehot).sum(0) - pos * (pos + 1) / 2.0
  ok = (pos > 0) & (neg > 0)
  if not ok.any():
    raise ValueError('ROC-AUC needs a class with both positive and negative examples')
  return float(np.mean(u[ok] / (pos[ok] * neg[ok])))


def explicitness(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  codes_test: ArrayLike,
  factors_test: ArrayLike,
  *,
  protocol: str = 'fast',
) -> dict:
  """dlib's explicitness: macro ROC-AUC of one logistic regression per factor on the full code.

  The classifier is sklearn's default `LogisticRegression()` objective (C = 1, multinomial; binomial
  for two classes) solved to convergence by batched L-BFGS in JAX for all factors at once; sklearn
  stops after 100 iterations at tolerance 1e-4, so the AUCs agree to about 1e-3, not bit for bit.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer labels to fit on.
    codes_test, factors_test: [M, D] and [M, K] to evaluate on.
    protocol: 'fast' (the converged batched fits above) or 'dlib' (scikit-learn's
      `LogisticRegression()` per factor, stopped at 100 iterations as in disentanglement_lib 1.5
      and the published tables; see `dlib_protocol`).

  Returns:
    'explicitness_score_train', 'explicitness_score_test' (floats: means over factors), and
    'explicitness_per_factor_train' / '_test' [K].

  Degenerate inputs: NaN/inf and fewer than 2 training points raise ValueError. A constant code
  dimension is standardised to 0
  (dlib divides by a zero std and produces NaN). A factor with a single training value cannot be
  classified: it is left out of the means and its per-factor entries are 1.0 (it is trivially
  explicit); if no factor varies, ValueError. Test labels unseen in training count as negatives for
  every class; classes without positives in an evaluated set are left out of its macro average.
  """
  xtr = check_codes(codes_train, 'codes_train', min_points=MIN_POINTS, metric='explicitness')
  xte = check_codes(codes_test, 'codes_test')
  ytr = check_factors(factors_train, xtr.shape[0], 'factors_train')
  yte = check_factors(factors_test, xte.shape[0], 'factors_test')
  xtr, xte = standardise(xtr, xte)
  enc, sizes = label_encode(ytr)
  varying = require_varying(sizes, 'explicitness')
  fit_cols = np.nonzero(varying)[0]
  dlib_protocol.check_protocol(protocol)
  if protocol == 'dlib':
    p_tr, p_te = dlib_protocol.explicitness_probabilities(xtr, enc[:, fit_cols], (xtr, xte))
  else:
    w, b, valid = _logistic.fit_per_factor(
      xtr, enc[:, fit_cols], [sizes[k] for k in fit_cols], l2=1.0
    )
    p_tr = np.asarray(_logistic.predict_proba(np.asarray(xtr, np.float32), w, b, valid),
                      np.float64)
    p_te = np.asarray(_logistic.predict_proba(np.asarray(xte, np.float32), w, b, valid),
                      np.float64)
  k_all = ytr.shape[1]
  train = np.ones(k_all)
  test = np.ones(k_all)
  for i, k in enumerate(fit_cols):
    classes = np.unique(ytr[:, k])
    c = sizes[k]
    train[k] = macro_roc_auc(p_tr[i][:, :c], enc[:, k])
    # Test labels in the training label space; unseen values match no class.
    pos = np.searchsorted(classes, yte[:, k])
    seen = (pos < c) & (classes[np.minimum(pos, c - 1)] == yte[:, k])
    test[k] = macro_roc_auc(p_te[i][:, :c], np.where(seen, pos, c))
  return {
    'explicitness_score_train': float(train[varying].mean()),
    'explicitness_score_test': float(test[varying].mean()),
    'explicitness_per_factor_train': train,
    'explicitness_per_factor_test': test,
  }


def modularity_explicitness(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  codes_test: ArrayLike,
  factors_test: ArrayLike,
  *,
  num_bins: int = 20,
  protocol: str = 'fast',
) -> dict:
  """dlib's `modularity_explicitness` metric: modularity on the training set plus explicitness.

  `protocol` is explicitness's (modularity is the same under both).
  """
  out = modularity(codes_train, factors_train, num_bins=num_bins)
  out.update(explicitness(codes_train, factors_train, codes_test, factors_test,
                          protocol=protocol))
  return out

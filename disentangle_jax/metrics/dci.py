"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams, ICLR 2018).

From an importance matrix R [D codes, K factors]:
- disentanglement `D_i = 1 - H_K(P_i.)` with `P_ik = R_ik / sum_k R_ik` (entropy in base K), the
  total `sum_i rho_i D_i` with `rho_i = sum_k R_ik / sum R`;
- completeness `C_k = 1 - H_D(P~_.k)` with `P~_ik = R_ik / sum_i R_ik` (base D), the total
  weighted by factor importance `sum_i R_ik / sum R` (dlib's aggregation);
- as in dlib, `1e-11` is added to R before each entropy and an all-zero R counts as all-ones in
  the weights.

Importances (`importance=`):
- `'gbt'` (the reference): dlib fits one `GradientBoostingClassifier()` per factor and takes its
  impurity-based `feature_importances_`; informativeness is its accuracy on the training and test
  codes. Here all factors' boosted trees are grown together by `disentangle_jax.metrics.gbt`
  (same loss, stages, depth, leaf values and importances; splits searched on 128 bins per code
  dimension, then refined to exact thresholds around the best bin edges; ties between equally good
  code dimensions share the importance, sklearn's expectation over its random feature order).
  Against sklearn's exact trees (`protocol='dlib'`) on entangled codes (45-degree rotations of
  factor pairs, dense random mixings, a factor plus half the next, duplicated dimensions; noise
  0.1; dSprites-sized factors (3, 6, 40, 32, 32) at 1,000 training points, where the trees
  memorise the training set and the binned-only search was 0.04 off) D and C differ by 0.007 to
  0.018; on the tests' codes (`tests/test_metrics_dci.py`) by at most 0.02, the documented
  tolerance. Informativeness agrees to about 0.01 (0.03 in the tests).
- `'lasso'` (fast, named alternative, the paper's linear variant): per factor a Lasso regression of
  the standardised label-encoded factor value on the standardised code (`alpha`), `R = |coef|`;
  informativeness is the R^2 of those regressions on the training and test codes. It is not
  comparable to the GBT accuracy.

Protocols: published DCI numbers (Locatello et al. 2019 and the studies on disentanglement_lib)
come from scikit-learn's trees; `protocol='dlib'` fits those (`dlib_protocol`), the default
`'fast'` the binned JAX trees above.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from sklearn import linear_model

from disentangle_jax.metrics import dlib_protocol
from disentangle_jax.metrics import gbt as gbt_lib
from disentangle_jax.metrics._common import (
  MIN_POINTS,
  check_codes,
  check_factors,
  float64,
  label_encode,
  require_varying,
  standardise,
)

_EPS = 1e-11


def _normalised_entropy(p: jax.Array, axis: int) -> jax.Array:
  """scipy.stats.entropy(p + 1e-11, base=p.shape[axis]) along `axis` (0 when that size is 1)."""
  size = p.shape[axis]
  q = p + _EPS
  q = q / jnp.sum(q, axis=axis, keepdims=True)
  h = -jnp.sum(q * jnp.log(q), axis=axis)
  return h / jnp.log(size) if size > 1 else jnp.zeros_like(h)


@jax.jit
def scores_from_importance(importance: jax.Array) -> dict[str, jax.Array]:
  """dlib's disentanglement and completeness of a [D, K] non-negative importance matrix.

  With a single factor (K = 1) every code's disentanglement is 1, and with a single code (D = 1)
  every factor's completeness is 1 (dlib divides by log 1 = 0).
  """
  per_code = 1.0 - _normalised_entropy(importance, axis=1)  # [D]
  per_factor = 1.0 - _normalised_entropy(importance, axis=0)  # [K]
  total = jnp.sum(importance)
  weights = jnp.where(total == 0, jnp.ones_like(importance), importance)
  code_w = jnp.sum(weights, axis=1) / jnp.sum(weights)
  factor_w = jnp.sum(weights, axis=0) / jnp.sum(weights)
  return {
    'disentanglement': jnp.sum(per_code * code_w),
    'completeness': jnp.sum(per_factor * factor_w),
    'disentanglement_per_code': per_code,
    'completeness_per_factor': per_factor,
  }


def _encode_test(train_values: np.ndarray, test: np.ndarray) -> np.ndarray:
  """Test labels in the training label space; values unseen in training map to -1."""
  out = np.full(test.shape, -1, np.int64)
  for k in range(test.shape[1]):
    classes = np.unique(train_values[:, k])
    pos = np.searchsorted(classes, test[:, k])
    ok = (pos < classes.size) & (classes[np.minimum(pos, classes.size - 1)] == test[:, k])
    out[:, k] = np.where(ok, pos, -1)
  return out


def gbt_importance(x_train, y_train, x_test, y_test, *, num_bins: int = 128):
  """Importance [D, K] and per-factor train/test accuracy of boosted trees, all factors at once."""
  model = gbt_lib.fit_gbt(x_train, y_train, num_bins=num_bins)
  enc_train, _ = label_encode(y_train)
  acc_train = (model.train_predictions == enc_train).mean(0)
  acc_test = (model.predict(x_test) == _encode_test(y_train, y_test)).mean(0)
  return model.importances, acc_train, acc_test


def lasso_importance(x_train, y_train, x_test, y_test, *, alpha: float = 0.01):
  """Importance [D, K] = |Lasso coefficients| and per-factor train/test R^2 (standardised data)."""
  xtr, xte = standardise(x_train, x_test)
  ytr = y_train.astype(np.float64)
  ymean, ystd = ytr.mean(0), ytr.std(0)
  ystd = np.where(ystd > 0, ystd, 1.0)
  ytr = (ytr - ymean) / ystd
  yte = (y_test.astype(np.float64) - ymean) / ystd
  model = linear_model.Lasso(alpha=alpha).fit(xtr, ytr)
  coef = np.atleast_2d(model.coef_)  # [K, D]

  def r2(x, y):
    resid = y - (x @ coef.T + model.intercept_)
    ss = ((y - y.mean(0)) ** 2).sum(0)
    return np.where(ss > 0, 1.0 - (resid**2).sum(0) / np.where(ss > 0, ss, 1.0), 0.0)

  return np.abs(coef).T, r2(xtr, ytr), r2(xte, yte)


def dci(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  codes_test: ArrayLike,
  factors_test: ArrayLike,
  *,
  importance: str = 'gbt',
  num_bins: int = 128,
  alpha: float = 0.01,
  protocol: str = 'fast',
) -> dict:
  """DCI of codes against factors.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer labels to fit the importances on.
    codes_test, factors_test: [M, D] and [M, K] for the test informativeness.
    importance: 'gbt' (dlib's reference) or 'lasso' (fast linear alternative); see module doc.
    num_bins: split bins per code dimension for 'gbt'.
    alpha: Lasso penalty for 'lasso'.
    protocol: 'fast' (the JAX boosted trees above) or 'dlib' (scikit-learn's
      `GradientBoostingClassifier()` per factor, as disentanglement_lib 1.5 and the published
      tables; see `dlib_protocol`). Only for importance='gbt'.

  Returns:
    'disentanglement', 'completeness', 'informativeness_train', 'informativeness_test' (floats);
    'importance_matrix' [D, K]; 'disentanglement_per_code' [D]; 'completeness_per_factor' [K];
    'informativeness_per_factor_train' / '_test' [K]; 'importance' (the method name).

  Degenerate inputs (the package's policy): NaN/inf and fewer than 2 training points raise
  ValueError. A constant code dimension gets zero importance. A
  factor with a single training value (sklearn raises) gets an all-zero importance column and is
  left out of D, C (its completeness entry is 0) and the informativeness means, so that the scores
  equal those without it; if no factor varies, ValueError. Test labels unseen in training count as
  errors.
  """
  xtr = check_codes(codes_train, 'codes_train', min_points=MIN_POINTS, metric='dci')
  xtr = xtr.astype(np.float64)
  xte = check_codes(codes_test, 'codes_test').astype(np.float64)
  ytr = check_factors(factors_train, xtr.shape[0], 'factors_train')
  yte = check_factors(factors_test, xte.shape[0], 'factors_test')
  if xte.shape[1] != xtr.shape[1] or yte.shape[1] != ytr.shape[1]:
    raise ValueError('train and test must have the same code and factor dimensions')
  _, sizes = label_encode(ytr)
  varying = require_varying(sizes, 'dci')
  dlib_protocol.check_protocol(protocol)
  if protocol == 'dlib' and importance != 'gbt':
    raise ValueError("protocol='dlib' exists for importance='gbt' only (dlib has no Lasso DCI)")
  if importance == 'gbt' and protocol == 'dlib':
    imp, acc_tr, acc_te = dlib_protocol.gbt_importance(xtr, ytr, xte, yte)
  elif importance == 'gbt':
    imp, acc_tr, acc_te = gbt_importance(xtr, ytr, xte, yte, num_bins=num_bins)
  elif importance == 'lasso':
    imp, acc_tr, acc_te = lasso_importance(xtr, ytr, xte, yte, alpha=alpha)
    imp = np.where(varying[None, :], imp, 0.0)
  else:
    raise ValueError(f"importance must be 'gbt' or 'lasso', got {importance!r}")
  with float64():
    # Single-valued factors are left out: their zero columns would still change the entropy base.
    s = {k: np.asarray(v) for k, v in scores_from_importance(jnp.asarray(imp[:, varying])).items()}
  per_factor = np.zeros(imp.shape[1])
  per_factor[varying] = s['completeness_per_factor']
  return {
    'disentanglement': float(s['disentanglement']),
    'completeness': float(s['completeness']),
    'informativeness_train': float(np.mean(acc_tr[varying])),
    'informativeness_test': float(np.mean(acc_te[varying])),
    'importance_matrix': imp,
    'disentanglement_per_code': s['disentanglement_per_code'],
    'completeness_per_factor': per_factor,
    'informativeness_per_factor_train': np.asarray(acc_tr),
    'informativeness_per_factor_test': np.asarray(acc_te),
    'importance': importance,
  }

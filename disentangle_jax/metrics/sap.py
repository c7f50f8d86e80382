"""SAP score (Kumar et al. 2018) as dlib computes it.

A score matrix S [D, K]; SAP is the mean over factors of the gap between the two largest entries of
each column.

- Discrete factors (dlib's study setting): S_jk is the test accuracy of
  `sklearn.svm.LinearSVC(C=0.01, class_weight='balanced')` trained on the single code dimension j to
  predict factor k. With two classes that is one squared-hinge SVM with both classes weighted; with
  more it is one-vs-rest, the positive class weighted by its balanced weight and the rest by 1
  (liblinear's convention), the bias penalised like the weight, and the prediction the arg-max of
  the per-class decision values.
- Continuous factors: `S_jk = cov(z_j, v_k)^2 / (var z_j var v_k)` (ddof 1), 0 if var z_j < 1e-12.

Here every one of the D x (sum of classes) one-dimensional SVMs is solved at once. Each is a
two-parameter, piecewise-quadratic problem; with the code values sorted (and sorted within each
class), the sums over the active (margin-violating) samples are prefix sums at a threshold found by
binary search, so a Newton step costs O(log N) per problem instead of O(N). The optimum is exact up
to float64, where liblinear stops at its tolerance, so a test point lying within about 1e-5 of a
decision boundary can be classified differently (one point of 5,000 moves an accuracy by 2e-4).
Published SAP numbers come from liblinear's early-stopped fits: `protocol='dlib'` runs those
(`dlib_protocol`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics import dlib_protocol
from disentangle_jax.metrics._common import (
  MIN_POINTS,
  check_codes,
  check_factors,
  float64,
  require_varying,
)


@jax.jit
def continuous_score_matrix(codes: jax.Array, factors: jax.Array) -> jax.Array:
  """[N, D] codes, [N, K] factor values -> [D, K] squared correlations (dlib's continuous SAP)."""
  n = codes.shape[0]
  zc = codes - codes.mean(0)
  yc = factors - factors.mean(0)
  cov = zc.T @ yc / (n - 1)
  var_z = jnp.sum(zc**2, 0) / (n - 1)
  var_y = jnp.sum(yc**2, 0) / (n - 1)
  ok = (var_z[:, None] > 1e-12) & (var_y[None, :] > 0)
  return jnp.where(ok, cov**2 / jnp.where(ok, var_z[:, None] * var_y[None, :], 1.0), 0.0)


@jax.jit
def gap_of_top_two(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean over columns of (largest - second largest); with one row, the largest. -> (mean, [K])."""
  s = jnp.sort(matrix, axis=0)
  second = s[-2] if matrix.shape[0] > 1 else jnp.zeros_like(s[-1])
  gap = s[-1] - second
  return jnp.mean(gap), gap


def _count_below(sorted_vals, lo, hi, t, strict):
  """Bisection in sorted segments: lo + #{x in sorted_vals[j, lo:hi] : x < t (strict) or <= t}.

  sorted_vals: [D, L], each row sorted within every [lo, hi) segment used; lo, hi, t: [D, T].
  """
  length = sorted_vals.shape[-1]
  steps = int(np.ceil(np.log2(length + 1))) + 1

  def body(_, bounds):
    a, b = bounds
    mid = (a + b) // 2
    v = jnp.take_along_axis(sorted_vals, jnp.clip(mid, 0, length - 1), axis=1)
    go_right = ((v < t) if strict else (v <= t)) & (a < b)
    return jnp.where(go_right, mid + 1, a), jnp.where(go_right, b, mid)

  a, _ = jax.lax.fori_loop(0, steps, body, (lo, hi))
  return a


def _active_sums(sorted_vals, prefix, lo, hi, a, v):
  """Sums of (1, x, x^2) over x in sorted_vals[j, lo:hi] with a + v x > 0, each [D, T].

  prefix: [D, L + 1, 3] running sums of (1, x, x^2) along each row.
  """
  # Active region: x > -a/v (v > 0), x < -a/v (v < 0), everything or nothing (v == 0).
  t = -a / jnp.where(v == 0, 1.0, v)
  first_above = _count_below(sorted_vals, lo, hi, t, strict=False)
  first_at = _count_below(sorted_vals, lo, hi, t, strict=True)
  start = jnp.where(v > 0, first_above, lo)
  stop = jnp.where(v > 0, hi, first_at)
  start = jnp.where(v == 0, lo, start)
  stop = jnp.where(v == 0, jnp.where(a > 0, hi, lo), stop)

  def at(i):
    return jnp.stack([jnp.take_along_axis(prefix[..., m], i, axis=1) for m in range(3)], -1)

  return at(stop) - at(start)


@functools.partial(jax.jit, static_argnames=('iterations',))
def _solve_svms(sorted_all, sorted_cls, lo, hi, c_pos, c_neg, iterations=60):
  """Newton iterations for min 0.5 (w^2 + b^2) + sum_i C_i max(0, 1 - s_i (w x_i + b))^2.

  Problem (j, t), code j and tree t: the positives are sorted_cls[j, lo_t:hi_t] (cost c_pos_t), the
  negatives every other sample of code j (cost c_neg_t). sorted_all: [D, N] each code sorted;
  sorted_cls: [D, L] each code sorted by (factor, class, value), factors side by side; lo, hi,
  c_pos, c_neg: [T]. Returns (w, b), each [D, T].
  """
  d, n = sorted_all.shape
  t = lo.shape[0]
  zeros = jnp.zeros((d, t), sorted_all.dtype)
  prefix_all, prefix_cls = _prefix(sorted_all), _prefix(sorted_cls)
  lo = jnp.broadcast_to(lo, (d, t))
  hi = jnp.broadcast_to(hi, (d, t))
  all_lo = jnp.zeros((d, t), lo.dtype)
  all_hi = jnp.full((d, t), n, lo.dtype)

  def terms(w, b):
    ap, an = 1.0 - b, 1.0 + b  # positives: u = ap - w x; negatives: u = an + w x
    sp = _active_sums(sorted_cls, prefix_cls, lo, hi, ap, -w)
    # Negatives = all samples minus the positives, each restricted to its active region.
    sn = _active_sums(sorted_all, prefix_all, all_lo, all_hi, an, w)
    sn = sn - _active_sums(sorted_cls, prefix_cls, lo, hi, an, w)
    loss = 0.5 * (w**2 + b**2)
    loss += c_pos * (ap**2 * sp[..., 0] - 2 * ap * w * sp[..., 1] + w**2 * sp[..., 2])
    loss += c_neg * (an**2 * sn[..., 0] + 2 * an * w * sn[..., 1] + w**2 * sn[..., 2])
    up, upx = ap * sp[..., 0] - w * sp[..., 1], ap * sp[..., 1] - w * sp[..., 2]
    un, unx = an * sn[..., 0] + w * sn[..., 1], an * sn[..., 1] + w * sn[..., 2]
    grad = (w - 2 * c_pos * upx + 2 * c_neg * unx, b - 2 * c_pos * up + 2 * c_neg * un)
    hess = (
      1 + 2 * c_pos * sp[..., 2] + 2 * c_neg * sn[..., 2],
      2 * c_pos * sp[..., 1] + 2 * c_neg * sn[..., 1],
      1 + 2 * c_pos * sp[..., 0] + 2 * c_neg * sn[..., 0],
    )
    return loss, grad, hess

  def newton(grad, hess):
    (gw, gb), (hww, hwb, hbb) = grad, hess
    det = hww * hbb - hwb**2
    return -(hbb * gw - hwb * gb) / det, -(hww * gb - hwb * gw) / det

  loss, grad, hess = terms(zeros, zeros)
  dw, db = newton(grad, hess)

  def body(_, state):
    # Backtracking spread over iterations: try (w, b) + step * d; accept if the loss does not
    # rise (and take a new Newton direction there), else halve the step.
    w, b, best, dw, db, step = state
    tw, tb = w + step * dw, b + step * db
    loss, grad, hess = terms(tw, tb)
    accept = loss <= best
    nw, nb = newton(grad, hess)
    keep = lambda new, old: jnp.where(accept, new, old)  # noqa: E731
    return (keep(tw, w), keep(tb, b), keep(loss, best), keep(nw, dw), keep(nb, db),
            keep(jnp.ones_like(step), step * 0.5))

  state = (zeros, zeros, loss, dw, db, jnp.ones_like(zeros))
  w, b, *_ = jax.lax.fori_loop(0, iterations, body, state)
  return w, b


def _prefix(sorted_vals):
  """[D, L] -> [D, L + 1, 3] running sums of (1, x, x^2), starting at 0."""
  stats = jnp.stack([jnp.ones_like(sorted_vals), sorted_vals, sorted_vals**2], axis=-1)
  pad = jnp.zeros(stats.shape[:-2] + (1, 3), stats.dtype)
  return jnp.concatenate([pad, jnp.cumsum(stats, axis=-2)], axis=-2)


def discrete_score_matrix(
  codes_train: np.ndarray,
  factors_train: np.ndarray,
  codes_test: np.ndarray,
  factors_test: np.ndarray,
  *,
  c: float = 0.01,
) -> tuple[np.ndarray, dict]:
  """[D, K] test accuracies of the per-(code, factor) LinearSVC(C=c, class_weight='balanced').

  Returns:
    (score matrix, dict with the fitted 'w' and 'b' [D, T] and each tree's factor and class).
  """
  n, d = codes_train.shape
  k = factors_train.shape[1]
  trees_factor, trees_class, c_pos, c_neg = [], [], [], []
  classes_per_factor = []
  for f in range(k):
    classes, counts = np.unique(factors_train[:, f], return_counts=True)
    classes_per_factor.append(classes)
    weights = n / (classes.size * counts)  # sklearn's 'balanced'
    if classes.size == 2:
      trees_factor.append(f)
      trees_class.append(1)
      c_pos.append(c * weights[1])
      c_neg.append(c * weights[0])
    elif classes.size > 2:
      for ci in range(classes.size):
        trees_factor.append(f)
        trees_class.append(ci)
        c_pos.append(c * weights[ci])
        c_neg.append(c)  # liblinear's one-vs-rest leaves the rest unweighted
  scores = np.zeros((d, k))
  info = {'trees_factor': np.array(trees_factor, np.int64), 'trees_class': np.array(trees_class)}
  if trees_factor:
    enc = np.stack(
      [np.searchsorted(classes_per_factor[f], factors_train[:, f]) for f in range(k)], 1
    )
    # Every code sorted by (class, value) within each factor, factors side by side: [D, K * N].
    keys = (np.broadcast_to(codes_train.T[:, None, :], (d, k, n)),
            np.broadcast_to(enc.T[None, :, :], (d, k, n)))
    order = np.lexsort(keys, axis=-1)
    sorted_cls = np.take_along_axis(keys[0], order, axis=-1).reshape(d, k * n)
    starts = [f * n + np.concatenate([[0], np.cumsum(np.bincount(enc[:, f]))]) for f in range(k)]
    lo = np.array([starts[f][ci] for f, ci in zip(trees_factor, trees_class)])
    hi = np.array([starts[f][ci + 1] for f, ci in zip(trees_factor, trees_class)])
    with float64():
      w, b = _solve_svms(
        np.sort(codes_train.T, axis=-1), sorted_cls, lo, hi, np.asarray(c_pos), np.asarray(c_neg),
      )
      w, b = np.asarray(w), np.asarray(b)
    info.update(w=w, b=b)
    decision = w[:, :, None] * codes_test.T[:, None, :] + b[:, :, None]  # [D, T, M]
  for f in range(k):
    classes = classes_per_factor[f]
    if classes.size == 1:
      pred = np.broadcast_to(classes[0], (d, codes_test.shape[0]))
    else:
      cols = np.nonzero(np.array(trees_factor) == f)[0]
      if classes.size == 2:
        pred = classes[(decision[:, cols[0]] > 0).astype(np.int64)]
      else:
        pred = classes[np.argmax(decision[:, cols], axis=1)]
    scores[:, f] = np.mean(pred == factors_test[None, :, f], axis=1)
  return scores, info


def sap(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  codes_test: ArrayLike | None = None,
  factors_test: ArrayLike | None = None,
  *,
  continuous_factors: bool = False,
  protocol: str = 'fast',
) -> dict:
  """dlib's SAP score.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer factors.
    codes_test, factors_test: [M, D], [M, K] test set (needed for discrete factors only).
    continuous_factors: dlib's flag: True uses the squared correlation, False (the study
      setting) the 1-D linear SVM accuracies.
    protocol: 'fast' (the exact batched SVMs above) or 'dlib' (scikit-learn's LinearSVC per
      pair, stopping at its tolerance as in disentanglement_lib 1.5 and the published tables;
      see `dlib_protocol`). The continuous score is the same under both.

  Returns:
    'SAP_score' (float), 'score_matrix' [D, K], 'sap_per_factor' [K].

  Degenerate inputs (the package's policy): NaN/inf and fewer than 2 training points raise
  ValueError. A constant code dimension predicts one class (discrete) or scores 0 (continuous).
  Continuous: a constant code or factor scores 0
  (dlib divides by zero for a constant factor). Discrete: a factor with a single training value
  (LinearSVC raises) is predicted as that value by every code, so its column is constant and its
  gap 0. With one code dimension the gap is the largest entry. No varying factor, ValueError.
  """
  xtr = check_codes(codes_train, 'codes_train', min_points=MIN_POINTS, metric='sap')
  xtr = xtr.astype(np.float64)
  ytr = check_factors(factors_train, xtr.shape[0], 'factors_train')
  require_varying([np.unique(col).size for col in ytr.T], 'sap')
  if continuous_factors:
    with float64():
      matrix = np.asarray(continuous_score_matrix(jnp.asarray(xtr), jnp.asarray(ytr, jnp.float64)))
  else:
    if codes_test is None or factors_test is None:
      raise ValueError('discrete SAP needs codes_test and factors_test')
    xte = check_codes(codes_test, 'codes_test').astype(np.float64)
    yte = check_factors(factors_test, xte.shape[0], 'factors_test')
    dlib_protocol.check_protocol(protocol)
    if protocol == 'dlib':
      matrix = dlib_protocol.sap_score_matrix(xtr, ytr, xte, yte)
    else:
      matrix, _ = discrete_score_matrix(xtr, ytr, xte, yte)
  with float64():
    score, gap = gap_of_top_two(jnp.asarray(matrix))
    score, gap = float(score), np.asarray(gap)
  return {'SAP_score': score, 'score_matrix': matrix, 'sap_per_factor': gap}

"""InfoMEC (Hsu et al., NeurIPS 2023): InfoM (modularity), InfoC (compactness), InfoE (explicitness).

As the authors' released implementation computes them (Hsu et al. 2023):
1. factors label-encoded; each code dimension standardised on its own (ddof 0), no binning;
2. MI[i, j] between discrete factor i and continuous code j by the k-nearest-neighbour estimator of
   Ross (2014) with k = 10, which is scikit-learn's `mutual_info_classif(n_neighbors=10)`: per point
   k' = min(10, N_c - 1) for its class size N_c (singleton classes dropped), r = distance to its
   k'-th same-class neighbour, m = points of any class strictly inside r (itself included);
   MI = psi(N) + <psi(k')> - <psi(N_c)> - <psi(m)>, clipped at 0. scikit-learn first rescales the
   code by its std and adds 1e-10 * max(1, mean|z|) Gaussian jitter to break ties; so does this;
3. NMI[i, j] = MI[i, j] / H(factor i) (plug-in entropy);
4. active codes: range > (largest range) / 20; D_a of them;
5. InfoM = (mean_active_j max_i NMI / sum_i NMI - 1/K) / (1 - 1/K);
   InfoC = (mean_i max_active_j NMI / sum_active_j NMI - 1/D_a) / (1 - 1/D_a);
6. InfoE = mean_i (L0 - L1) / L0: L1 the training log-loss of an unpenalised, class-balanced
   multinomial logistic regression on all codes (standardised jointly), L0 = log(#classes).

The kNN estimator is vectorised over all (code, factor) pairs: in one dimension the k nearest
same-class neighbours of a point fill a window of k + 1 consecutive places in its class's sorted
order (the k-th distance is the least window span around the point), and the count within the
radius is two binary searches in the code's sorted order, each end then stepped to where the
exact test flips. The comparisons use the same float operations as scikit-learn's KD-tree (squared
differences against the squared radius), so the MI equals `mutual_info_classif` given the same
jitter (`random_state`) while every class has more than 2k = 20 points (scikit-learn switches to
brute-force distances, which round differently, below; the tests check small classes against the
definition computed point by point).
InfoE's logistic regressions are solved in JAX (`_logistic`), 100 L-BFGS iterations like the
reference's sklearn call; unpenalised fits on separable codes never converge, so InfoE depends on
where either optimiser stops (about 1e-3).

Uninformative codes do not score 0 (random codes give InfoM near 0.5). Report the three
separately.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.special
from jax.typing import ArrayLike

from disentangle_jax.metrics import _logistic
from disentangle_jax.metrics._common import (
  MI_TOL,
  MIN_POINTS,
  check_codes,
  check_factors,
  label_encode,
  require_varying,
  standardise,
)


def _count_within(xa, xv, p_all, radius, r2):
  """Per point: how many values of its row of `xa` lie within the radius, the test being
  scikit-learn's squared difference <= squared radius.

  xa: [R, N] sorted rows; xv, p_all, radius, r2: [R, N] each point's value, its position in `xa`
  and its radius. Binary searches on xv -/+ radius land within a few places of where the squared
  test flips (it rounds differently); the ends then step to the exact boundary.
  """
  rows, n = xa.shape
  right = np.stack([np.searchsorted(xa[i], xv[i] + radius[i], side='right') for i in range(rows)])
  left = np.stack([np.searchsorted(xa[i], xv[i] - radius[i], side='left') for i in range(rows)])

  def inside(i):
    diff = np.take_along_axis(xa, np.clip(i, 0, n - 1), -1) - xv
    return (diff * diff <= r2) & (i >= 0) & (i < n)

  # right: first place past the point that is outside; left: last place before it that is inside.
  right, left = np.maximum(right, p_all + 1), np.minimum(left, p_all)
  for _ in range(n):
    grow_r, shrink_r = inside(right), ~inside(right - 1) & (right - 1 > p_all)
    grow_l, shrink_l = inside(left - 1), ~inside(left) & (left < p_all)
    if not (grow_r.any() or shrink_r.any() or grow_l.any() or shrink_l.any()):
      break
    right = right + grow_r - shrink_r
    left = left - grow_l + shrink_l
  return right - left


def knn_mutual_info(codes: np.ndarray, labels: np.ndarray, *, n_neighbors: int = 10) -> np.ndarray:
  """Ross (2014) MI between each continuous code and each discrete label, all pairs at once.

  Args:
    codes: [N, D] float64 (already rescaled and jittered as scikit-learn does).
    labels: [N, K] label-encoded factors.
    n_neighbors: k.

  Returns:
    [K, D] MI in nats (0 for a factor whose classes are all singletons).
  """
  n, d = codes.shape
  k_factors = labels.shape[1]
  x = np.broadcast_to(codes.T[None], (k_factors, d, n))  # [K, D, N]
  y = np.broadcast_to(labels.T[:, None, :], (k_factors, d, n))
  counts = np.stack([np.bincount(labels[:, i], minlength=labels.max() + 1)[labels[:, i]]
                     for i in range(k_factors)])  # [K, N] class size of each point
  counts = np.broadcast_to(counts[:, None, :], (k_factors, d, n))
  keep = counts > 1
  # Same-class neighbours: sort by (class, value); a class is a contiguous segment. One value sort
  # per code, then per factor a stable sort of the (small-integer) classes in that order.
  order_x = np.argsort(codes.T, axis=-1, kind='stable')  # [D, N]
  label_type = np.int16 if labels.max() < 2**15 else np.int64
  order = np.stack([
    np.take_along_axis(order_x, np.argsort(labels[order_x, i].astype(label_type), axis=-1,
                                           kind='stable'), -1)
    for i in range(k_factors)])
  xs = np.take_along_axis(x, order, axis=-1)
  ys = np.take_along_axis(y, order, axis=-1)
  cs = np.take_along_axis(counts, order, axis=-1)
  pos = np.arange(n)
  seg_start = np.maximum.accumulate(
    np.where(np.concatenate([np.ones_like(ys[..., :1], bool), ys[..., 1:] != ys[..., :-1]], -1),
             pos, 0), axis=-1)
  seg_end = seg_start + cs  # exclusive
  k = np.minimum(n_neighbors, cs - 1)  # per point; 0 for singletons
  # The k nearest same-class neighbours of a point fill a window of k + 1 consecutive places
  # [a, a + k] around it within its class, so the k-th distance is the least, over the windows
  # that hold the point, of max(x_p - x_a, x_{a+k} - x_p): with k = n_neighbors these are the
  # sliding windows, and a class of at most k points has one window, the whole class.
  kk = n_neighbors
  pad = np.full(xs.shape[:-1] + (kk,), np.nan)
  no_class = np.full(pad.shape, -1)  # labels are >= 0, so a window reaching past the ends is out
  # Place j holds the window [a, a + kk] with a = j - kk: its ends' values and whether both ends
  # (so the whole window, classes being contiguous) are of one class.
  lo, hi = np.concatenate([pad, xs], -1), np.concatenate([xs, pad], -1)
  same = np.concatenate([no_class, ys], -1) == np.concatenate([ys, no_class - 1], -1)
  windows = lambda a: np.lib.stride_tricks.sliding_window_view(a, kk + 1, axis=-1)  # noqa: E731
  cand = np.where(windows(same), np.maximum(xs[..., None] - windows(lo), windows(hi) - xs[..., None]),
                  np.inf)
  whole_class = np.maximum(xs - np.take_along_axis(xs, seg_start, -1),
                           np.take_along_axis(xs, seg_end - 1, -1) - xs)
  kth = np.where(k == kk, cand.min(-1), whole_class)
  valid = cs > 1  # non-singleton points, in class-sorted order
  # scikit-learn: radius just inside the k-th distance, compared as squared distances (KD-tree).
  radius = np.nextafter(np.where(valid, kth, 0.0), 0)
  r2 = radius * radius
  # Points of any (non-singleton) class within the radius, in each code's full sorted order.
  x_all = np.where(keep, x, np.inf)
  order_all = np.stack([
    order_x if keep[i, 0].all() else np.argsort(x_all[i], axis=-1, kind='stable')
    for i in range(k_factors)])
  xa = np.take_along_axis(x_all, order_all, axis=-1)
  # Position in xa of each point (class-sorted order -> value-sorted order).
  rank = np.empty_like(order_all)
  np.put_along_axis(rank, order_all, pos, axis=-1)
  p_all = np.take_along_axis(rank, order, axis=-1)  # [K, D, N] aligned with xs

  m = _count_within(xa.reshape(-1, n), xs.reshape(-1, n), p_all.reshape(-1, n),
                    radius.reshape(-1, n), r2.reshape(-1, n)).reshape(p_all.shape)
  num = valid.sum(-1)  # [K, D]
  with np.errstate(invalid='ignore', divide='ignore'):
    mean = lambda a: np.where(valid, a, 0.0).sum(-1) / np.maximum(num, 1)  # noqa: E731
    mi = (scipy.special.digamma(np.maximum(num, 1))
          + mean(scipy.special.digamma(np.maximum(k, 1)))
          - mean(scipy.special.digamma(np.maximum(cs, 1)))
          - mean(scipy.special.digamma(np.maximum(m, 1))))
  return np.where(num > 0, np.maximum(mi, 0.0), 0.0)


def sklearn_jitter(codes: np.ndarray, random_state: int | None = 0) -> np.ndarray:
  """What `mutual_info_classif` does to a continuous feature before the estimate.

  Each column is divided by its std and gets 1e-10 * max(1, mean|z|) times a standard normal
  draw. scikit-learn draws one noise column per call; with `random_state` fixed, every call (every
  column here) gets the same draw, which this reproduces.
  """
  std = codes.std(0)
  z = codes / np.where(std > 0, std, 1.0)
  noise = np.random.RandomState(random_state).standard_normal(size=(codes.shape[0], 1))
  return z + 1e-10 * np.maximum(1.0, np.mean(np.abs(z), axis=0)) * noise


def infomec(
  codes: ArrayLike,
  factors: ArrayLike,
  *,
  n_neighbors: int = 10,
  random_state: int | None = 0,
  max_iter: int = 100,
) -> dict:
  """InfoM, InfoC and InfoE of a continuous code.

  Args:
    codes: [N, D] codes; factors: [N, K] integer labels.
    n_neighbors: k of the kNN MI estimator (10).
    random_state: seed of scikit-learn's tie-breaking jitter (it draws it from the global RNG).
    max_iter: L-BFGS iterations of InfoE's logistic regressions (the reference: 100).

  Returns:
    'infom', 'infoc', 'infoe' (floats), 'nmi' [K, D], 'active_latents' [D] bool,
    'infoe_per_factor' [K].

  Degenerate inputs (the package's policy): NaN/inf and fewer than 2 points raise ValueError. A
  constant code (within `_common.CONSTANT_RTOL`) has NMI 0 and is inactive. A constant factor
  (H = 0) has an all-zero NMI row and is left out of InfoC and InfoE. Where a code's (or a
  factor's) NMI sums to 0 its max/sum ratio is 0/0; that code (factor) is left out of InfoM's
  (InfoC's) mean, and the score is 0 if none remains. With a single factor InfoM is 1; with a
  single active code InfoC is 1 (both 0/0 in the reference). With no active code (all constant)
  InfoM = InfoC = 0, and InfoE = 0 (the balanced fit on a zero input is the prior). If no factor
  varies, ValueError.
  """
  x = check_codes(codes, min_points=MIN_POINTS, metric='infomec').astype(np.float64)
  y = check_factors(factors, x.shape[0])
  enc, sizes = label_encode(y)
  k = enc.shape[1]
  sizes = np.asarray(sizes)
  require_varying(sizes, 'infomec')
  (z,) = standardise(x)
  mi = knn_mutual_info(sklearn_jitter(z, random_state), enc, n_neighbors=n_neighbors)
  # A constant code carries nothing; the estimate would see only the tie-breaking jitter.
  mi[:, np.ptp(x, axis=0) == 0] = 0.0
  p = [np.bincount(enc[:, i]) / enc.shape[0] for i in range(k)]
  h = np.array([-(q[q > 0] * np.log(q[q > 0])).sum() for q in p])
  nmi = np.where(h[:, None] > MI_TOL, mi / np.where(h > MI_TOL, h, 1.0)[:, None], 0.0)

  ranges = x.max(0) - x.min(0)
  active = ranges > ranges.max() / 20
  da = int(active.sum())
  pruned = nmi[:, active]
  if da == 0:
    infom = infoc = 0.0
  else:
    with np.errstate(invalid='ignore', divide='ignore'):
      col = pruned.max(0) / pruned.sum(0)
      row = pruned.max(1) / pruned.sum(1)
    col, row = col[np.isfinite(col)], row[np.isfinite(row)]
    infom = 1.0 if k == 1 else (float(col.mean()) - 1 / k) / (1 - 1 / k) if col.size else 0.0
    infoc = 1.0 if da == 1 else (float(row.mean()) - 1 / da) / (1 - 1 / da) if row.size else 0.0

  varying = np.nonzero(sizes > 1)[0]
  w, b, valid = _logistic.fit_per_factor(
    z, enc[:, varying], [int(sizes[i]) for i in varying], l2=0.0, class_weight='balanced',
    max_iter=max_iter,
  )
  proba = np.asarray(_logistic.predict_proba(jnp.asarray(z, jnp.float32), w, b, valid), np.float64)
  infoe = np.zeros(k)
  for col_i, i in enumerate(varying):
    pr = proba[col_i, :, : sizes[i]]
    pr = np.clip(pr / pr.sum(1, keepdims=True), np.finfo(np.float64).eps, 1.0)
    l1 = -np.mean(np.log(pr[np.arange(pr.shape[0]), enc[:, i]]))
    l0 = np.log(sizes[i])
    infoe[i] = (l0 - l1) / l0
  return {
    'infom': float(infom),
    'infoc': float(infoc),
    'infoe': float(infoe[varying].mean()),
    'nmi': nmi,
    'active_latents': active,
    'infoe_per_factor': infoe,
  }

"""Gradient-boosted trees, vectorised over every class of every factor at once (JAX).

The reference metrics (dlib's DCI, boosted downstream task, fairness) fit one
`sklearn.ensemble.GradientBoostingClassifier()` per factor: log-loss, 100 stages, learning rate 0.1,
depth-3 regression trees on the negative gradient, one tree per class and stage (one per stage for
two classes), a Newton step per leaf, and impurity-based (MSE-decrease) feature importances. That is
minutes of single-threaded tree building on 10,000 points.

This module runs the same algorithm with every tree of every factor grown together: a stage is a
handful of array operations over `[trees, samples, features]`. What is the same as sklearn:
the loss and its initial prediction (log class priors / prior log-odds), the gradients, the split
criterion (sklearn's squared-error and Friedman-MSE criteria pick the same split inside a node), the
leaf values (Newton step, with the `(K-1)/K` factor of the multinomial case), the learning rate,
and the importances (the total MSE decrease per feature, summed over every tree and normalised to
sum to one, which is what `feature_importances_` computes). What differs: splits
are searched on `num_bins` (128) bins per feature (`quantile_bin_edges`, like LightGBM or sklearn's
HistGradientBoosting) instead of at every distinct value, so a split can only fall on a bin edge,
and ties between features that make the same partition go to the lowest feature index (sklearn:
a random feature order). Arithmetic is float32 unless `precision='float64'`. Where sklearn's best split lies between two bin edges the ensembles
diverge: on well-posed problems they stay close (same partitions early on, the same importances
and accuracies to about 0.01), but where sklearn's trees overfit by isolating single training
points (heavily overlapping classes) the binned trees cannot follow, fit the training set less and
spread their importance differently (dSprites-sized factors at noise 0.1: DCI D and C about 0.04
lower, training accuracy 0.05 lower, test accuracy equal). `tests/test_metrics_dci.py` and
`bench/metrics_speed.py` measure the agreement.

Speed: per stage, the histograms of all trees are per-feature scatter-adds of whole sample rows
(cost independent of the bin count) in blocks of at most 128 columns (at 452 columns the
accumulator leaves the L1 cache and each add costs about 4 times more); each level histograms only
the left children and gets the right ones by subtracting bin prefix sums; the root's and the first
level's counts come from a precomputed pairwise table, and the two left grandchildren's counts
share one int32 column. The rest is shaped by XLA's CPU backend: the split search is a max and a
min over candidate codes (its argmax is a scalar loop), and samples are routed by select-sums over
the D features, reductions whose results XLA materialises, so node indices are not recomputed
inside every [N, T] loop that reads them (in a scatter's flattened 1-D loops that cost a quarter
of the stage). See `_fit` for the measured times.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.metrics._common import label_encode

DEPTH = 3
HIST_WIDTH = 128


def quantile_bin_edges(x: np.ndarray, num_bins: int) -> list[np.ndarray]:
  """Per-feature inner bin edges from the training data (at most `num_bins - 1` of them).

  A feature with at most `num_bins` distinct values gets an edge half-way between each pair of
  consecutive values, so every value has its own bin (as an exact tree sees it). Otherwise the
  edges are equal-frequency (quantile) edges, each moved to the widest gap between consecutive
  sorted values within half a bin of its quantile, and placed half-way across that gap. Plain
  quantile edges can put the gap between two well-separated clusters of values inside one bin, and
  a tree on such bins cannot make the clean split that sklearn's exact trees make there.

  Args:
    x: [N, D] training features.
    num_bins: the most bins per feature.

  Returns:
    A list of D increasing arrays of edges; bin(v) = number of edges < v.
  """
  edges = []
  for col in np.asarray(x, np.float64).T:
    values = np.unique(col)
    if values.size <= num_bins:
      edges.append(0.5 * (values[:-1] + values[1:]))
      continue
    v = np.sort(col)
    n = v.size
    gaps = v[1:] - v[:-1]  # gap i lies between v[i] and v[i + 1]
    half = max(1, n // (2 * num_bins))
    centre = np.round(np.arange(1, num_bins) * n / num_bins).astype(np.int64) - 1
    lo = np.clip(centre - half, 0, n - 2)
    window = np.lib.stride_tricks.sliding_window_view(np.pad(gaps, (0, 2 * half + 1)),
                                                      2 * half + 1)
    best = lo + np.argmax(window[lo], axis=1)
    best = best[gaps[best] > 0]
    edges.append(np.unique(0.5 * (v[best] + v[best + 1])))
  return edges


def apply_bins(x: np.ndarray, edges: Sequence[np.ndarray]) -> np.ndarray:
  """[N, D] features -> [N, D] int32 bin indices (values on an edge go to the lower bin)."""
  x = np.asarray(x, np.float64)
  return np.stack(
    [np.searchsorted(e, x[:, j], side='left') for j, e in enumerate(edges)], axis=1
  ).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class _Layout:
  """Which trees belong to which factor: T trees in all, factor k owns trees[start_k:stop_k]."""

  num_classes: tuple[int, ...]  # per factor

  @property
  def trees_per_factor(self) -> tuple[int, ...]:
    # One tree per stage for two classes (log-odds), one per class beyond, none for one class.
    return tuple(0 if c < 2 else 1 if c == 2 else c for c in self.num_classes)

  @property
  def starts(self) -> tuple[int, ...]:
    return tuple(np.cumsum((0,) + self.trees_per_factor)[:-1].tolist())

  @property
  def num_trees(self) -> int:
    return int(sum(self.trees_per_factor))

  def tree_factor(self) -> np.ndarray:
    return np.repeat(np.arange(len(self.num_classes)), self.trees_per_factor)

  def tree_class(self) -> np.ndarray:
    return np.concatenate([np.arange(t) + (1 if t == 1 else 0) for t in self.trees_per_factor])


@dataclasses.dataclass
class GBTEnsemble:
  """Boosted trees for several label columns, fitted together by `fit_gbt`.

  Attributes:
    num_classes: classes per factor (each factor's labels are 0..C-1).
    edges: per-feature bin edges used to bin inputs.
    features: [stages, T, 7] split feature per internal node (heap order 0..6).
    thresholds: [stages, T, 7] split bin: go right when bin > threshold.
    leaf_values: [stages, T, 8] leaf values, learning rate included.
    init: [T] initial raw prediction.
    importances: [D, K] feature importances per factor, each column summing to 1 (or all 0).
    train_predictions: [N, K] predicted labels (label-encoded) of the training inputs.
  """

  num_classes: tuple[int, ...]
  edges: list[np.ndarray]
  features: np.ndarray
  thresholds: np.ndarray
  leaf_values: np.ndarray
  init: np.ndarray
  importances: np.ndarray
  train_predictions: np.ndarray

  def predict(self, x: np.ndarray) -> np.ndarray:
    """[N, D] features -> [N, K] predicted labels (label-encoded)."""
    layout = _Layout(self.num_classes)
    with jax.enable_x64(True):
      raw = _raw_predict(
        jnp.asarray(apply_bins(x, self.edges)),
        jnp.asarray(self.features),
        jnp.asarray(self.thresholds),
        jnp.asarray(self.leaf_values, jnp.float64),
        jnp.asarray(self.init, jnp.float64),
      )
      return _decide(np.asarray(raw, np.float64), layout)


def _decide(raw: np.ndarray, layout: _Layout) -> np.ndarray:
  out = []
  for c, start, n in zip(layout.num_classes, layout.starts, layout.trees_per_factor):
    block = raw[:, start : start + n]
    if c == 2:
      out.append((block[:, 0] >= 0).astype(np.int64))
    elif c == 1:
      out.append(np.zeros(raw.shape[0], np.int64))
    else:
      out.append(np.argmax(block, axis=1))
  return np.stack(out, axis=1)


@jax.jit
def _raw_predict(xb, features, thresholds, leaf_values, init):
  """[N, D] bins -> [N, T] raw predictions of the ensemble.

  Trees-major: every node's test is one row gather of the transposed bins (a contiguous copy of a
  feature's N bins) and a compare; the path is then three selects. About 6x faster on a CPU than
  routing each sample with per-(sample, tree) gathers.
  """
  xbt = xb.T  # [D, N]

  def stage(raw, params):
    feat, thr, leaves = params  # [T, 7], [T, 7], [T, 8]; nodes in heap order
    right = [xbt[feat[:, j]] > thr[:, j, None] for j in range(2**DEPTH - 1)]  # each [T, N]
    r0 = right[0]
    r1 = jnp.where(r0, right[2], right[1])
    r2 = jnp.where(r0, jnp.where(r1, right[6], right[5]), jnp.where(r1, right[4], right[3]))
    leaf = 4 * r0.astype(jnp.int32) + 2 * r1.astype(jnp.int32) + r2.astype(jnp.int32)
    return raw + jnp.take_along_axis(leaves, leaf, axis=1), None

  raw0 = jnp.broadcast_to(init[:, None], (init.shape[0], xb.shape[0]))
  raw, _ = jax.lax.scan(stage, raw0, (features, thresholds, leaf_values))
  return raw.T


def _probabilities(raw, groups):
  """Per-tree probabilities from raw [N, T]: sigmoid for a binary factor, softmax over its trees.

  groups: static ((size, binary), ...) per factor, in tree order.
  """
  out, start = [], 0
  for size, binary in groups:
    block = raw[:, start : start + size]
    out.append(jax.nn.sigmoid(block) if binary else jax.nn.softmax(block, axis=1))
    start += size
  return jnp.concatenate(out, axis=1)


def _histograms(values, xb, num_bins, width=HIST_WIDTH):
  """Per-feature bin sums of every column of `values`: [N, R] -> [D, B, R].

  Scatter-adds of whole rows, one per feature and block of at most `width` columns: each sample
  adds its values into its bin. On a CPU this costs O(N * D * R) independent of the bin count,
  several times less than a one-hot matmul or a per-element scatter at 128 bins, and narrow
  blocks keep the [B, width] accumulator in the L1 cache.
  """
  r = values.shape[1]
  chunks = -(-r // width)
  bounds = [r * i // chunks for i in range(chunks + 1)]
  return jnp.concatenate([
    jnp.stack([jax.ops.segment_sum(values[:, lo:hi], xb[:, f], num_segments=num_bins)
               for f in range(xb.shape[1])])
    for lo, hi in zip(bounds[:-1], bounds[1:])
  ], axis=-1)


def _prefix(h, axis=1):
  """Cumulative sums along `axis` (XLA's CPU cumsum and a triangular matmul are both slower)."""
  return jax.lax.associative_scan(jnp.add, h, axis=axis)


def _best_split(pg, pc, min_count=1):
  """Best split of each node from its bin prefix sums.

  pg, pc: [D, B, M] gradient sums and sample counts of bins <= b per (feature, bin, node). Returns
  (feature, bin, gain), each [M], where `gain` is the MSE decrease times the node's sample count,
  S_l^2/n_l + S_r^2/n_r - S^2/n, and bin = B (everything goes left) with gain 0 where no split
  leaves samples on both sides. Ties go to the lowest feature, then the lowest bin.
  """
  d, b = pg.shape[:2]
  tg = pg[0, -1]
  tc = pc[0, -1]
  rg = tg - pg
  rc = tc - pc
  # A bin with none of the node's samples repeats the previous bin's partition: skipping it sends
  # such ties to the lowest bin exactly, not by the rounding of the two prefix sums.
  nonempty = jnp.diff(pc, axis=1, prepend=jnp.zeros_like(pc[:, :1])) > 0
  valid = (pc >= min_count) & (rc >= min_count) & nonempty
  # Two passes (max, then the first (feature, bin) reaching it) instead of an argmax: XLA's CPU
  # argmax is a scalar loop, several times slower. The scores are written once (the max is a
  # library reduction that reads them from memory), so both passes compare the same values.
  score = jnp.where(valid, pg**2 / jnp.maximum(pc, 1) + rg**2 / jnp.maximum(rc, 1), -jnp.inf)
  best_score = score.max((0, 1))
  none = d * (b + 1)
  code = (jax.lax.broadcasted_iota(jnp.int32, score.shape, 0) * (b + 1)
          + jax.lax.broadcasted_iota(jnp.int32, score.shape, 1))
  code = jnp.where(valid & (score >= best_score), code, none).min((0, 1))
  has_split = code < none
  feature = jnp.where(has_split, code // (b + 1), 0)
  threshold = jnp.where(has_split, code % (b + 1), b)
  gain = jnp.where(has_split, best_score - tg**2 / jnp.maximum(tc, 1), 0.0)
  return feature, threshold, gain


@functools.partial(jax.jit, static_argnames=('groups', 'num_bins', 'num_stages'))
def _fit(xb, y, init, newton_scale, learning_rate, *, groups, num_bins, num_stages):
  """The boosting loop. xb: [N, D] bins, y: [N, T] 0/1 targets per tree.

  Each level histograms only the left child of each node and gets the right one by subtraction,
  on bin prefix sums (the split search's input), so a prefix is computed once per histogram. The
  counts of the root and of the first level's children come from precomputed tables (the
  pairwise joint bin counts), so a stage scatters 5 columns per tree: the gradient at the root and
  the first level, the gradients of the two left grandchildren and their packed counts.

  Measured on the benchmark data (N = 10,000, D = 10, 113 trees per stage) on a shared 2-core CPU,
  interleaved in one process with the previous version (per-level [N, 4T]-wide scatters, argmax
  splits, gathers for routing): 2.0-3.6 s warm against 7.4-9.3 s (about 2.9x) at load averages
  of 3.4-4.2. About a third of a stage is now the histogram scatters, a sixth building their inputs.
  Compiling takes longer, 9 s against 3 s at that load: most of it is the prefix sums' associative
  scans; triangular matmuls instead halve it but run about 10% slower.
  """
  n, d = xb.shape
  t = y.shape[1]
  b = num_bins
  dtype = init.dtype
  onehot = jax.nn.one_hot(xb, b, dtype=dtype).reshape(n, d * b)
  joint = _histograms(onehot, xb, b).reshape(d, b, d, b)
  # cum2[f, c, f', c'] = #samples with bin_f <= c and bin_f' <= c'; c = B is 'no split' (all).
  cum2 = _prefix(_prefix(joint, 1), 3)
  pc0 = cum2[0, -1]  # [D, B] root count prefixes
  cum2 = jnp.concatenate([cum2, jnp.broadcast_to(pc0, (d, 1, d, b))], axis=1)
  pc0 = jnp.broadcast_to(pc0[..., None], (d, b, t))
  trees = jnp.arange(t)

  xbt = xb.T[:, :, None]  # [D, N, 1]
  features = jnp.arange(d)[:, None, None]

  def column(feature):  # [T] or [N, T] feature per tree -> [N, T] bins of that feature
    # A select-sum over features: XLA's CPU gather is several times slower at D = 10, and a
    # reduction's result is materialised, not recomputed inside every loop that reads it.
    return jnp.sum(jnp.where(feature == features, xbt, 0), axis=0)

  def stage(raw, _):
    p = _probabilities(raw, groups)
    g = y - p
    hess = p * (1 - p)
    # Root.
    pg0 = _prefix(_histograms(g, xb, b))  # [D, B, T]
    f0, b0, gain0 = _best_split(pg0, pc0)
    a0 = column(f0) <= b0  # [N, T] goes left at the root
    # Level 1 (nodes L, R): the left child's gradients by histogram, its counts from the table.
    pg_l = _prefix(_histograms(g * a0, xb, b))
    pc_l = jnp.moveaxis(cum2[f0, b0], 0, -1)  # [D, B, T]
    pg_r, pc_r = pg0 - pg_l, pc0 - pc_l
    split1 = [_best_split(pg_l, pc_l), _best_split(pg_r, pc_r)]  # (feature, bin, gain) per node
    f1, b1, gain1 = (jnp.stack(v) for v in zip(*split1))  # [2, T] each
    # q: [N, T] level-2 node 0..3 (LL, LR, RL, RR), materialised by a select-sum over features.
    f1s, b1s = jnp.where(a0, f1[0], f1[1]), jnp.where(a0, b1[0], b1[1])
    q = jnp.sum(jnp.where(f1s == features, 2 * (~a0) + (xbt > b1s), 0), axis=0)
    # Level 2: the left grandchildren's gradients and counts.
    ll = q == 0
    rl = q == 2
    pg_ll, pg_rl = jnp.split(
      _prefix(_histograms(jnp.concatenate([g * ll, g * rl], axis=1), xb, b)), 2, axis=-1)
    if n < 2**15:
      # Both left grandchildren's counts in one int32 column: LL + 2^16 RL, exact below 2^15.
      packed = _prefix(_histograms(ll.astype(jnp.int32) + (rl.astype(jnp.int32) << 16), xb, b))
      pc_ll = (packed & 0xFFFF).astype(dtype)
      pc_rl = (packed >> 16).astype(dtype)
    else:
      pc_ll, pc_rl = jnp.split(
        _prefix(_histograms(jnp.concatenate([ll, rl], axis=1).astype(dtype), xb, b)), 2, axis=-1)
    split2 = [_best_split(pg_ll, pc_ll), _best_split(pg_l - pg_ll, pc_l - pc_ll),
              _best_split(pg_rl, pc_rl), _best_split(pg_r - pg_rl, pc_r - pc_rl)]
    f2, b2, gain2 = (jnp.stack(v) for v in zip(*split2))  # [4, T] each

    def pick(v):  # [4, T] per level-2 node -> [N, T] per sample
      return jnp.where(q < 2, jnp.where(q == 0, v[0], v[1]), jnp.where(q == 2, v[2], v[3]))

    num_leaves = 2**DEPTH
    # seg = tree * 8 + heap-relative leaf, computed inside the last level's select-sum over
    # features (exactly one term is non-zero) so that it is materialised once.
    base = trees * num_leaves + 2 * q
    seg = jnp.sum(jnp.where(pick(f2) == features, base + (xbt > pick(b2)), 0), axis=0)
    sums = jax.ops.segment_sum(
      jnp.stack([g, hess], axis=-1).reshape(-1, 2), seg.reshape(-1), num_segments=t * num_leaves
    ).reshape(t, num_leaves, 2)
    sg, sh = sums[..., 0], sums[..., 1]
    value = jnp.where(jnp.abs(sh) < 1e-30, 0.0, newton_scale[:, None] * sg / jnp.where(sh == 0, 1, sh))
    value = learning_rate * value  # [T, 8]
    raw = raw + value.reshape(-1)[seg]
    feats = jnp.concatenate([f0[None], f1, f2], axis=0).T  # [T, 7] heap order
    thrs = jnp.concatenate([b0[None], b1, b2], axis=0).T
    gain = jnp.concatenate([gain0[None], gain1, gain2], axis=0).T / n
    gains = jax.vmap(lambda gi, fi: jax.ops.segment_sum(gi, fi, num_segments=d))(gain, feats)
    return raw, (feats, thrs, value, gains)

  raw0 = jnp.broadcast_to(init[None, :], (n, t))
  raw, (feats, thrs, values, gains) = jax.lax.scan(stage, raw0, None, length=num_stages)
  return raw, feats, thrs, values, gains.sum(0)


_FIT_CACHE: collections.OrderedDict = collections.OrderedDict()
# Enough for DCI's fit to survive the boosted downstream task's four sizes (an ensemble is a few
# MB: its trees plus N training predictions).
_FIT_CACHE_SIZE = 8


def clear_fit_cache() -> None:
  """Forgets the memoised fits of `fit_gbt` (benchmarks time each metric's own fit)."""
  _FIT_CACHE.clear()


def _fingerprint(*arrays: np.ndarray) -> tuple:
  return tuple((a.shape, a.dtype.str, hashlib.blake2b(np.ascontiguousarray(a).data,
                                                       digest_size=16).hexdigest())
               for a in arrays)


def fit_gbt(
  x: np.ndarray,
  labels: np.ndarray,
  *,
  num_stages: int = 100,
  learning_rate: float = 0.1,
  num_bins: int = 128,
  precision: str = 'float32',
) -> GBTEnsemble:
  """Fits one boosted-tree classifier per label column, all columns at once.

  The fit is a deterministic function of its arguments, so the last eight fits are memoised by the
  contents of `x` and `labels`: DCI, the boosted downstream task (at its largest size) and
  fairness on the same training sample share one fit. Treat the returned ensemble as read-only.

  Args:
    x: [N, D] float features.
    labels: [N, K] integer labels; column k is label-encoded (its sorted distinct values -> 0..C-1)
      and fitted as sklearn's `GradientBoostingClassifier(n_estimators=num_stages,
      learning_rate=learning_rate, max_depth=3)` would be, on binned features.
    num_stages: boosting stages (sklearn `n_estimators`).
    learning_rate: shrinkage.
    num_bins: quantile bins per feature for the split search.
    precision: 'float32' (default) or 'float64' (sklearn's; about 1.7x slower on a CPU; the
      measured agreement with sklearn was the same).

  Returns:
    The fitted `GBTEnsemble`; a column with a single class gets no trees, predicts that class and
    has an all-zero importance column.
  """
  x = np.asarray(x, np.float64)
  labels = np.asarray(labels)
  key = (_fingerprint(x, labels), num_stages, learning_rate, num_bins, precision)
  if key in _FIT_CACHE:
    _FIT_CACHE.move_to_end(key)
    return _FIT_CACHE[key]
  model = _fit_gbt(x, labels, num_stages=num_stages, learning_rate=learning_rate,
                   num_bins=num_bins, precision=precision)
  _FIT_CACHE[key] = model
  while len(_FIT_CACHE) > _FIT_CACHE_SIZE:
    _FIT_CACHE.popitem(last=False)
  return model


def _fit_gbt(x, labels, *, num_stages, learning_rate, num_bins, precision) -> GBTEnsemble:
  if x.ndim != 2 or labels.ndim != 2 or x.shape[0] != labels.shape[0]:
    raise ValueError(f'expected x [N, D] and labels [N, K], got {x.shape} and {labels.shape}')
  encoded, num_classes = label_encode(labels)
  layout = _Layout(tuple(num_classes))
  n, d = x.shape
  edges = quantile_bin_edges(x, num_bins)
  xb = apply_bins(x, edges)
  # A bin count set by the sample count (never more bins than samples), not by the data, so that
  # fits of the same size share one compilation; small fits search far fewer bins.
  width = min(num_bins, 1 << max(3, (n - 1).bit_length()))
  tree_factor = layout.tree_factor()
  tree_class = layout.tree_class()
  num_trees = layout.num_trees
  importances = np.zeros((d, len(num_classes)))
  if num_trees == 0:
    empty = np.zeros((num_stages, 0, 2**DEPTH - 1), np.int32)
    return GBTEnsemble(tuple(num_classes), edges, empty, empty,
                       np.zeros((num_stages, 0, 2**DEPTH)), np.zeros((0,)), importances,
                       np.zeros_like(encoded))
  y = (encoded[:, tree_factor] == tree_class[None, :]).astype(np.float32)  # [N, T]
  init = np.zeros(num_trees)
  scale = np.ones(num_trees)
  for k, (c, start, size) in enumerate(zip(layout.num_classes, layout.starts, layout.trees_per_factor)):
    if c < 2:
      continue
    prior = np.bincount(encoded[:, k], minlength=c) / n
    prior = np.clip(prior, np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
    if c == 2:
      init[start] = np.log(prior[1] / prior[0])
    else:
      init[start : start + size] = np.log(prior)
      scale[start : start + size] = (c - 1) / c
  groups = tuple(
    (size, c == 2) for c, size in zip(layout.num_classes, layout.trees_per_factor) if size > 0
  )
  dtype = jnp.float64 if precision == 'float64' else jnp.float32
  with jax.enable_x64(precision == 'float64'):
    raw, feats, thrs, values, gains = _fit(
      jnp.asarray(xb),
      jnp.asarray(y, dtype),
      jnp.asarray(init, dtype),
      jnp.asarray(scale, dtype),
      jnp.asarray(learning_rate, dtype),
      groups=groups,
      num_bins=width,
      num_stages=num_stages,
    )
    raw, values = np.asarray(raw, np.float64), np.asarray(values, np.float64)
    feats, thrs, gains = np.asarray(feats), np.asarray(thrs), np.asarray(gains)
  gains = np.asarray(gains, np.float64)  # [T, D]
  for k, (start, size) in enumerate(zip(layout.starts, layout.trees_per_factor)):
    col = gains[start : start + size].sum(0)
    total = col.sum()
    importances[:, k] = col / total if total > 0 else 0.0
  train_predictions = _decide(np.asarray(raw, np.float64), layout)
  return GBTEnsemble(tuple(num_classes), edges, feats, thrs, values,
                     init, importances, train_predictions)

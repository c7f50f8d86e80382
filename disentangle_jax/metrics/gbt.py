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
sum to one, which is what `feature_importances_` computes).

Split search: exact trees score every threshold between two distinct values of every feature.
Here each node's split is first searched on `num_bins` (128) quantile bins per feature
(`quantile_bin_edges`, as LightGBM or sklearn's HistGradientBoosting), then refined exactly: for
the `REFINED_FEATURES` (2) features with the best binned splits, every threshold between distinct
values within a window around the feature's best bin edge (the two bins beside it, widened to at
least `REFINE_SPAN` (32) samples on each side) is scored as an exact tree scores it, and the best
of these becomes the split, its threshold half-way between the last value on the left and the
next distinct training value (sklearn: the next value in the node). A
binned-only search moved DCI's disentanglement and completeness by up to 0.04-0.06 on entangled
codes: where classes are many and small (dSprites' 40 and 32 values) the trees separate classes
by cuts between neighbouring points, which a bin edge rarely is. With the refinement the fast
path stays within 0.02 of sklearn's exact trees on the entangled codes of
`tests/test_metrics_dci.py` (measured figures: `dci`). A bin per distinct value
(`num_bins` >= the number of distinct values) makes the search exact.

Ties: when several features split a node equally well (the same best binned score, exactly, as
duplicated or rescaled code dimensions do), the node is split once, by the first of them, and the
split's gain is shared equally among them. sklearn breaks such ties by a random feature order
(`random_state`), so over its seeds each copy gets the same expected importance; sharing gives
that expectation deterministically. Arithmetic is float32 unless `precision='float64'`.

Speed: per stage, the histograms of all trees are per-feature scatter-adds of whole sample rows
(cost independent of the bin count) in blocks of at most 128 columns (at 452 columns the
accumulator leaves the L1 cache and each add costs about 4 times more); each level histograms only
the left children and gets the right ones by subtracting bin prefix sums; the two left
grandchildren's counts share one int32 column; the exact refinement gathers each node's window of
samples in sorted order (per level and candidate feature: [nodes, trees, window] values, not a
pass over every sample and feature). The refinement costs time: the warm fit and prediction of the
benchmark data (N = 10,000, 113 trees; shared 2-core CPU) took 3.5 s binned-only (before this
search; cold 11 s) and 11.2 s with 2 refined features (cold 21 s) at load 3.5-3.8, and 4.3 / 9-11
/ 16-21 s binned-only / 1 / 3 features at load 5-6; 1 feature left one measured D 0.021 off, 2
keep every measured D and C within 0.018. The rest is shaped by XLA's CPU backend: the split search is a max and a
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

from disentangle_jax.metrics._common import label_encode, pad_to

DEPTH = 3
HIST_WIDTH = 128
# Features per node whose best coarse split is refined to exact thresholds (see `_fit`); 0 splits
# at bin edges only (about 3x faster, D and C up to 0.04 off on entangled codes).
REFINED_FEATURES = 2
# Distinct values on each side of a chosen coarse edge searched exactly, at least.
REFINE_SPAN = 32
# Fits of at most this many samples are padded to it (zero-weight rows; trees padded to at least
# as many), so that small fits (the downstream task's 10 and 100 labels) share one compilation.
SMALL_FIT = 128
# Prediction pads the trees to a multiple of this (one compilation for ensembles of similar size).
PREDICT_TREES = 128


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
    t = self.init.shape[0]
    # Trees padded to a multiple of 128 (no splits, zero leaves), so that ensembles of similar
    # sizes share a compilation.
    tp = -(-t // PREDICT_TREES) * PREDICT_TREES
    pad = lambda a, value=0: pad_to(a, a.shape[:1] + (tp,) + a.shape[2:], value)  # noqa: E731
    with jax.enable_x64(True):
      raw = _raw_predict(
        apply_bins(x, self.edges),
        pad(self.features),
        pad(self.thresholds, _ALL_LEFT),
        np.asarray(pad(self.leaf_values), np.float64),
        np.asarray(pad_to(self.init, (tp,)), np.float64),
      )
      return _decide(np.asarray(raw, np.float64)[:, :t], layout)


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


def _probabilities(raw, onehot, binary):
  """Per-tree probabilities from raw [N, T]: sigmoid for a binary factor, softmax over its trees.

  onehot: [T, G] the factor (group) of each tree; binary: [T] bool. Traced, not static, so that
  fits with different class counts share a compilation.
  """
  member = onehot > 0
  shift = jnp.max(jnp.where(member[None], raw[:, :, None], -jnp.inf), axis=1)  # [N, G]
  shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
  hi = jax.lax.Precision.HIGHEST
  e = jnp.exp(raw - jnp.einsum('ng,tg->nt', shift, onehot, precision=hi))
  total = jnp.einsum('nt,tg->ng', e, onehot, precision=hi)
  soft = e / jnp.einsum('ng,tg->nt', total, onehot, precision=hi)
  return jnp.where(binary, jax.nn.sigmoid(raw), soft)


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
  """Cumulative sums along `axis`.

  Floats: a matmul with a triangular 0/1 matrix (at most 128 or `window` long here, so about as
  fast as XLA's associative scan, and a fraction of its compile time). Integers (the packed
  counts, exact only in integer arithmetic): `_window_cumsum`'s blocked matmuls, exact in int32.
  XLA's CPU cumsum is slower.
  """
  if not jnp.issubdtype(h.dtype, jnp.floating):
    return jnp.moveaxis(_window_cumsum(jnp.moveaxis(h, axis, -1)), -1, axis)
  size = h.shape[axis]
  tri = (jnp.arange(size)[:, None] <= jnp.arange(size)[None, :]).astype(h.dtype)  # [from, to]
  moved = jnp.moveaxis(h, axis, -1)
  out = jnp.einsum('...i,ij->...j', moved, tri, precision=jax.lax.Precision.HIGHEST)
  return jnp.moveaxis(out, -1, axis)


def _best_split(pg, pc, min_count=1):
  """Best split of each node from its bin prefix sums.

  pg, pc: [D, B, M] gradient sums and sample counts of bins <= b per (feature, bin, node). Returns
  (feature, bin, gain, feature_score, feature_bin): feature, bin and gain are [M], where `gain` is
  the MSE decrease times the node's sample count, S_l^2/n_l + S_r^2/n_r - S^2/n, and bin = B
  (everything goes left) with gain 0 where no split leaves samples on both sides; feature_score and
  feature_bin [D, M] are each feature's best score (S_l^2/n_l + S_r^2/n_r, -inf without a split)
  and the lowest bin reaching it. Ties go to the lowest feature, then the lowest bin.
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
  feature_score = score.max(1)  # [D, M]
  best_score = feature_score.max(0)
  none = d * (b + 1)
  code = (jax.lax.broadcasted_iota(jnp.int32, score.shape, 0) * (b + 1)
          + jax.lax.broadcasted_iota(jnp.int32, score.shape, 1))
  code = jnp.where(valid & (score >= best_score), code, none).min((0, 1))
  has_split = code < none
  feature = jnp.where(has_split, code // (b + 1), 0)
  threshold = jnp.where(has_split, code % (b + 1), b)
  gain = jnp.where(has_split, best_score - tg**2 / jnp.maximum(tc, 1), 0.0)
  feature_bin = jnp.where(valid & (score >= feature_score[:, None]),
                          jax.lax.broadcasted_iota(jnp.int32, score.shape, 1), b).min(1)
  return feature, threshold, gain, feature_score, feature_bin


# A fine threshold that sends every sample left (no split).
_ALL_LEFT = 2**30


def _pick_node(v, node, m):
  """v: [M, T] per node, node: [N, T] in 0..M-1 -> [N, T] each sample's node's value."""
  if m == 1:
    return jnp.broadcast_to(v[0], node.shape)
  if m == 2:
    return jnp.where(node == 0, v[0], v[1])
  return jnp.where(node < 2, jnp.where(node == 0, v[0], v[1]),
                   jnp.where(node == 2, v[2], v[3]))


def _window_cumsum(v):
  """Cumulative sums along the last axis in blocks of at most 16 (exact for integers).

  Within a block a triangular matmul (16 multiply-adds per element), then the blocks' totals
  by another: a few ops to compile where an associative scan unrolls into dozens of slices and
  pads per level, at about the scan's cost to run on windows of 128 to 512.
  """
  w = v.shape[-1]
  b = min(w, 16)
  a = -(-w // b)
  if a * b > w:
    v = jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, a * b - w)])
  blocks = v.reshape(v.shape[:-1] + (a, b))
  hi = None if jnp.issubdtype(v.dtype, jnp.integer) else jax.lax.Precision.HIGHEST
  tri_b = (jnp.arange(b)[:, None] <= jnp.arange(b)[None, :]).astype(v.dtype)
  inner = jnp.einsum('...ai,ij->...aj', blocks, tri_b, precision=hi)
  if a > 1:
    before = (jnp.arange(a)[:, None] < jnp.arange(a)[None, :]).astype(v.dtype)  # exclusive
    offset = jnp.einsum('...i,ij->...j', inner[..., -1], before, precision=hi)
    inner = inner + offset[..., None]
  return inner.reshape(v.shape)[..., :w]


def _refine(g, node, feature, coarse, pgs, pcs, layout, live, *, window, reach, num_bins):
  """Exact thresholds near the splits chosen on bins: an exact split search in a window.

  For each node (M per tree) the coarse search chose `feature` and coarse bin `coarse` (go left
  when bin <= coarse). The window is `window` consecutive samples in that feature's sorted order,
  from the first sample of coarse bin `coarse - reach`: it covers the bins beside the chosen edge.
  The node's samples there are gathered in order (a gather of [M, T, window], not a scatter of
  every sample), and every cut just after one of them and before a larger value is scored as an
  exact tree scores it; the coarse edge is one of those cuts, so the result never scores less.

  Args:
    g: [N, T] gradients; node: [N, T] node of each sample (0..M-1).
    live: [N] bool, False on padding rows (they belong to no node).
    feature, coarse: [M, T] the coarse split.
    pgs, pcs: [M, D, B, T] the nodes' coarse prefix sums (gradients, counts).
    layout: (order [D, N] samples sorted by feature, sorted_fine [D, N + 1] their fine indices
      with a sentinel, sorted_start [D, B + 2] the first sorted position of each coarse bin).

  Returns:
    (threshold [M, T]: go left when the fine index <= threshold, `_ALL_LEFT` for no split;
     gain [M, T]).
  """
  order, sorted_fine, sorted_start = layout
  n = order.shape[1]
  m, t = feature.shape
  has = coarse < num_bins
  first = jnp.maximum(coarse - reach, 0)  # [M, T] first coarse bin of the window
  mi = jnp.arange(m)[:, None]
  ti = jnp.arange(t)[None, :]
  below = jnp.maximum(first - 1, 0)
  base_g = jnp.where(first > 0, pgs[mi, feature, below, ti], 0.0)  # bins before the window
  base_c = jnp.where(first > 0, pcs[mi, feature, below, ti], 0.0)
  tg, tc = pgs[:, 0, -1], pcs[:, 0, -1]  # [M, T] node totals
  pos = sorted_start[feature, first][..., None] + jnp.arange(window)  # [M, T, W]
  inside = pos < n
  pos = jnp.minimum(pos, n - 1)
  # Flat 1-D gathers: XLA's CPU gather is several times faster on one index dimension.
  fw = feature[..., None]
  ids = order.reshape(-1)[fw * n + pos]  # sample ids
  flat = ti[..., None] * n + ids
  member = inside & live[ids]
  if m > 1:
    member = member & (node.T.reshape(-1)[flat] == mi[..., None])
  gw = jnp.where(member, g.T.reshape(-1)[flat], 0.0)
  fine_at = fw * (n + 1) + pos
  value = sorted_fine.reshape(-1)[fine_at]
  cut = value < sorted_fine.reshape(-1)[fine_at + 1]  # a larger value follows: a split point
  # Both running sums along the window at once, in blocks of 16 (`_window_cumsum`): one
  # triangular matmul over the whole window would cost `window` times more.
  cum = _window_cumsum(jnp.stack([gw, member.astype(gw.dtype)]))
  cg = base_g[..., None] + cum[0]
  cc = base_c[..., None] + cum[1]
  rg, rc = tg[..., None] - cg, tc[..., None] - cc
  valid = member & cut & (cc >= 1) & (rc >= 1) & has[..., None]
  score = jnp.where(valid, cg**2 / jnp.maximum(cc, 1) + rg**2 / jnp.maximum(rc, 1), -jnp.inf)
  best = score.max(-1)
  k = jnp.where(valid & (score >= best[..., None]), jnp.arange(window), window).min(-1)
  ok = has & (k < window)
  threshold = jnp.where(ok, jnp.take_along_axis(value, jnp.minimum(k, window - 1)[..., None],
                                                -1)[..., 0], _ALL_LEFT)
  gain = jnp.where(ok, best - tg**2 / jnp.maximum(tc, 1), 0.0)
  return threshold, gain


@functools.partial(jax.jit, static_argnames=('num_bins', 'num_stages', 'window', 'reach',
                                             'candidates'))
def _fit(xb, xf, start, order, sorted_fine, sorted_start, y, weight, onehot, binary, init,
         newton_scale, learning_rate, *, num_bins, num_stages, window, reach,
         candidates=REFINED_FEATURES):
  """The boosting loop. xb: [N, D] coarse bins, xf: [N, D] fine indices, y: [N, T] 0/1 targets,
  weight: [N] 1, or 0 on padding rows (they add nothing to any sum or count), onehot [T, G] and
  binary [T]: each tree's factor and whether it is binary (`_probabilities`).

  Per level: the split of every node is searched on the coarse bins' prefix sums (histograms of
  whole sample rows), then refined exactly in a window around the best edges of its `candidates`
  best features (`_refine`), and samples are routed by their fine indices. Each level histograms only the left child of each node and gets the right one by
  subtraction, so a stage scatters 6 columns per tree: the gradient at the root and the first
  level, the first level's left counts, the gradients of the two left grandchildren and their
  packed counts. `window` = 0 (every coarse bin holds one distinct value: the bins are exact)
  skips the refinement.

  Measured on the benchmark data (N = 10,000, D = 10, 113 trees per stage) on a shared 2-core CPU:
  see the module docstring.
  """
  n, d = xb.shape
  t = y.shape[1]
  b = num_bins
  candidates = min(candidates, d)
  sorted_layout = (order, sorted_fine, sorted_start)
  dtype = init.dtype
  live = weight > 0
  pc0 = _prefix(_histograms(weight[:, None], xb, b))  # [D, B, 1] root count prefixes
  pc0 = jnp.broadcast_to(pc0, (d, b, t))
  trees = jnp.arange(t)

  xft = xf.T[:, :, None]  # [D, N, 1]
  features = jnp.arange(d)[:, None, None]

  def column(feature):  # [N, T] feature per tree -> [N, T] fine indices of that feature
    # A select-sum over features: XLA's CPU gather is several times slower at D = 10, and a
    # reduction's result is materialised, not recomputed inside every loop that reads it.
    return jnp.sum(jnp.where(feature == features, xft, 0), axis=0)

  def split(g, node, searched, pgs, pcs):
    """Per node (M) coarse searches -> (feature, fine threshold, gain, gain share [M, D, T],
    goes right [N, T]), the threshold refined for the `candidates` best features."""
    scores = jnp.stack([v[3] for v in searched])  # [M, D, T]
    bins = jnp.stack([v[4] for v in searched])
    m = scores.shape[0]
    pgs, pcs = jnp.stack(pgs), jnp.stack(pcs)
    mi, ti = jnp.arange(m)[:, None], jnp.arange(t)[None, :]
    if window and candidates:
      # The best `candidates` features by coarse score, each refined; lax.top_k keeps the lower
      # index first among equal scores.
      _, order = jax.lax.top_k(jnp.moveaxis(scores, 1, -1), candidates)  # [M, T, K]
      fk = jnp.moveaxis(order, -1, 0)  # [K, M, T]
      # The candidates refined as one batch (vmap): one copy of the refinement to compile, not K.
      thrk, gaink = jax.vmap(lambda f: _refine(
        g, node, f, bins[mi, f, ti], pgs, pcs, sorted_layout, live, window=window, reach=reach,
        num_bins=b))(fk)
      # The best refined gain; a tie keeps the better coarse candidate (lower k).
      gain = gaink.max(0)
      kbest = jnp.where(gaink >= gain, jnp.arange(candidates)[:, None, None], candidates).min(0)
      f = jnp.take_along_axis(fk, kbest[None], 0)[0]
      thr = jnp.take_along_axis(thrk, kbest[None], 0)[0]
      col = column(_pick_node(f, node, m))
    else:  # exact bins (a coarse bin is a fine index), or no refinement: the bin edge
      f = jnp.stack([v[0] for v in searched])
      bc = jnp.stack([v[1] for v in searched])
      gain = jnp.stack([v[2] for v in searched])
      thr = jnp.where(bc < b, start[f, bc + 1] - 1, _ALL_LEFT)
      col = column(_pick_node(f, node, m))
    # The tie rule (module docstring): the gain is shared equally by the features whose coarse
    # best score equals the chosen feature's (duplicated or rescaled code dimensions).
    chosen = scores[mi, f, ti]  # [M, T]
    tied = (scores == chosen[:, None]) & (gain > 0)[:, None]
    share = tied / jnp.maximum(tied.sum(1, keepdims=True), 1)  # [M, D, T]
    goes_right = col > _pick_node(thr, node, m)
    return f, thr, gain, share, goes_right

  def stage(raw, _):
    p = _probabilities(raw, onehot, binary)
    g = (y - p) * weight[:, None]
    hess = p * (1 - p) * weight[:, None]
    zero = jnp.zeros((n, t), jnp.int32)
    # Root.
    pg0 = _prefix(_histograms(g, xb, b))  # [D, B, T]
    f0, t0, gain0, share0, r0 = split(g, zero, [_best_split(pg0, pc0)], [pg0], [pc0])
    a0 = ~r0  # [N, T] goes left at the root
    # Level 1 (nodes L, R): the left child's gradients and counts by histogram.
    pg_l, pc_l = jnp.split(
      _prefix(_histograms(jnp.concatenate([g * a0, a0 * weight[:, None]], axis=1), xb, b)), 2, -1)
    pg_r, pc_r = pg0 - pg_l, pc0 - pc_l
    node1 = r0.astype(jnp.int32)
    f1, t1, gain1, share1, r1 = split(
      g, node1, [_best_split(pg_l, pc_l), _best_split(pg_r, pc_r)], [pg_l, pg_r], [pc_l, pc_r])
    q = 2 * node1 + r1  # [N, T] level-2 node 0..3 (LL, LR, RL, RR)
    # Level 2: the left grandchildren's gradients and counts.
    ll = (q == 0) & live[:, None]
    rl = (q == 2) & live[:, None]
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
    pgs2 = [pg_ll, pg_l - pg_ll, pg_rl, pg_r - pg_rl]
    pcs2 = [pc_ll, pc_l - pc_ll, pc_rl, pc_r - pc_rl]
    f2, t2, gain2, share2, r2 = split(
      g, q, [_best_split(pg_, pc_) for pg_, pc_ in zip(pgs2, pcs2)], pgs2, pcs2)

    num_leaves = 2**DEPTH
    seg = trees * num_leaves + 2 * q + r2
    sums = jax.ops.segment_sum(
      jnp.stack([g, hess], axis=-1).reshape(-1, 2), seg.reshape(-1), num_segments=t * num_leaves
    ).reshape(t, num_leaves, 2)
    sg, sh = sums[..., 0], sums[..., 1]
    value = jnp.where(jnp.abs(sh) < 1e-30, 0.0, newton_scale[:, None] * sg / jnp.where(sh == 0, 1, sh))
    value = learning_rate * value  # [T, 8]
    raw = raw + value.reshape(-1)[seg]
    feats = jnp.concatenate([f0, f1, f2], axis=0).T  # [T, 7] heap order
    thrs = jnp.concatenate([t0, t1, t2], axis=0).T
    gain = jnp.concatenate([gain0, gain1, gain2], axis=0) / jnp.sum(weight)  # [7, T]
    share = jnp.concatenate([share0, share1, share2], axis=0)  # [7, D, T]
    gains = jnp.einsum('mt,mdt->td', gain, share)
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
  key = (_fingerprint(x, labels), num_stages, learning_rate, num_bins, precision,
         REFINED_FEATURES, REFINE_SPAN)
  if key in _FIT_CACHE:
    _FIT_CACHE.move_to_end(key)
    return _FIT_CACHE[key]
  model = _fit_gbt(x, labels, num_stages=num_stages, learning_rate=learning_rate,
                   num_bins=num_bins, precision=precision)
  _FIT_CACHE[key] = model
  while len(_FIT_CACHE) > _FIT_CACHE_SIZE:
    _FIT_CACHE.popitem(last=False)
  return model


def _bin_layout(x, num_bins, width):
  """Coarse bins for the split search and fine indices for exact thresholds.

  Returns:
    xb [N, D] coarse bins (`quantile_bin_edges`), xf [N, D] fine indices (the rank of each value
    among its feature's distinct values), start [D, width + 2] the first fine index of each coarse
    bin (padded with the number of distinct values), the sorted layout (`_refine`'s), the fine
    edges (half-way between consecutive distinct values: sklearn's thresholds), the refinement
    window (the most samples in `2 + 2 * reach` consecutive coarse bins, rounded up to a power of
    two so that fits of one size mostly share a compilation; 0 when every coarse bin holds a
    single value: the coarse search is exact) and `reach`.
  """
  coarse_edges = quantile_bin_edges(x, num_bins)
  n, d = x.shape
  xf = np.zeros((n, d), np.int32)
  xb = np.zeros((n, d), np.int32)
  start = np.zeros((d, width + 2), np.int32)
  # Coarse bins on each side of the chosen one that the exact search also covers: enough for
  # about REFINE_SPAN samples on each side.
  reach = max(0, -(-(REFINE_SPAN - n // width) // max(1, n // width)))
  order = np.argsort(x, axis=0, kind='stable').T.astype(np.int32)  # [D, N]
  sorted_fine = np.full((d, n + 1), np.iinfo(np.int32).max, np.int32)
  sorted_start = np.zeros((d, width + 2), np.int32)
  fine_edges, widest = [], 1
  for j in range(d):
    values, inverse = np.unique(x[:, j], return_inverse=True)
    xf[:, j] = inverse.reshape(-1)
    fine_edges.append(0.5 * (values[:-1] + values[1:]))
    coarse_of_value = np.searchsorted(coarse_edges[j], values, side='left')
    xb[:, j] = coarse_of_value[xf[:, j]]
    start[j] = np.searchsorted(coarse_of_value, np.arange(width + 2), side='left')
    sorted_fine[j, :n] = xf[order[j], j]
    sorted_start[j] = np.searchsorted(xb[order[j], j], np.arange(width + 2), side='left')
    lo = sorted_start[j, np.maximum(np.arange(width) - reach, 0)]
    hi = sorted_start[j, np.minimum(np.arange(width) + reach + 2, width + 1)]
    widest = max(widest, int((hi - lo).max()))
  exact = all(len(e) == len(f) for e, f in zip(coarse_edges, fine_edges))
  window = 0 if exact else 1 << (widest - 1).bit_length()
  return xb, xf, start, (order, sorted_fine, sorted_start), fine_edges, window, reach


def _fit_gbt(x, labels, *, num_stages, learning_rate, num_bins, precision) -> GBTEnsemble:
  if x.ndim != 2 or labels.ndim != 2 or x.shape[0] != labels.shape[0]:
    raise ValueError(f'expected x [N, D] and labels [N, K], got {x.shape} and {labels.shape}')
  encoded, num_classes = label_encode(labels)
  layout = _Layout(tuple(num_classes))
  n, d = x.shape
  # Small fits are padded to SMALL_FIT rows (zero weight), so that they share a compilation.
  rows = max(n, SMALL_FIT)
  # A bin count set by the (padded) sample count (never more bins than samples), not by the data,
  # so that fits of the same size share one compilation; small fits search far fewer bins.
  width = min(num_bins, 1 << max(3, (rows - 1).bit_length()))
  xb, xf, bin_start, sorted_layout, edges, window, reach = _bin_layout(x, num_bins, width)
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
  # Padding: rows of zero weight (after the last sorted position, sentinel fine values), and for
  # small fits trees to at least SMALL_FIT, each alone in an extra factor (binary, no target).
  trees = max(num_trees, SMALL_FIT) if n <= SMALL_FIT else num_trees
  k = len(num_classes)
  onehot = np.zeros((trees, k + 1), np.float32)
  onehot[np.arange(num_trees), tree_factor] = 1.0
  onehot[num_trees:, k] = 1.0
  binary = np.ones(trees, bool)
  binary[:num_trees] = np.asarray(layout.num_classes)[tree_factor] == 2
  weight = np.zeros(rows, np.float32)
  weight[:n] = 1.0
  order, sorted_fine, sorted_start = sorted_layout
  order = np.concatenate([order, np.broadcast_to(np.arange(n, rows, dtype=np.int32), (d, rows - n))],
                         axis=1)
  sorted_fine = pad_to(sorted_fine, (d, rows + 1), np.iinfo(np.int32).max)
  sorted_layout = (order, sorted_fine, sorted_start)
  xb, xf = pad_to(xb, (rows, d)), pad_to(xf, (rows, d))
  y = pad_to(y, (rows, trees))
  # Host arrays go to `_fit` as they are: an eager `jnp.asarray` would compile a copy program for
  # every shape and dtype.
  dtype = np.float64 if precision == 'float64' else np.float32
  with jax.enable_x64(precision == 'float64'):
    raw, feats, thrs, values, gains = _fit(
      xb,
      xf,
      bin_start,
      *sorted_layout,
      np.asarray(y, dtype),
      np.asarray(weight, dtype),
      np.asarray(onehot, dtype),
      binary,
      np.asarray(pad_to(init, (trees,)), dtype),
      np.asarray(pad_to(scale, (trees,), 1.0), dtype),
      np.asarray(learning_rate, dtype),
      num_bins=width,
      num_stages=num_stages,
      window=window,
      reach=reach,
      candidates=REFINED_FEATURES,
    )
    t = num_trees
    raw, values = np.asarray(raw, np.float64)[:n, :t], np.asarray(values, np.float64)[:, :t]
    feats, thrs, gains = np.asarray(feats)[:, :t], np.asarray(thrs)[:, :t], np.asarray(gains)[:t]
  gains = np.asarray(gains, np.float64)  # [T, D]
  for k, (start, size) in enumerate(zip(layout.starts, layout.trees_per_factor)):
    col = gains[start : start + size].sum(0)
    total = col.sum()
    importances[:, k] = col / total if total > 0 else 0.0
  train_predictions = _decide(np.asarray(raw, np.float64), layout)
  return GBTEnsemble(tuple(num_classes), edges, feats, thrs, values,
                     init, importances, train_predictions)

"""Downstream classification accuracy at several label budgets (dlib's `downstream_task`).

For each training size (dlib's study: 10, 100, 1000 and 10,000 labels; 5,000 test points) one
classifier per factor predicts the factor from the whole code; the scores are its train and test
accuracies per factor, their mean and their minimum (Locatello et al., ICML 2019). Two predictors, as in dlib's
two study configs:

- `'logistic'`: sklearn's `LogisticRegressionCV(Cs=10, cv=KFold(5))`: the 10 values of C in
  `logspace(-4, 4, 10)`, 5 contiguous folds, the C with the best summed held-out accuracy (first on
  ties), then a refit on all training points. As in sklearn (1.9), each fold fits the Cs in
  increasing order, each fit starting from the previous C's solution, stopping when the largest
  gradient entry of the mean-normalised objective is at most 1e-4 or after 100 iterations; the
  refit starts from the folds' mean solution at the chosen C. Here all (factor, fold) paths of
  factors of similar class counts run as one batched L-BFGS in JAX (`_logistic.fit_path`), each
  fold on its own training rows, on centred codes (an exact reparametrisation that the intercept
  absorbs). Penalised problems are strictly convex, so converged fits agree with sklearn's up to
  the tolerance; fits that hit the iteration cap (weak penalties on nearly separable factors)
  stop at nearby, not identical, points (float32, an Armijo backtracking line search instead of
  scipy's Wolfe search, function evaluations counted as iterations, and a first step along the
  path's secant, which converges some of the fits that sklearn stops at the cap). On the bench
  data (dSprites factor sizes) mean test accuracies match sklearn's within 0.003 at 10 to 2,000
  labels; train accuracies too, except at 100 labels, where the 32-class factors (80 rows per
  fold) are separable, held-out accuracies tie across Cs, and the chosen C (and with it the
  training fit) flips on small differences: both here and before the secant step.
- `'boosted'`: sklearn's `GradientBoostingClassifier()` defaults, fitted by
  `disentangle_jax.metrics.gbt` (all factors together, splits on 128 quantile bins).

Difference from dlib: dlib draws fresh training and test points for every size; here the size-n
training set is the first n rows of `codes_train` and all sizes share the test set. With rows
drawn i.i.d. the two agree in distribution.

Protocols: the docstring above describes the default, `protocol='fast'`; published downstream
numbers were made with scikit-learn's estimators at dlib's settings (100 L-BFGS iterations on
uncentred codes, which scores up to 0.3 lower than a converged fit on informative codes at 1,000
labels and more), which `protocol='dlib'` runs (`dlib_protocol`).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics import _logistic
from disentangle_jax.metrics import dlib_protocol
from disentangle_jax.metrics import gbt as gbt_lib
from disentangle_jax.metrics._common import (
  MIN_POINTS,
  check_codes,
  check_factors,
  label_encode,
  pad_to,
  require_varying,
)

CS = np.logspace(-4, 4, 10)


def kfold_masks(n: int, num_folds: int = 5) -> np.ndarray:
  """[num_folds, n] bool: True on the held-out rows of each fold (sklearn's KFold, no shuffle)."""
  sizes = np.full(num_folds, n // num_folds)
  sizes[: n % num_folds] += 1
  bounds = np.concatenate([[0], np.cumsum(sizes)])
  idx = np.arange(n)
  return np.stack([(idx >= bounds[f]) & (idx < bounds[f + 1]) for f in range(num_folds)])


def _fold_rows(n: int, num_folds: int):
  """Per fold: training and held-out row indices, each padded to a common length, and masks."""
  held = kfold_masks(n, num_folds)
  m_tr, m_he = max((~held).sum(1)), max(held.sum(1))
  tr_idx = np.zeros((num_folds, m_tr), np.int64)
  he_idx = np.zeros((num_folds, m_he), np.int64)
  tr_ok = np.zeros((num_folds, m_tr), bool)
  he_ok = np.zeros((num_folds, m_he), bool)
  for f in range(num_folds):
    tr, he = np.nonzero(~held[f])[0], np.nonzero(held[f])[0]
    tr_idx[f, : tr.size], tr_ok[f, : tr.size] = tr, True
    he_idx[f, : he.size], he_ok[f, : he.size] = he, True
  return tr_idx, tr_ok, he_idx, he_ok


@jax.jit
def _held_out_correct(x, y, ok, theta, logit_mask):
  """Correct held-out predictions per (problem, C): x [P, H, D1], theta [P, S, D1, C] -> [P, S]."""
  def one(th):
    z = jnp.einsum('phd,pdc->phc', x, th) + logit_mask[:, None, :]
    return jnp.sum((jnp.argmax(z, axis=-1) == y) & ok, axis=1)
  return jax.lax.map(one, jnp.swapaxes(theta, 0, 1)).T


@jax.jit
def _predict(x, theta, logit_mask):
  """[M, D1] inputs, [G, D1, C] parameters -> [G, M] predicted (encoded) labels."""
  return jnp.argmax(jnp.einsum('md,gdc->gmc', x, theta) + logit_mask[:, None, :], axis=-1)


def _groups(sizes, n: int) -> list[list[int]]:
  """Factors (two classes or more) batched together.

  A batch is padded to its widest factor, so a factor joins the previous (wider) one's batch
  only when that wastes at most a quarter of it; small problems (where compiling a batch costs
  more than the padding) all go in one batch.
  """
  order = sorted((f for f in range(len(sizes)) if sizes[f] > 1), key=lambda f: -sizes[f])
  if order and n * len(order) * sizes[order[0]] <= 50_000:
    return [order]
  groups = []
  for f in order:
    if groups and sizes[f] >= 0.75 * sizes[groups[-1][0]]:
      groups[-1].append(f)
    else:
      groups.append([f])
  return groups


def _held_out_correct_padded(x, y, ok, theta, logit_mask, *, min_classes=8, block=8):
  """`_held_out_correct` on blocks of `block` problems, rows and classes padded as
  `_logistic.fit_path_padded` pads them, so that sizes and groups share compilations."""
  p, h, d1 = x.shape
  cc = _logistic.class_bucket(theta.shape[-1], min_classes)
  pp = -(-p // block) * block
  hh = _logistic.row_bucket(h)
  args = (pad_to(x, (pp, hh, d1)), pad_to(y, (pp, hh)), pad_to(ok, (pp, hh), False),
          pad_to(theta, (pp,) + theta.shape[1:3] + (cc,)),
          pad_to(logit_mask, (pp, cc), np.float32(-1e30)))
  return _logistic.in_blocks(_held_out_correct, args, block)[:p]


def _cross_validate(xa, labels, sizes, *, cs, num_folds, max_iter, buckets):
  """LogisticRegressionCV's cross-validation for label columns batched together.

  xa: [n, D + 1] inputs (last column ones); labels: [n, G] encoded; sizes: their class counts.
  Returns the chosen C's index per column and the folds' mean solution there, [G, D + 1, width].
  `buckets`: `_logistic.fit_path_padded`'s minimum padded sizes. Each fold's fit sees all n rows,
  its held-out rows with zero weight (the same objective as on its training rows alone), so that
  it shares its compilation with the refit on all rows.
  """
  n, g = labels.shape
  width = max(2, max(sizes))
  valid, free, logit_mask = _logistic.class_masks(sizes, width)
  held = kfold_masks(n, num_folds)
  _, _, he_idx, he_ok = _fold_rows(n, num_folds)
  s = len(cs)

  def per_problem(a):  # [F, ...] per fold -> [G * F, ...] (problem = factor-major)
    return np.broadcast_to(a[None], (g,) + a.shape).reshape((g * num_folds,) + a.shape[1:])

  def fold_labels(idx):  # [F, M] rows -> [G * F, M]
    return np.moveaxis(labels[idx], -1, 0).reshape(g * num_folds, -1)

  def rep(a):  # [G, ...] per factor -> [G * F, ...]
    return np.repeat(a, num_folds, axis=0)

  theta, _ = _logistic.fit_path_padded(
    np.broadcast_to(xa[None], (g * num_folds,) + xa.shape), rep(labels.T.astype(np.int32)),
    per_problem((~held).astype(np.float32)), rep(valid), rep(free),
    np.broadcast_to(1.0 / cs, (g * num_folds, s)).astype(np.float32),
    np.zeros((g * num_folds, xa.shape[1], width), np.float32), max_iter=max_iter, **buckets)
  correct = _held_out_correct_padded(
    per_problem(xa[he_idx]), fold_labels(he_idx).astype(np.int32), per_problem(he_ok),
    np.asarray(theta), rep(logit_mask).astype(np.float32),
    min_classes=buckets.get('min_classes', 8))
  # sklearn's choice: the best sum over folds of held-out accuracies, first C on ties.
  acc = correct.reshape(g, num_folds, s) / np.maximum(he_ok.sum(1), 1)[None, :, None]
  best = np.argmax(acc.sum(axis=1), axis=1)
  theta = np.asarray(theta).reshape((g, num_folds, s) + theta.shape[2:])
  return best, theta[np.arange(g), :, best].mean(axis=1)


def _logistic_cv_predict(x_train, labels, sizes, x_eval, groups, *, cs=CS, num_folds=5,
                         max_iter=100):
  """LogisticRegressionCV per label column: predicted (encoded) labels on each array of x_eval.

  labels: [n, K] encoded; sizes: class counts; groups: the columns cross-validated together (see
  `_groups`). The refits of all columns (each from its folds' mean solution) are one batch.
  Returns one [len(cols), m] array per array in x_eval, cols = the grouped columns in order.
  """
  n = x_train.shape[0]
  mu = x_train.mean(0)
  xa = _logistic.design(x_train, mu)
  cols = [f for group in groups for f in group]
  width = max(2, max(sizes[f] for f in cols))
  # Small fits (up to 128 rows) are padded to one shape whatever their class counts, so that the
  # small training sizes share a compilation: padding costs little there, compiling seconds.
  buckets = dict(min_classes=64) if n <= 128 else {}
  best, init = [], np.zeros((len(cols), xa.shape[1], width), np.float32)
  for group in groups:
    b, th = _cross_validate(xa, labels[:, group], [sizes[f] for f in group], cs=cs,
                            num_folds=num_folds, max_iter=max_iter, buckets=buckets)
    start = len(best)
    init[start:start + len(group), :, : th.shape[2]] = th
    best.extend(b)
  valid, free, logit_mask = _logistic.class_masks([sizes[f] for f in cols], width)
  refit, _ = _logistic.fit_path_padded(
    np.broadcast_to(xa[None], (len(cols),) + xa.shape), labels[:, cols].T.astype(np.int32),
    np.ones((len(cols), n), np.float32), valid, free,
    (1.0 / cs[best][:, None]).astype(np.float32), init, max_iter=max_iter, **buckets)
  return [np.asarray(_predict(_logistic.design(xe, mu), refit[:, 0], logit_mask))
          for xe in x_eval]


def _encode(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
  """Values -> index in `classes`, -1 when absent."""
  pos = np.searchsorted(classes, values)
  ok = (pos < classes.size) & (classes[np.minimum(pos, classes.size - 1)] == values)
  return np.where(ok, pos, -1)


def downstream_task(
  codes_train: ArrayLike,
  factors_train: ArrayLike,
  codes_test: ArrayLike,
  factors_test: ArrayLike,
  *,
  predictor: str = 'logistic',
  train_sizes: Sequence[int] = (10, 100, 1000, 10000),
  protocol: str = 'fast',
) -> dict:
  """dlib's downstream-task scores.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer labels; the first n rows train
      the size-n classifiers, so N must be at least max(train_sizes).
    codes_test, factors_test: [M, D], [M, K] evaluation set.
    predictor: 'logistic' (LogisticRegressionCV) or 'boosted' (GradientBoostingClassifier).
    protocol: 'fast' (the batched JAX fits above) or 'dlib' (scikit-learn's LogisticRegressionCV /
      GradientBoostingClassifier per factor, as disentanglement_lib 1.5 and the published tables;
      see `dlib_protocol`).
    train_sizes: training sizes (dlib's `num_train`; renamed here because `num_train` is the
      shared sample's size in `evaluate`'s settings).

  Returns:
    dlib's keys per size n: 'n:mean_train_accuracy', 'n:mean_test_accuracy',
    'n:min_train_accuracy', 'n:min_test_accuracy', 'n:train_accuracy_factor_k',
    'n:test_accuracy_factor_k' (floats); plus 'accuracy_train' / 'accuracy_test' [sizes, K].

  Degenerate inputs (the package's policy): NaN/inf raise ValueError, as do a size above N and a
  size below 5 (logistic: one point per fold) or 2 (boosted), and no varying factor. A factor
  with a single
  value among the first n rows (sklearn raises) is predicted as that value. Test labels unseen
  among the training rows count as errors.
  """
  xtr = check_codes(codes_train, 'codes_train', min_points=MIN_POINTS,
                    metric=f'downstream_{predictor}').astype(np.float64)
  xte = check_codes(codes_test, 'codes_test').astype(np.float64)
  ytr = check_factors(factors_train, xtr.shape[0], 'factors_train')
  yte = check_factors(factors_test, xte.shape[0], 'factors_test')
  dlib_protocol.check_protocol(protocol)
  if predictor not in ('logistic', 'boosted'):
    raise ValueError(f"predictor must be 'logistic' or 'boosted', got {predictor!r}")
  if max(train_sizes) > xtr.shape[0]:
    raise ValueError(f'train_sizes {max(train_sizes)} exceeds the {xtr.shape[0]} training rows')
  smallest = 5 if predictor == 'logistic' else MIN_POINTS  # 5 folds need a point each
  if min(train_sizes) < smallest:
    raise ValueError(f'downstream_{predictor} needs training sizes of at least {smallest} points, '
                     f'got {min(train_sizes)}: pass larger train_sizes')
  require_varying(label_encode(ytr)[1], f'downstream_{predictor}')
  k = ytr.shape[1]
  scores = {}
  acc_train = np.zeros((len(train_sizes), k))
  acc_test = np.zeros((len(train_sizes), k))
  for s, size in enumerate(train_sizes):
    x, y = xtr[:size], ytr[:size]
    enc, sizes = label_encode(y)
    pred_train = np.zeros_like(enc)
    pred_test = np.zeros((xte.shape[0], k), np.int64)
    if protocol == 'dlib':
      ptr, pte = dlib_protocol.downstream_predictions(x, y, xte, predictor)
      for f in range(k):
        classes = np.unique(y[:, f])
        pred_train[:, f], pred_test[:, f] = _encode(classes, ptr[:, f]), _encode(classes, pte[:, f])
    elif predictor == 'boosted':
      model = gbt_lib.fit_gbt(x, y)
      pred_train, pred_test = model.train_predictions, model.predict(xte)
    else:
      groups = _groups(sizes, size)
      if groups:
        cols = [f for group in groups for f in group]
        ptr, pte = _logistic_cv_predict(x, enc, sizes, [x, xte], groups)
        pred_train[:, cols], pred_test[:, cols] = ptr.T, pte.T
    for f in range(k):
      classes = np.unique(y[:, f])
      acc_train[s, f] = np.mean(pred_train[:, f] == enc[:, f])
      acc_test[s, f] = np.mean(pred_test[:, f] == _encode(classes, yte[:, f]))
    key = str(size)
    scores[f'{key}:mean_train_accuracy'] = float(acc_train[s].mean())
    scores[f'{key}:mean_test_accuracy'] = float(acc_test[s].mean())
    scores[f'{key}:min_train_accuracy'] = float(acc_train[s].min())
    scores[f'{key}:min_test_accuracy'] = float(acc_test[s].min())
    for f in range(k):
      scores[f'{key}:train_accuracy_factor_{f}'] = float(acc_train[s, f])
      scores[f'{key}:test_accuracy_factor_{f}'] = float(acc_test[s, f])
  scores['accuracy_train'] = acc_train
  scores['accuracy_test'] = acc_test
  return scores

"""Downstream classification accuracy at several label budgets (dlib's `downstream_task`).

For each training size (dlib's study: 10, 100, 1000 and 10,000 labels; 5,000 test points) one
classifier per factor predicts the factor from the whole code; the scores are its train and test
accuracies per factor, their mean and their minimum [methods.md §6.10]. Two predictors, as in dlib's
two study configs:

- `'logistic'`: sklearn's `LogisticRegressionCV(Cs=10, cv=KFold(5))`: the 10 values of C in
  `logspace(-4, 4, 10)`, 5 contiguous folds, the C with the best mean held-out accuracy (first on
  ties), then a refit on all training points. Here every (C, fold) fit of a factor is one batched
  L-BFGS batch in JAX (`_logistic`); sklearn stops each fit after 100 iterations and so does this
  (100 function evaluations), so weakly penalised fits stop at similar but not identical points.
  This is the slowest metric here: 60 multinomial fits per factor on up to 10,000 points.
- `'boosted'`: sklearn's `GradientBoostingClassifier()` defaults, fitted by
  `disentangle_jax.metrics.gbt` (all factors together, splits on 128 quantile bins).

Difference from dlib: dlib draws fresh training and test points for every size; here the size-n
training set is the first n rows of `codes_train` and all sizes share the test set. With rows
drawn i.i.d. the two agree in distribution.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics import _logistic
from disentangle_jax.metrics import gbt as gbt_lib
from disentangle_jax.metrics._common import check_codes, check_factors, label_encode

CS = np.logspace(-4, 4, 10)


def kfold_masks(n: int, num_folds: int = 5) -> np.ndarray:
  """[num_folds, n] bool: True on the held-out rows of each fold (sklearn's KFold, no shuffle)."""
  sizes = np.full(num_folds, n // num_folds)
  sizes[: n % num_folds] += 1
  bounds = np.concatenate([[0], np.cumsum(sizes)])
  idx = np.arange(n)
  return np.stack([(idx >= bounds[f]) & (idx < bounds[f + 1]) for f in range(num_folds)])


def _logistic_cv_predict(x_train, labels, size, x_eval, *, width, cs=CS, num_folds=5,
                         max_iter=100):
  """LogisticRegressionCV for one label column: predicted labels (encoded) on each x in x_eval.

  One batch of problems: every (fold, C) pair, the fold's held-out rows weighted 0, plus every C on
  all rows (the refit, picked after the cross-validation). `width` pads the class axis so that
  every factor of a training size shares one compilation.
  """
  binomial = size == 2
  n = x_train.shape[0]
  held_out = kfold_masks(n, num_folds)
  weights = np.concatenate([np.repeat((~held_out).astype(np.float32), len(cs), axis=0),
                            np.ones((len(cs), n), np.float32)])  # [(F + 1) * C, N]
  l2 = np.tile(1.0 / cs, num_folds + 1)
  p = weights.shape[0]
  valid = np.broadcast_to(np.arange(width) < size, (p, width))
  x = jnp.asarray(x_train, jnp.float32)
  w, b, _ = _logistic.fit_logistic(
    x, jnp.asarray(np.broadcast_to(labels, (p, n)), jnp.int32), jnp.asarray(weights),
    jnp.asarray(valid), jnp.full((p,), binomial), jnp.asarray(l2, jnp.float32),
    num_classes=width, max_iter=max_iter,
  )
  proba = np.asarray(_logistic.predict_proba(x, w[: num_folds * len(cs)],
                                             b[: num_folds * len(cs)], jnp.asarray(valid[:-len(cs)])))
  correct = proba.argmax(-1) == labels[None, :]
  held = np.repeat(held_out, len(cs), axis=0)
  acc = (correct & held).sum(1) / np.maximum(held.sum(1), 1)
  best = int(np.argmax(acc.reshape(num_folds, len(cs)).mean(0)))  # first best C on ties
  refit = num_folds * len(cs) + best
  sel = slice(refit, refit + 1)
  return [np.asarray(_logistic.predict_proba(jnp.asarray(xe, jnp.float32), w[sel], b[sel],
                                             jnp.asarray(valid[sel])))[0].argmax(-1)
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
  num_train: Sequence[int] = (10, 100, 1000, 10000),
) -> dict:
  """dlib's downstream-task scores.

  Args:
    codes_train, factors_train: [N, D] codes and [N, K] integer labels; the first n rows train
      the size-n classifiers, so N must be at least max(num_train).
    codes_test, factors_test: [M, D], [M, K] evaluation set.
    predictor: 'logistic' (LogisticRegressionCV) or 'boosted' (GradientBoostingClassifier).
    num_train: training sizes.

  Returns:
    dlib's keys per size n: 'n:mean_train_accuracy', 'n:mean_test_accuracy',
    'n:min_train_accuracy', 'n:min_test_accuracy', 'n:train_accuracy_factor_k',
    'n:test_accuracy_factor_k' (floats); plus 'accuracy_train' / 'accuracy_test' [sizes, K].

  Degenerate inputs: NaN/inf raise ValueError, as does a size above N. A factor with a single
  value among the first n rows (sklearn raises) is predicted as that value. Test labels unseen
  among the training rows count as errors.
  """
  xtr = check_codes(codes_train, 'codes_train').astype(np.float64)
  xte = check_codes(codes_test, 'codes_test').astype(np.float64)
  ytr = check_factors(factors_train, xtr.shape[0], 'factors_train')
  yte = check_factors(factors_test, xte.shape[0], 'factors_test')
  if predictor not in ('logistic', 'boosted'):
    raise ValueError(f"predictor must be 'logistic' or 'boosted', got {predictor!r}")
  if max(num_train) > xtr.shape[0]:
    raise ValueError(f'num_train {max(num_train)} exceeds the {xtr.shape[0]} training rows')
  k = ytr.shape[1]
  scores = {}
  acc_train = np.zeros((len(num_train), k))
  acc_test = np.zeros((len(num_train), k))
  for s, size in enumerate(num_train):
    x, y = xtr[:size], ytr[:size]
    enc, sizes = label_encode(y)
    pred_train = np.zeros_like(enc)
    pred_test = np.zeros((xte.shape[0], k), np.int64)
    if predictor == 'boosted':
      model = gbt_lib.fit_gbt(x, y)
      pred_train, pred_test = model.train_predictions, model.predict(xte)
    else:
      width = max(2, max(sizes))
      for f in range(k):  # one batch of (fold, C) problems per factor
        if sizes[f] > 1:
          pred_train[:, f], pred_test[:, f] = _logistic_cv_predict(
            x, enc[:, f], sizes[f], [x, xte], width=width)
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

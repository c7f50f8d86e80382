"""`protocol='dlib'`: disentanglement_lib 1.5's scikit-learn estimators, called as it calls them.

The default protocol ('fast') fits in JAX: boosted trees on 128 quantile bins per code dimension
(`gbt`), converged L-BFGS logistic regressions (`_logistic`), exact 1-D SVMs (`sap`). That is
faster and closer to each estimator's optimum, but the published tables (Locatello et al., ICML
2019, and the studies built on disentanglement_lib) were made with scikit-learn's estimators at
their defaults, which stop early (LogisticRegressionCV at 100 L-BFGS iterations on uncentred
codes, LinearSVC at tol 1e-4) and search trees at every value. `protocol='dlib'` runs those
estimators, one per factor (or per code and factor) as dlib does, for numbers comparable with
published ones:
- DCI and the boosted downstream task: `GradientBoostingClassifier()`;
- SAP: `LinearSVC(C=0.01, class_weight='balanced')` per (code, factor);
- the logistic downstream task: `LogisticRegressionCV(Cs=10, cv=KFold(5))`;
- explicitness (and so `modularity_explicitness`): `LogisticRegression()` per factor;
- the unified scores: the GBT and SVM matrices above.
It is as slow as dlib (minutes for DCI at 10,000 points). Where the package's degenerate-input
policy differs from dlib (a single-valued factor, where scikit-learn raises), the policy applies.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import ensemble, exceptions, linear_model, model_selection, svm

PROTOCOLS = ('fast', 'dlib')


def check_protocol(protocol: str) -> None:
  if protocol not in PROTOCOLS:
    raise ValueError(f'protocol must be one of {PROTOCOLS}, got {protocol!r}')


def explicitness_probabilities(x_train, labels, x_eval):
  """dlib's `explicitness_per_factor` classifiers: `LogisticRegression()` per label column.

  Args:
    x_train: [N, D] standardised codes; labels: [N, G] label-encoded columns (each with 2 classes
      or more); x_eval: arrays [M, D] to score.

  Returns:
    One list per array of x_eval, of G arrays [M, C_g] of class probabilities.
  """
  out = [[] for _ in x_eval]
  with warnings.catch_warnings():  # 100 L-BFGS iterations are dlib's protocol, not a failure
    warnings.simplefilter('ignore', exceptions.ConvergenceWarning)
    for g in range(labels.shape[1]):
      model = linear_model.LogisticRegression().fit(x_train, labels[:, g])
      for i, x in enumerate(x_eval):
        out[i].append(model.predict_proba(x))
  return out


def gbt_importance(x_train, y_train, x_test, y_test):
  """dlib's `compute_importance_gbt`: importances [D, K], per-factor train and test accuracy.

  A single-valued factor gets a zero column and accuracy 1 (it is left out of the means).
  """
  d, k = x_train.shape[1], y_train.shape[1]
  importance = np.zeros((d, k))
  acc_train, acc_test = np.ones(k), np.ones(k)
  for i in range(k):
    if np.unique(y_train[:, i]).size < 2:
      continue
    model = ensemble.GradientBoostingClassifier().fit(x_train, y_train[:, i])
    importance[:, i] = np.abs(model.feature_importances_)
    acc_train[i] = np.mean(model.predict(x_train) == y_train[:, i])
    acc_test[i] = np.mean(model.predict(x_test) == y_test[:, i])
  return importance, acc_train, acc_test


def sap_score_matrix(x_train, y_train, x_test, y_test, *, c: float = 0.01):
  """dlib's discrete SAP score matrix [D, K]: a LinearSVC per (code, factor) on the 1-D code."""
  d, k = x_train.shape[1], y_train.shape[1]
  scores = np.zeros((d, k))
  with warnings.catch_warnings():  # LinearSVC stops at its cap by design: part of the protocol
    warnings.simplefilter('ignore', exceptions.ConvergenceWarning)
    for j in range(d):
      for i in range(k):
        classes = np.unique(y_train[:, i])
        if classes.size < 2:
          scores[j, i] = np.mean(y_test[:, i] == classes[0])
          continue
        clf = svm.LinearSVC(C=c, class_weight='balanced').fit(x_train[:, j:j + 1], y_train[:, i])
        scores[j, i] = np.mean(clf.predict(x_test[:, j:j + 1]) == y_test[:, i])
  return scores


def downstream_predictions(x_train, y_train, x_test, predictor: str):
  """Per factor, dlib's predictor's (train, test) predictions, [n, K] and [m, K]."""
  k = y_train.shape[1]
  pred_train = np.zeros(y_train.shape, y_train.dtype)
  pred_test = np.zeros((len(x_test), k), y_train.dtype)
  with warnings.catch_warnings():  # 100 L-BFGS iterations are dlib's protocol, not a failure
    warnings.simplefilter('ignore', exceptions.ConvergenceWarning)
    for i in range(k):
      classes = np.unique(y_train[:, i])
      if classes.size < 2:
        pred_train[:, i], pred_test[:, i] = classes[0], classes[0]
        continue
      if predictor == 'logistic':
        model = linear_model.LogisticRegressionCV(Cs=10, cv=model_selection.KFold(n_splits=5))
      else:
        model = ensemble.GradientBoostingClassifier()
      model.fit(x_train, y_train[:, i])
      pred_train[:, i], pred_test[:, i] = model.predict(x_train), model.predict(x_test)
  return pred_train, pred_test

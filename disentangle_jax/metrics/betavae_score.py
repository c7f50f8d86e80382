"""BetaVAE score (Higgins et al., ICLR 2017), as disentanglement_lib computes it.

One training point: pick a factor index y uniformly; draw two batches of `batch_size` factor
vectors independently, copy column y of the first into the second, render and encode both; the
feature is `mean_b |z1_b - z2_b|` (a `[D]` vector) and the label is y. A linear classifier
(scikit-learn `LogisticRegression`) predicts y from the feature; the score is its accuracy on a
fresh evaluation set (`eval_accuracy`, with `train_accuracy` also reported).

Defaults are dlib's (`unsupervised_study_v1`): 10,000 training points, 5,000 evaluation points,
64 pairs per point.

Differences from dlib, all documented:
- The classifier. dlib calls `LogisticRegression(random_state=...)` with the defaults of whatever
  scikit-learn is installed. scikit-learn <= 0.21 meant liblinear one-vs-rest; >= 0.22 means L-BFGS
  multinomial softmax, C = 1, `max_iter = 100`. We default to the modern semantics
  (`classifier='lbfgs'`, exactly `LogisticRegression(random_state=seed)` on scikit-learn 1.x;
  the numbers in this project were produced with scikit-learn 1.9) and offer the old ones as
  `classifier='liblinear_ovr'` (`OneVsRestClassifier(LogisticRegression(solver='liblinear'))`).
  `ConvergenceWarning`s at `max_iter = 100` are silenced: stopping there is part of the reference.
- The paper wants the pair to differ in every other factor; dlib (and we) draw the other factors
  independently, so they may coincide by chance.
- Random draws come from a `np.random.Generator`, so the samples differ from dlib's RandomState
  ones; the distribution is the same.
- With a single class among the training labels (only possible with tiny samples), the classifier
  is the constant prediction of that class instead of scikit-learn's error.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import exceptions as sk_exceptions
from sklearn import linear_model
from sklearn import multiclass

from disentangle_jax.metrics import sampling

CLASSIFIERS = ('lbfgs', 'liblinear_ovr')


def betavae_features(
  ground_truth,
  encode_fn: sampling.EncodeFn,
  num_points: int,
  rng: np.random.Generator,
  *,
  batch_size: int = 64,
  encode_batch_size: int = 256,
  chunk_size: int = 8 * 1024,
) -> tuple[np.ndarray, np.ndarray]:
  """Samples `num_points` BetaVAE training points.

  Args:
    ground_truth: a `GroundTruthData`.
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`.
    num_points: number of (feature, label) points.
    rng: the generator every draw comes from.
    batch_size: pairs per point (dlib: 64).
    encode_batch_size: images per `encode_fn` call (throughput only: codes do not depend on it).
    chunk_size: images rendered and encoded at once (bounds memory).

  Returns:
    `(features [num_points, D] float64, labels [num_points] int64)`.
  """
  num_factors = len(ground_truth.factor_sizes)
  if num_factors < 2:
    raise ValueError(f'the BetaVAE score needs at least 2 factors, got {num_factors}')
  if num_points < 1 or batch_size < 1:
    raise ValueError(f'num_points and batch_size must be >= 1, got {num_points}, {batch_size}')
  # All draws happen up front, so the samples do not depend on chunk_size.
  labels = rng.integers(num_factors, size=num_points)
  factors1 = np.asarray(ground_truth.sample_factors(rng, num_points * batch_size), np.int64)
  factors2 = np.asarray(ground_truth.sample_factors(rng, num_points * batch_size), np.int64)
  factors1 = factors1.reshape(num_points, batch_size, num_factors)
  factors2 = factors2.reshape(num_points, batch_size, num_factors)
  points = np.arange(num_points)
  factors2[points, :, labels] = factors1[points, :, labels]

  points_per_chunk = max(1, chunk_size // (2 * batch_size))
  features = []
  for start in range(0, num_points, points_per_chunk):
    f1 = factors1[start : start + points_per_chunk]
    f2 = factors2[start : start + points_per_chunk]
    p = f1.shape[0]
    both = np.concatenate([f1.reshape(-1, num_factors), f2.reshape(-1, num_factors)], axis=0)
    codes = sampling.codes_for_factors(
      ground_truth, encode_fn, both, encode_batch_size, chunk_size=both.shape[0]
    )
    z1, z2 = codes[: p * batch_size], codes[p * batch_size :]
    diff = np.abs(z1 - z2).reshape(p, batch_size, -1)
    features.append(diff.mean(axis=1))
  return np.concatenate(features, axis=0), labels.astype(np.int64)


def _make_classifier(classifier: str, random_state: int):
  if classifier == 'lbfgs':
    return linear_model.LogisticRegression(random_state=random_state)
  if classifier == 'liblinear_ovr':
    return multiclass.OneVsRestClassifier(
      linear_model.LogisticRegression(solver='liblinear', random_state=random_state)
    )
  raise ValueError(f'unknown classifier {classifier!r}; choose one of {CLASSIFIERS}')


def betavae_score_from_features(
  train_features: np.ndarray,
  train_labels: np.ndarray,
  eval_features: np.ndarray,
  eval_labels: np.ndarray,
  *,
  random_state: int = 0,
  classifier: str = 'lbfgs',
) -> dict[str, float]:
  """The pure core: fits the linear classifier and returns its accuracies.

  Args:
    train_features: `[n_train, D]` features `mean_b |z1 - z2|`.
    train_labels: `[n_train]` factor indices.
    eval_features: `[n_eval, D]`.
    eval_labels: `[n_eval]`.
    random_state: seed passed to scikit-learn (unused by L-BFGS, used by liblinear).
    classifier: `'lbfgs'` (scikit-learn >= 0.22 defaults) or `'liblinear_ovr'` (<= 0.21).

  Returns:
    `{'train_accuracy': float, 'eval_accuracy': float}`.
  """
  train_features = np.asarray(train_features, np.float64)
  eval_features = np.asarray(eval_features, np.float64)
  train_labels = np.asarray(train_labels)
  eval_labels = np.asarray(eval_labels)
  if train_features.ndim != 2 or eval_features.ndim != 2:
    raise ValueError('features must be [n, D]')
  if train_features.shape[0] != train_labels.shape[0] or (
    eval_features.shape[0] != eval_labels.shape[0]
  ):
    raise ValueError('features and labels disagree on the number of points')
  if train_features.shape[0] == 0 or eval_features.shape[0] == 0:
    raise ValueError('the BetaVAE score needs at least one training and one evaluation point')
  for name, x in (('train', train_features), ('eval', eval_features)):
    if not np.all(np.isfinite(x)):
      raise ValueError(f'the {name} features contain NaN or infinite values')

  classes = np.unique(train_labels)
  if classes.size == 1:
    train_pred = np.full_like(train_labels, classes[0])
    eval_pred = np.full_like(eval_labels, classes[0])
  else:
    model = _make_classifier(classifier, random_state)
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', sk_exceptions.ConvergenceWarning)
      model.fit(train_features, train_labels)
    train_pred = model.predict(train_features)
    eval_pred = model.predict(eval_features)
  return {
    'train_accuracy': float(np.mean(train_pred == train_labels)),
    'eval_accuracy': float(np.mean(eval_pred == eval_labels)),
  }


def betavae_score(
  ground_truth,
  encode_fn: sampling.EncodeFn,
  rng: np.random.Generator,
  *,
  num_train: int = 10_000,
  num_eval: int = 5_000,
  batch_size: int = 64,
  encode_batch_size: int = 256,
  classifier: str = 'lbfgs',
) -> dict[str, float]:
  """BetaVAE score of an encoder on a ground truth (dlib `compute_beta_vae_sklearn`).

  Args:
    ground_truth: a `GroundTruthData`.
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`.
    rng: the generator every draw comes from; the training set is drawn before the evaluation
      set, and the classifier's seed is drawn last.
    num_train: training points (dlib: 10,000).
    num_eval: evaluation points (dlib: 5,000).
    batch_size: pairs per point (dlib: 64).
    encode_batch_size: images per `encode_fn` call (throughput only: codes do not depend on it).
    classifier: see `betavae_score_from_features`.

  Returns:
    `{'train_accuracy', 'eval_accuracy'}`; the score is `eval_accuracy`.
  """
  train_x, train_y = betavae_features(
    ground_truth,
    encode_fn,
    num_train,
    rng,
    batch_size=batch_size,
    encode_batch_size=encode_batch_size,
  )
  eval_x, eval_y = betavae_features(
    ground_truth,
    encode_fn,
    num_eval,
    rng,
    batch_size=batch_size,
    encode_batch_size=encode_batch_size,
  )
  seed = int(rng.integers(2**31 - 1))
  return betavae_score_from_features(
    train_x, train_y, eval_x, eval_y, random_state=seed, classifier=classifier
  )

"""dlib's strong downstream task: classification under a covariate shift made by an intervention.

disentanglement_lib's `strong_downstream_task` (Locatello et al., JMLR 2020, the "strong
generalization" experiment): for each training size n,
1. plain task: train a classifier per factor on n sampled observations' codes, score it on fresh
   test observations ('n:mean_train_accuracy', 'n:mean_test_accuracy');
2. for every target factor i, `num_experiments` times: pick another factor j at random and one of
   its values c; every training observation has j = c, every test observation a value of j other
   than c; train the classifier for i on the shifted training codes and score it on the test codes
   ('n:mean_strong_train_accuracy', 'n:mean_strong_test_accuracy', means over all (i, experiment));
3. 'n:strong_generalization_gap' = 1 - strong test accuracy / plain test accuracy.
A representation that keeps factor i apart from j lets a classifier of i ignore j's shift.

The classifiers are those of `downstream.downstream_task` ('boosted': GradientBoostingClassifier
defaults, dlib's predictor here; 'logistic': LogisticRegressionCV). Differences from dlib: dlib
draws the intervened factor, its value and the test values from numpy's global random state
(so its runs are not reproducible from the seed); here every draw comes from `rng`. dlib fits one
classifier per target; here the classifiers of all factors are fitted together on the shifted
data and the target's is read off (the same fit, as every factor's classifier is independent).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from disentangle_jax.metrics import downstream, sampling


def strong_downstream_task(
  ground_truth,
  encode_fn: sampling.EncodeFn,
  rng: np.random.Generator,
  *,
  train_sizes: Sequence[int] = (1000,),
  num_test: int = 5_000,
  num_experiments: int = 10,
  predictor: str = 'boosted',
  batch_size: int = 64,
) -> dict:
  """dlib's strong downstream-task scores of an encoder over a ground truth.

  Args:
    ground_truth: a `GroundTruthData` (`factor_sizes`, `sample_factors`, `images_for`).
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`.
    rng: the generator every draw comes from.
    train_sizes: training sizes n (dlib's `num_train`).
    num_test: test observations per experiment.
    num_experiments: interventions per target factor (dlib's `n_experiment`).
    predictor: 'boosted' or 'logistic'.
    batch_size: images per `encode_fn` call.

  Returns:
    Per size n: 'n:mean_train_accuracy', 'n:mean_test_accuracy', 'n:mean_strong_train_accuracy',
    'n:mean_strong_test_accuracy', 'n:strong_generalization_gap'; and 'strong_test_accuracy'
    [sizes, K] (mean over experiments per target factor).

  Degenerate inputs: fewer than two factors (nothing to intervene on), ValueError; the rest as
  `downstream.downstream_task`.
  """
  sizes = np.asarray(ground_truth.factor_sizes)
  k = sizes.size
  if k < 2:
    raise ValueError('strong_downstream needs at least two factors (one to intervene on)')
  if num_experiments < 1:
    raise ValueError(f'num_experiments must be >= 1, got {num_experiments}')

  def encode(factors):
    return sampling.codes_for_factors(ground_truth, encode_fn, factors, batch_size)

  def accuracies(f_train, f_test):
    out = downstream.downstream_task(encode(f_train), f_train, encode(f_test), f_test,
                                     predictor=predictor, train_sizes=(len(f_train),))
    return out['accuracy_train'][0], out['accuracy_test'][0]

  scores = {}
  strong = np.zeros((len(train_sizes), k))
  for s, n in enumerate(train_sizes):
    f_train = np.asarray(ground_truth.sample_factors(rng, n), np.int64)
    f_test = np.asarray(ground_truth.sample_factors(rng, num_test), np.int64)
    train_acc, test_acc = accuracies(f_train, f_test)
    strong_train, strong_test = [], []
    for target in range(k):
      for _ in range(num_experiments):
        shifted = rng.choice([j for j in range(k) if j != target])
        value = rng.integers(sizes[shifted])
        others = np.delete(np.arange(sizes[shifted]), value)
        tr, te = f_train.copy(), f_test.copy()
        tr[:, shifted] = value
        te[:, shifted] = rng.choice(others, size=len(te))
        a_tr, a_te = accuracies(tr, te)
        strong_train.append(a_tr[target])
        strong_test.append(a_te[target])
    strong[s] = np.asarray(strong_test).reshape(k, num_experiments).mean(1)
    key = str(n)
    scores[f'{key}:mean_train_accuracy'] = float(np.mean(train_acc))
    scores[f'{key}:mean_test_accuracy'] = float(np.mean(test_acc))
    scores[f'{key}:mean_strong_train_accuracy'] = float(np.mean(strong_train))
    scores[f'{key}:mean_strong_test_accuracy'] = float(np.mean(strong_test))
    scores[f'{key}:strong_generalization_gap'] = 1.0 - (
      scores[f'{key}:mean_strong_test_accuracy'] / scores[f'{key}:mean_test_accuracy'])
  scores['strong_test_accuracy'] = strong
  return scores

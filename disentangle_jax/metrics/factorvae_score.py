"""FactorVAE score (Kim & Mnih, ICML 2018), as disentanglement_lib computes it.

1. Global variances: `var(ddof=1)` of the codes of `num_variance_estimate` (10,000) random
   observations. Dimensions with `sqrt(var) < prune_threshold` (0.05) are inactive; with no active
   dimension the score is 0.
2. One vote: pick a factor k uniformly; draw `batch_size` (64) factor vectors and set column k of
   all of them to the first one's value; encode; `local_var(ddof=1)` per dimension; the vote is
   `(k, argmin_j local_var_j / global_var_j)` over the active dimensions.
3. `votes[k, j]` counts the votes, `[K, D]`. The majority-vote classifier maps each code dimension
   j to `argmax_k votes[k, j]` (first maximum on ties, as `np.argmax`), and the accuracy is
   `sum_j votes[classifier_j, j] / sum votes`. The evaluation votes (5,000) are scored with the
   classifier of the training votes (10,000).

Differences from dlib, documented:
- dlib stores the argmin's index *within the active subset* as if it were a code dimension. We
  store the real code dimension. The relabelling is a bijection, so the accuracies are identical;
  only the columns of the returned vote matrices differ.
- A dimension also counts as inactive when its global variance is exactly 0 (only matters for
  `prune_threshold = 0`, where dlib would divide by zero).
- Random draws come from a `np.random.Generator`, not dlib's RandomState.

The cores (`prune_dims`, `vote_argmins`, `votes_matrix`, `factorvae_accuracy_from_votes`) are pure
array functions; `factorvae_score` is the sampling wrapper.
"""

from __future__ import annotations

import numpy as np

from disentangle_jax.metrics import sampling


def prune_dims(variances: np.ndarray, threshold: float = 0.05) -> np.ndarray:
  """Active code dimensions: `sqrt(var) >= threshold` and `var > 0`. Returns bool `[D]`."""
  variances = np.asarray(variances, np.float64)
  return (np.sqrt(variances) >= threshold) & (variances > 0)


def vote_argmins(
  local_codes: np.ndarray, global_variances: np.ndarray, active: np.ndarray
) -> np.ndarray:
  """The voted code dimension of each vote.

  Args:
    local_codes: `[V, B, D]` codes of V votes, each B samples sharing one factor value (B >= 2).
    global_variances: `[D]`.
    active: bool `[D]`, at least one True.

  Returns:
    int `[V]`: `argmin_j local_var[v, j] / global_var[j]` over active j, as a code dimension.
  """
  local_codes = np.asarray(local_codes, np.float64)
  if local_codes.ndim != 3 or local_codes.shape[1] < 2:
    raise ValueError(f'local_codes must be [V, B >= 2, D], got {local_codes.shape}')
  active = np.asarray(active, bool)
  if not active.any():
    raise ValueError('no active code dimension')
  local_var = local_codes.var(axis=1, ddof=1)
  safe_global = np.where(active, global_variances, 1.0)
  ratio = np.where(active[None, :], local_var / safe_global[None, :], np.inf)
  return np.argmin(ratio, axis=1)


def votes_matrix(
  factor_indices: np.ndarray, dims: np.ndarray, num_factors: int, num_dims: int
) -> np.ndarray:
  """Counts votes: `votes[k, j]` = number of votes `(k, j)`. Returns int64 `[K, D]`."""
  flat = np.asarray(factor_indices) * num_dims + np.asarray(dims)
  return np.bincount(flat, minlength=num_factors * num_dims).reshape(num_factors, num_dims)


def factorvae_accuracy_from_votes(
  train_votes: np.ndarray, eval_votes: np.ndarray
) -> dict[str, float]:
  """The majority-vote classifier's accuracies.

  Args:
    train_votes: `[K, D]` vote counts that define the classifier.
    eval_votes: `[K, D]` vote counts scored with it.

  Returns:
    `{'train_accuracy', 'eval_accuracy'}`; 0 for an empty vote matrix.
  """
  train_votes = np.asarray(train_votes)
  eval_votes = np.asarray(eval_votes)
  if train_votes.shape != eval_votes.shape or train_votes.ndim != 2:
    raise ValueError(
      f'vote matrices must both be [K, D], got {train_votes.shape}, {eval_votes.shape}'
    )
  classifier = np.argmax(train_votes, axis=0)
  cols = np.arange(train_votes.shape[1])

  def accuracy(votes):
    total = votes.sum()
    return float(votes[classifier, cols].sum() / total) if total > 0 else 0.0

  return {'train_accuracy': accuracy(train_votes), 'eval_accuracy': accuracy(eval_votes)}


def global_variances(
  ground_truth,
  encode_fn: sampling.EncodeFn,
  rng: np.random.Generator,
  num_points: int = 10_000,
  batch_size: int = 64,
) -> np.ndarray:
  """`var(ddof=1)` of the codes of `num_points` random observations, `[D]`."""
  if num_points < 2:
    raise ValueError(f'need at least 2 points to estimate variances, got {num_points}')
  codes, _ = sampling.sample_codes_and_factors(ground_truth, encode_fn, num_points, rng, batch_size)
  return codes.var(axis=0, ddof=1)


def factorvae_votes(
  ground_truth,
  encode_fn: sampling.EncodeFn,
  num_votes: int,
  rng: np.random.Generator,
  variances: np.ndarray,
  active: np.ndarray,
  *,
  batch_size: int = 64,
  encode_batch_size: int = 256,
  chunk_size: int = 8 * 1024,
) -> np.ndarray:
  """Samples `num_votes` votes and returns their `[K, D]` count matrix."""
  num_factors = len(ground_truth.factor_sizes)
  if batch_size < 2:
    raise ValueError(f'batch_size must be >= 2 for a variance, got {batch_size}')
  factor_indices = rng.integers(num_factors, size=num_votes)
  factors = np.asarray(ground_truth.sample_factors(rng, num_votes * batch_size), np.int64)
  factors = factors.reshape(num_votes, batch_size, num_factors)
  votes = np.arange(num_votes)
  factors[votes, :, factor_indices] = factors[votes, :1, factor_indices]

  votes_per_chunk = max(1, chunk_size // batch_size)
  dims = []
  for start in range(0, num_votes, votes_per_chunk):
    f = factors[start : start + votes_per_chunk]
    codes = sampling.codes_for_factors(
      ground_truth,
      encode_fn,
      f.reshape(-1, num_factors),
      encode_batch_size,
      chunk_size=f.shape[0] * batch_size,
    )
    dims.append(vote_argmins(codes.reshape(f.shape[0], batch_size, -1), variances, active))
  dims = np.concatenate(dims)
  return votes_matrix(factor_indices, dims, num_factors, len(variances))


def factorvae_score(
  ground_truth,
  encode_fn: sampling.EncodeFn,
  rng: np.random.Generator,
  *,
  num_variance_estimate: int = 10_000,
  num_train: int = 10_000,
  num_eval: int = 5_000,
  batch_size: int = 64,
  prune_threshold: float = 0.05,
  encode_batch_size: int = 256,
) -> dict:
  """FactorVAE score of an encoder on a ground truth (dlib `compute_factor_vae`).

  Args:
    ground_truth: a `GroundTruthData`.
    encode_fn: images `[b, H, W, C]` -> codes `[b, D]`.
    rng: the generator every draw comes from (variances, then training votes, then evaluation
      votes).
    num_variance_estimate: observations for the global variances (dlib: 10,000).
    num_train: training votes (dlib: 10,000).
    num_eval: evaluation votes (dlib: 5,000).
    batch_size: samples per vote (dlib: 64).
    prune_threshold: minimum global std of an active dimension (dlib: 0.05).
    encode_batch_size: images per `encode_fn` call (throughput only: codes do not depend on it).

  Returns:
    `{'train_accuracy', 'eval_accuracy', 'num_active_dims', 'train_votes' [K, D],
    'eval_votes' [K, D]}`; the score is `eval_accuracy`. Both accuracies are 0 (and the vote
    matrices zero) when no dimension is active.
  """
  variances = global_variances(
    ground_truth, encode_fn, rng, num_variance_estimate, encode_batch_size
  )
  active = prune_dims(variances, prune_threshold)
  num_factors, num_dims = len(ground_truth.factor_sizes), variances.shape[0]
  if not active.any():
    zeros = np.zeros((num_factors, num_dims), np.int64)
    return {
      'train_accuracy': 0.0,
      'eval_accuracy': 0.0,
      'num_active_dims': 0,
      'train_votes': zeros,
      'eval_votes': zeros,
    }
  kwargs = dict(batch_size=batch_size, encode_batch_size=encode_batch_size)
  train_votes = factorvae_votes(
    ground_truth, encode_fn, num_train, rng, variances, active, **kwargs
  )
  eval_votes = factorvae_votes(ground_truth, encode_fn, num_eval, rng, variances, active, **kwargs)
  scores = factorvae_accuracy_from_votes(train_votes, eval_votes)
  return {
    **scores,
    'num_active_dims': int(active.sum()),
    'train_votes': train_votes,
    'eval_votes': eval_votes,
  }

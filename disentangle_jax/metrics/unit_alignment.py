"""How well single units align with concepts (Zhou et al.'s Mixture-of-MNIST check).

A unit's score for an image is its activation (e.g. its global-average-pooled map); a concept is
a binary label per image (e.g. "the image contains digit 0"). Ranking the images by a unit's
score, descending:
- `precision_at_k`: the fraction of the top k images that are positive;
- `precision_at_recall`: walking down the ranking until recall >= r, the precision there;
- `average_precision`: scikit-learn's `average_precision_score(label, score)`;
- `alignment_scores`: per unit, the AP for every concept, the best concept
  (`label(u) = argmax_c AP(u, c)`), `align(u) = max_c AP(u, c)`, and the slide-style precision
  vectors for that concept.
Tied scores are handled without an arbitrary order: precision@k counts a tie group straddling
rank k by its expected share of positives (the mean over random tie-breaks), and recall and AP are
counted at the ends of tie groups, as a precision-recall curve does. A constant unit therefore
scores the base rate everywhere. A concept with no positive image gets 0 for every score.

`ablation_effect` measures the accuracy drop when a unit is removed, given a pure
`predict_fn(keep) -> logits`, where `keep` is a `[U]` vector of ones with zeros at the ablated
units (the caller multiplies the layer's maps by it for zero-ablation, or blends towards the
mean for mean-ablation). All units are evaluated in one `jax.lax.map` over masks.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.metrics import retrieval

DEFAULT_KS = (100, 300, 500, 700)
DEFAULT_RECALLS = (0.25, 0.5, 0.75)


def _check_scores(activations: np.ndarray) -> np.ndarray:
  scores = np.asarray(activations, np.float64)
  if scores.ndim == 1:
    scores = scores[:, None]
  if scores.ndim != 2 or scores.shape[0] == 0:
    raise ValueError(f'activations must be [N, U] with N >= 1, got {scores.shape}')
  if not np.all(np.isfinite(scores)):
    raise ValueError('activations contain NaN or infinite values')
  return scores


def _check_labels(labels: np.ndarray, n: int) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.shape != (n,):
    raise ValueError(f'labels must be [N] = [{n}], got {labels.shape}')
  return labels.astype(bool)


def _ranked(scores: np.ndarray, labels: np.ndarray):
  """Per unit: labels sorted by descending score, cumulative positives, tie-group bounds."""
  order = np.argsort(-scores.T, axis=1, kind='stable')  # [U, N]
  keys = np.take_along_axis(-scores.T, order, axis=1)
  positives = labels[order]
  cum = np.cumsum(positives, axis=1)
  n = keys.shape[1]
  is_first = np.ones(keys.shape, bool)
  is_first[:, 1:] = keys[:, 1:] != keys[:, :-1]
  first = np.maximum.accumulate(np.where(is_first, np.arange(n), 0), axis=1)
  last = retrieval._last_of_tie_group(keys)  # pylint: disable=protected-access
  return cum, first, last


def precision_at_k(
  activations: np.ndarray, labels: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> np.ndarray:
  """Fraction of positives among each unit's top-k images, for each k.

  Args:
    activations: `[N, U]` unit scores (or `[N]` for one unit).
    labels: bool `[N]` concept labels.
    ks: cut-offs, each in [1, N].

  Returns:
    `[U, len(ks)]`; a tie group across rank k contributes its expected share of positives.
  """
  scores = _check_scores(activations)
  n = scores.shape[0]
  labels = _check_labels(labels, n)
  ks = np.asarray(ks, np.int64)
  if ks.ndim != 1 or np.any(ks < 1) or np.any(ks > n):
    raise ValueError(f'every k must lie in [1, N = {n}], got {ks.tolist()}')
  cum, first, last = _ranked(scores, labels)
  units = np.arange(scores.shape[1])[:, None]
  s = first[:, ks - 1]
  e = last[:, ks - 1]
  above = np.where(s > 0, cum[units, np.maximum(s - 1, 0)], 0)
  tie_pos = cum[units, e] - above
  expected = above + (ks[None, :] - s) * tie_pos / (e - s + 1)
  return expected / ks[None, :]


def precision_at_recall(
  activations: np.ndarray, labels: np.ndarray, recalls: Sequence[float] = DEFAULT_RECALLS
) -> np.ndarray:
  """Precision at the first tie-group end where recall reaches each level.

  Args:
    activations: `[N, U]` (or `[N]`).
    labels: bool `[N]`.
    recalls: levels in (0, 1].

  Returns:
    `[U, len(recalls)]`; 0 when the concept has no positive.
  """
  scores = _check_scores(activations)
  n = scores.shape[0]
  labels = _check_labels(labels, n)
  recalls = np.asarray(recalls, np.float64)
  if recalls.ndim != 1 or np.any(recalls <= 0) or np.any(recalls > 1):
    raise ValueError(f'recall levels must lie in (0, 1], got {recalls.tolist()}')
  num_pos = int(labels.sum())
  if num_pos == 0:
    return np.zeros((scores.shape[1], recalls.size))
  cum, _, last = _ranked(scores, labels)
  hits_at_end = np.take_along_axis(cum, last, axis=1)  # [U, N]
  out = np.empty((scores.shape[1], recalls.size))
  for i, r in enumerate(recalls):
    # Exact in integers: recall >= r  <=>  hits >= ceil(r * P) (with a guard against rounding).
    needed = np.ceil(r * num_pos - 1e-9)
    pos = np.argmax(hits_at_end >= needed, axis=1)
    e = last[np.arange(scores.shape[1]), pos]
    out[:, i] = cum[np.arange(scores.shape[1]), e] / (e + 1.0)
  return out


def average_precision(activations: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """scikit-learn's `average_precision_score(labels, activations[:, u])` for every unit, `[U]`.

  0 for a concept without positives.
  """
  scores = _check_scores(activations)
  labels = _check_labels(labels, scores.shape[0])
  ranks = retrieval.tie_ranks(-scores.T)  # [U, N]
  return retrieval.average_precision_from_ranks(ranks[:, labels])


def alignment_scores(
  activations: np.ndarray,
  concepts: np.ndarray,
  *,
  ks: Sequence[int] = DEFAULT_KS,
  recalls: Sequence[float] = DEFAULT_RECALLS,
) -> dict[str, np.ndarray]:
  """Each unit's best concept and its alignment scores.

  Args:
    activations: `[N, U]` unit scores on a validation set.
    concepts: bool `[N, C]` concept labels (e.g. "contains digit c" for c = 0..9).
    ks: precision@k cut-offs (clipped to N).
    recalls: recall levels.

  Returns:
    'ap' `[U, C]`; 'best_concept' `[U]` (first on ties); 'alignment' `[U]` = max_c AP;
    'precision_at_k' `[U, len(ks)]` and 'precision_at_recall' `[U, len(recalls)]` for the best
    concept; 'base_rate' `[C]` (the chance level of each concept's precision).
  """
  scores = _check_scores(activations)
  concepts = np.asarray(concepts).astype(bool)
  if concepts.ndim == 1:
    concepts = concepts[:, None]
  if concepts.ndim != 2 or concepts.shape[0] != scores.shape[0]:
    raise ValueError(f'concepts must be [N, C] with N = {scores.shape[0]}, got {concepts.shape}')
  ks = [min(int(k), scores.shape[0]) for k in ks]
  ap = np.stack([average_precision(scores, concepts[:, c]) for c in range(concepts.shape[1])], 1)
  best = np.argmax(ap, axis=1)
  p_at_k = np.empty((scores.shape[1], len(ks)))
  p_at_r = np.empty((scores.shape[1], len(recalls)))
  for c in np.unique(best):
    units = np.flatnonzero(best == c)
    p_at_k[units] = precision_at_k(scores[:, units], concepts[:, c], ks)
    p_at_r[units] = precision_at_recall(scores[:, units], concepts[:, c], recalls)
  return {
    'ap': ap,
    'best_concept': best,
    'alignment': ap[np.arange(ap.shape[0]), best],
    'precision_at_k': p_at_k,
    'precision_at_recall': p_at_r,
    'base_rate': concepts.mean(axis=0),
  }


def ablation_effect(
  predict_fn: Callable[[jax.Array], jax.Array],
  labels: np.ndarray,
  num_units: int,
  *,
  in_group: np.ndarray | None = None,
  units: Sequence[int] | None = None,
  batch_size: int | None = None,
  traceable: bool = True,
) -> dict[str, np.ndarray | float]:
  """Accuracy drop when each unit is ablated.

  Args:
    predict_fn: pure `keep [U] float -> logits [N, num_classes]` on a fixed evaluation set; `keep`
      is all ones for the intact network and 0 at an ablated unit.
    labels: int `[N]` true classes.
    num_units: U.
    in_group: optional bool `[N, U]` (or `[N]`, shared): the examples "in" each unit's group,
      e.g. those whose class contains the unit's digit `label(u)`.
    units: the units to ablate (default: all), one at a time.
    batch_size: masks evaluated at once by `jax.lax.map` (default: all).
    traceable: `predict_fn` is JAX-traceable (mapped under jit); False evaluates it in a Python
      loop.

  Returns:
    'baseline_accuracy'; per ablated unit `[len(units)]`: 'accuracy', 'accuracy_drop'
    (baseline - ablated), 'probability_drop' (drop of the mean true-class softmax probability);
    with `in_group`: 'accuracy_drop_in', 'accuracy_drop_out' (drops within and outside the
    group; 0 for an empty side) and 'selectivity' = in - out.
  """
  labels = jnp.asarray(labels, jnp.int32)
  units = np.arange(num_units) if units is None else np.asarray(units, np.int64)
  if units.size and (units.min() < 0 or units.max() >= num_units):
    raise ValueError(f'units must lie in [0, {num_units})')

  def per_example(keep):
    logits = jnp.asarray(predict_fn(keep))
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
      raise ValueError(f'predict_fn must return [N, classes] logits, got {logits.shape}')
    correct = jnp.argmax(logits, axis=-1) == labels
    prob = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), labels[:, None], axis=-1)[:, 0]
    return correct.astype(jnp.float32), prob

  masks = np.ones((units.size, num_units), np.float32)
  masks[np.arange(units.size), units] = 0.0
  base_correct, base_prob = (np.asarray(a) for a in per_example(jnp.ones(num_units)))
  if units.size == 0:
    correct = np.zeros((0, labels.shape[0]))
    prob = np.zeros((0, labels.shape[0]))
  elif traceable:
    correct, prob = jax.jit(lambda m: jax.lax.map(per_example, m, batch_size=batch_size))(
      jnp.asarray(masks)
    )
    correct, prob = np.asarray(correct), np.asarray(prob)
  else:
    outs = [per_example(jnp.asarray(m)) for m in masks]
    correct = np.stack([np.asarray(o[0]) for o in outs])
    prob = np.stack([np.asarray(o[1]) for o in outs])
  if not (np.all(np.isfinite(prob)) and np.all(np.isfinite(base_prob))):
    raise ValueError('predict_fn returned NaN or infinite logits')

  out = {
    'baseline_accuracy': float(base_correct.mean()),
    'accuracy': correct.mean(axis=1),
    'accuracy_drop': base_correct.mean() - correct.mean(axis=1),
    'probability_drop': base_prob.mean() - prob.mean(axis=1),
  }
  if in_group is not None:
    group = np.asarray(in_group).astype(bool)
    if group.ndim == 1:
      group = np.repeat(group[:, None], num_units, axis=1)
    if group.shape != (labels.shape[0], num_units):
      raise ValueError(
        f'in_group must be [N] or [N, U] = [{labels.shape[0]}, {num_units}], got {group.shape}'
      )
    group = group[:, units].T  # [len(units), N]
    drop = base_correct[None, :] - correct  # per example

    def mean_over(mask):
      count = mask.sum(axis=1)
      return np.where(count > 0, (drop * mask).sum(axis=1) / np.maximum(count, 1), 0.0)

    out['accuracy_drop_in'] = mean_over(group)
    out['accuracy_drop_out'] = mean_over(~group)
    out['selectivity'] = out['accuracy_drop_in'] - out['accuracy_drop_out']
  return out

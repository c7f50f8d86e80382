"""Nearest-neighbour retrieval mAP per feature chunk and attribute (the Sprites protocol, seed 000).

Conventions (Hu et al., CVPR 2018, made exact here), chosen so that two implementations agree to 1e-6:
- every test point is a query, and the query is not in its own gallery (leave-one-out);
- items are ranked by Euclidean distance in the chosen chunk (cosine distance as an option);
- an item is relevant when it has the query's value of the attribute;
- tied distances enter the ranking together: `AP = sum_m (Rec_m - Rec_{m-1}) * Prec_m` over the
  distinct distance values in increasing order, precision and recall counted over all items at or
  below that distance. This is scikit-learn's `average_precision_score(relevant, -distance)`;
  without ties it is the mean of precision@r over the ranks r of the relevant items;
- a query with no relevant item in its gallery (its attribute value occurs once) has AP = 0, the
  value scikit-learn returns for it;
- mAP is the unweighted mean of AP over queries.

For random features the expected AP of a query with R relevant items among M is
`(H_M + (R - 1)(M - H_M)/(M - 1)) / M`, `H_M = sum_{i <= M} 1/i` (`expected_random_ap`), which
tends to the class prior R/M for large galleries.

Chunk selection: the authors assigned chunks to attributes by inspection; here
`c*(a) = argmax_c mAP(a, c)` on a validation split, and the reported number is mAP(a, c*(a)) on
the test split (`retrieval_evaluation`). "All chunks concatenated" and a user mapping are reported
next to it.

Implementation: numpy in float64 (ties are defined on exact distances, which float32 would merge).
Queries are processed in blocks (in parallel threads): per block, one distance matrix and one
`argsort`, shared by every attribute, give each item's tie-aware rank; then, per attribute and
class, the ranks of the query's relevant items are gathered and sorted, and
`AP = mean_k hits_k / (rank_k + 1)`. The work after the sort is proportional to the relevant items
only, so many attributes cost little more than one. Memory is bounded by `block_elements`.
Cost: one N x N sort per chunk, about 1-2 s per chunk for N = 5,000 on 2 CPU cores, so this is
an evaluator to run at checkpoints rather than every few steps.
Squared Euclidean distances are ranked (the same order as Euclidean), computed as
`|q|^2 + |g|^2 - 2 q.g`, which is exact for integer-valued codes and identical for duplicate items.
"""

from __future__ import annotations

from concurrent import futures
import os
from typing import Sequence

import numpy as np

METRICS = ('euclidean', 'cosine')
#: Elements of one block's [queries, gallery] distance matrix (2M: about 80 MiB of work arrays).
DEFAULT_BLOCK_ELEMENTS = 1 << 21


def tie_ranks(keys: np.ndarray) -> np.ndarray:
  """Tie-aware ranks along the last axis: `rank[..., g] = #{h : keys[..., h] <= keys[..., g]} - 1`.

  Items with equal keys share the rank of the last of them, which is what the precision of a
  tie group is counted at. Without ties this is the usual 0-based rank. Returns integers of the
  same shape.
  """
  keys = np.asarray(keys)
  order = np.argsort(keys, axis=-1)
  sorted_keys = np.take_along_axis(keys, order, axis=-1)
  ranks = np.empty(keys.shape, np.int32 if keys.shape[-1] < 2**31 else np.int64)
  np.put_along_axis(ranks, order, _last_of_tie_group(sorted_keys), axis=-1)
  return ranks


def _last_of_tie_group(sorted_values: np.ndarray) -> np.ndarray:
  """For a non-decreasing last axis, the index of the last element equal to each element."""
  n = sorted_values.shape[-1]
  positions = np.broadcast_to(np.arange(n), sorted_values.shape)
  if n < 2:
    return positions.copy()
  differs = sorted_values[..., 1:] != sorted_values[..., :-1]
  if differs.all():
    return positions.copy()
  is_last = np.ones(sorted_values.shape, bool)
  is_last[..., :-1] = differs
  last = np.where(is_last, positions, n)
  return np.minimum.accumulate(last[..., ::-1], axis=-1)[..., ::-1]


def average_precision_from_ranks(relevant_ranks: np.ndarray) -> np.ndarray:
  """Average precision from the tie-aware ranks (`tie_ranks`) of the relevant items.

  Args:
    relevant_ranks: `[..., R]` the ranks of a ranking's R relevant items, in any order.

  Returns:
    `[...]` float64: `sum_m (Rec_m - Rec_{m-1}) Prec_m` over the distinct keys (scikit-learn's
    `average_precision_score`); 0 when R = 0. The relevant items of a tie group are all credited
    with the precision at the end of the group: (relevant at rank <= r) / (r + 1).
  """
  return _ap_sorted_ranks(np.sort(np.asarray(relevant_ranks), axis=-1))


def _ap_sorted_ranks(ranks: np.ndarray) -> np.ndarray:
  if ranks.shape[-1] == 0:
    return np.zeros(ranks.shape[:-1])
  hits = _last_of_tie_group(ranks) + 1.0
  return (hits / (ranks + 1.0)).mean(axis=-1)


def _as_labels(labels: np.ndarray, n: int) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim == 1:
    labels = labels[:, None]
  if labels.ndim != 2 or labels.shape[0] != n:
    raise ValueError(f'labels must be [N] or [N, A] with N = {n}, got {labels.shape}')
  return labels


def _check_codes(codes: np.ndarray) -> np.ndarray:
  codes = np.asarray(codes, np.float64)
  if codes.ndim == 1:
    codes = codes[:, None]
  if codes.ndim != 2:
    raise ValueError(f'codes must be [N, d], got {codes.shape}')
  if codes.shape[0] < 2:
    raise ValueError(
      f'retrieval needs at least 2 points (a query and a gallery), got {codes.shape[0]}'
    )
  if not np.all(np.isfinite(codes)):
    raise ValueError('codes contain NaN or infinite values')
  if np.abs(codes).max() > 1e150:
    raise ValueError('codes are too large for finite squared distances (|code| > 1e150)')
  return codes


def _distance_block(queries: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
  if metric == 'euclidean':
    sq = (queries**2).sum(1)[:, None] + (gallery**2).sum(1)[None, :] - 2.0 * queries @ gallery.T
    return np.maximum(sq, 0.0)
  if metric == 'cosine':
    return 1.0 - queries @ gallery.T
  raise ValueError(f'unknown metric {metric!r}; choose one of {METRICS}')


def retrieval_average_precision(
  codes: np.ndarray,
  labels: np.ndarray,
  *,
  metric: str = 'euclidean',
  block_elements: int = DEFAULT_BLOCK_ELEMENTS,
  num_threads: int | None = None,
) -> np.ndarray:
  """Leave-one-out retrieval AP of every point as a query, for every attribute.

  Args:
    codes: `[N, d]` features (one chunk, or several concatenated).
    labels: `[N]` or `[N, A]` attribute values (any comparable dtype).
    metric: 'euclidean' or 'cosine' (`1 - cos`, zero vectors at distance 1 from everything).
    block_elements: memory bound: queries per block = block_elements // N.
    num_threads: threads sorting blocks of queries in parallel (numpy releases the GIL while
      sorting); default: the number of CPUs, at most 4.

  Returns:
    `[N, A]` AP per query and attribute (`[N]` if `labels` was `[N]`).
  """
  squeeze = np.asarray(labels).ndim == 1
  codes = _check_codes(codes)
  n = codes.shape[0]
  labels = _as_labels(labels, n)
  if metric == 'cosine':
    norms = np.linalg.norm(codes, axis=1, keepdims=True)
    codes = codes / np.where(norms > 0, norms, 1.0)
  elif metric not in METRICS:
    raise ValueError(f'unknown metric {metric!r}; choose one of {METRICS}')
  num_attributes = labels.shape[1]
  classes, members = [], []
  for column in labels.T:
    _, inverse = np.unique(column, return_inverse=True)
    inverse = inverse.reshape(-1)
    classes.append(inverse)
    members.append([np.flatnonzero(inverse == v) for v in range(inverse.max() + 1)])

  def block_ap(start: int) -> tuple[np.ndarray, np.ndarray]:
    q = np.arange(start, min(start + block, n))
    dist = _distance_block(codes[q], codes, metric)
    # The query leaves its own gallery: at infinite distance it is ranked last (rank N - 1), alone.
    dist[np.arange(q.size), q] = np.inf
    ranks = tie_ranks(dist)
    out = np.zeros((q.size, num_attributes))
    for a in range(num_attributes):
      query_class = classes[a][q]
      for v in np.unique(query_class):
        same = members[a][v]
        if same.size < 2:
          continue  # no relevant item: AP = 0
        rows = np.flatnonzero(query_class == v)
        relevant_ranks = np.sort(ranks[np.ix_(rows, same)], axis=1)[:, :-1]  # drop the query
        out[rows, a] = _ap_sorted_ranks(relevant_ranks)
    return q, out

  block = max(1, min(n, block_elements // n))
  starts = range(0, n, block)
  threads = num_threads or min(os.cpu_count() or 1, 4)
  out = np.empty((n, num_attributes))
  if threads > 1 and len(starts) > 1:
    with futures.ThreadPoolExecutor(threads) as pool:
      results = list(pool.map(block_ap, starts))
  else:
    results = [block_ap(s) for s in starts]
  for q, ap in results:
    out[q] = ap
  return out[:, 0] if squeeze else out


def retrieval_map(
  codes: np.ndarray,
  labels: np.ndarray,
  *,
  metric: str = 'euclidean',
  block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> np.ndarray:
  """mAP per attribute: the unweighted mean over queries of `retrieval_average_precision`.

  Returns `[A]` (a scalar array if `labels` was `[N]`).
  """
  return retrieval_average_precision(
    codes, labels, metric=metric, block_elements=block_elements
  ).mean(axis=0)


def split_chunks(codes: np.ndarray, num_chunks: int | None = None) -> np.ndarray:
  """Codes as chunks `[N, C, d]`: `[N, C, d]` is kept, `[N, C*d]` is reshaped (C required).

  1-D codes `[N]` are one dimension, `[N, 1]`, as everywhere in this module.
  """
  codes = np.asarray(codes)
  if codes.ndim == 1:
    codes, num_chunks = codes[:, None], num_chunks or 1
  if codes.ndim == 3:
    if num_chunks is not None and codes.shape[1] != num_chunks:
      raise ValueError(f'codes have {codes.shape[1]} chunks, not {num_chunks}')
    return codes
  if codes.ndim != 2 or num_chunks is None:
    raise ValueError('codes must be [N, C, d], or [N, C*d] with num_chunks given')
  if num_chunks < 1 or codes.shape[1] % num_chunks:
    raise ValueError(f'{codes.shape[1]} code dimensions do not split into {num_chunks} chunks')
  return codes.reshape(codes.shape[0], num_chunks, -1)


def retrieval_map_per_chunk(
  codes: np.ndarray,
  labels: np.ndarray,
  *,
  num_chunks: int | None = None,
  metric: str = 'euclidean',
  block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> np.ndarray:
  """mAP of retrieval with each chunk alone, for each attribute.

  Args:
    codes: `[N, C, d]`, or `[N, C*d]` with `num_chunks = C`.
    labels: `[N, A]` (or `[N]`).
    num_chunks: number of chunks when `codes` is flat.
    metric: 'euclidean' or 'cosine'.
    block_elements: memory bound for one block of queries.

  Returns:
    `[C, A]` mAP.
  """
  chunks = split_chunks(codes, num_chunks)
  labels = _as_labels(labels, chunks.shape[0])
  return np.stack(
    [
      retrieval_map(chunks[:, c], labels, metric=metric, block_elements=block_elements)
      for c in range(chunks.shape[1])
    ]
  )


def select_chunks(map_per_chunk: np.ndarray) -> np.ndarray:
  """`c*(a) = argmax_c mAP[c, a]` (the first chunk on ties). Returns int `[A]`."""
  return np.argmax(np.asarray(map_per_chunk), axis=0)


def expected_random_ap(gallery_size: int, num_relevant) -> np.ndarray:
  """Expected AP of a uniformly random ranking of M items with R relevant (exact).

  `(H_M + (R - 1)(M - H_M)/(M - 1)) / M`; 0 for R = 0 and 1 for M = R = 1. `num_relevant` may be
  an array.
  """
  m = int(gallery_size)
  if m < 1:
    raise ValueError(f'gallery_size must be >= 1, got {m}')
  r = np.asarray(num_relevant, np.float64)
  if np.any(r < 0) or np.any(r > m):
    raise ValueError(f'num_relevant must lie in [0, {m}]')
  if m == 1:
    return np.where(r > 0, 1.0, 0.0)
  harmonic = np.sum(1.0 / np.arange(1, m + 1))
  ap = (harmonic + (r - 1.0) * (m - harmonic) / (m - 1.0)) / m
  return np.where(r > 0, ap, 0.0)


def expected_random_map(labels: np.ndarray) -> np.ndarray:
  """Expected leave-one-out mAP of random features on these labels. Returns `[A]` (or scalar)."""
  labels = np.asarray(labels)
  squeeze = labels.ndim == 1
  labels = _as_labels(labels, labels.shape[0])
  n = labels.shape[0]
  out = []
  for column in labels.T:
    _, inverse, counts = np.unique(column, return_inverse=True, return_counts=True)
    out.append(expected_random_ap(n - 1, counts[inverse] - 1).mean())
  out = np.asarray(out)
  return out[0] if squeeze else out


def _mapping_codes(chunks: np.ndarray, chunk_ids) -> np.ndarray:
  ids = np.atleast_1d(np.asarray(chunk_ids, np.int64))
  if ids.size == 0 or np.any(ids < 0) or np.any(ids >= chunks.shape[1]):
    raise ValueError(f'mapping names chunks {ids.tolist()}, but there are {chunks.shape[1]}')
  return chunks[:, ids].reshape(chunks.shape[0], -1)


def retrieval_evaluation(
  val_codes: np.ndarray,
  val_labels: np.ndarray,
  test_codes: np.ndarray,
  test_labels: np.ndarray,
  *,
  num_chunks: int | None = None,
  mapping: Sequence[int | Sequence[int]] | None = None,
  metric: str = 'euclidean',
  block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> dict[str, np.ndarray | float]:
  """The Sprites retrieval protocol: chunk selection on validation, mAP on test.

  Args:
    val_codes: `[Nv, C, d]` or `[Nv, C*d]` validation codes, used only to choose chunks.
    val_labels: `[Nv, A]`.
    test_codes: `[Nt, C, d]` or `[Nt, C*d]`.
    test_labels: `[Nt, A]`.
    num_chunks: C, when the codes are flat.
    mapping: optional user assignment, one entry per attribute: a chunk index or a list of chunk
      indices (concatenated).
    metric: 'euclidean' or 'cosine'.
    block_elements: memory bound for one block of queries.

  Returns:
    A dict with
      'map_per_chunk' `[C, A]` (test), 'val_map_per_chunk' `[C, A]`,
      'chunk_for_attribute' `[A]` = c*(a) chosen on validation,
      'map' `[A]` = test mAP(a, c*(a)), 'map_mean' (the "average" column),
      'map_all_chunks' `[A]` and 'map_all_chunks_mean' (the whole code),
      'random_map' `[A]` and 'random_map_mean' (expected for random features on the test labels),
      and with a mapping 'map_mapping' `[A]`, 'map_mapping_mean'.

  Degenerate inputs (the package's policy): fewer than 2 points in a split, NaN/inf codes, or no
  attribute with two values among the test labels: ValueError. 1-D codes `[N]` are one dimension.
  A constant chunk ranks every item as tied: its AP is the fraction of relevant items.
  """
  val = split_chunks(val_codes, num_chunks)
  test = split_chunks(test_codes, num_chunks)
  if val.shape[1:] != test.shape[1:]:
    raise ValueError(f'validation chunks {val.shape[1:]} differ from test chunks {test.shape[1:]}')
  val_labels = _as_labels(val_labels, val.shape[0])
  test_labels = _as_labels(test_labels, test.shape[0])
  if val_labels.shape[1] != test_labels.shape[1]:
    raise ValueError('validation and test labels have different numbers of attributes')
  if all(np.unique(column).size < 2 for column in test_labels.T):
    raise ValueError('retrieval: every attribute is constant: there is nothing to measure')
  kw = dict(metric=metric, block_elements=block_elements)
  val_map = retrieval_map_per_chunk(val, val_labels, **kw)
  test_map = retrieval_map_per_chunk(test, test_labels, **kw)
  chosen = select_chunks(val_map)
  attributes = np.arange(test_labels.shape[1])
  selected = test_map[chosen, attributes]
  whole = retrieval_map(test.reshape(test.shape[0], -1), test_labels, **kw)
  random = expected_random_map(test_labels)
  out = {
    'map_per_chunk': test_map,
    'val_map_per_chunk': val_map,
    'chunk_for_attribute': chosen,
    'map': selected,
    'map_mean': float(selected.mean()),
    'map_all_chunks': whole,
    'map_all_chunks_mean': float(whole.mean()),
    'random_map': random,
    'random_map_mean': float(random.mean()),
  }
  if mapping is not None:
    if len(mapping) != test_labels.shape[1]:
      raise ValueError(f'mapping has {len(mapping)} entries for {test_labels.shape[1]} attributes')
    mapped = np.array(
      [
        retrieval_map(_mapping_codes(test, ids), test_labels[:, a], **kw)
        for a, ids in enumerate(mapping)
      ]
    )
    out['map_mapping'] = mapped
    out['map_mapping_mean'] = float(mapped.mean())
  return out

"""A dataset of stored feature vectors and their factors: `.npy` arrays in one directory.

Written once by the features step of the feature-aggregation VAE (Seitzer, Foltyn, Kemeth 2020)
and read by its VAE step and by metrics over stored codes. Layout of `<directory>`:

  features.npy   float32 [N, F]   the aggregated features, in the split's record order
  factors.npy    int32 [N, K]     each record's ground-truth factor indices
  store.json     {'format', 'num_examples', 'feature_dim', 'factor_names', 'factor_sizes',
                  'source': what was read (dataset, split, extractor file)}

`store.json` is written last, so a directory without it is an unfinished store. Arrays are opened
memory-mapped (a million 512-d features are 2 GB), and nothing is pickled.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

import grain
import numpy as np

from disentangle_jax.data.pipeline import BatchPlan

FORMAT = 'disentangle_jax/feature_store/v1'
_META = 'store.json'


def is_complete(directory: str) -> bool:
  """Whether `directory` holds a finished store."""
  return os.path.isfile(os.path.join(directory, _META))


class StoreWriter:
  """Fills a store row by row (`write(start, features, factors)`), then `close()` publishes it."""

  def __init__(self, directory: str, num_examples: int, feature_dim: int, *,
               factor_names: Sequence[str], factor_sizes: Sequence[int],
               source: dict[str, Any] | None = None):
    os.makedirs(directory, exist_ok=True)
    meta = os.path.join(directory, _META)
    if os.path.exists(meta):
      os.remove(meta)  # unpublished until close()
    self.directory = directory
    self.meta = {
        'format': FORMAT, 'num_examples': int(num_examples), 'feature_dim': int(feature_dim),
        'factor_names': list(factor_names), 'factor_sizes': [int(k) for k in factor_sizes],
        'source': dict(source or {}),
    }
    k = len(factor_sizes)
    self.features = np.lib.format.open_memmap(
        os.path.join(directory, 'features.npy'), 'w+', np.float32, (num_examples, feature_dim))
    self.factors = np.lib.format.open_memmap(
        os.path.join(directory, 'factors.npy'), 'w+', np.int32, (num_examples, k))
    self.written = 0

  def write(self, start: int, features: np.ndarray, factors: np.ndarray) -> None:
    n = len(features)
    self.features[start:start + n] = features
    self.factors[start:start + n] = factors
    self.written = max(self.written, start + n)

  def close(self) -> str:
    if self.written != self.meta['num_examples']:
      raise RuntimeError(f'feature store {self.directory}: {self.written} of '
                         f'{self.meta["num_examples"]} rows written')
    self.features.flush()
    self.factors.flush()
    del self.features, self.factors
    tmp = os.path.join(self.directory, f'{_META}.tmp')
    with open(tmp, 'w') as f:
      json.dump(self.meta, f, indent=1)
    os.replace(tmp, os.path.join(self.directory, _META))
    return self.directory


class FeatureStore:
  """A finished store, memory-mapped: `features` [N, F], `factors` [N, K], `meta`."""

  def __init__(self, directory: str):
    if not is_complete(directory):
      raise FileNotFoundError(f'no finished feature store in {directory} ({_META} missing): run '
                              'the features step (it writes the store last)')
    with open(os.path.join(directory, _META)) as f:
      self.meta = json.load(f)
    if self.meta.get('format') != FORMAT:
      raise ValueError(f'{directory} is not a feature store of this project ({FORMAT})')
    self.directory = directory
    self.features = np.load(os.path.join(directory, 'features.npy'), mmap_mode='r')
    self.factors = np.load(os.path.join(directory, 'factors.npy'), mmap_mode='r')
    n = self.meta['num_examples']
    if self.features.shape != (n, self.meta['feature_dim']) or len(self.factors) != n:
      raise ValueError(f'feature store {directory}: arrays {self.features.shape}, '
                       f'{self.factors.shape} do not match store.json ({n} rows); rerun the '
                       'features step')

  def __len__(self) -> int:
    return len(self.features)

  @property
  def factor_sizes(self) -> tuple[int, ...]:
    return tuple(self.meta['factor_sizes'])

  def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """{'features': float32 [b, F], 'factors': int32 [b, K]} of rows `indices`."""
    order = np.argsort(indices)  # sorted reads of the memory map, then the batch's order back
    rows = np.asarray(indices)[order]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return {'features': np.asarray(self.features[rows], np.float32)[inverse],
            'factors': np.asarray(self.factors[rows], np.int32)[inverse]}


class _ReadRows:
  """Grain map: batch index → the batch's rows (picklable; reopens the store after unpickling)."""

  def __init__(self, directory: str, plan: BatchPlan):
    self.directory = directory
    self.plan = plan
    self._store = None

  def __call__(self, i: int) -> dict[str, np.ndarray]:
    if self._store is None:
      self._store = FeatureStore(self.directory)
    return self._store.read(self.plan(int(i)))

  def __getstate__(self):
    return {'directory': self.directory, 'plan': self.plan}

  def __setstate__(self, state):
    self.__init__(state['directory'], state['plan'])


def make_train_iterator(directory: str, *, batch_size: int, seed: int) -> grain.DatasetIterator:
  """An endless iterator of shuffled batches of the store (a fresh permutation each epoch).

  Its position is saved and restored like the image pipeline's (grain checkpoint handlers), so a
  killed run resumes on the batch it would have read next.
  """
  store = FeatureStore(directory)
  if len(store) < batch_size:
    raise ValueError(f'feature store {directory} has {len(store)} rows, fewer than one batch of '
                     f'{batch_size}; lower the batch size')
  plan = BatchPlan(np.arange(len(store)), batch_size, seed=seed, num_epochs=None,
                   drop_remainder=True)
  dataset = grain.MapDataset.range(sys.maxsize).map(_ReadRows(directory, plan))
  return iter(dataset.to_iter_dataset())

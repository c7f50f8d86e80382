"""The one input pipeline: TFDS random-access data sources read by grain, for every dataset.

    it = make_train_iterator(config.data, global_batch_size=64, seed=0)
    batch = next(it)   # {'image': float32 [b, H, W, C] in [0, 1], 'factors': int32 [b, K], ...}

How it reads: the record indices are sharded across processes, permuted afresh each epoch and
cut into batches (`BatchPlan`, whole-array numpy); a grain `MapDataset` over blocks of a few
batches (`read_block` records) reads each block with one `__getitems__` call on the TFDS
ArrayRecord data source, decodes and preprocesses it as whole arrays, and splits it back into
batches. `ReadOptions` threads read blocks ahead of the consumer (ArrayRecord reads release the
GIL). The iterator is a grain `DatasetIterator`, so its position is saved and restored with
`grain.checkpoint.CheckpointSave/CheckpointRestore` (its state: the next block, and the next
batch in the current one).

Sharding: every process applies the same seeded permutation to all record indices and takes its
contiguous `1/process_count` of it (the `N mod process_count` records left over are dropped so all
shards are equal and every process yields the same number of batches); each process then only
reads its own shard. The global batch is split evenly: each process yields
`global_batch_size / process_count` examples.

Data config schema (`default_data_config()` returns it):
  name:             dataset, e.g. 'procedural_dsprites', 'dsprites', 'celeb_a' (see
                    `disentangle_jax.data.datasets`); an unknown name lists the known ones.
  builder_config:   TFDS builder config, e.g. 'small'; None = the builder's default ('full').
  data_dir:         TFDS data dir; None = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  split:            split to train on ('train'); TFDS slicing works ('train[:90%]').
  eval_split:       split of `make_eval_iterator`; None = the dataset's ('test' where it exists).
  image_size:       None = the dataset's default (CelebA, smallNORB: 64; others native);
                    0 = native; else resize to image_size × image_size.
  crop:             None = the dataset's default (CelebA: 'center'); 'none'; 'center' (largest
                    centred square); or a side in pixels ('140').
  channels:         None, or the channel count the model expects: a mismatch is an error.
  build_if_missing: build a missing procedural dataset on first use (real ones never are).
  num_epochs:       None = repeat forever; else stop after this many passes over the shard.
  read_threads:     threads reading and decoding blocks of batches ahead of the consumer.
  read_block:       records read per `__getitems__` call (whole batches; at least one batch).
  prefetch:         blocks of batches kept ready ahead of the consumer.
  worker_processes: 0, or grain worker processes decoding batches (needs parsed absl flags,
                    as in launch/main.py).
"""

from __future__ import annotations

import sys
import threading
from typing import Sequence

import grain
import ml_collections
import numpy as np

from disentangle_jax.data import datasets
from disentangle_jax.data import preprocess
from disentangle_jax.data.info import DatasetInfo


def default_data_config() -> ml_collections.ConfigDict:
  """The data config with every key and its default (see the module docstring).

  Keys that default to None are typed placeholders, so `--config.data.data_dir=/x` works.
  """
  placeholder = ml_collections.config_dict.placeholder
  return ml_collections.ConfigDict({
      'name': 'procedural_dsprites',
      'builder_config': placeholder(str),
      'data_dir': placeholder(str),
      'split': 'train',
      'eval_split': placeholder(str),
      'image_size': placeholder(int),
      'crop': placeholder(str),
      'channels': placeholder(int),
      'build_if_missing': True,
      'num_epochs': placeholder(int),
      'read_threads': 2,
      'read_block': 512,
      'prefetch': 2,
      'worker_processes': 0,
  })


def _get(data_config, key):
  return data_config.get(key, default_data_config()[key])


def _open(data_config, split: str) -> datasets.RecordReader:
  return datasets.open_dataset(
      data_config.name, builder_config=_get(data_config, 'builder_config'),
      data_dir=_get(data_config, 'data_dir'), split=split,
      build_if_missing=_get(data_config, 'build_if_missing'),
  )


def _has_ground_truth(name: str) -> bool:
  dataset = datasets.get_dataset(name)
  return dataset.procedural or bool(dataset.factor_keys)


def dataset_info(data_config) -> DatasetInfo:
  """Shapes, sizes, factors and labels of what the loader yields for `data_config`.

  Procedural datasets are described without being built; real ones must be prepared.
  """
  description = datasets.describe(
      data_config.name, builder_config=_get(data_config, 'builder_config'),
      data_dir=_get(data_config, 'data_dir'),
  )
  datasets.check_channels(data_config, description.image_shape)
  split = _get(data_config, 'split')
  if description.splits is not None and split in description.splits:
    num_examples = description.splits[split]
  else:  # real data (or a sliced split): ask the source, which checks it is prepared
    num_examples = len(_open(data_config, split))
  preprocessing = datasets.preprocessing_for(data_config)
  return DatasetInfo(
      name=description.name,
      image_shape=preprocessing.output_shape(description.image_shape),
      num_examples=num_examples,
      factor_names=description.factor_names,
      factor_sizes=description.factor_sizes,
      label_names=description.label_names,
      label_sizes=tuple(getattr(description, 'label_sizes', ()) or ()),
      splits=dict(description.splits or {}),
      has_ground_truth=_has_ground_truth(data_config.name),
  )


class ReadBatch:
  """Grain map: a batch of record indices -> the preprocessed batch (picklable)."""

  def __init__(self, reader: datasets.RecordReader, preprocessing: preprocess.Preprocessing):
    self.reader = reader
    self.preprocessing = preprocessing

  def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    batch = self.reader.read(indices)
    batch['image'] = self.preprocessing(batch['image'])
    return batch


class BatchPlan:
  """Which records batch i holds: epochs of this process's records, permuted per epoch.

  Positions run through epoch 0, then epoch 1, ... of `records` (each epoch in a fresh seeded
  permutation, or in record order when `seed` is None); batch i holds positions
  [i*batch_size, (i+1)*batch_size), so a batch may straddle two epochs. Batch indices are
  computed with whole-array numpy operations: a permutation of the shard per epoch (8 bytes a
  record, two epochs cached), where grain's per-element `shuffle`/`repeat`/`batch` chain cost
  ~10 µs of Python per record.
  """

  def __init__(self, records: np.ndarray, batch_size: int, *, seed: int | None,
               num_epochs: int | None, drop_remainder: bool):
    self.records = np.asarray(records, np.int64)
    self.batch_size = batch_size
    self.seed = seed
    self.num_epochs = num_epochs
    self.drop_remainder = drop_remainder
    self._cache: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def __len__(self) -> int:
    if self.num_epochs is None:
      return sys.maxsize
    positions = len(self.records) * self.num_epochs
    return positions // self.batch_size if self.drop_remainder else -(-positions // self.batch_size)

  def _epoch(self, epoch: int) -> np.ndarray:
    if self.seed is None:
      return self.records
    with self._lock:
      order = self._cache.get(epoch)
      if order is None:
        rng = np.random.default_rng([self.seed, epoch])
        order = self.records[rng.permutation(len(self.records))]
        self._cache = {e: o for e, o in self._cache.items() if e == epoch - 1}
        self._cache[epoch] = order
      return order

  def __call__(self, i: int) -> np.ndarray:
    """The record indices of batch `i`."""
    m = len(self.records)
    start = i * self.batch_size
    stop = start + self.batch_size
    if self.num_epochs is not None:
      stop = min(stop, m * self.num_epochs)
    parts = []
    while start < stop:
      epoch, offset = divmod(start, m)
      take = min(stop - start, m - offset)
      parts.append(self._epoch(epoch)[offset : offset + take])
      start += take
    return np.concatenate(parts)

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in ('_cache', '_lock')}

  def __setstate__(self, state):
    self.__dict__.update(state, _cache={}, _lock=threading.Lock())


class ReadBlock:
  """Grain map: block j -> its batches, all read with one `__getitems__` call (picklable).

  ArrayRecord's `read` costs about a millisecond per call on a 370k-record shard, whatever the
  number of records asked for, so reading 8 batches of 64 at once is ~5x cheaper per image.
  """

  def __init__(self, plan: BatchPlan, batches_per_block: int, read: ReadBatch):
    self.plan = plan
    self.batches_per_block = batches_per_block
    self.read = read

  def __call__(self, block: int) -> list[dict[str, np.ndarray]]:
    first = block * self.batches_per_block
    last = min(first + self.batches_per_block, len(self.plan))
    index_batches = [self.plan(i) for i in range(first, last)]
    data = self.read(np.concatenate(index_batches))
    bounds = np.cumsum([len(b) for b in index_batches])[:-1]
    parts = {k: np.split(v, bounds) for k, v in data.items()}
    return [{k: parts[k][i] for k in parts} for i in range(len(index_batches))]


class _Unpack(grain.experimental.FlatMapTransform):
  """Splits a block back into batches (grain checkpoints the position inside it)."""

  def __init__(self, max_fan_out: int):
    self.max_fan_out = max_fan_out

  def flat_map(self, element):
    return element


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top

    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} outside [0, {process_count})')
  return process_index, process_count


def _seeds(seed: int) -> tuple[int, int]:
  """Two independent seeds from one: sharding, shuffling."""
  shard_seed, shuffle_seed = np.random.SeedSequence(int(seed) % 2**63).generate_state(2)
  return int(shard_seed), int(shuffle_seed)


def shard_records(num_records: int, seed: int | None, process_index: int, process_count: int
                  ) -> np.ndarray:
  """This process's records: its contiguous block of one seeded permutation of all records.

  Every process computes the same permutation, so the blocks are disjoint; the
  `num_records mod process_count` records left over are dropped so all blocks are equal. With
  `seed=None` the blocks are contiguous ranges of records. Sorted, for reading locality.
  """
  if process_count == 1:
    return np.arange(num_records, dtype=np.int64)
  per_process = num_records // process_count
  order = np.arange(num_records, dtype=np.int64)
  if seed is not None:
    order = np.random.default_rng(_seeds(seed)[0]).permutation(num_records)
  return np.sort(order[process_index * per_process : (process_index + 1) * per_process])


def _read(plan: BatchPlan, reader: datasets.RecordReader, data_config) -> grain.IterDataset:
  """A batch plan -> an `IterDataset` of preprocessed batches, read in blocks, ahead."""
  per_block = max(1, _get(data_config, 'read_block') // plan.batch_size)
  num_blocks = -(-len(plan) // per_block) if plan.num_epochs is not None else sys.maxsize
  blocks = grain.MapDataset.range(num_blocks).map(
      ReadBlock(plan, per_block, ReadBatch(reader, datasets.preprocessing_for(data_config)))
  )
  ds = blocks.to_iter_dataset(
      grain.ReadOptions(num_threads=_get(data_config, 'read_threads'),
                        prefetch_buffer_size=_get(data_config, 'prefetch'))
  )
  ds = grain.experimental.FlatMapIterDataset(ds, _Unpack(per_block))
  workers = _get(data_config, 'worker_processes')
  if workers:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return ds


def make_train_dataset(data_config, *, global_batch_size: int, seed: int,
                       process_index: int | None = None, process_count: int | None = None
                       ) -> grain.IterDataset:
  """The training pipeline as a grain `IterDataset` (see `make_train_iterator`)."""
  process_index, process_count = _process(process_index, process_count)
  if global_batch_size % process_count:
    raise ValueError(
        f'global batch size {global_batch_size} is not divisible by the {process_count} '
        'processes'
    )
  batch_size = global_batch_size // process_count
  reader = _open(data_config, _get(data_config, 'split'))
  datasets.check_channels(data_config, reader.image_shape)
  records = shard_records(len(reader), seed, process_index, process_count)
  if len(records) < batch_size:
    raise ValueError(
        f'{reader.name} split {reader.split!r} gives each of {process_count} processes '
        f'{len(records)} records, fewer than one batch of {batch_size}'
    )
  plan = BatchPlan(records, batch_size, seed=_seeds(seed)[1],
                   num_epochs=_get(data_config, 'num_epochs'), drop_remainder=True)
  return _read(plan, reader, data_config)


def make_train_iterator(data_config, *, global_batch_size: int, seed: int,
                        process_index: int | None = None, process_count: int | None = None
                        ) -> grain.DatasetIterator:
  """An endless (or `num_epochs`-long), shuffled, sharded iterator of training batches.

  Args:
    data_config: see the module docstring.
    global_batch_size: examples per step over all processes; must divide by `process_count`.
    seed: shuffling seed; the same seed gives the same batches, another seed other batches.
    process_index, process_count: this process and how many read the data (default: JAX's).

  Returns:
    A grain `DatasetIterator` of dicts of numpy arrays: 'image' float32 [b, H, W, C] in [0, 1]
    (b = global_batch_size / process_count), plus 'factors' int32 [b, K] for ground-truth
    datasets and 'label' int32 [b, L] for labelled ones (L = len(dataset_info().label_names)).
    Save and restore its position with `grain.checkpoint.CheckpointSave/CheckpointRestore`.
  """
  return iter(make_train_dataset(
      data_config, global_batch_size=global_batch_size, seed=seed,
      process_index=process_index, process_count=process_count,
  ))


def make_eval_iterator(data_config, *, batch_size: int, split: str | None = None,
                       num_examples: int | None = None, drop_remainder: bool = False,
                       process_index: int = 0, process_count: int = 1
                       ) -> grain.DatasetIterator:
  """One pass, in record order, over `split` (default: the eval split) in batches.

  Args:
    data_config: see the module docstring.
    batch_size: examples per batch (the last one may be smaller unless `drop_remainder`).
    split: TFDS split; None = `data_config.eval_split` or the dataset's eval split.
    num_examples: read only the first `num_examples` records (of this process's shard).
    drop_remainder: drop a last, partial batch.
    process_index, process_count: read only this process's shard (default: everything).

  Returns:
    A grain `DatasetIterator` of batches shaped as `make_train_iterator`'s.
  """
  if split is None:
    split = _get(data_config, 'eval_split') or datasets.get_dataset(data_config.name).eval_split
  reader = _open(data_config, split)
  datasets.check_channels(data_config, reader.image_shape)
  records = shard_records(len(reader), None, process_index, process_count)[:num_examples]
  plan = BatchPlan(records, batch_size, seed=None, num_epochs=1, drop_remainder=drop_remainder)
  return iter(_read(plan, reader, data_config))


def read_examples(data_config, indices: Sequence[int], split: str | None = None
                  ) -> dict[str, np.ndarray]:
  """The preprocessed records `indices` of `split` (default: the training split), as a batch."""
  reader = _open(data_config, split or _get(data_config, 'split'))
  return ReadBatch(reader, datasets.preprocessing_for(data_config))(np.asarray(indices))

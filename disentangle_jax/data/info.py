"""`DatasetInfo`: what an objective is told about its data (no I/O, no heavy imports)."""

from __future__ import annotations

import dataclasses
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the pipeline yields for a data config.

  Attributes:
    name: dataset name, with its builder config ('procedural_dsprites/small').
    image_shape: (H, W, C) of the yielded images, after preprocessing.
    num_examples: records in the training split (all processes together).
    factor_names, factor_sizes: the ground-truth factors in `batch['factors']`; () when none.
    label_names: the columns of `batch['label']`; () when the dataset has no labels.
    label_sizes: classes per label column where known (a 45-class pair label: (45,); binary
      attributes: 2 each); () when unknown.
    splits: records per split where known without reading the data ({} otherwise).
    has_ground_truth: whether images can be drawn for chosen factor values (a renderer or a
      complete factor grid), which the sampled metrics (BetaVAE, FactorVAE, ...) need.
  """

  name: str
  image_shape: tuple[int, int, int]
  num_examples: int
  factor_names: tuple[str, ...] = ()
  factor_sizes: tuple[int, ...] = ()
  label_names: tuple[str, ...] = ()
  label_sizes: tuple[int, ...] = ()
  splits: Mapping[str, int] = dataclasses.field(default_factory=dict)
  has_ground_truth: bool = False

  @classmethod
  def for_images(cls, image_shape, *, num_examples: int = 0, **kwargs) -> 'DatasetInfo':
    """A description with only an image shape (and what `kwargs` add): the short form for
    tests and for models built without a dataset."""
    return cls(name='images', image_shape=tuple(int(s) for s in image_shape),
               num_examples=num_examples, **kwargs)

  @property
  def has_factors(self) -> bool:
    return bool(self.factor_sizes)

  @property
  def has_labels(self) -> bool:
    return bool(self.label_names)


def as_dataset_info(value) -> DatasetInfo:
  """`value` if it is a `DatasetInfo`, else an image shape (H, W, C) turned into one."""
  if isinstance(value, DatasetInfo):
    return value
  shape = tuple(value)
  if len(shape) != 3:
    raise ValueError(f'expected a DatasetInfo or an image shape (H, W, C), got {value!r}')
  return DatasetInfo.for_images(shape)

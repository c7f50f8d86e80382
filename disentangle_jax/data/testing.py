"""Test helpers: real datasets served by `tfds.testing.mock_data`, without TensorFlow.

    with mock_real_data(num_examples=16):
      it = pipeline.make_train_iterator(config.data, global_batch_size=8, seed=0)

`MockPolicy.USE_CODE` with the default deserialization is the mock mode that needs no TensorFlow:
it generates decoded numpy examples from the builder's features (the modes that serialize
examples encode `Image` features with TensorFlow). TFDS 4.9.10's mock also sets `__getitems__`
as a plain attribute of a `MagicMock`, which is then called without `self`; batched reads fail with
"missing 1 required positional argument". `mock_real_data` patches that one function.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


def _fixed_getitems(original):
  def getitems(self, record_keys=None, generator=None, serialized=False):
    if record_keys is None:  # called as `__getitems__(keys)`: `self` holds the keys
      self, record_keys = None, self
    return original(self, record_keys, generator=generator, serialized=serialized)

  return getitems


@contextlib.contextmanager
def mock_real_data(num_examples: int = 16) -> Iterator[None]:
  """`tfds.testing.mock_data` in its TensorFlow-free mode, with batched reads working."""
  from unittest import mock  # pylint: disable=g-import-not-at-top

  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.testing import mocking  # pylint: disable=g-import-not-at-top

  with mock.patch.object(mocking, '_getitems', _fixed_getitems(mocking._getitems)):
    with tfds.testing.mock_data(num_examples=num_examples,
                                policy=tfds.testing.MockPolicy.USE_CODE):
      yield

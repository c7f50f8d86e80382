"""Metric writers: a JSONL file, TensorBoard event files, PNG and GIF pictures, in the workdir.

Layout of a workdir:
  metrics.jsonl                 one JSON object per `write_scalars`: {"step": s, "name": value}
  tensorboard/events.out.*      the same scalars, and every picture, for `tensorboard --logdir`
  images/<name>_<step:08d>.png  pictures; a '/' in a name becomes '_' in the file name
  images/<name>_<step:08d>.gif  animations (also shown, animated, in TensorBoard's image tab)

Only one process writes: a writer built with `enabled=False` (the default on every process but 0)
does nothing. The JSONL file is opened for appending, so a resumed run continues the same file;
steps between the last checkpoint and a crash then appear twice, and the later rows (from the run
that went on) are the ones that count. Non-finite values are written as the strings "nan", "inf"
and "-inf" so every line stays strict JSON; `read_metrics` turns them back into floats.

TensorBoard files are written with tensorboardX, which needs neither TensorFlow nor PyTorch.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from disentangle_jax.visualization import images as image_lib

METRICS_FILE = 'metrics.jsonl'
TENSORBOARD_DIR = 'tensorboard'
IMAGES_DIR = 'images'
_NON_FINITE = {'nan': math.nan, 'inf': math.inf, '-inf': -math.inf}


def to_python_scalar(name: str, value: Any) -> float | int | bool:
  """A JSON-able Python number from a Python, numpy or jax scalar (or a 1-element array)."""
  if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
    return value
  array = np.asarray(value)
  if array.size != 1 or array.dtype.kind not in 'biuf':
    raise ValueError(
        f'scalar {name!r} must be a single number, got {type(value).__name__} with shape '
        f'{array.shape} and dtype {array.dtype}'
    )
  return array.reshape(()).item()


def _json_value(value: float | int | bool):
  if isinstance(value, float) and not math.isfinite(value):
    return 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')
  return value


def read_metrics(path: str) -> list[dict]:
  """The rows of a metrics.jsonl (or of `<workdir>/metrics.jsonl`), in file order.

  "nan"/"inf"/"-inf" strings are turned back into floats. A torn last line (a crash mid-write)
  is skipped.
  """
  if os.path.isdir(path):
    path = os.path.join(path, METRICS_FILE)
  rows = []
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      rows.append({k: _NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in row.items()})
  return rows


def _file_name(name: str) -> str:
  return name.replace(os.sep, '_').replace('/', '_')


class MetricWriter:
  """Writes scalars, pictures and animations of a run; a no-op on processes other than 0.

  Usable as a context manager; `close()` flushes and may be called more than once.
  """

  def __init__(
      self,
      workdir: str,
      *,
      enabled: bool | None = None,
      resume_step: int | None = None,
      flush_secs: int = 30,
  ):
    """Opens (for appending) the writers of `workdir`.

    Args:
      workdir: the run's directory.
      enabled: whether this process writes; default `jax.process_index() == 0`, read when the
        writer is built (after `jax.distributed.initialize`).
      resume_step: the step a resumed run restarts from. TensorBoard then hides the crashed
        run's events after it (tensorboardX `purge_step`), so its curves do not double back.
      flush_secs: how often TensorBoard's background writer flushes to disk.
    """
    self.workdir = workdir
    self.enabled = jax.process_index() == 0 if enabled is None else bool(enabled)
    self.images_dir = os.path.join(workdir, IMAGES_DIR)
    self.metrics_path = os.path.join(workdir, METRICS_FILE)
    self._jsonl = None
    self._tb = None
    self._closed = False
    if not self.enabled:
      return
    os.makedirs(self.images_dir, exist_ok=True)
    self._jsonl = open(self.metrics_path, 'a', encoding='utf-8')
    import tensorboardX  # pylint: disable=g-import-not-at-top  # ~1 s to import; only process 0

    self._tb = tensorboardX.SummaryWriter(
        logdir=os.path.join(workdir, TENSORBOARD_DIR),
        purge_step=None if resume_step is None else resume_step + 1,
        flush_secs=flush_secs,
    )

  # Scalars ------------------------------------------------------------------------------------

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    """Appends `{'step': step, **scalars}` to metrics.jsonl and adds each scalar to TensorBoard.

    Values may be Python, numpy or jax scalars (fetching a jax value waits for it); None values
    are left out. Non-finite values are written, as "nan"/"inf"/"-inf" in the JSONL.
    """
    if not self._active():
      return
    if 'step' in scalars:
      raise ValueError("'step' is reserved for the step number; rename that scalar")
    values = {
        str(k): to_python_scalar(str(k), v) for k, v in scalars.items() if v is not None
    }
    row = {'step': int(step), **{k: _json_value(v) for k, v in values.items()}}
    self._jsonl.write(json.dumps(row, allow_nan=False) + '\n')
    self._jsonl.flush()
    for name, value in values.items():
      self._tb.add_scalar(name, float(value), global_step=int(step))

  # Pictures -----------------------------------------------------------------------------------

  def image_path(self, name: str, step: int, ext: str = 'png') -> str:
    return os.path.join(self.images_dir, f'{_file_name(name)}_{int(step):08d}.{ext}')

  def _add_encoded_image(self, name: str, step: int, data: bytes, shape: Sequence[int]) -> None:
    from tensorboardX.proto.summary_pb2 import Summary  # pylint: disable=g-import-not-at-top

    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    image = Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=data
    )
    summary = Summary(value=[Summary.Value(tag=name, image=image)])
    # tensorboardX's add_image re-encodes; passing our bytes keeps PNGs exact and GIFs animated.
    file_writer = self._tb._get_file_writer()  # pylint: disable=protected-access
    file_writer.add_summary(summary, global_step=int(step))

  def write_images(self, step: int, images: Mapping[str, Any]) -> None:
    """Saves each image as `images/<name>_<step:08d>.png` and adds it to TensorBoard.

    Args:
      step: the training step.
      images: name -> uint8 (or float in [0, 1]) image [H, W], [H, W, 1] or [H, W, 3], e.g. a grid
        from `disentangle_jax.visualization`.
    """
    if not self._active():
      return
    for name, image in images.items():
      image = image_lib.to_uint8(image)
      data = image_lib.encode_png(image)  # encoded once, for the file and for TensorBoard
      image_lib.write_atomic(self.image_path(name, step), data)
      self._add_encoded_image(name, step, data, image.shape)

  def write_gif(
      self, step: int, name: str, frames, *, duration_ms: int = 120, loop: int | None = 0
  ) -> None:
    """Saves an animation as `images/<name>_<step:08d>.gif` and adds it to TensorBoard.

    TensorBoard's image tab plays animated GIFs, so the same bytes serve both.
    """
    if not self._active():
      return
    frames = [image_lib.to_uint8(f) for f in frames]
    data = image_lib.encode_gif(frames, duration_ms=duration_ms, loop=loop)
    image_lib.write_atomic(self.image_path(name, step, 'gif'), data)
    self._add_encoded_image(name, step, data, frames[0].shape)

  # Life cycle ---------------------------------------------------------------------------------

  def flush(self) -> None:
    if self._jsonl is not None:
      self._jsonl.flush()
      os.fsync(self._jsonl.fileno())
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self.flush()
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None
    self._closed = True

  def _active(self) -> bool:
    """Whether to write: False on a disabled writer; an error on a closed one."""
    if self._closed and self.enabled:
      raise RuntimeError(f'MetricWriter for {self.workdir} is closed')
    return self.enabled

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

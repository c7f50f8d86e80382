"""MetricWriter: JSONL rows, TensorBoard events, PNG and GIF files; disabled writers do nothing."""

import glob
import json
import math
import os
import struct

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from disentangle_jax.training import writers


def read_events(logdir):
  """Every Event in the TensorBoard files under `logdir` (TFRecord framing, checksums skipped)."""
  from tensorboardX.proto import event_pb2

  events = []
  for path in sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))):
    with open(path, 'rb') as f:
      data = f.read()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack('<Q', data[offset : offset + 8])
      offset += 12  # length, then its masked crc32
      events.append(event_pb2.Event.FromString(data[offset : offset + length]))
      offset += length + 4  # payload, then its masked crc32
  return events


def scalar_events(logdir):
  return [
      (e.step, v.tag, v.simple_value) for e in read_events(logdir) for v in e.summary.value
      if v.WhichOneof('value') == 'simple_value'
  ]


def test_scalars_jsonl_and_tensorboard(tmp_path):
  workdir = str(tmp_path)
  with writers.MetricWriter(workdir, enabled=True) as w:
    w.write_scalars(1, {'loss': jnp.float32(2.5), 'kl': np.float64(0.25), 'n': np.int32(3)})
    w.write_scalars(2, {'loss': 1.5, 'skipped': None, 'bad': float('nan'), 'big': -np.inf})
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = f.read().splitlines()
  assert [json.loads(line) for line in lines] == [
      {'step': 1, 'loss': 2.5, 'kl': 0.25, 'n': 3},
      {'step': 2, 'loss': 1.5, 'bad': 'nan', 'big': '-inf'},
  ]
  rows = writers.read_metrics(workdir)
  assert math.isnan(rows[1]['bad']) and rows[1]['big'] == -math.inf

  events = scalar_events(os.path.join(workdir, 'tensorboard'))
  assert (1, 'loss', 2.5) in events and (1, 'kl', 0.25) in events and (2, 'loss', 1.5) in events


def test_jsonl_appends_across_writers(tmp_path):
  for step in (10, 20):
    w = writers.MetricWriter(str(tmp_path), enabled=True)
    w.write_scalars(step, {'loss': float(step)})
    w.close()
  w = writers.MetricWriter(str(tmp_path), enabled=True, resume_step=10)
  w.write_scalars(15, {'loss': 15.0})
  w.close()
  assert [r['step'] for r in writers.read_metrics(str(tmp_path))] == [10, 20, 15]


def test_resume_step_purges_later_tensorboard_events(tmp_path):
  w = writers.MetricWriter(str(tmp_path), enabled=True, resume_step=7)
  w.close()
  purge = [e for e in read_events(os.path.join(tmp_path, 'tensorboard')) if e.step == 8]
  assert purge and purge[0].file_version.startswith('brain.Event')


def test_images_and_gif_files_and_tensorboard(tmp_path):
  workdir = str(tmp_path)
  gray = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(12, 10, 1)
  rgb = np.random.default_rng(0).random((8, 6, 3)).astype(np.float32)
  frames = [np.full((5, 7, 3), 40 * k, np.uint8) for k in range(4)]
  with writers.MetricWriter(workdir, enabled=True) as w:
    w.write_images(300, {'reconstructions': gray, 'eval/samples': rgb})
    w.write_gif(300, 'traversal', frames)
  images_dir = os.path.join(workdir, 'images')
  assert sorted(os.listdir(images_dir)) == [
      'eval_samples_00000300.png', 'reconstructions_00000300.png', 'traversal_00000300.gif'
  ]
  with Image.open(os.path.join(images_dir, 'reconstructions_00000300.png')) as im:
    np.testing.assert_array_equal(np.asarray(im), gray[..., 0])
  with Image.open(os.path.join(images_dir, 'traversal_00000300.gif')) as im:
    assert im.n_frames == 4 and im.size == (7, 5)

  tb_images = {
      v.tag: v.image for e in read_events(os.path.join(workdir, 'tensorboard'))
      for v in e.summary.value if v.WhichOneof('value') == 'image'
  }
  assert set(tb_images) == {'reconstructions', 'eval/samples', 'traversal'}
  assert (tb_images['reconstructions'].height, tb_images['reconstructions'].width) == (12, 10)
  assert tb_images['traversal'].encoded_image_string.startswith(b'GIF89a')
  assert tb_images['eval/samples'].encoded_image_string.startswith(b'\x89PNG')


def test_disabled_writer_writes_nothing(tmp_path):
  w = writers.MetricWriter(str(tmp_path / 'run'), enabled=False)
  w.write_scalars(1, {'loss': 1.0})
  w.write_images(1, {'x': np.zeros((4, 4), np.uint8)})
  w.write_gif(1, 'g', [np.zeros((4, 4), np.uint8)] * 2)
  w.flush()
  w.close()
  assert not os.path.exists(tmp_path / 'run')


def test_default_enabled_on_process_zero(tmp_path):
  w = writers.MetricWriter(str(tmp_path))
  assert w.enabled  # a single process is process 0
  w.close()


def test_rejects_arrays_and_reserved_names(tmp_path):
  with writers.MetricWriter(str(tmp_path), enabled=True) as w:
    with pytest.raises(ValueError, match="'vec' must be a single number"):
      w.write_scalars(1, {'vec': np.ones(3)})
    with pytest.raises(ValueError, match='reserved'):
      w.write_scalars(1, {'step': 3})
  with pytest.raises(RuntimeError, match='closed'):
    w.write_scalars(2, {'loss': 1.0})


def test_read_metrics_skips_a_torn_last_line(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
  assert writers.read_metrics(str(path)) == [{'step': 1, 'loss': 2.0}]

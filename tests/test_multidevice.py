"""Data parallelism: 4 fake CPU devices match 1 device; two processes train via jax.distributed."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import train_util

CONFIG = 'configs/betavae_dsprites.py:runlocal'


@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path, tfds_data_dir):
  # SGD, so that parameters differ only as much as the gradients do: Adam divides by sqrt(v) and
  # turns last-bit differences of the cross-device sum in near-zero gradients into lr-sized steps.
  flags = train_util.tiny_flags(tfds_data_dir, steps=4) + [
      '--config.block_every_step=True', '--config.optimizer.name=sgd',
      '--config.optimizer.learning_rate=1e-5',
  ]
  one = str(tmp_path / 'one')
  four = str(tmp_path / 'four')
  train_util.run_main(CONFIG, one, flags)
  train_util.run_main(
      CONFIG, four, flags, env={'XLA_FLAGS': '--xla_force_host_platform_device_count=4'}
  )
  want, got = train_util.final_params(one), train_util.final_params(four)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_and_checkpoint(tmp_path, tfds_data_dir):
  # Prepare the data once, so that the two processes do not both build it.
  train_util.run_main(CONFIG, str(tmp_path / 'warm'), train_util.tiny_flags(tfds_data_dir, steps=1))
  workdir = str(tmp_path / 'distributed')
  flags = train_util.tiny_flags(tfds_data_dir, steps=4) + ['--config.block_every_step=True']
  port = _free_port()
  procs = []
  for pid in range(2):
    cmd = [sys.executable, train_util.MAIN, f'--config={CONFIG}', f'--workdir={workdir}', *flags,
           '--distributed', f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
           f'--process_id={pid}']
    env = train_util.subprocess_env()
    procs.append(subprocess.Popen(cmd, env=env, cwd=train_util.ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  outputs = []
  for p in procs:
    out, _ = p.communicate(timeout=600)
    outputs.append(out)
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-5000:]
  assert 'process 1/2' in outputs[1] or 'process 1/2' in outputs[0]
  params = train_util.final_params(workdir)
  assert params and all(np.isfinite(v).all() for v in params.values())
  steps = [int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit()]
  assert max(steps) == 4

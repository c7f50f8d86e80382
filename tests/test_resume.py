"""Kill a run at a random step, rerun the same command: it resumes and ends bit-identical."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import train_util

CONFIG = 'configs/betavae_dsprites.py:runlocal'
STEPS = 12


def _checkpoint_steps(workdir):
  ckpt = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(ckpt):
    return []
  return sorted(int(d) for d in os.listdir(ckpt) if d.isdigit())


@pytest.mark.slow
def test_sigkill_then_rerun_is_bit_identical(tmp_path, tfds_data_dir):
  flags = train_util.tiny_flags(tfds_data_dir, steps=STEPS) + ['--config.checkpoint_every=3']
  reference = str(tmp_path / 'uninterrupted')
  train_util.run_main(CONFIG, reference, flags)

  interrupted = str(tmp_path / 'interrupted')
  kill_after = random.Random().choice([3, 6, 9])
  cmd = [sys.executable, train_util.MAIN, f'--config={CONFIG}', f'--workdir={interrupted}', *flags]
  env = train_util.subprocess_env()
  proc = subprocess.Popen(cmd, env=env, cwd=train_util.ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if any(s >= kill_after for s in _checkpoint_steps(interrupted)):
      break
    time.sleep(0.05)
  if proc.poll() is None:
    proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = max(_checkpoint_steps(interrupted), default=0)
  assert killed_at >= kill_after, 'the run never reached the checkpoint it was to be killed after'

  result = train_util.run_main(CONFIG, interrupted, flags)
  if killed_at < STEPS:
    assert f'Resumed from step {killed_at}' in result.stderr + result.stdout

  want, got = train_util.final_params(reference), train_util.final_params(interrupted)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  # The log of the resumed run continues the first one's instead of starting again.
  with open(os.path.join(interrupted, 'metrics.jsonl')) as f:
    steps = [json.loads(line)['step'] for line in f]
  assert max(steps) == STEPS


@pytest.mark.slow
def test_corrupted_latest_checkpoint_is_skipped(tmp_path, tfds_data_dir):
  flags = train_util.tiny_flags(tfds_data_dir, steps=8) + ['--config.checkpoint_every=4']
  workdir = str(tmp_path / 'run')
  train_util.run_main(CONFIG, workdir, flags)
  assert _checkpoint_steps(workdir) == [4, 8]
  # Corrupt the newest checkpoint's state: every file in it truncated to nothing.
  for root, _, files in os.walk(os.path.join(workdir, 'checkpoints', '8', 'state')):
    for name in files:
      open(os.path.join(root, name), 'w').close()
  result = train_util.run_main(CONFIG, workdir, flags)
  log = result.stderr + result.stdout
  assert 'Checkpoint step 8' in log and 'is unreadable' in log
  assert 'Resumed from step 4' in log
  assert _checkpoint_steps(workdir) == [4, 8]
  set_aside = [d for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.startswith('8.unreadable-')]
  assert len(set_aside) == 1


def _final_checkpoint(workdir):
  """Every leaf of the newest checkpoint's state, and its data iterator position (raw JSON)."""
  import jax  # noqa: PLC0415
  import orbax.checkpoint as ocp  # noqa: PLC0415

  step = max(_checkpoint_steps(workdir))
  step_dir = os.path.join(workdir, 'checkpoints', str(step))
  checkpointer = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  path = os.path.join(step_dir, 'state')
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      checkpointer.metadata(path).item_metadata.tree,
  )
  flat = jax.tree_util.tree_flatten_with_path(checkpointer.restore(path, target))[0]
  leaves = {jax.tree_util.keystr(p): np.asarray(leaf) for p, leaf in flat}
  data_dir = os.path.join(step_dir, 'data')
  data = {n: open(os.path.join(data_dir, n)).read() for n in os.listdir(data_dir) if n.endswith('.json')}
  return step, leaves, data


def _saving(workdir):
  ckpt = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(ckpt) and any('tmp' in d for d in os.listdir(ckpt))


@pytest.mark.slow
def test_soak_random_sigkills_including_during_saves_then_rerun_is_bit_identical(
    tmp_path, tfds_data_dir
):
  """N SIGKILLs at random moments (the first and every other one while a save is in flight),
  each followed by a rerun of the same command, end exactly where an uninterrupted run ends:
  every leaf of the state and the data iterator's position. A checkpoint every step makes saves
  a large share of the run's time, so the random kills land in them too."""
  steps, kills = 10, 3
  flags = train_util.tiny_flags(tfds_data_dir, steps=steps) + ['--config.checkpoint_every=1']
  reference = str(tmp_path / 'uninterrupted')
  train_util.run_main(CONFIG, reference, flags)

  interrupted = str(tmp_path / 'interrupted')
  cmd = [sys.executable, train_util.MAIN, f'--config={CONFIG}', f'--workdir={interrupted}', *flags]
  rng = random.Random()
  done = []
  for kill in range(kills):
    start = max(_checkpoint_steps(interrupted), default=0)
    if start >= steps - 1:
      break
    proc = subprocess.Popen(cmd, env=train_util.subprocess_env(), cwd=train_util.ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    during_save = kill % 2 == 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
      if during_save and _saving(interrupted) and max(_checkpoint_steps(interrupted), default=0) > start:
        break  # kill while a save (not the first of this process's) is in flight
      if not during_save and max(_checkpoint_steps(interrupted), default=0) > start:
        time.sleep(rng.uniform(0, 0.3))  # anywhere in the following step(s)
        break
      time.sleep(0.002)
    if proc.poll() is None:
      proc.send_signal(signal.SIGKILL)
      done.append((kill, during_save, max(_checkpoint_steps(interrupted), default=0),
                   _saving(interrupted)))
    proc.wait()
  assert done, 'every run finished before it could be killed'
  print('kills (index, aimed at a save, newest step, a save in flight):', done)

  result = train_util.run_main(CONFIG, interrupted, flags)
  assert 'Resumed from step' in result.stderr + result.stdout, done

  want_step, want, want_data = _final_checkpoint(reference)
  got_step, got, got_data = _final_checkpoint(interrupted)
  assert got_step == want_step == steps
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=f'{key} after kills {done}')
  assert got_data == want_data, done
  with open(os.path.join(interrupted, 'metrics.jsonl')) as f:
    assert max(json.loads(line)['step'] for line in f) == steps

"""A workdir users can trust, through launch/main.py: reruns with another config, failed starts,
a second run on a locked workdir, flipped bytes, and the one-line errors of bad input."""

import os
import shutil

import pytest

import train_util
from disentangle_jax.training import checkpoint as ckpt
from disentangle_jax.training.workdir import WorkdirLock

CONFIG = 'configs/betavae_dsprites.py:runlocal'
pytestmark = pytest.mark.slow


def _flags(data_dir, steps=4):
  return train_util.tiny_flags(data_dir, steps=steps) + ['--config.checkpoint_every=2']


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory, tfds_data_dir):
  """One 4-step run with checkpoints at steps 2 and 4, copied by each test that changes it."""
  workdir = str(tmp_path_factory.mktemp('finished') / 'run')
  train_util.run_main(CONFIG, workdir, _flags(tfds_data_dir))
  return workdir


@pytest.fixture
def run_copy(finished_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(finished_run, workdir)
  os.remove(os.path.join(workdir, 'run.lock'))
  return workdir


def _listing(directory):
  return sorted(
      (os.path.relpath(os.path.join(r, n), directory), os.path.getsize(os.path.join(r, n)))
      for r, _, names in os.walk(directory) for n in names
  )


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def _fails_with_one_line(result, *fragments):
  """Exit status 1, no traceback, and a last line 'error: ...' holding every fragment."""
  output = result.stdout + result.stderr
  assert result.returncode == 1, output[-3000:]
  assert 'Traceback' not in output, output[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), last
  for fragment in fragments:
    assert fragment in last, (fragment, last)
  return last


def test_rerun_with_another_model_config_is_refused_and_the_run_still_resumes(run_copy, tfds_data_dir):
  config_json = _read(os.path.join(run_copy, 'config.json'))
  checkpoints = _listing(os.path.join(run_copy, 'checkpoints'))

  changed = _flags(tfds_data_dir) + ['--config.objective.latent_dim=7']
  result = train_util.run_main(CONFIG, run_copy, changed, check=False)
  _fails_with_one_line(result, 'objective.latent_dim: 10 -> 7', '--allow_config_change')
  # Accepting the key by name gets as far as the checkpoint, which does not fit: still nothing
  # changes, and the error names the leaf.
  result = train_util.run_main(
      CONFIG, run_copy, changed + ['--allow_config_change=objective.latent_dim'], check=False
  )
  _fails_with_one_line(result, 'checkpoint step 4', 'in the checkpoint and', 'Nothing was changed')
  assert _read(os.path.join(run_copy, 'config.json')) == config_json
  assert _listing(os.path.join(run_copy, 'checkpoints')) == checkpoints

  # The old config still restores (and a harmless change, more steps, is accepted).
  result = train_util.run_main(CONFIG, run_copy, _flags(tfds_data_dir, steps=6))
  assert 'Resumed from step 4' in result.stdout + result.stderr
  assert ckpt.checkpoint_steps(os.path.join(run_copy, 'checkpoints')) == [2, 4, 6]


def test_failed_start_leaves_config_json_untouched(run_copy, tfds_data_dir, tmp_path):
  config_json = _read(os.path.join(run_copy, 'config.json'))
  unprepared = ['--config.data.name=shapes3d', f'--config.data.data_dir={tmp_path / "empty"}',
                '--allow_config_change=data.name']
  result = train_util.run_main(CONFIG, run_copy, _flags(tfds_data_dir) + unprepared, check=False)
  _fails_with_one_line(result, 'shapes3d is not prepared')
  assert _read(os.path.join(run_copy, 'config.json')) == config_json


def test_second_run_on_a_locked_workdir_stops_at_once(run_copy, tfds_data_dir):
  lock = WorkdirLock(run_copy)  # this test process plays the first run
  lock.acquire()
  try:
    config_json = _read(os.path.join(run_copy, 'config.json'))
    checkpoints = _listing(os.path.join(run_copy, 'checkpoints'))
    result = train_util.run_main(CONFIG, run_copy, _flags(tfds_data_dir, steps=6), check=False)
    _fails_with_one_line(result, 'in use by another run', f'pid {os.getpid()}')
    assert _read(os.path.join(run_copy, 'config.json')) == config_json
    assert _listing(os.path.join(run_copy, 'checkpoints')) == checkpoints
  finally:
    lock.release()


def test_flipped_bytes_are_set_aside_and_every_unreadable_step_stops_the_run(run_copy, tfds_data_dir):
  directory = os.path.join(run_copy, 'checkpoints')
  import test_workdir  # noqa: PLC0415 - its byte flipper

  test_workdir._flip_bytes(os.path.join(directory, '4'))
  result = train_util.run_main(CONFIG, run_copy, _flags(tfds_data_dir))
  log = result.stdout + result.stderr
  assert 'Checkpoint step 4' in log and 'does not match its checksum' in log
  assert 'Resumed from step 2' in log
  assert ckpt.checkpoint_steps(directory) == [2, 4]  # step 4 trained again
  assert len(ckpt.set_aside_steps(directory)) == 1

  for step in (2, 4):
    test_workdir._flip_bytes(os.path.join(directory, str(step)))
  result = train_util.run_main(CONFIG, run_copy, _flags(tfds_data_dir), check=False)
  _fails_with_one_line(result, 'no checkpoint', '--start_fresh_if_unreadable')
  assert ckpt.checkpoint_steps(directory) == []


@pytest.mark.parametrize('case', [
    'missing_config', 'unknown_key', 'negative_steps', 'read_only', 'devices', 'missing_dataset',
])
def test_bad_input_ends_with_one_line_and_writes_no_config(case, tmp_path, tfds_data_dir):
  workdir = str(tmp_path / 'run')
  config, flags, env = CONFIG, _flags(tfds_data_dir), None
  expected = {
      'missing_config': ("config file 'configs/no_such_config.py' not found",),
      'unknown_key': ("unknown config key 'objective.latent_dimm'",),
      'negative_steps': ('total_steps=-5 must be an integer >= 1',),
      'read_only': ('is not writable',),
      'devices': ('batch_size 8 must be divisible by the number of devices 3',),
      'missing_dataset': ('dataset shapes3d is not prepared', 'tfds build shapes3d'),
  }[case]
  if case == 'missing_config':
    config = 'configs/no_such_config.py'
  elif case == 'unknown_key':
    flags += ['--config.objective.latent_dimm=3']
  elif case == 'negative_steps':
    flags += ['--config.total_steps=-5']
  elif case == 'read_only':
    if os.geteuid() == 0:
      workdir = '/sys/disentangle_jax_test_workdir'  # not writable even by root
    else:
      os.chmod(tmp_path, 0o500)
  elif case == 'devices':
    env = {'XLA_FLAGS': '--xla_force_host_platform_device_count=3'}
  elif case == 'missing_dataset':
    flags += ['--config.data.name=shapes3d', f'--config.data.data_dir={tmp_path / "empty"}']
  result = train_util.run_main(config, workdir, flags, env=env, check=False)
  _fails_with_one_line(result, *expected)
  assert not os.path.exists(os.path.join(workdir, 'config.json'))
  if case == 'negative_steps':  # --debug brings the traceback back
    result = train_util.run_main(config, workdir, flags + ['--debug'], check=False)
    assert result.returncode != 0 and 'Traceback' in result.stderr

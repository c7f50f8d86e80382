"""The workdir's owner, in-process: checkpoints (incompatible vs unreadable, checksums, evaluation
restore), the lock, rerun config checks, atomic writes and the one-line config errors."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disentangle_jax import errors
from disentangle_jax.errors import UserError
from disentangle_jax.training import checkpoint as ckpt
from disentangle_jax.training import workdir as workdir_lib
from disentangle_jax.training.progress import check_finite


def _state(width=3, value=0.0):
  """A small state pytree of the shape a TrainState flattens to (the tests never hard-code it)."""
  return {
      'step': jnp.int32(0),
      'params': {'encoder': {'kernel': jnp.full((2, width), value, jnp.float32)}},
      'opt_state': ({'mu': {'encoder': {'kernel': jnp.zeros((2, width))}}}, None),
  }


def _iterator(position=0):
  it = iter(grain.MapDataset.range(1000).to_iter_dataset())
  for _ in range(position):
    next(it)
  return it


def _save_steps(directory, steps, width=3):
  checkpointer = ckpt.Checkpointer(directory, max_to_keep=10)
  for step in steps:
    checkpointer.save(step, _state(width, float(step)), _iterator(step))
  checkpointer.close()


def _flip_bytes(step_dir):
  """Overwrites 4 bytes inside the largest array file of the step's state (same size)."""
  files = []
  for root, _, names in os.walk(os.path.join(step_dir, 'state')):
    files += [os.path.join(root, n) for n in names if os.sep + 'd' + os.sep in os.path.join(root, n)]
  path = max(files, key=os.path.getsize)
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    data = f.read(4)
    f.seek(os.path.getsize(path) // 2)
    f.write(bytes(b ^ 0xFF for b in data))
  return path


def _tree_listing(directory):
  return sorted(
      (os.path.relpath(os.path.join(r, n), directory), os.path.getsize(os.path.join(r, n)))
      for r, _, names in os.walk(directory) for n in names
  )


# --- checkpoints ---------------------------------------------------------------------------


def test_every_saved_step_has_checksums_that_verify(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, [1, 2])
  for step in (1, 2):
    step_dir = os.path.join(directory, str(step))
    assert os.path.exists(os.path.join(step_dir, ckpt.CHECKSUMS))
    assert ckpt.verify_checksums(step_dir) is None
  assert ckpt.newest_intact_step(directory) == 2


def test_flipped_bytes_are_caught_set_aside_and_the_previous_step_restored(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, [1, 2])
  _flip_bytes(os.path.join(directory, '2'))
  assert 'checksum' in ckpt.verify_checksums(os.path.join(directory, '2'))
  assert ckpt.newest_intact_step(directory) == 1

  checkpointer = ckpt.Checkpointer(directory)
  it = _iterator()
  state, step = checkpointer.restore_latest(_state(), it)
  assert step == 1 and checkpointer.last_verified_step == 1
  np.testing.assert_array_equal(state['params']['encoder']['kernel'], np.full((2, 3), 1.0))
  assert next(it) == 1  # the data position of step 1
  assert ckpt.checkpoint_steps(directory) == [1]
  assert len(ckpt.set_aside_steps(directory)) == 1 and ckpt.set_aside_steps(directory)[0].startswith('2.')
  # The NaN message names the step that verified.
  with pytest.raises(FloatingPointError, match='step 1'):
    check_finite({'loss': float('nan')}, 5, checkpointer.last_verified_step, checkpoint_dir=directory)
  checkpointer.close()


def test_setting_aside_the_same_step_twice_never_collides(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  for _ in range(2):
    _save_steps(directory, [1, 2])
    _flip_bytes(os.path.join(directory, '2'))
    checkpointer = ckpt.Checkpointer(directory)
    assert checkpointer.restore_latest(_state(), _iterator())[1] == 1
    checkpointer.close()
  assert len(ckpt.set_aside_steps(directory)) == 2


def test_incompatible_checkpoint_names_the_leaf_and_changes_nothing(tmp_path):
  directory = str(tmp_path / 'run' / 'checkpoints')
  _save_steps(directory, [1, 2], width=3)
  before = _tree_listing(directory)
  checkpointer = ckpt.Checkpointer(directory)
  with pytest.raises(ckpt.IncompatibleCheckpointError) as error:
    checkpointer.restore_latest(_state(width=5), _iterator())
  message = str(error.value)
  assert 'encoder/kernel is float32[2, 3] in the checkpoint and float32[2, 5]' in message
  assert str(tmp_path / 'run') in message and '--workdir' in message and 'config.json' in message
  assert '\n' not in message
  assert _tree_listing(directory) == before
  # The old config still restores.
  state, step = checkpointer.restore_latest(_state(width=3), _iterator())
  assert step == 2
  np.testing.assert_array_equal(state['params']['encoder']['kernel'], np.full((2, 3), 2.0))
  checkpointer.close()


def test_a_state_with_another_structure_is_incompatible_too(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, [1])
  grown = {**_state(), 'frozen': {'pca': jnp.zeros(4)}}
  checkpointer = ckpt.Checkpointer(directory)
  with pytest.raises(ckpt.IncompatibleCheckpointError, match='frozen/pca is in this config'):
    checkpointer.restore_latest(grown, _iterator())
  checkpointer.close()


def test_every_step_unreadable_fails_unless_asked_to_start_fresh(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, [1, 2])
  for step in (1, 2):
    _flip_bytes(os.path.join(directory, str(step)))
  checkpointer = ckpt.Checkpointer(directory)
  with pytest.raises(UserError, match='--start_fresh_if_unreadable'):
    checkpointer.restore_latest(_state(), _iterator())
  # The steps are set aside now; a plain rerun must still not start silently from step 0.
  with pytest.raises(UserError, match='set aside'):
    checkpointer.restore_latest(_state(), _iterator())
  checkpointer.close()
  fresh = ckpt.Checkpointer(directory, start_fresh_if_unreadable=True)
  assert fresh.restore_latest(_state(), _iterator()) == (None, None)
  fresh.close()


def test_a_truncated_step_without_checksums_is_still_skipped(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, [1, 2])
  os.remove(os.path.join(directory, '2', ckpt.CHECKSUMS))  # as saved by an older version
  for root, _, names in os.walk(os.path.join(directory, '2', 'state')):
    for name in names:
      open(os.path.join(root, name), 'w').close()
  checkpointer = ckpt.Checkpointer(directory)
  assert checkpointer.restore_latest(_state(), _iterator())[1] == 1
  checkpointer.close()


def test_disk_full_during_a_save_names_the_intact_checkpoint(tmp_path, monkeypatch):
  directory = str(tmp_path / 'run' / 'checkpoints')
  checkpointer = ckpt.Checkpointer(directory)
  checkpointer.save(1, _state(), _iterator())

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(checkpointer._manager, 'save', full)
  with pytest.raises(UserError) as error:
    checkpointer.save(2, _state(), _iterator())
  message = str(error.value)
  assert 'full' in message and 'step 2' in message and 'intact checkpoint is step 1' in message


# --- evaluation restore --------------------------------------------------------------------


def test_evaluation_falls_back_past_an_unreadable_newest_step_and_changes_nothing(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  _save_steps(directory, [1, 2])
  _flip_bytes(os.path.join(directory, '2'))
  before = _tree_listing(directory)
  abstract = jax.eval_shape(_state)
  state, step = ckpt.restore_for_evaluation(directory, abstract)
  assert step == 1
  np.testing.assert_array_equal(state['params']['encoder']['kernel'], np.full((2, 3), 1.0))
  assert _tree_listing(directory) == before
  with pytest.raises(UserError, match='step 2 .* is unreadable'):
    ckpt.restore_for_evaluation(directory, abstract, step=2)
  with pytest.raises(UserError, match=r'pass another --step|pass --step'):
    ckpt.restore_for_evaluation(directory, abstract, step=7)
  with pytest.raises(ckpt.IncompatibleCheckpointError):
    ckpt.restore_for_evaluation(directory, jax.eval_shape(lambda: _state(width=4)))


def test_evaluation_of_an_empty_directory_says_to_train_first(tmp_path):
  with pytest.raises(UserError, match='no checkpoint'):
    ckpt.restore_for_evaluation(str(tmp_path), jax.eval_shape(_state))


# --- config.json ---------------------------------------------------------------------------


def _config(**overrides):
  c = ml_collections.ConfigDict({
      'seed': 0, 'total_steps': 10, 'batch_size': 8, 'eval_every': 5, 'keep_checkpoints': 3,
      'data': {'name': 'procedural_dsprites', 'data_dir': None},
      'objective': {'name': 'betavae', 'beta': 4.0},
      'model': {'latent_dim': 10, 'encoder': 'fc'},
  })
  for key, value in overrides.items():
    c[key] = value
  return c


def test_total_steps_below_one_is_an_error():
  with pytest.raises(UserError, match='total_steps=-5 must be an integer >= 1'):
    workdir_lib.validate_config(_config(total_steps=-5))


def test_rerun_config_lists_every_differing_model_key_and_allows_harmless_ones(tmp_path):
  workdir = str(tmp_path)
  workdir_lib.write_config(_config(), workdir)
  assert workdir_lib.check_rerun_config(_config(), workdir) == []
  accepted = workdir_lib.check_rerun_config(_config(total_steps=50, eval_every=7), workdir)
  assert [k for k, _, _ in accepted] == ['eval_every', 'total_steps']
  changed = _config()
  changed.model.latent_dim = 12
  changed.objective.beta = 8.0
  with pytest.raises(UserError) as error:
    workdir_lib.check_rerun_config(changed, workdir)
  message = str(error.value)
  assert 'model.latent_dim: 10 -> 12' in message and 'objective.beta: 4.0 -> 8.0' in message
  assert '--allow_config_change=model.latent_dim,objective.beta' in message
  assert workdir_lib.check_rerun_config(changed, workdir, allow=('model', 'objective.beta'))


def test_garbage_or_foreign_config_json_names_the_file(tmp_path):
  path = tmp_path / 'config.json'
  path.write_text('{"data": ')
  with pytest.raises(UserError, match=r'config\.json cannot be read'):
    workdir_lib.read_config(str(tmp_path))
  path.write_text('{"something": 1}')
  with pytest.raises(UserError, match="not a disentangle_jax config .*'data'"):
    workdir_lib.read_config(str(tmp_path))
  with pytest.raises(UserError, match='not a disentangle_jax workdir'):
    workdir_lib.read_config(str(tmp_path / 'nowhere'))


def test_atomic_write_leaves_no_temporary_file_and_keeps_the_old_content_on_failure(tmp_path):
  path = str(tmp_path / 'config.json')
  workdir_lib.write_text_atomically(path, 'old')

  class Boom:
    def __str__(self):
      raise RuntimeError('boom')

  with pytest.raises(TypeError):
    workdir_lib.write_text_atomically(path, Boom())
  assert open(path).read() == 'old'
  assert os.listdir(tmp_path) == ['config.json']


# --- the lock ------------------------------------------------------------------------------


_HOLDER = textwrap.dedent('''
    import sys, time
    from disentangle_jax.training.workdir import WorkdirLock
    WorkdirLock(sys.argv[1]).acquire()
    print('locked', flush=True)
    time.sleep(600)
''')


def test_lock_refuses_a_second_run_and_is_taken_over_after_a_kill(tmp_path):
  workdir = str(tmp_path)
  holder = subprocess.Popen([sys.executable, '-c', _HOLDER, workdir], stdout=subprocess.PIPE,
                            text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(UserError) as error:
      workdir_lib.WorkdirLock(workdir).acquire()
    assert f'pid {holder.pid}' in str(error.value) and 'another run' in str(error.value)
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  # SIGKILL released the kernel lock; the file still names the dead holder, which is taken over.
  lock = workdir_lib.WorkdirLock(workdir)
  lock.acquire()
  assert json.load(open(lock.path))['pid'] == os.getpid()
  # A later call in this thread (a previous run that raised) takes it back without error.
  again = workdir_lib.WorkdirLock(workdir)
  again.acquire()
  assert not lock.held and again.held
  again.release()
  assert json.load(open(again.path))['released'] is True


def test_unwritable_workdir_is_one_clear_error(tmp_path):
  if os.geteuid() == 0:
    workdir = '/sys/disentangle_jax_test_workdir'  # not writable even by root
  else:
    os.chmod(tmp_path, 0o500)
    workdir = str(tmp_path / 'run')
  with pytest.raises(UserError, match='is not writable'):
    workdir_lib.open_workdir(_config(), workdir)


# --- one-line config errors ----------------------------------------------------------------


def test_config_error_messages_name_the_flag_and_the_fix():
  unknown = AttributeError(KeyError('\'nme\'\nDid you mean "name" instead of "nme"?'))
  message = errors.config_error_message(unknown, ['main.py', '--config=c.py', '--config.data.nme=3'])
  assert message.startswith("unknown config key 'data.nme' (from --config.data.nme=3)")
  assert 'Did you mean "name"' in message and '\n' not in message
  missing = OSError('Failed loading config file config_config\n  [Errno 2] No such file or directory')
  assert 'not found' in errors.config_error_message(missing, ['m', '--config=nope.py:runlocal'])
  assert errors.one_line('a:\n  b\n  c') == 'a: b; c'


def test_read_only_workdir_with_checkpoints_names_the_intact_one(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  _save_steps(os.path.join(workdir, 'checkpoints'), [1, 2])
  _flip_bytes(os.path.join(workdir, 'checkpoints', '2'))

  def read_only(self):
    raise OSError(errno.EROFS, 'Read-only file system', self.path)

  monkeypatch.setattr(workdir_lib.WorkdirLock, 'acquire', read_only)
  with pytest.raises(UserError) as error:
    workdir_lib.open_workdir(_config(), workdir)
  message = str(error.value)
  assert 'is not writable (Read-only file system)' in message
  assert 'newest intact checkpoint is step 1' in message


def test_without_flock_the_recorded_pid_and_host_decide(tmp_path, monkeypatch):
  import fcntl  # noqa: PLC0415
  import socket  # noqa: PLC0415

  def no_locks(fd, operation):
    raise OSError(errno.ENOLCK, 'No locks available')

  monkeypatch.setattr(fcntl, 'flock', no_locks)
  path = tmp_path / workdir_lib.LOCK_FILE
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  host = socket.gethostname()
  # A holder on this host that no longer runs is stale: taken over.
  path.write_text(json.dumps({'pid': dead.pid, 'host': host, 'started': 'earlier'}))
  lock = workdir_lib.WorkdirLock(str(tmp_path))
  lock.acquire()
  assert json.load(open(lock.path))['pid'] == os.getpid()
  lock.release()
  # A live holder on this host (here: this test's parent) is not.
  path.write_text(json.dumps({'pid': os.getppid(), 'host': host, 'started': 'now'}))
  with pytest.raises(UserError, match=f'pid {os.getppid()}'):
    workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  # One on another host cannot be checked: the error says how to clear it.
  path.write_text(json.dumps({'pid': 1, 'host': 'elsewhere', 'started': 'now'}))
  with pytest.raises(UserError, match='delete .*run.lock'):
    workdir_lib.WorkdirLock(str(tmp_path)).acquire()

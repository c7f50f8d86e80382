"""A run's workdir: checked before anything is written, locked while a run uses it.

`open_workdir(config, workdir)` is the first thing a training run does. In order, and before it
writes anything but the lock:

1. the config's own values (`total_steps >= 1`, ...) are checked (`validate_config`);
2. the workdir is made and locked (`WorkdirLock`), so a second run on it stops with an error
   naming the first one instead of training beside it;
3. a rerun's config is compared with the `config.json` the run left (`check_rerun_config`): a
   difference in anything but the harmless keys (`HARMLESS_KEYS`: durations, intervals, evaluators,
   where the data lives) is an error listing every differing key, unless the user accepts those keys
   by name (`RunOptions.allow_config_change`, the `--allow_config_change` flag of launch/main.py).

The train loop then checks the dataset, the devices and the networks (wrapping those checks in
`checking(...)` so their errors read as `UserError`s), restores the newest checkpoint, and only
then writes `config.json` (`write_config`, atomically): a start that fails leaves the workdir's
`config.json` as it was, and evaluation of the run keeps working.

The layout of `<workdir>/checkpoints` belongs to `disentangle_jax.training.checkpoint`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import ml_collections

from disentangle_jax.errors import UserError, one_line

CONFIG_FILE = 'config.json'
LOCK_FILE = 'run.lock'

# Keys a rerun may change without asking: how long and how often, not what is trained. A key
# matches an entry equal to it or below it ('evaluators' covers 'evaluators.mig.num_train').
HARMLESS_KEYS = (
    'total_steps',
    'log_every',
    'image_every',
    'checkpoint_every',
    'keep_checkpoints',
    'eval_every',
    'evaluators',
    'block_every_step',
    'runlocal',
    'data.data_dir',
)

_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """What a user may ask of a rerun beyond its config (flags of launch/main.py).

  Attributes:
    allow_config_change: config keys (dotted, a key covers the keys below it) that may differ from
      the workdir's config.json besides `HARMLESS_KEYS`. Keys that change a network's shapes still
      fail when the checkpoint is restored.
    start_fresh_if_unreadable: when every checkpoint in the workdir is unreadable, train from step
      0 instead of stopping (the unreadable ones stay set aside).
  """

  allow_config_change: Sequence[str] = ()
  start_fresh_if_unreadable: bool = False


# ---------------------------------------------------------------------------------------------
# Checking, before anything is written.


def validate_config(config: ml_collections.ConfigDict) -> None:
  """The config's values that need no data or devices to check."""
  for key, least in (('total_steps', 1), ('batch_size', 1), ('keep_checkpoints', 1)):
    value = config.get(key, None)
    if value is None:
      continue
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
      raise UserError(
          f'config.{key}={value!r} must be an integer >= {least}: pass --config.{key}=<n> with '
          f'n >= {least}'
      )


@contextlib.contextmanager
def checking(what: str) -> Iterator[None]:
  """Reports a failed check of user input (`what`: e.g. 'config.data') as a `UserError`.

  The errors of the data, device and objective look-ups name the problem and the fix already;
  this turns them into the one-line error launch/ scripts print, keeping the original as cause.
  """
  from disentangle_jax.data import datasets  # noqa: PLC0415 - only needed on this path

  try:
    yield
  except UserError:
    raise
  except (ValueError, LookupError, FileNotFoundError, datasets.DatasetCorruptedError) as e:
    message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    raise UserError(f'{what}: {message}') from e


def _config_dict(config) -> dict[str, Any]:
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort(sort_keys=True))
  return json.loads(json.dumps(config, sort_keys=True, default=str))


def _flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
  if isinstance(tree, dict) and tree:
    flat = {}
    for key, value in tree.items():
      flat.update(_flatten(value, f'{prefix}{key}.'))
    return flat
  return {prefix[:-1]: tree}


def flat_config(config) -> dict[str, Any]:
  """{dotted key: value} of every leaf of a config (a ConfigDict or nested mappings)."""
  return _flatten(_config_dict(config))


def config_differences(old, new) -> list[tuple[str, Any, Any]]:
  """`(dotted key, old value, new value)` for every leaf that differs; absent values are `MISSING`."""
  old_flat, new_flat = flat_config(old), flat_config(new)
  return [
      (key, old_flat.get(key, MISSING), new_flat.get(key, MISSING))
      for key in sorted(set(old_flat) | set(new_flat))
      if old_flat.get(key, MISSING) != new_flat.get(key, MISSING)
  ]


class _Missing:
  def __repr__(self):
    return '(absent)'


MISSING = _Missing()


def _covered(key: str, patterns: Sequence[str]) -> bool:
  return any(key == p or key.startswith(p + '.') for p in patterns)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run wrote into `workdir`; a missing, garbled or foreign file is a `UserError`."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise UserError(
        f'{path} not found: {workdir!r} is not a disentangle_jax workdir (pass the --workdir of a '
        'training run)'
    )
  try:
    with open(path) as f:
      tree = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(
        f'{path} cannot be read ({type(e).__name__}: {e}): restore it from a copy, or move it away '
        'and rerun the training command with the run\'s original config'
    ) from e
  missing = [k for k in ('data', 'objective') if not isinstance(tree, dict) or k not in tree]
  if missing:
    raise UserError(
        f'{path} is not a disentangle_jax config (no {" or ".join(repr(k) for k in missing)} '
        'section): restore the run\'s own config.json, or pass the --workdir of a training run'
    )
  return ml_collections.ConfigDict(tree)


def check_rerun_config(
    config: ml_collections.ConfigDict, workdir: str, allow: Sequence[str] = ()
) -> list[tuple[str, Any, Any]]:
  """Compares `config` with the workdir's config.json (if any); returns the accepted differences.

  Raises:
    UserError: config.json is unreadable, or differs in keys neither harmless nor in `allow`.
  """
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    return []
  old = read_config(workdir)
  differences = config_differences(old, config)
  refused = [d for d in differences if not _covered(d[0], HARMLESS_KEYS) and not _covered(d[0], allow)]
  if refused:
    listed = ', '.join(f'{k}: {o!r} -> {n!r}' for k, o, n in refused)
    keys = ','.join(k for k, _, _ in refused)
    raise UserError(
        f'the config differs from the run in {workdir} ({listed}); train it in a new --workdir, '
        f'rerun with the run\'s values (its {CONFIG_FILE}), or accept the change with '
        f'--allow_config_change={keys}'
    )
  for key, o, n in differences:
    logging.info('Config change accepted for the rerun: %s: %r -> %r.', key, o, n)
  return differences


# ---------------------------------------------------------------------------------------------
# Writing.


def write_text_atomically(path: str, text: str) -> None:
  """Writes `path` so that it holds either its old content or all of `text`, never a part."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise
  _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
  with contextlib.suppress(OSError):  # not every file system lets a directory be opened
    fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes the resolved config as `<workdir>/config.json`, atomically (process 0 only)."""
  import jax  # noqa: PLC0415 - keeps this module importable before jax.distributed.initialize()

  if jax.process_index() == 0:
    with writing(workdir):
      write_text_atomically(
          os.path.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2, sort_keys=True)
      )


@contextlib.contextmanager
def writing(workdir: str, what: str = '', intact=None) -> Iterator[None]:
  """Reports a full disk or an unwritable workdir while writing `what` as a `UserError`.

  `intact`: a sentence naming the intact checkpoint, or a function of no arguments that makes it
  (called only on failure).
  """
  try:
    yield
  except OSError as e:
    error = os_error_message(e, workdir, what, intact() if callable(intact) else intact or '')
    if error is None:
      raise
    raise UserError(error) from e


def os_error_message(error: BaseException, workdir: str, what: str = '', intact: str = '') -> str | None:
  """The one-line message of a full disk or a read-only workdir; None for other errors."""
  number = getattr(error, 'errno', None)
  text = str(error)
  where = f' while writing {what}' if what else ''
  tail = f' {intact}' if intact else ''
  if number == errno.ENOSPC or 'No space left' in text or 'RESOURCE_EXHAUSTED' in text:
    return (
        f'the disk holding {workdir} is full{where}.{tail} Free some space (or pass another '
        '--workdir) and rerun the same command to resume'
    )
  if number in _NOT_WRITABLE or 'Read-only file system' in text or 'Permission denied' in text:
    return (
        f'{workdir} is not writable ({os.strerror(number) if number else one_line(text)}){where}.'
        f'{tail} Pass a --workdir you can write to, or make this one writable'
    )
  return None


def intact_checkpoint_sentence(workdir: str) -> str:
  """Which checkpoint of `workdir` is intact, for the message of a failed write."""
  from disentangle_jax.training import checkpoint  # noqa: PLC0415 - checkpoint imports this module

  return checkpoint.intact_sentence(os.path.join(os.path.abspath(workdir), 'checkpoints'))


# ---------------------------------------------------------------------------------------------
# The lock.


class WorkdirLock:
  """An exclusive lock on a workdir for one run's life.

  The lock is an `fcntl.flock` on `<workdir>/run.lock`: the kernel releases it when the process
  ends in any way (exception, SIGKILL, power loss of the host), so a crashed run never leaves a
  lock that blocks the next one; the file only records who holds it (pid, host, start time) for the
  error a second run gives, and names a crashed holder when its lock is taken over. Where the file
  system refuses `flock` (some network file systems), the recorded pid and host decide instead: a
  holder on this host that no longer runs is stale and taken over; one on another host cannot be
  checked, and the error says to delete the file if that run is gone.

  Multi-host runs: only process 0 takes the lock (`open_workdir`), and tells the other processes
  whether it got it. The processes of one run share the workdir by design, and a second run has
  its own process 0, which finds the lock held; per-process locks would add nothing but a way for
  two runs of different process counts to interleave.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
    self._fd = None
    self._thread = None

  @property
  def held(self) -> bool:
    return self._fd is not None

  def acquire(self) -> None:
    """Takes the lock or raises `UserError` naming the run that holds it."""
    held = _HELD.get(self.path)
    if held is not None:
      # This process holds it already: a previous run in this process ended with an exception
      # (the loop has no `finally`). In the same thread that run is over; in another, it is not.
      if held._thread is not threading.current_thread() and held._thread.is_alive():
        raise UserError(self._held_message(self._read_holder()))
      held.release()
    import fcntl  # noqa: PLC0415 - POSIX only

    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        raise UserError(self._held_message(self._read_holder())) from None
      except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
          raise
        self._check_recorded_holder()
      previous = self._read_holder()
      if previous and not previous.get('released'):
        logging.warning(
            'Taking over %s from pid %s on %s (started %s), which ended without releasing it '
            '(killed or crashed).', self.path, previous.get('pid'), previous.get('host'),
            previous.get('started'),
        )
      self._fd, self._thread = fd, threading.current_thread()
      self._record({'pid': os.getpid(), 'host': socket.gethostname(),
                    'started': time.strftime('%Y-%m-%d %H:%M:%S')})
    except BaseException:
      if self._fd is None:
        os.close(fd)
      raise
    _HELD[self.path] = self

  def release(self) -> None:
    """Marks the lock released and lets it go (also done by the kernel when the process ends)."""
    if self._fd is None:
      return
    try:
      with contextlib.suppress(OSError, ValueError):
        holder = self._read_holder() or {}
        self._record({**holder, 'released': True})
    finally:
      os.close(self._fd)  # closing the descriptor releases the flock
      self._fd = None
      if _HELD.get(self.path) is self:
        del _HELD[self.path]

  def _record(self, holder: dict) -> None:
    data = json.dumps(holder).encode()
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, data, 0)
    os.fsync(self._fd)

  def _read_holder(self) -> dict | None:
    try:
      with open(self.path) as f:
        holder = json.loads(f.read() or 'null')
    except (OSError, ValueError):
      return None
    return holder if isinstance(holder, dict) else None

  def _check_recorded_holder(self) -> None:
    holder = self._read_holder()
    if not holder or holder.get('released'):
      return
    if holder.get('host') != socket.gethostname():
      raise UserError(
          self._held_message(holder) + f' (this file system has no locks, so it cannot be '
          f'checked from here: if that run is gone, delete {self.path})'
      )
    if holder.get('pid') != os.getpid() and _pid_alive(holder.get('pid')):
      raise UserError(self._held_message(holder))

  def _held_message(self, holder: dict | None) -> str:
    who = 'another run'
    if holder and not holder.get('released'):
      who = f'another run (pid {holder.get("pid")} on {holder.get("host")}, started {holder.get("started")})'
    workdir = os.path.dirname(self.path)
    return (
        f'{workdir} is in use by {who}: wait for it to finish or stop it, or pass another --workdir'
    )


_HELD: dict[str, WorkdirLock] = {}


def _pid_alive(pid) -> bool:
  if not isinstance(pid, int) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


# ---------------------------------------------------------------------------------------------
# The one call a run makes.


@dataclasses.dataclass
class Workdir:
  """An opened workdir: its path, the lock (process 0 only) and the accepted config changes."""

  path: str
  options: RunOptions
  lock: WorkdirLock | None
  changes: list[tuple[str, Any, Any]]

  def checkpoint_directory(self) -> str:
    return os.path.join(self.path, 'checkpoints')

  def close(self) -> None:
    if self.lock is not None:
      self.lock.release()


def open_workdir(
    config: ml_collections.ConfigDict, workdir: str, options: RunOptions | None = None
) -> Workdir:
  """Checks the config, makes and locks the workdir and checks a rerun's config (see the module doc).

  Writes nothing but the workdir itself and its lock file.

  Raises:
    UserError: a bad config value, an unwritable workdir, a workdir in use, or a rerun config
      that differs from the run's.
  """
  import jax  # noqa: PLC0415 - keeps this module importable before jax.distributed.initialize()

  options = options or RunOptions()
  validate_config(config)
  workdir = os.path.abspath(workdir)
  lock = None
  failure = None
  if jax.process_index() == 0:
    try:
      with writing(workdir, 'its lock file', lambda: intact_checkpoint_sentence(workdir)):
        os.makedirs(workdir, exist_ok=True)
        lock = WorkdirLock(workdir)
        lock.acquire()
    except UserError as e:
      failure = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    ok = multihost_utils.broadcast_one_to_all(np.int32(failure is None))
    if not ok and failure is None:
      failure = UserError(f'process 0 could not open {workdir} (see its log for why)')
  if failure is not None:
    raise failure
  try:
    changes = check_rerun_config(config, workdir, options.allow_config_change)
  except BaseException:
    if lock is not None:
      lock.release()
    raise
  return Workdir(workdir, options, lock, changes)

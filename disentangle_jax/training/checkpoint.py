"""The one owner of `<workdir>/checkpoints`: atomic, verified, keep-N checkpoints.

Layout: `checkpoints/<step>/` holds orbax's items `state/` (the train state, whatever pytree the
loop passes) and `data/` (the data iterator's position), plus `checksums.json`, the SHA-256 of
every file of the step, written once orbax has finalised the step. Orbax writes each step into a
temporary directory and renames it when complete, so a killed run never leaves a step that looks
finished; a step whose save was cut short is ignored (and logged) on resume.

Restoring (training's `Checkpointer.restore_latest` and evaluation's `restore_for_evaluation`)
tells two failures apart:

- **incompatible**: the step's stored tree (read from orbax's metadata, before any array) does
  not match the state this config builds: another config, or another version of the code. That
  is an `IncompatibleCheckpointError` naming the first mismatching leaf, the workdir and the fix;
  nothing on disk changes, so the old config still restores the step.
- **unreadable**: a checksum that does not match (flipped bytes), a missing file, metadata or
  arrays orbax cannot read. Training sets the step aside as `<step>.unreadable-<time>-<pid>-<n>`
  (a name no step or other set-aside can take), says so, and falls back to the previous step;
  evaluation, which must not change a run it only reads, skips it. When no step is left training
  stops with an error, unless the user asked to start afresh (`start_fresh_if_unreadable`).

A step without `checksums.json` (saved before checksums existed, or killed between orbax's
finalisation and the checksum file) is restored unverified, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from disentangle_jax.errors import UserError
from disentangle_jax.training import workdir as workdir_lib

STATE = 'state'
DATA = 'data'
CHECKSUMS = 'checksums.json'
SET_ASIDE = '.unreadable-'


class IncompatibleCheckpointError(UserError):
  """A checkpoint was saved from another config (or code): a user error, nothing was changed."""


# ---------------------------------------------------------------------------------------------
# Steps, checksums, compatibility: plain functions of a checkpoint directory.


def checkpoint_steps(directory: str) -> list[int]:
  """The finished steps in `directory`, oldest first (set-aside and unfinished ones excluded)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def set_aside_steps(directory: str) -> list[str]:
  """The names of the steps set aside as unreadable."""
  if not os.path.isdir(directory):
    return []
  return sorted(d for d in os.listdir(directory) if SET_ASIDE in d)


def _step_files(step_dir: str) -> list[str]:
  files = []
  for root, _, names in os.walk(step_dir):
    for name in names:
      relative = os.path.relpath(os.path.join(root, name), step_dir)
      if relative != CHECKSUMS:
        files.append(relative)
  return sorted(files)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def record_checksums(step_dir: str) -> None:
  """Writes `checksums.json` (size and SHA-256 of every file) into a finished step, atomically."""
  files = {
      name: [os.path.getsize(os.path.join(step_dir, name)), _sha256(os.path.join(step_dir, name))]
      for name in _step_files(step_dir)
  }
  text = json.dumps({'algorithm': 'sha256', 'files': files}, indent=1, sort_keys=True)
  workdir_lib.write_text_atomically(os.path.join(step_dir, CHECKSUMS), text)


def verify_checksums(step_dir: str) -> str | None:
  """Why the step's files do not match its `checksums.json`; None if they do.

  Returns 'unverified' when the step has no `checksums.json` (see the module doc).
  """
  path = os.path.join(step_dir, CHECKSUMS)
  if not os.path.exists(path):
    return 'unverified'
  try:
    with open(path) as f:
      recorded = json.load(f)['files']
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f'its {CHECKSUMS} cannot be read ({type(e).__name__}: {e})'
  present = set(_step_files(step_dir))
  missing = sorted(set(recorded) - present)
  if missing:
    return f'{len(missing)} of its files are missing (first: {missing[0]})'
  for name in sorted(recorded):
    size, digest = recorded[name]
    full = os.path.join(step_dir, name)
    try:
      if os.path.getsize(full) != size:
        return f'{name} has {os.path.getsize(full)} bytes, {size} were saved'
      if _sha256(full) != digest:
        return f'{name} does not match its checksum (its bytes changed after the save)'
    except OSError as e:
      return f'{name} cannot be read ({e})'
  return None


def newest_intact_step(directory: str) -> int | None:
  """The newest step whose files match their checksums (for error messages), or None."""
  for step in reversed(checkpoint_steps(directory)):
    if verify_checksums(os.path.join(directory, str(step))) is None:
      return step
  return None


def intact_sentence(directory: str) -> str:
  """'The newest intact checkpoint is step 400 in <dir>.' (or that there is none)."""
  step = newest_intact_step(directory)
  if step is None:
    return f'No checkpoint in {directory} is intact (verified by its checksums).'
  return f'The newest intact checkpoint is step {step} in {directory} (verified by its checksums).'


def _key_name(key) -> str:
  for attribute in ('name', 'key', 'idx'):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def _leaves_by_path(tree) -> dict[str, object]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {'/'.join(_key_name(k) for k in path): leaf for path, leaf in flat}


def _describe(leaf) -> tuple[tuple[int, ...], str]:
  shape = getattr(leaf, 'shape', None)
  dtype = getattr(leaf, 'dtype', None)
  if shape is None:
    shape = np.shape(leaf)
  if dtype is None:
    dtype = np.result_type(leaf)
  return tuple(int(d) for d in shape), str(np.dtype(dtype))


def first_mismatch(stored_tree, abstract_state) -> str | None:
  """The first leaf (in the state's order) where the stored tree and the expected state differ, or None.

  `stored_tree` is orbax's metadata tree of a saved state; `abstract_state` any pytree of arrays
  or `jax.ShapeDtypeStruct`s. Paths are compared by their names ('params/encoder/Dense_0/kernel'),
  so a dataclass field and a dict key of the same name match, as orbax stores them.
  """
  stored, expected = _leaves_by_path(stored_tree), _leaves_by_path(abstract_state)
  # In the state's own order (a TrainState's fields as declared), then what only the checkpoint has.
  for path in [*expected, *(p for p in stored if p not in expected)]:
    if path not in stored:
      return f'{path} is in this config\'s state but not in the checkpoint'
    if path not in expected:
      return f'{path} is in the checkpoint but not in this config\'s state'
    (s_shape, s_dtype), (e_shape, e_dtype) = _describe(stored[path]), _describe(expected[path])
    if (s_shape, s_dtype) != (e_shape, e_dtype):
      return (
          f'{path} is {s_dtype}{list(s_shape)} in the checkpoint and {e_dtype}{list(e_shape)} in '
          'this config'
      )
  return None


def _incompatible(directory: str, step: int, mismatch: str) -> IncompatibleCheckpointError:
  workdir = os.path.dirname(directory)
  return IncompatibleCheckpointError(
      f'checkpoint step {step} in {directory} was saved by another config or code version: '
      f'{mismatch}. Nothing was changed. To train this config, pass a new --workdir (or move '
      f'{directory} away to start afresh); to resume, rerun with the run\'s own config '
      f'({os.path.join(workdir, workdir_lib.CONFIG_FILE)})'
  )


def _one_line_error(error: BaseException) -> str:
  text = ' '.join(str(error).split())
  return f'{type(error).__name__}: {text[:300]}{"..." if len(text) > 300 else ""}'


def _with_sharding(abstract_state):
  """Leaves without a sharding get this process's first device (evaluation restores on one)."""
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def leaf(x):
    sharding = getattr(x, 'sharding', None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding or device)

  return jax.tree.map(leaf, abstract_state)


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415

    multihost_utils.sync_global_devices(name)


# ---------------------------------------------------------------------------------------------
# Training: save and resume.


class Checkpointer:
  """Saves and restores `(train state, data iterator)` pairs under `<workdir>/checkpoints`."""

  def __init__(
      self, directory: str, *, max_to_keep: int = 3, start_fresh_if_unreadable: bool = False
  ):
    """Args:
      directory: `<workdir>/checkpoints`.
      max_to_keep: finished steps kept; older ones are deleted as new ones are saved.
      start_fresh_if_unreadable: when steps exist (or were set aside) but none restores, return
        `(None, None)` from `restore_latest` instead of raising.
    """
    self.directory = os.path.abspath(directory)
    self.workdir = os.path.dirname(self.directory)
    self.start_fresh_if_unreadable = start_fresh_if_unreadable
    self.last_verified_step = None  # the newest step whose checksums were written or checked
    self._async = False
    self._pending = []  # steps saved whose checksums are not written yet
    with workdir_lib.writing(self.workdir, 'the checkpoint directory'):
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(
              max_to_keep=max_to_keep, create=True, enable_async_checkpointing=self._async
          ),
          item_handlers={
              STATE: ocp.StandardCheckpointHandler(),
              DATA: grain.checkpoint.CheckpointHandler(),
          },
      )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state, data_iterator, *, force: bool = False) -> bool:
    """Saves `state` and the iterator position at `step`; returns whether it saved.

    The step's checksums are recorded as soon as orbax has finalised it (at once for synchronous
    saves; before the next save, `wait_until_finished` or `close` for asynchronous ones).

    Raises:
      UserError: the disk is full or the workdir not writable; the message names the newest intact
        checkpoint.
    """
    if step in self._manager.all_steps():
      return False
    try:
      self._record_finished()
      saved = self._manager.save(
          step,
          args=ocp.args.Composite(**{
              STATE: ocp.args.StandardSave(state),
              DATA: grain.checkpoint.CheckpointSave(data_iterator),
          }),
          force=force,
      )
      if saved:
        self._pending.append(step)
        if not self._async:
          self._record_finished()
    except Exception as e:
      self._raise_if_disk_problem(e, f'checkpoint step {step}')
      raise
    return saved

  def _record_finished(self) -> None:
    if not self._pending:
      return
    self._manager.wait_until_finished()
    steps, self._pending = self._pending, []
    if jax.process_index() == 0:
      for step in steps:
        step_dir = os.path.join(self.directory, str(step))
        if os.path.isdir(step_dir):
          record_checksums(step_dir)
    _sync('disentangle_jax_checksums')
    self.last_verified_step = max(steps)

  def _raise_if_disk_problem(self, error: BaseException, what: str) -> None:
    chain = error
    while chain is not None:
      message = workdir_lib.os_error_message(chain, self.workdir, what)
      if message is not None:
        if jax.process_index() == 0:
          self._remove_unfinished()
        raise UserError(f'{message}. {intact_sentence(self.directory)}') from error
      chain = chain.__cause__ or chain.__context__

  def _remove_unfinished(self) -> None:
    """Frees the space of a save that failed (orbax's temporary directories)."""
    import shutil  # noqa: PLC0415

    for name in os.listdir(self.directory):
      if 'tmp' in name and not name.isdigit():
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def restore_latest(self, abstract_state, data_iterator):
    """Restores the newest good step into `data_iterator` and returns `(state, step)`.

    Returns `(None, None)` when the directory holds no step (a fresh run). `abstract_state` gives
    shapes, dtypes and shardings (e.g. the freshly initialised state).

    Raises:
      IncompatibleCheckpointError: the newest readable step was saved by another config.
      UserError: steps exist but none is readable (each was set aside), and
        `start_fresh_if_unreadable` is off.
    """
    self._warn_about_incomplete()
    set_aside = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      step_dir = os.path.join(self.directory, str(step))
      problem = verify_checksums(step_dir)
      if problem == 'unverified':
        logging.warning(
            'Checkpoint step %d in %s has no %s (saved before checksums were recorded, or the run '
            'was killed just after the save): restoring it unverified.', step, self.directory,
            CHECKSUMS,
        )
        problem = None
      if problem is None:
        try:
          stored = self._manager.item_metadata(step)[STATE].tree
        except Exception as e:  # noqa: BLE001 - unreadable metadata means an unreadable step
          problem = f'its metadata cannot be read ({_one_line_error(e)})'
      if problem is None:
        mismatch = first_mismatch(stored, abstract_state)
        if mismatch is not None:
          raise _incompatible(self.directory, step, mismatch)
        try:
          restored = self._manager.restore(
              step,
              args=ocp.args.Composite(**{
                  STATE: ocp.args.StandardRestore(abstract_state),
                  DATA: grain.checkpoint.CheckpointRestore(data_iterator),
              }),
          )
        except Exception as e:  # noqa: BLE001 - any failure to read means an unreadable step
          problem = f'orbax cannot read it ({_one_line_error(e)})'
      if problem is not None:
        set_aside.append(self._set_aside(step, problem))
        continue
      if verify_checksums(step_dir) is None:
        self.last_verified_step = step
      return restored[STATE], step
    leftovers = set_aside or set_aside_steps(self.directory)
    if leftovers and not self.start_fresh_if_unreadable:
      raise UserError(
          f'no checkpoint in {self.directory} can be restored (unreadable, set aside: '
          f'{", ".join(leftovers)}); nothing was trained over them. To train from step 0 in this '
          'workdir, rerun with --start_fresh_if_unreadable'
      )
    if leftovers:
      logging.warning(
          'No checkpoint in %s can be restored; starting afresh from step 0 as asked (the '
          'unreadable ones stay set aside: %s).', self.directory, ', '.join(leftovers),
      )
    return None, None

  def _set_aside(self, step: int, problem: str) -> str:
    """Renames an unreadable step to a name nothing else takes; returns that name."""
    name = None
    if jax.process_index() == 0:
      stamp = time.strftime('%Y%m%dT%H%M%S')
      for n in range(1000):
        candidate = f'{step}{SET_ASIDE}{stamp}-{os.getpid()}-{n}'
        target = os.path.join(self.directory, candidate)
        if os.path.exists(target):
          continue
        try:
          os.rename(os.path.join(self.directory, str(step)), target)
        except OSError as e:  # a name taken between the check and the rename: try the next
          if os.path.exists(target):
            continue
          with workdir_lib.writing(self.workdir, f'the set-aside checkpoint step {step}'):
            raise e
        name = candidate
        break
      logging.warning(
          'Checkpoint step %d in %s is unreadable: %s. Set aside as %s; falling back to the '
          'previous step.', step, self.directory, problem, name,
      )
    _sync(f'disentangle_jax_set_aside_{step}')
    self._manager.reload()
    return name or f'{step}{SET_ASIDE}*'

  def _warn_about_incomplete(self):
    if not os.path.isdir(self.directory) or jax.process_index() != 0:
      return
    for name in sorted(os.listdir(self.directory)):
      if 'tmp' in name:
        logging.warning('Ignoring incomplete checkpoint %s (a save was interrupted).', name)

  def wait_until_finished(self):
    try:
      self._manager.wait_until_finished()
      self._record_finished()
    except Exception as e:
      self._raise_if_disk_problem(e, 'a checkpoint')
      raise

  def close(self):
    self.wait_until_finished()
    self._manager.close()


# ---------------------------------------------------------------------------------------------
# Evaluation: read a run without changing it.


def restore_for_evaluation(directory: str, abstract_state, step: int | None = None):
  """The train state of the newest readable step (or of `step`), as `(state, step)`.

  Reads only: an unreadable step is skipped with a warning (named when `step` asks for it), never
  set aside, since a training run may own the directory. Leaves of `abstract_state` without a
  sharding are restored onto this process's first device.

  Raises:
    IncompatibleCheckpointError: the step was saved by another config than the workdir's.
    UserError: no step, `step` absent or unreadable, or every step unreadable.
  """
  directory = os.path.abspath(directory)
  steps = checkpoint_steps(directory)
  if not steps:
    raise UserError(
        f'no checkpoint in {directory}: train the run first (launch/main.py with its --workdir)'
    )
  if step is not None and step not in steps:
    raise UserError(f'no checkpoint at step {step} in {directory}; pass --step from {steps}')
  abstract_state = _with_sharding(abstract_state)
  manager = ocp.CheckpointManager(
      directory,
      options=ocp.CheckpointManagerOptions(
          read_only=True, create=False, save_interval_steps=0, enable_async_checkpointing=False
      ),
      item_handlers={
          STATE: ocp.StandardCheckpointHandler(), DATA: grain.checkpoint.CheckpointHandler()
      },
  )
  skipped = []
  try:
    for candidate in [step] if step is not None else reversed(steps):
      problem = verify_checksums(os.path.join(directory, str(candidate)))
      if problem == 'unverified':
        logging.warning('Checkpoint step %d has no %s: restoring it unverified.', candidate, CHECKSUMS)
        problem = None
      if problem is None:
        try:
          stored = manager.item_metadata(candidate)[STATE].tree
        except Exception as e:  # noqa: BLE001
          problem = f'its metadata cannot be read ({_one_line_error(e)})'
      if problem is None:
        mismatch = first_mismatch(stored, abstract_state)
        if mismatch is not None:
          raise _incompatible(directory, candidate, mismatch)
        try:
          restored = manager.restore(
              candidate, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract_state)})
          )
        except Exception as e:  # noqa: BLE001
          problem = f'orbax cannot read it ({_one_line_error(e)})'
      if problem is None:
        if skipped:
          logging.warning('Evaluating step %d instead (%s).', candidate, '; '.join(skipped))
        return restored[STATE], candidate
      if step is not None:
        raise UserError(
            f'checkpoint step {step} in {directory} is unreadable: {problem}; pass another --step '
            f'from {steps}'
        )
      logging.warning('Checkpoint step %d in %s is unreadable: %s.', candidate, directory, problem)
      skipped.append(f'step {candidate} is unreadable: {problem}')
  finally:
    manager.close()
  raise UserError(
      f'no checkpoint in {directory} is readable ({"; ".join(skipped)}); rerun the training '
      'command on the workdir to set them aside and resume from an older one, if any'
  )

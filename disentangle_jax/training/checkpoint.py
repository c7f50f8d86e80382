"""Atomic, keep-N, resumable checkpoints of the train state and the data iterator's position.

Orbax writes each step into a temporary directory and renames it when complete, so a killed run
never leaves a directory that looks finished. On resume the newest step that restores cleanly is
used; a step that fails to restore (corrupted, truncated) is skipped with a warning.
"""

import logging
import os

import grain
import jax
import orbax.checkpoint as ocp

STATE = 'state'
DATA = 'data'


class Checkpointer:
  """Saves and restores `(TrainState, data iterator)` pairs under `<workdir>/checkpoints`."""

  def __init__(self, directory: str, *, max_to_keep: int = 3):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
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
    """Saves `state` and the iterator position at `step`; returns whether it saved."""
    if step in self._manager.all_steps():
      return False
    return self._manager.save(
        step,
        args=ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(state), DATA: grain.checkpoint.CheckpointSave(data_iterator)}
        ),
        force=force,
    )

  def restore_latest(self, abstract_state, data_iterator):
    """Restores the newest good checkpoint into `data_iterator` and returns `(state, step)`.

    Returns `(None, None)` when there is none. `abstract_state` gives shapes, dtypes and shardings
    (e.g. from `jax.eval_shape` plus the target shardings).
    """
    self._warn_about_incomplete()
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                **{
                    STATE: ocp.args.StandardRestore(abstract_state),
                    DATA: grain.checkpoint.CheckpointRestore(data_iterator),
                }
            ),
        )
      except Exception as e:  # noqa: BLE001 - any failure means this step is unusable.
        logging.warning(
            'Skipping checkpoint step %d in %s: it could not be restored (%s: %s). It is kept '
            'as %d.corrupt for inspection.',
            step, self.directory, type(e).__name__, e, step,
        )
        self._set_aside(step)
        continue
      return restored[STATE], step
    return None, None

  def _set_aside(self, step: int):
    # Renamed rather than deleted: a run never loses data, and the step can be saved afresh.
    if jax.process_index() == 0:
      path = os.path.join(self.directory, str(step))
      if os.path.isdir(path):
        os.replace(path, path + '.corrupt')
    self._manager.reload()

  def _warn_about_incomplete(self):
    if not os.path.isdir(self.directory) or jax.process_index() != 0:
      return
    for name in sorted(os.listdir(self.directory)):
      if 'tmp' in name:
        logging.warning('Ignoring incomplete checkpoint %s (a save was interrupted).', name)

  def wait_until_finished(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()

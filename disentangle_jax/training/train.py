"""`train_and_evaluate(config, workdir)`: the one train loop for every objective.

Set-up, mesh, data, objective, state (fresh or resumed), step, then the loop with its periodic
actions: log, pictures, checkpoint, evaluation. The same code runs on one CPU, one GPU or every
host of a TPU pod (each process reads its own shard of the data).
"""

import json
import logging
import os

import jax
import ml_collections
import numpy as np

from disentangle_jax.data import pipeline
from disentangle_jax.objectives import get_objective
from disentangle_jax.training import evaluation, pictures, sharding
from disentangle_jax.training import workdir as workdir_lib
from disentangle_jax.training.checkpoint import Checkpointer
from disentangle_jax.training.progress import Progress, check_finite, itstime
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import TrainState, create_train_state
from disentangle_jax.training.writers import MetricWriter


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """The resolved config, so any later job can rebuild the model from the workdir alone.

  Written atomically (a crash leaves the old file or the new one) by process 0.
  """
  workdir_lib.write_config(config, workdir)


def init_batch(info, batch_size: int) -> dict:
  """A zero batch with the data's structure: enough to initialise every network."""
  batch = {'image': np.zeros((batch_size, *info.image_shape), np.float32)}
  if info.factor_sizes:
    batch['factors'] = np.zeros((batch_size, len(info.factor_sizes)), np.int32)
  if info.label_names:
    batch['label'] = np.zeros((batch_size, len(info.label_names)), np.int32)
  return batch


def build_objective(config, info):
  objective_cls = get_objective(config.objective.name)
  return objective_cls(config, info.image_shape)


def initial_state(objective, config, info, mesh) -> TrainState:
  """Initialises the state on the mesh, replicated, without materialising it on the host first."""
  batch = init_batch(info, max(2, config.batch_size // jax.process_count()))
  rng = jax.random.key(config.seed)
  init_fn = jax.jit(
      lambda r: create_train_state(objective, r, batch), out_shardings=sharding.replicated(mesh)
  )
  return init_fn(jax.random.fold_in(rng, 0))


def _headline(scalars: dict) -> dict:
  """The few scalars worth reading in the progress line: the losses."""
  return {k: v for k, v in scalars.items() if k.startswith('loss/')}


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    run_options: workdir_lib.RunOptions | None = None,
) -> TrainState:
  """Trains `config.objective` on `config.data`, resuming from `workdir` if it holds a checkpoint.

  The workdir is locked for the run; the config, a rerun's changes, the devices, the data and the
  state are checked (bad input raises `disentangle_jax.errors.UserError`) before `config.json` is
  written. `run_options`: what a rerun may do beyond its config (`workdir.RunOptions`).
  """
  run = workdir_lib.open_workdir(config, workdir, run_options)
  mesh = sharding.make_mesh()
  with workdir_lib.checking('config.batch_size'):
    sharding.check_batch_size(config.batch_size, mesh)
  with workdir_lib.checking('config.data'):
    info = pipeline.dataset_info(config.data)
  with workdir_lib.checking('config.objective'):
    objective = build_objective(config, info)

  train_iter = pipeline.make_train_iterator(
      config.data, global_batch_size=config.batch_size, seed=config.seed
  )
  state = initial_state(objective, config, info, mesh)
  checkpointer = Checkpointer(
      run.checkpoint_directory(), max_to_keep=config.keep_checkpoints,
      start_fresh_if_unreadable=run.options.start_fresh_if_unreadable,
  )
  restored, restored_step = checkpointer.restore_latest(state, train_iter)
  write_config(config, workdir)  # only now: every check passed and the checkpoint fits
  if restored is not None:
    state = restored
    logging.info('Resumed from step %d in %s.', restored_step, checkpointer.directory)
  start_step = int(jax.device_get(state.step))

  step_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  replicated = sharding.replicated(mesh)
  train_step = jax.jit(
      make_train_step(objective),
      in_shardings=(replicated, sharding.batch_sharded(mesh), replicated),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
  )
  writer = MetricWriter(workdir, resume_step=restored_step)
  progress = Progress(config.total_steps, config.batch_size, first_step=start_step)
  picture_maker = pictures.PictureMaker(objective, config, writer)
  evaluator = evaluation.Evaluator(objective, config, writer)
  last_checkpoint = restored_step
  total = config.total_steps

  def fetch(metrics) -> dict[str, float]:
    return {k: float(v) for k, v in jax.device_get(metrics).items()}

  for step in range(start_step + 1, total + 1):
    batch = sharding.global_batch(next(train_iter), mesh)
    state, metrics = train_step(state, batch, step_rng)
    if config.block_every_step:
      jax.block_until_ready(metrics)

    # The host waits for the device only here (and to checkpoint or evaluate); progress is
    # ticked after waiting, so it measures finished steps, not dispatched ones.
    log_now = itstime(step, config.log_every, total, first=True)
    if log_now or progress.warming_up:
      scalars = fetch(metrics)
      progress.tick(step)
      if log_now:
        check_finite(scalars, step, last_checkpoint, checkpoint_dir=checkpointer.directory)
        scalars.update({f'perf/{k}': v for k, v in progress.summary().items()})
        writer.write_scalars(step, scalars)
        if jax.process_index() == 0:
          logging.info(progress.line(step, _headline(scalars)))

    if itstime(step, config.checkpoint_every, total):
      with progress.paused():
        check_finite(fetch(metrics), step, last_checkpoint, checkpoint_dir=checkpointer.directory)
        checkpointer.save(step, state, train_iter, force=step == total)
        last_checkpoint = step

    if itstime(step, config.image_every, total):
      with progress.paused():
        picture_maker(step, state)

    if itstime(step, config.eval_every, total):
      with progress.paused():
        evaluator(step, state)

  checkpointer.wait_until_finished()
  checkpointer.close()
  run.close()
  writer.close()
  return state

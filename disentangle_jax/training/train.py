"""`train_and_evaluate(config, workdir)`: the one train loop for every objective.

Set-up, mesh, data, objective, state (fresh or resumed), step, then the loop with its periodic
actions: log, pictures, checkpoint, evaluation. The same code runs on one CPU, one GPU or every
host of a TPU pod (each process reads its own shard of the data).
"""

import logging
from typing import Sequence

import jax
import ml_collections
import numpy as np

from disentangle_jax.data import pipeline
from disentangle_jax.data.info import DatasetInfo
from disentangle_jax.objectives import get_objective
from disentangle_jax.objectives.base import Stage
from disentangle_jax.training import early_stopping, evaluation, pictures, sharding
from disentangle_jax.training import workdir as workdir_lib
from disentangle_jax.training.checkpoint import Checkpointer
from disentangle_jax.training.progress import Progress, check_finite, itstime
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import (TrainState, create_train_state,
                                                  init_compiler_options)
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


def build_objective(config, info: DatasetInfo):
  """The configured objective, told what its data is."""
  objective_cls = get_objective(config.objective.name)
  return objective_cls(config, info)


def initial_state(objective, config, info, mesh, frozen=None) -> TrainState:
  """Initialises the state on the mesh, replicated, without materialising it on the host first.

  `frozen` (the objective's `load_frozen()`, host arrays) enters as an argument of the compiled
  initialiser, so its values are copied into the state rather than compiled in as constants.
  """
  batch = init_batch(info, max(2, config.batch_size // jax.process_count()))
  rng = jax.random.key(config.seed)
  init_fn = jax.jit(
      lambda r, f: create_train_state(objective, r, batch, f),
      out_shardings=sharding.replicated(mesh),
      compiler_options=init_compiler_options(),
  )
  return init_fn(jax.random.fold_in(rng, 0), frozen if frozen is not None else {})


def stage_ends(stages: Sequence[Stage]) -> np.ndarray:
  """The last step of each stage (steps count from 1)."""
  for stage in stages:
    if int(stage.steps) < 1:
      raise ValueError(f'stage {stage.name!r} must last at least one step, got {stage.steps}')
  return np.cumsum([int(s.steps) for s in stages])


def stage_of(ends: np.ndarray, step: int) -> int:
  """The index of the stage that trains `step` (1-based; the last stage past the end)."""
  return min(int(np.searchsorted(ends, step, side='left')), len(ends) - 1)


def compile_step(objective, stage: Stage, mesh):
  replicated = sharding.replicated(mesh)
  return jax.jit(
      make_train_step(objective, stage.groups),
      in_shardings=(replicated, sharding.batch_sharded(mesh), replicated),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
  )


def _headline(scalars: dict) -> dict:
  """The few scalars worth reading in the progress line: the losses."""
  return {k: v for k, v in scalars.items() if k.startswith('loss/')}


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    run_options: workdir_lib.RunOptions | None = None,
    *,
    train_iterator=None,
) -> TrainState:
  """Trains `config.objective` on `config.data`, resuming from `workdir` if it holds a checkpoint.

  The workdir is locked for the run; the config, a rerun's changes, the devices, the data and the
  state are checked (bad input raises `disentangle_jax.errors.UserError`) before `config.json` is
  written. `run_options`: what a rerun may do beyond its config (`workdir.RunOptions`).
  `train_iterator`: batches to train on instead of `config.data`'s (e.g. stored features); it
  must be checkpointable as grain's iterators are, so that a resumed run continues where it was.
  Pictures and evaluations still read `config.data`.
  """
  run = workdir_lib.open_workdir(config, workdir, run_options)
  mesh = sharding.make_mesh()
  with workdir_lib.checking('config.batch_size'):
    sharding.check_batch_size(config.batch_size, mesh)
  with workdir_lib.checking('config.data'):
    info = pipeline.dataset_info(config.data)
  with workdir_lib.checking('config.objective'):
    objective = build_objective(config, info)

  train_iter = train_iterator or pipeline.make_train_iterator(
      config.data, global_batch_size=config.batch_size, seed=config.seed
  )
  with workdir_lib.checking('config.evaluators'):
    evaluation.check_evaluators(config, info, objective)
  with workdir_lib.checking('config.objective'):
    stages = objective.stages()
    ends = stage_ends(stages)
  if int(ends[-1]) != int(config.total_steps):
    logging.warning('The stages of %r last %d steps in all; config.total_steps=%d is ignored.',
                    config.objective.name, int(ends[-1]), int(config.total_steps))
  frozen = objective.load_frozen()
  state = initial_state(objective, config, info, mesh, frozen)
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
  writer = MetricWriter(workdir, resume_step=restored_step)
  last_checkpoint = restored_step
  total = int(ends[-1])
  progress = Progress(total, config.batch_size, first_step=start_step)
  stage_index = None
  with workdir_lib.checking('config.early_stopping'):
    stopper = early_stopping.EarlyStopping.from_config(config, workdir, start_step)
  if stopper is not None and stopper.stopped_at is not None:
    logging.info('The run stopped early at step %d; rerunning it trains nothing more.',
                 stopper.stopped_at)
    total = start_step

  def fetch(metrics) -> dict[str, float]:
    return {k: float(v) for k, v in jax.device_get(metrics).items()}

  for step in range(start_step + 1, total + 1):
    if stage_of(ends, step) != stage_index:
      # A new stage (or the first step of this process): its objective, compiled step, pictures
      # and evaluator. The state records the stage, so a checkpoint says where the run was.
      stage_index = stage_of(ends, step)
      stage = stages[stage_index]
      stage_objective = objective.for_stage(stage_index)
      train_step = compile_step(stage_objective, stage, mesh)
      state = state.replace(stage=jax.device_put(np.int32(stage_index), replicated))
      picture_maker = pictures.PictureMaker(stage_objective, config, writer)
      evaluator = evaluation.Evaluator(stage_objective, config, writer, info)
      if len(stages) > 1 and jax.process_index() == 0:
        logging.info('Stage %d/%d %r: steps %d-%d, training %s.', stage_index + 1, len(stages),
                     stage.name, ends[stage_index] - stage.steps + 1, ends[stage_index],
                     ', '.join(stage.groups or stage_objective.groups))
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

    if itstime(step, config.checkpoint_every, total) or step in ends:
      with progress.paused():
        check_finite(fetch(metrics), step, last_checkpoint, checkpoint_dir=checkpointer.directory)
        checkpointer.save(step, state, train_iter, force=step in ends)
        last_checkpoint = step

    if itstime(step, config.image_every, total):
      with progress.paused():
        picture_maker(step, state)

    if itstime(step, config.eval_every, total):
      with progress.paused():
        evaluator(step, state)

    if stopper is not None and itstime(step, stopper.every, total, last=False):
      with progress.paused():
        means = stopper.validate(stage_objective, state, config, step)
        writer.write_scalars(step, {f'validation/{k}': v for k, v in means.items()})
        if stopper.stopped_at is not None:
          if last_checkpoint != step:
            checkpointer.save(step, state, train_iter, force=True)
          break

  checkpointer.wait_until_finished()
  checkpointer.close()
  run.close()
  writer.close()
  return state

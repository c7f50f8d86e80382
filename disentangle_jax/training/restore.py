"""Rebuild a trained model from its workdir alone (config.json + a checkpoint)."""

import dataclasses
import os

import jax
import ml_collections

from disentangle_jax.data import pipeline
from disentangle_jax.training import checkpoint as checkpoint_lib
from disentangle_jax.training import train as train_lib
from disentangle_jax.training import workdir as workdir_lib
from disentangle_jax.training.train_state import create_train_state


@dataclasses.dataclass
class TrainedModel:
  """A trained model: `objective` is the one of the checkpoint's stage, and `params` holds the
  trained and the frozen groups (the objective's `params` argument)."""

  config: ml_collections.ConfigDict
  objective: object
  params: dict
  model_state: object
  step: int
  info: object = None


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config.json; a missing, garbled or foreign file is a UserError naming it."""
  return workdir_lib.read_config(workdir)


def checkpoint_steps(workdir: str) -> list[int]:
  return checkpoint_lib.checkpoint_steps(os.path.join(workdir, 'checkpoints'))


def load_trained_model(workdir: str, step: int | None = None) -> TrainedModel:
  """The objective and its variables at `step` (default: the newest checkpoint that verifies;
  an unreadable newest one is skipped with a warning)."""
  config = load_config(workdir)
  with workdir_lib.checking('config.data'):
    info = pipeline.dataset_info(config.data)
  with workdir_lib.checking('config.objective'):
    objective = train_lib.build_objective(config, info)
  batch = train_lib.init_batch(info, 2)
  frozen = objective.load_frozen()
  abstract = jax.eval_shape(
      lambda r, f: create_train_state(objective, r, batch, f), jax.random.key(0), frozen
  )
  state, step = checkpoint_lib.restore_for_evaluation(
      os.path.join(workdir, 'checkpoints'), abstract, step
  )
  stage_objective = objective.for_stage(int(state.stage))
  return TrainedModel(config, stage_objective, state.variables(), state.model_state, step, info)

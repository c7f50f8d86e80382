"""Rebuild a trained model from its workdir alone (config.json + a checkpoint)."""

import dataclasses
import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from disentangle_jax.data import pipeline
from disentangle_jax.training import train as train_lib
from disentangle_jax.training.checkpoint import STATE
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
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} not found: {workdir!r} is not a disentangle_jax workdir')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def checkpoint_steps(workdir: str) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def load_trained_model(workdir: str, step: int | None = None) -> TrainedModel:
  """The objective and its parameters at `step` (default: the newest checkpoint)."""
  config = load_config(workdir)
  steps = checkpoint_steps(workdir)
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {os.path.join(workdir, "checkpoints")}')
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise ValueError(f'no checkpoint at step {step} in {workdir}; available: {steps}')
  info = pipeline.dataset_info(config.data)
  objective = train_lib.build_objective(config, info)
  batch = train_lib.init_batch(info, 2)
  frozen = objective.load_frozen()
  abstract = jax.eval_shape(
      lambda r, f: create_train_state(objective, r, batch, f), jax.random.key(0), frozen
  )
  path = os.path.abspath(os.path.join(workdir, 'checkpoints', str(step), STATE))
  state = ocp.StandardCheckpointer().restore(path, abstract)
  stage_objective = objective.for_stage(int(state.stage))
  return TrainedModel(config, stage_objective, state.variables(), state.model_state, step, info)

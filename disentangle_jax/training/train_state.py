"""The train state: everything that changes during training, and nothing that does not."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from disentangle_jax.objectives.base import Objective


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer states and model state, per parameter group.

  The RNG is not carried: each step derives its key as `fold_in(rng, step)` from the run's seed.
  """

  step: jax.Array
  params: dict[str, Any]
  opt_state: dict[str, Any]
  model_state: Any


def create_train_state(objective: Objective, rng: jax.Array, batch) -> TrainState:
  """Initialises every parameter group and its optimizer from one training batch."""
  params, model_state = objective.init(rng, batch)
  optimizers = objective.optimizers()
  missing = set(objective.groups) ^ set(params) | set(objective.groups) ^ set(optimizers)
  if missing:
    raise ValueError(
        f'{type(objective).__name__}: groups {objective.groups} must match the keys of its params '
        f'{sorted(params)} and optimizers {sorted(optimizers)}'
    )
  opt_state = {g: optimizers[g].init(params[g]) for g in objective.groups}
  return TrainState(
      step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, model_state=model_state
  )

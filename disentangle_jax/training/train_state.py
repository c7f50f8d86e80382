"""The train state: everything that changes during training, and what must travel with it."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from disentangle_jax.objectives.base import Objective


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer states and model state per parameter group, the frozen groups, and
  the stage.

  The RNG is not carried: each step derives its key as `fold_in(rng, step)` from the run's seed.

  Attributes:
    step: steps taken.
    stage: the index of the stage the last step trained in (see `Objective.stages`).
    params: {group: pytree} of the trained groups.
    opt_state: {group: optimizer state}.
    model_state: non-trained collections (BatchNorm statistics).
    frozen: {group: pytree} of the frozen groups (`Objective.frozen_groups`): loaded on the host,
      never optimised, checkpointed with the rest.
  """

  step: jax.Array
  stage: jax.Array
  params: dict[str, Any]
  opt_state: dict[str, Any]
  model_state: Any
  frozen: dict[str, Any]

  def variables(self) -> dict[str, Any]:
    """The objective's `params` argument: the trained groups and the frozen ones."""
    return {**self.params, **self.frozen}


def init_compiler_options() -> dict[str, Any] | None:
  """XLA options for compiling the initialiser: on a CPU, no LLVM optimisation.

  The initialiser runs once, and its many random-number kernels (a threefry hash per parameter)
  are slow to optimise: the three-stage PCA-like autoencoder's compiled in 25 s, against under
  3 s unoptimised (one stage: 10.4 s -> 1.4 s), while running it takes milliseconds either way.
  The random bits are integer arithmetic and the same on every level; their transforms to normal
  or uniform values can differ from an optimised build's in the last bit (seen: 6e-8).
  """
  return {'xla_backend_optimization_level': 0} if jax.default_backend() == 'cpu' else None


def create_train_state(objective: Objective, rng: jax.Array, batch, frozen=None) -> TrainState:
  """Initialises every trained group and its optimizer from one training batch, compiled.

  The initialisers run as one compiled program (`init_compiler_options`): run eagerly, every
  operation of every layer's initialiser compiles on its own. Inside a caller's `jax.jit` (the
  train loop's) it is traced inline.

  Args:
    objective: the objective.
    rng: the initialisation key.
    batch: a batch with the training data's structure.
    frozen: the frozen groups' values (`objective.load_frozen()`), passed in so that they stay
      arguments of a compiled initialiser rather than constants.
  """
  frozen = dict(frozen or {})
  if isinstance(rng, jax.core.Tracer):  # under a caller's trace (jit options are top-level only)
    return _create_train_state(objective, rng, batch, frozen)
  return jax.jit(lambda r, b, f: _create_train_state(objective, r, b, f),
                 compiler_options=init_compiler_options())(rng, batch, frozen)


def _create_train_state(objective: Objective, rng: jax.Array, batch, frozen) -> TrainState:
  params, model_state = objective.init(rng, batch)
  optimizers = objective.optimizers()
  name = type(objective).__name__
  mismatch = set(objective.groups) ^ set(params) | set(objective.groups) ^ set(optimizers)
  if mismatch:
    raise ValueError(
        f'{name}: groups {objective.groups} must match the keys of its params '
        f'{sorted(params)} and optimizers {sorted(optimizers)}'
    )
  if set(frozen) != set(objective.frozen_groups):
    raise ValueError(f'{name}: frozen groups {objective.frozen_groups} must match the loaded '
                     f'{sorted(frozen)}')
  if set(frozen) & set(params):
    raise ValueError(f'{name}: groups {sorted(set(frozen) & set(params))} are both trained and '
                     'frozen')
  opt_state = {g: optimizers[g].init(params[g]) for g in objective.groups}
  return TrainState(
      step=jnp.zeros((), jnp.int32), stage=jnp.zeros((), jnp.int32), params=params,
      opt_state=opt_state, model_state=model_state, frozen=frozen,
  )

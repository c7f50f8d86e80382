"""The one train step for every objective: a pure function of (state, batch, rng)."""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from disentangle_jax.objectives.base import Objective
from disentangle_jax.training.train_state import TrainState

TrainStepFn = Callable[[TrainState, dict, jax.Array], tuple[TrainState, dict]]


def make_train_step(objective: Objective) -> TrainStepFn:
  """Builds `train_step(state, batch, rng) -> (state, metrics)` for `objective`.

  `rng` is the run's base key; the step's key is `fold_in(rng, state.step)`, so a resumed run
  draws exactly the keys an uninterrupted one would. Each group's gradient is taken of its own loss
  with respect to its own parameters only (see `objectives.base` for `update_order`).
  """
  optimizers = objective.optimizers()
  groups = objective.groups

  def group_loss(group, params, model_state, batch, rng, step):
    def loss_fn(group_params):
      losses, aux = objective.losses({**params, group: group_params}, model_state, batch, rng, step)
      return losses[group], (losses, aux)

    return loss_fn

  def update(group, grads, opt_state, params):
    updates, new_opt_state = optimizers[group].update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_opt_state

  def train_step(state: TrainState, batch, rng):
    rng = jax.random.fold_in(rng, state.step)
    params, opt_state = dict(state.params), dict(state.opt_state)
    model_state = state.model_state
    grads_at_start = {}
    for group in groups:
      # 'simultaneous': every gradient at the starting parameters (XLA merges the identical
      # forward passes); 'sequential': each group sees the groups before it already updated.
      at = state.params if objective.update_order == 'simultaneous' else params
      fn = group_loss(group, at, state.model_state, batch, rng, state.step)
      grads, (losses, (new_model_state, metrics)) = jax.grad(fn, has_aux=True)(at[group])
      grads_at_start[group] = grads
      if objective.update_order == 'sequential':
        params[group], opt_state[group] = update(group, grads, opt_state[group], params[group])
        model_state = new_model_state
    if objective.update_order == 'simultaneous':
      for group in groups:
        params[group], opt_state[group] = update(
            group, grads_at_start[group], opt_state[group], params[group]
        )
      model_state = new_model_state
    elif objective.update_order != 'sequential':
      raise ValueError(f'unknown update_order {objective.update_order!r}')
    metrics = {**metrics, **{f'loss/{g}': losses[g] for g in groups}}
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state
    )
    return new_state, metrics

  return train_step

"""The one train step for every objective: a pure function of (state, batch, rng)."""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from disentangle_jax.objectives.base import Objective
from disentangle_jax.training.train_state import TrainState

TrainStepFn = Callable[[TrainState, dict, jax.Array], tuple[TrainState, dict]]
UPDATE_ORDERS = ('simultaneous', 'sequential')


def make_train_step(objective: Objective, trainable: Sequence[str] | None = None) -> TrainStepFn:
  """Builds `train_step(state, batch, rng) -> (state, metrics)` for `objective`.

  `rng` is the run's base key; the step's key is `fold_in(rng, state.step)`, so a resumed run
  draws exactly the keys an uninterrupted one would. Each group's gradient is taken of its own loss
  with respect to its own parameters only (see `objectives.base` for `update_order`).

  Args:
    objective: the objective (for a staged run, `objective.for_stage(i)`).
    trainable: the groups this step trains (a stage's `groups`; None: every group). The others
      are neither differentiated nor touched by their optimizer, so no momentum moves them.

  In 'sequential' order each group's pass sees the parameters and the model state left by the
  passes before it; the logged `loss/<group>` is the loss of the group's own pass, and other
  metrics come from the first pass that reports them. A group with `update_every() = {g: k}` is
  updated on steps divisible by k; on other steps its loss is still evaluated (forward only) for
  the log, and neither its parameters, its optimizer state nor the model state change.
  """
  if objective.update_order not in UPDATE_ORDERS:
    raise ValueError(f'{type(objective).__name__}.update_order must be one of {UPDATE_ORDERS}, '
                     f'got {objective.update_order!r}')
  optimizers = objective.optimizers()
  groups = tuple(g for g in objective.groups if trainable is None or g in trainable)
  unknown = set(trainable or ()) - set(objective.groups)
  if unknown:
    raise ValueError(f'trainable groups {sorted(unknown)} are not groups of '
                     f'{type(objective).__name__} {objective.groups}')
  every = objective.update_every()
  sequential = objective.update_order == 'sequential'
  owners = objective.model_state_owners()
  unknown_owners = sorted(set(owners.values()) - set(objective.groups))
  if unknown_owners:
    raise ValueError(f'{type(objective).__name__}.model_state_owners() names unknown groups '
                     f'{unknown_owners}; its groups are {objective.groups}')

  def owned_state(group, old, new):
    """The model state after `group`'s pass: entries owned by other groups keep `old`."""
    if not owners:
      return new
    return {k: (v if owners.get(k, group) == group else old[k]) for k, v in new.items()}

  def grads_and_aux(group, params, frozen, model_state, batch, rng, step):
    def loss_fn(group_params):
      variables = {**params, group: group_params, **frozen}
      losses, aux = objective.losses(variables, model_state, batch, rng, step)
      return losses[group], (losses, aux)

    return jax.grad(loss_fn, has_aux=True)(params[group])

  def apply_update(group, grads, opt_state, group_params):
    updates, new_opt_state = optimizers[group].update(grads, opt_state, group_params)
    return optax.apply_updates(group_params, updates), new_opt_state

  def sequential_pass(group, params, opt_state, frozen, model_state, batch, rng, step):
    """One group's pass: returns (group params, group opt state, model state, loss, metrics)."""

    def update(_):
      grads, (losses, (new_model_state, metrics)) = grads_and_aux(
          group, params, frozen, model_state, batch, rng, step)
      new_params, new_opt = apply_update(group, grads, opt_state[group], params[group])
      return (new_params, new_opt, owned_state(group, model_state, new_model_state),
              losses[group], metrics)

    def skip(_):
      losses, (_, metrics) = objective.losses({**params, **frozen}, model_state, batch, rng, step)
      return params[group], opt_state[group], model_state, losses[group], metrics

    if group not in every:
      return update(None)
    return jax.lax.cond(step % every[group] == 0, update, skip, None)

  def train_step(state: TrainState, batch, rng):
    rng = jax.random.fold_in(rng, state.step)
    step = state.step
    params, opt_state = dict(state.params), dict(state.opt_state)
    model_state, frozen = state.model_state, state.frozen
    group_losses, metrics = {}, {}
    if sequential:
      for group in groups:
        params[group], opt_state[group], model_state, group_losses[group], pass_metrics = (
            sequential_pass(group, params, opt_state, frozen, model_state, batch, rng, step))
        metrics = {**pass_metrics, **metrics}
    else:
      # Every gradient at the starting parameters; XLA merges the identical forward passes.
      start = dict(state.params)
      for group in groups:
        grads, (losses, (new_model_state, metrics)) = grads_and_aux(
            group, start, frozen, state.model_state, batch, rng, step)
        group_losses[group] = losses[group]
        new = apply_update(group, grads, opt_state[group], params[group])
        if group in every:
          old = (params[group], opt_state[group])
          new = jax.tree.map(lambda n, o, g=group: jnp.where(step % every[g] == 0, n, o), new, old)
        params[group], opt_state[group] = new
      model_state = new_model_state if groups else model_state
    metrics = {**metrics, **{f'loss/{g}': group_losses[g] for g in groups}}
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state
    )
    return new_state, metrics

  return train_step

"""Weight schedules: pure functions of the step (or epoch), jit-friendly.

Each function takes the step `t` (a Python number or a traced array, integer or float) and
returns a float32 scalar. `make_schedule(name, **kwargs)` binds the keyword arguments and returns
`fn(step) -> value`, so an objective can build one from plain keyword arguments.

Known answers:
  cosine(10, start_value=0.001, end_value=0.4, start_step=10, end_step=49) == 0.001
  cosine(29.5, ...) == 0.2005 and cosine(49, ...) == 0.4   (Seitzer et al., published schedule)
  capacity(t, max_capacity=25, anneal_steps=1e5) == 25 · min(1, t / 1e5)   (Burgess et al.)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

Array = jax.Array
Schedule = Callable[[ArrayLike], Array]


def _f32(t: ArrayLike) -> Array:
  return jnp.asarray(t, jnp.float32)


def constant(t: ArrayLike, *, value: float) -> Array:
  """`value` at every step."""
  del t
  return jnp.asarray(value, jnp.float32)


def linear_warmup(
    t: ArrayLike, *, value: float, warmup_steps: float, start_value: float = 0.0
) -> Array:
  """Linear ramp from `start_value` at t = 0 to `value` at t = warmup_steps, then constant.

  With `start_value=0` this is β-TCVAE's warm-up `min(β, β · t / W)` (Chen et al. code).
  """
  if warmup_steps <= 0:
    return constant(t, value=value)
  frac = jnp.clip(_f32(t) / warmup_steps, 0.0, 1.0)
  return start_value + (value - start_value) * frac


def capacity(t: ArrayLike, *, max_capacity: float, anneal_steps: float) -> Array:
  """AnnealedVAE's capacity `C(t) = min(C_max, C_max · t / T)` in nats (Burgess et al. 2018)."""
  return linear_warmup(t, value=max_capacity, warmup_steps=anneal_steps)


def cosine(
    t: ArrayLike,
    *,
    start_value: float,
    end_value: float,
    start_step: float,
    end_step: float,
) -> Array:
  """Half-cosine from `start_value` at `start_step` to `end_value` at `end_step` (Seitzer et al.).

  `start_value` before `start_step`, `end_value` after `end_step`, and in between
  `end − ½ (end − start)(1 + cos(π (t − t_start) / (t_end − t_start)))`. The published schedule
  is per epoch (constant within an epoch): pass the epoch as `t`, or use
  `make_schedule('cosine', steps_per_unit=steps_per_epoch, ...)`.
  """
  t = _f32(t)
  span = max(end_step - start_step, 1e-12)
  frac = jnp.clip((t - start_step) / span, 0.0, 1.0)
  # Algebraically Seitzer's form; written from the start value so that β(t_start) is exact.
  return start_value + 0.5 * (end_value - start_value) * (1.0 - jnp.cos(jnp.pi * frac))


def sigmoid(
    t: ArrayLike,
    *,
    start_value: float,
    end_value: float,
    midpoint: float,
    steepness: float,
) -> Array:
  """Logistic ramp `start + (end − start) · σ(steepness · (t − midpoint))`.

  Halfway between the two values at `midpoint`; `steepness` is in 1/steps (its rise from 12%
  to 88% takes about 4 / steepness steps).
  """
  frac = jax.nn.sigmoid(steepness * (_f32(t) - midpoint))
  return start_value + (end_value - start_value) * frac


def cyclical(
    t: ArrayLike,
    *,
    value: float,
    period: float,
    ratio: float = 0.5,
    start_value: float = 0.0,
) -> Array:
  """Cyclical annealing (Fu et al. 2019): each period ramps linearly from `start_value` to `value`
  over its first `ratio · period` steps, then holds `value` until the next period starts.
  """
  if period <= 0 or not 0.0 < ratio <= 1.0:
    raise ValueError(f'cyclical needs period > 0 and 0 < ratio <= 1, got {period}, {ratio}')
  phase = jnp.mod(_f32(t), period) / (ratio * period)
  return start_value + (value - start_value) * jnp.clip(phase, 0.0, 1.0)


_SCHEDULES: dict[str, Callable[..., Array]] = {
    'constant': constant,
    'linear_warmup': linear_warmup,
    'capacity': capacity,
    'cosine': cosine,
    'sigmoid': sigmoid,
    'cyclical': cyclical,
}


def make_schedule(name: str, *, steps_per_unit: int = 1, **kwargs) -> Schedule:
  """`fn(step) -> value` for the schedule `name` with its keyword arguments bound.

  Args:
    name: one of 'constant', 'linear_warmup', 'capacity', 'cosine', 'sigmoid', 'cyclical'.
    steps_per_unit: the schedule's time unit in steps; `t = step // steps_per_unit`, so with the
      steps per epoch the value is constant within an epoch (Seitzer's per-epoch β).
    **kwargs: the schedule's keyword arguments (see each function).

  Returns:
    A function of the (integer) step.
  """
  if name not in _SCHEDULES:
    raise ValueError(f'unknown schedule {name!r}; known: {", ".join(sorted(_SCHEDULES))}')
  fn = _SCHEDULES[name]
  if steps_per_unit < 1 or int(steps_per_unit) != steps_per_unit:
    raise ValueError(f'steps_per_unit must be a positive integer, got {steps_per_unit}')
  fn(0, **kwargs)  # fail at construction, not inside jit, on missing or unknown arguments

  def schedule(step: ArrayLike) -> Array:
    t = step if steps_per_unit == 1 else jnp.floor_divide(step, steps_per_unit)
    return fn(t, **kwargs)

  return schedule


def available() -> list[str]:
  return sorted(_SCHEDULES)


"""Known answers of the weight schedules (values worked out by hand from each schedule's definition), under `jax.jit`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax.losses import schedules


def at(fn, t, **kwargs):
  return float(jax.jit(functools.partial(fn, **kwargs))(jnp.asarray(t)))


SEITZER = dict(start_value=0.001, end_value=0.4, start_step=10, end_step=49)  # published


def test_seitzer_cosine_schedule_known_answers():
  assert at(schedules.cosine, 10, **SEITZER) == pytest.approx(0.001, rel=1e-5)
  assert at(schedules.cosine, 29.5, **SEITZER) == pytest.approx(0.2005, rel=1e-5)
  assert at(schedules.cosine, 49, **SEITZER) == pytest.approx(0.4, rel=1e-5)
  assert at(schedules.cosine, 0, **SEITZER) == pytest.approx(0.001, rel=1e-5)  # before start
  assert at(schedules.cosine, 99, **SEITZER) == pytest.approx(0.4, rel=1e-5)  # after end
  # Monotone in between.
  values = jax.vmap(functools.partial(schedules.cosine, **SEITZER))(jnp.arange(0, 60.0))
  assert np.all(np.diff(np.asarray(values)) >= 0)
  # Released stage-2 config: midpoint of (10, 79) is 44.5.
  stage2 = dict(start_value=0.005, end_value=0.4, start_step=10, end_step=79)
  assert at(schedules.cosine, 44.5, **stage2) == pytest.approx(0.2025, rel=1e-5)


def test_per_epoch_schedule_is_constant_within_an_epoch():
  fn = jax.jit(schedules.make_schedule('cosine', steps_per_unit=100, **SEITZER))
  assert float(fn(1000)) == pytest.approx(0.001, rel=1e-5)
  assert float(fn(4999)) == float(fn(4900))  # epoch 49
  assert float(fn(4900)) == pytest.approx(0.4, rel=1e-5)
  assert float(fn(4899)) < 0.4


def test_burgess_capacity_known_answers():
  c = functools.partial(schedules.capacity, max_capacity=25.0, anneal_steps=100_000)
  for t in (0, 1, 25_000, 50_000, 99_999, 100_000, 300_000):
    assert at(c, t) == pytest.approx(25.0 * min(1.0, t / 1e5), rel=1e-6, abs=1e-9)
  via_factory = schedules.make_schedule('capacity', max_capacity=25.0, anneal_steps=100_000)
  assert float(jax.jit(via_factory)(50_000)) == pytest.approx(12.5)


def test_linear_warmup():
  kw = dict(value=6.0, warmup_steps=7000)
  assert at(schedules.linear_warmup, 0, **kw) == 0.0
  assert at(schedules.linear_warmup, 3500, **kw) == pytest.approx(3.0)
  assert at(schedules.linear_warmup, 7000, **kw) == pytest.approx(6.0)
  assert at(schedules.linear_warmup, 10**6, **kw) == pytest.approx(6.0)
  assert at(schedules.linear_warmup, 5, value=2.0, warmup_steps=10, start_value=1.0) == 1.5
  assert at(schedules.linear_warmup, 0, value=2.0, warmup_steps=0) == 2.0


def test_cyclical():
  kw = dict(value=1.0, period=100, ratio=0.5)
  expected = {0: 0.0, 25: 0.5, 50: 1.0, 99: 1.0, 100: 0.0, 125: 0.5, 260: 1.0}
  for t, v in expected.items():
    assert at(schedules.cyclical, t, **kw) == pytest.approx(v), t
  with pytest.raises(ValueError):
    schedules.cyclical(0, value=1.0, period=0)


def test_sigmoid():
  kw = dict(start_value=0.0, end_value=4.0, midpoint=1000, steepness=0.01)
  assert at(schedules.sigmoid, 1000, **kw) == pytest.approx(2.0)
  assert at(schedules.sigmoid, 0, **kw) == pytest.approx(4.0 / (1 + np.exp(10.0)), rel=1e-4)
  assert at(schedules.sigmoid, 3000, **kw) == pytest.approx(4.0, rel=1e-5)


def test_constant_and_factory_errors():
  assert float(jax.jit(schedules.make_schedule('constant', value=4.0))(123)) == 4.0
  assert 'cosine' in schedules.available()
  with pytest.raises(ValueError, match='unknown schedule'):
    schedules.make_schedule('cosinus', value=1.0)
  with pytest.raises(TypeError):
    schedules.make_schedule('cosine', start_value=0.0)  # missing arguments fail at build time
  with pytest.raises(ValueError, match='steps_per_unit'):
    schedules.make_schedule('constant', value=1.0, steps_per_unit=0)

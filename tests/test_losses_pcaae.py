"""Known-answer tests of the PCA-AE covariance loss (`disentangle_jax.losses.pcaae`)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax.losses import pcaae_covariance_loss


def assert_close(actual, expected, rtol=1e-6, atol=1e-7):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def _hadamard_columns(m=8):
  """Columns 1… of a Sylvester Hadamard matrix: exactly zero-mean, unit-variance, orthogonal."""
  h = np.array([[1.0]])
  while h.shape[0] < m:
    h = np.block([[h, h], [h, -h]])
  return h[:, 1:]


def loss_fn(**options):
  return jax.jit(functools.partial(pcaae_covariance_loss, **options))


def test_uncorrelated_zero_mean_components_give_exactly_zero():
  h = _hadamard_columns()
  assert float(loss_fn()(h[:, :4])) == 0.0
  assert float(loss_fn(normalization='k')(h[:, :4])) == 0.0
  assert float(loss_fn(num_new=3)(h[:, :4])) == 0.0


@pytest.mark.parametrize('k', [2, 3, 5])
def test_a_copy_of_an_earlier_unit_variance_component_gives_one_over_k_minus_1(k):
  h = _hadamard_columns()
  z = np.concatenate([h[:, : k - 1], h[:, :1]], axis=1)  # z_k = z_1, unit variance
  assert z.shape == (8, k)
  assert_close(loss_fn()(z), 1.0 / (k - 1))
  assert_close(loss_fn(normalization='k')(z), 1.0 / k)
  # A copy scaled by s (variance s²) gives s²/(k − 1).
  z_scaled = np.concatenate([h[:, : k - 1], 3.0 * h[:, :1]], axis=1)
  assert_close(loss_fn()(z_scaled), 9.0 / (k - 1))


def test_hand_computed_two_component_batch():
  z = jnp.array([[1.0, 2.0], [3.0, -1.0]])
  # (1/m) Σ_j z_1 z_2 = (2 − 3)/2 = −0.5; squared 0.25; k − 1 = 1, k = 2.
  assert_close(loss_fn()(z), 0.25)
  assert_close(loss_fn(normalization='k')(z), 0.125)
  # Centred: means (2, 0.5); products (−1)(1.5) + (1)(−1.5) = −3, /2 = −1.5; squared 2.25.
  assert_close(loss_fn(center=True)(z), 2.25)


def test_first_stage_has_nothing_to_decorrelate_from():
  z = jax.random.normal(jax.random.key(0), (16, 1))
  assert float(loss_fn()(z)) == 0.0
  assert float(loss_fn(normalization='k')(z)) == 0.0


def test_independent_gaussian_components_give_a_small_value_that_shrinks_with_the_batch():
  def value(m):
    z = jax.random.normal(jax.random.key(m), (m, 4))
    z = (z - z.mean(0)) / z.std(0)  # the affine-free BatchNorm
    return float(loss_fn()(z))

  # E[cov²] ≈ 1/m for independent unit-variance components.
  small, large = value(256), value(16384)
  assert small < 10.0 / 256 and large < 10.0 / 16384
  assert large < small


def test_a_packet_of_new_components_is_decorrelated_from_the_old_and_from_itself():
  h = _hadamard_columns()
  z = np.stack([h[:, 0], h[:, 1], h[:, 0], h[:, 1]], axis=1)
  # Pairs with j new (columns 2, 3) and i < j: (0,2)=1, (1,2)=0, (0,3)=0, (1,3)=1, (2,3)=0.
  assert_close(loss_fn(num_new=2)(z), 2.0 / 5.0)
  assert_close(loss_fn(num_new=2, normalization='k')(z), 2.0 / 7.0)
  # Within the packet: two identical new components. Pairs (0,1)=0, (0,2)=0, (1,2)=1.
  z = np.stack([h[:, 0], h[:, 1], h[:, 1]], axis=1)
  assert_close(loss_fn(num_new=2)(z), 1.0 / 3.0)


def test_only_the_pairs_with_the_new_component_count():
  h = _hadamard_columns()
  # Two old components that copy each other: not the new component's business.
  z = np.stack([h[:, 0], h[:, 0], h[:, 1]], axis=1)
  assert float(loss_fn()(z)) == 0.0


def test_centering_removes_a_constant_offset():
  h = _hadamard_columns()
  z = h[:, :3] + np.array([1.0, -2.0, 0.5])
  assert float(loss_fn(center=True)(z)) == pytest.approx(0.0, abs=1e-12)
  assert float(loss_fn()(z)) > 0.1  # raw products see the offsets, as published


def test_low_precision_codes_are_accumulated_in_float32():
  h = _hadamard_columns()
  z = jnp.asarray(np.concatenate([h[:, :2], h[:, :1]], axis=1), jnp.bfloat16)
  out = loss_fn()(z)
  assert out.dtype == jnp.float32
  assert_close(out, 0.5)


def test_bad_arguments_name_the_problem():
  with pytest.raises(ValueError, match='num_new must be between 1'):
    pcaae_covariance_loss(jnp.zeros((4, 2)), num_new=3)
  with pytest.raises(ValueError, match='normalization must be one of'):
    pcaae_covariance_loss(jnp.zeros((4, 2)), normalization='m')
  with pytest.raises(ValueError, match=r'\[batch, components\]'):
    pcaae_covariance_loss(jnp.zeros((4,)))


def test_gradient_descent_on_the_loss_decorrelates_a_new_linear_component():
  """Tiny end-to-end: z1 = x·u frozen, z2 = x·w learned from a start close to u."""
  x = jax.random.normal(jax.random.key(3), (512, 4)) * jnp.array([3.0, 2.0, 1.0, 0.5])
  u = jnp.array([1.0, 0.0, 0.0, 0.0])

  def codes(w):
    z = jnp.stack([x @ u, x @ w], axis=1)
    return (z - z.mean(0)) / z.std(0)  # the affine-free BatchNorm

  loss = lambda w: pcaae_covariance_loss(codes(w))  # noqa: E731
  w0 = jnp.array([1.0, 0.3, 0.2, 0.1])
  step = jax.jit(lambda w: w - 0.5 * jax.grad(loss)(w))
  w = w0
  for _ in range(200):
    w = step(w)
  assert float(loss(w0)) > 0.5
  assert float(loss(w)) < 1e-4

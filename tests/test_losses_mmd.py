"""Known-answer tests of MMD and the InfoVAE / MMD-VAE losses (`disentangle_jax.losses.mmd`)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import losses


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def mmd_fn(**options):
  return jax.jit(functools.partial(losses.mmd, **options))


def _gaussian_rbf_mmd2(shift_sq, dim, sigma_sq):
  """Population MMD² between N(0, I) and N(μ, I), ‖μ‖² = shift_sq, RBF kernel of variance σ²."""
  same = (sigma_sq / (sigma_sq + 2.0)) ** (dim / 2.0)
  return 2.0 * same - 2.0 * same * math.exp(-shift_sq / (2.0 * (sigma_sq + 2.0)))


def test_hand_computed_values_of_both_estimators():
  x = jnp.array([[0.0], [1.0]])
  y = jnp.array([[2.0], [3.0]])
  e = np.exp
  # σ = 1: k = exp(−d²/2). x–x and y–y off-diagonal pairs at distance 1; x–y at 2, 3, 1, 2.
  cross = (e(-0.5) + 2 * e(-2.0) + e(-4.5)) / 4.0
  unbiased = 2 * e(-0.5) - 2 * cross
  biased = 2 * (1.0 + e(-0.5)) / 2.0 - 2 * cross
  assert_close(mmd_fn(bandwidth=1.0)(x, y), unbiased)
  assert_close(mmd_fn(bandwidth=1.0, estimator='biased')(x, y), biased)
  # IMQ, σ = 1: C = 2, k = 2 / (2 + d²).
  imq = lambda d2: 2.0 / (2.0 + d2)  # noqa: E731
  cross_imq = (imq(1.0) + 2 * imq(4.0) + imq(9.0)) / 4.0
  assert_close(mmd_fn(kernel='imq', bandwidth=1.0)(x, y), 2 * imq(1.0) - 2 * cross_imq)


def test_mmd_of_a_sample_with_itself():
  x = jax.random.normal(jax.random.key(0), (64, 3))
  for kernel in ('rbf', 'imq'):
    assert float(mmd_fn(kernel=kernel, estimator='biased')(x, x)) == 0.0
    # Unbiased: 2·mean_{i≠j} k − 2·mean_{i,j} k = (2/N)(mean_{i≠j} k − 1), slightly negative.
    k = losses.kernel_matrix(x, x, kernel=kernel)
    off = (float(k.sum()) - 64.0) / (64 * 63)
    value = float(mmd_fn(kernel=kernel)(x, x))
    assert value == pytest.approx(2.0 / 64 * (off - 1.0), abs=1e-6)
    assert -2.0 / 64 < value < 0.0


def test_shifted_gaussians_match_the_population_mmd_and_equal_ones_are_near_zero():
  dim, n = 2, 1000
  k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
  p = jax.random.normal(k1, (n, dim))
  p2 = jax.random.normal(k2, (n, dim))
  q = jax.random.normal(k3, (n, dim)) + 3.0  # N(3, 1) in every dimension
  # Default σ² = D = 2, ‖μ‖² = 18.
  expected = _gaussian_rbf_mmd2(18.0, dim, 2.0)
  assert expected == pytest.approx(0.8946, abs=1e-3)
  for estimator in ('unbiased', 'biased'):
    assert float(mmd_fn(estimator=estimator)(p, q)) == pytest.approx(expected, abs=0.03)
    assert abs(float(mmd_fn(estimator=estimator)(p, p2))) < 0.01
  assert float(mmd_fn(kernel='imq')(p, q)) > 0.3
  assert abs(float(mmd_fn(kernel='imq')(p, p2))) < 0.01


def test_mmd_is_symmetric_for_unequal_sample_sizes():
  x = jax.random.normal(jax.random.key(2), (20, 4))
  y = jax.random.normal(jax.random.key(3), (33, 4)) * 1.5 + 0.5
  for options in (
      {},
      {'estimator': 'biased'},
      {'kernel': 'imq'},
      {'bandwidth': (0.5, 1.0, 2.0)},
  ):
    assert_close(mmd_fn(**options)(x, y), mmd_fn(**options)(y, x), rtol=1e-5)


def test_several_bandwidths_sum_their_kernels():
  x = jax.random.normal(jax.random.key(4), (10, 3))
  y = jax.random.normal(jax.random.key(5), (12, 3)) + 1.0
  total = mmd_fn(bandwidth=(0.5, 2.0))(x, y)
  assert_close(total, mmd_fn(bandwidth=0.5)(x, y) + mmd_fn(bandwidth=2.0)(x, y), rtol=1e-5)
  # The default bandwidth is sqrt(D).
  assert_close(mmd_fn()(x, y), mmd_fn(bandwidth=math.sqrt(3.0))(x, y))


def test_mmd_gradient_pulls_the_codes_towards_the_prior_samples():
  z = jnp.full((16, 2), 2.0) + 0.1 * jax.random.normal(jax.random.key(6), (16, 2))
  prior = jax.random.normal(jax.random.key(7), (16, 2))
  grad = jax.grad(losses.mmd)(z, prior)
  # Gradient descent moves z towards the prior's mean (0): the gradient points away from it.
  assert float(jnp.mean(grad)) > 0.0


def test_mmd_rejects_bad_inputs():
  with pytest.raises(ValueError, match='one D'):
    losses.mmd(jnp.zeros((4, 2)), jnp.zeros((4, 3)))
  with pytest.raises(ValueError, match='kernel must be one of'):
    losses.mmd(jnp.zeros((4, 2)), jnp.zeros((4, 2)), kernel='laplace')
  with pytest.raises(ValueError, match='estimator must be one of'):
    losses.mmd(jnp.zeros((4, 2)), jnp.zeros((4, 2)), estimator='linear')
  with pytest.raises(ValueError, match='at least 2 samples'):
    losses.mmd(jnp.zeros((1, 2)), jnp.zeros((4, 2)))


def test_low_precision_samples_are_accumulated_in_float32():
  x = jax.random.normal(jax.random.key(8), (8, 2)).astype(jnp.bfloat16)
  assert losses.mmd(x, x * 2).dtype == jnp.float32


# ----------------------------------------------------------------------------------------------
# InfoVAE and MMD-VAE


def _vae_batch(batch=6, latents=3, shape=(4, 4, 1), seed=0):
  k = jax.random.split(jax.random.key(seed), 6)
  targets = jax.random.uniform(k[0], (batch, *shape))
  logits = 3.0 * jax.random.normal(k[1], (batch, *shape))
  mean = jax.random.normal(k[2], (batch, latents))
  logvar = 0.5 * jax.random.normal(k[3], (batch, latents))
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(k[4], (batch, latents))
  prior = jax.random.normal(k[5], (batch, latents))
  return logits, targets, mean, logvar, z, prior


def _by_hand(logits, targets, mean, logvar):
  l, x = np.asarray(logits, np.float64), np.asarray(targets, np.float64)
  recon = np.sum(np.logaddexp(0.0, l) - x * l, axis=(1, 2, 3))
  m, lv = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
  kl = 0.5 * np.sum(m**2 + np.exp(lv) - lv - 1.0, axis=1)
  return recon, kl


def test_info_vae_with_alpha_0_and_lambda_1_is_the_plain_vae():
  logits, targets, mean, logvar, z, prior = _vae_batch()
  recon, kl = _by_hand(logits, targets, mean, logvar)
  loss = jax.jit(functools.partial(losses.info_vae_loss, alpha=0.0, lambda_=1.0))
  value, terms = loss(logits, targets, mean, logvar, z, prior)
  assert_close(value, np.mean(recon + kl), rtol=1e-5)
  assert_close(terms['recon'], recon.mean(), rtol=1e-5)
  assert_close(terms['kl'], kl.mean(), rtol=1e-5)


def test_info_vae_weights_each_term_as_published():
  logits, targets, mean, logvar, z, prior = _vae_batch(seed=1)
  recon, kl = _by_hand(logits, targets, mean, logvar)
  divergence = float(losses.mmd(z, prior))
  alpha, lam = -0.5, 5.0
  value, terms = losses.info_vae_loss(
      logits, targets, mean, logvar, z, prior, alpha=alpha, lambda_=lam
  )
  expected = recon + (1 - alpha) * kl + (alpha + lam - 1) * divergence
  assert_close(value, expected.mean(), rtol=1e-5)
  assert_close(terms['mmd'], divergence)
  per_example, _ = losses.info_vae_loss(
      logits, targets, mean, logvar, z, prior, alpha=alpha, lambda_=lam, reduction='none'
  )
  assert_close(per_example, expected, rtol=1e-5)
  total, _ = losses.info_vae_loss(
      logits, targets, mean, logvar, z, prior, alpha=alpha, lambda_=lam, reduction='sum'
  )
  assert_close(total, expected.sum(), rtol=1e-5)


def test_mmd_vae_is_info_vae_with_alpha_1():
  logits, targets, mean, logvar, z, prior = _vae_batch(seed=2)
  mmd_vae = jax.jit(functools.partial(losses.mmd_vae_loss, lambda_=500.0))
  value, terms = mmd_vae(logits, targets, z, prior)
  info, _ = losses.info_vae_loss(
      logits, targets, mean, logvar, z, prior, alpha=1.0, lambda_=500.0
  )
  assert_close(value, info, rtol=1e-6)
  recon, _ = _by_hand(logits, targets, mean, logvar)
  assert_close(value, recon.mean() + 500.0 * float(losses.mmd(z, prior)), rtol=1e-5)
  assert set(terms) == {'recon', 'mmd'}

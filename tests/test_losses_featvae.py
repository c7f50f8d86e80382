"""Known-answer tests of the feature-VAE loss of Seitzer et al. (`losses.featvae`)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import losses

LOG2 = math.log(2.0)

# B = 2 examples of F = 3 features, C = 2 latents.
PRED = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
TARGET = jnp.zeros((2, 3))
MEAN = jnp.array([[1.0, 0.0], [0.0, 0.0]])
LOGVAR = jnp.array([[0.0, 0.0], [LOG2, 0.0]])
# Squared errors per example: 1 and 4. KL per example: 0.5·1 = 0.5 and 0.5·(2 − log 2 − 1).
SE = np.array([1.0, 4.0])
KL = np.array([0.5, 0.5 * (1.0 - LOG2)])


def assert_close(actual, expected, rtol=1e-6, atol=1e-7):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def test_published_normalisation_at_a_hand_computed_batch():
  loss = jax.jit(functools.partial(losses.feature_vae_loss, beta=0.4))
  value, terms = loss(PRED, TARGET, MEAN, LOGVAR)
  # Σ SE / B = 2.5; Σ KL / (B·C) = (0.5 + 0.1534) / 4.
  assert_close(terms['recon'], 2.5)
  assert_close(terms['kl'], KL.sum() / 4.0)
  assert_close(value, 2.5 + 0.4 * KL.sum() / 4.0)


def test_matches_the_formula_as_printed():
  k = jax.random.split(jax.random.key(0), 4)
  pred = jax.nn.sigmoid(jax.random.normal(k[0], (8, 512)))
  x = jax.random.uniform(k[1], (8, 512))
  mu = jax.random.normal(k[2], (8, 16))
  lv = 0.3 * jax.random.normal(k[3], (8, 16))
  b, c, beta = 8, 16, 0.005
  p, t, m, v = (np.asarray(a, np.float64) for a in (pred, x, mu, lv))
  printed = np.sum((p - t) ** 2) / b - 0.5 * beta / (b * c) * np.sum(
      1.0 + v - m**2 - np.exp(v)
  )
  value, _ = losses.feature_vae_loss(pred, x, mu, lv, beta=beta)
  assert_close(value, printed, rtol=1e-5)


def test_other_scalings():
  # Stage-1 config: sums over the batch, KL still / C.
  value, terms = losses.feature_vae_loss(PRED, TARGET, MEAN, LOGVAR, reduction='sum')
  assert_close(value, 5.0 + KL.sum() / 2.0)
  value, _ = losses.feature_vae_loss(PRED, TARGET, MEAN, LOGVAR, kl_per_latent=False)
  assert_close(value, 2.5 + KL.sum() / 2.0)
  value, terms = losses.feature_vae_loss(PRED, TARGET, MEAN, LOGVAR, recon_per_feature=True)
  assert_close(terms['recon'], (SE / 3.0).mean())
  per_example, _ = losses.feature_vae_loss(PRED, TARGET, MEAN, LOGVAR, reduction='none')
  assert_close(per_example, SE + KL / 2.0)


def test_beta_may_be_traced_and_inputs_of_low_precision_are_widened():
  def f(beta):
    return losses.feature_vae_loss(
        PRED.astype(jnp.bfloat16), TARGET, MEAN.astype(jnp.float16), LOGVAR, beta=beta
    )[0]

  value = jax.jit(f)(jnp.float32(2.0))
  assert value.dtype == jnp.float32
  assert_close(value, 2.5 + 2.0 * KL.sum() / 4.0, rtol=1e-3)
  assert_close(jax.grad(f)(1.0), KL.sum() / 4.0, rtol=1e-3)


def test_shape_mismatch_names_the_shapes():
  with pytest.raises(ValueError, match='same shape'):
    losses.feature_vae_loss(PRED, TARGET[:, :2], MEAN, LOGVAR)

"""Known-answer tests of the latent regularisers of Newson et al. (`losses.regularizers`)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import losses
from disentangle_jax.losses import regularizers


def assert_close(actual, expected, rtol=1e-6, atol=1e-6):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------
# Type 1: distance preservation

# Three 2-pixel "images" and 1-D codes. Image distances²: (0,1)=1, (0,2)=4, (1,2)=5.
# Code distances²: (0,1)=4, (0,2)=1, (1,2)=1. Gaps −3, 3, 4 → squared 9, 9, 16.
IMAGES = jnp.array([[[0.0, 0.0]], [[1.0, 0.0]], [[0.0, 2.0]]])  # [3, 1, 2]
CODES = jnp.array([[0.0], [2.0], [1.0]])


def test_distance_preservation_at_a_hand_computed_batch():
  loss = jax.jit(losses.distance_preservation_loss)
  assert_close(loss(CODES, IMAGES), 34.0 / 3.0)
  assert_close(losses.distance_preservation_loss(CODES, IMAGES, reduction='sum'), 34.0)
  assert_close(
      losses.distance_preservation_loss(CODES, IMAGES, reduction='none'), [9.0, 9.0, 16.0]
  )
  # s = 2: gaps 2 − 4, 8 − 1, 10 − 1 → 4, 49, 81.
  scaled = jax.jit(functools.partial(losses.distance_preservation_loss, image_scale=2.0))
  assert_close(scaled(CODES, IMAGES), 134.0 / 3.0)


def test_an_isometric_code_costs_nothing():
  images = jax.random.uniform(jax.random.key(0), (6, 3, 3, 1))
  flat = images.reshape(6, -1)
  q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(1), (9, 9)))
  loss = jax.jit(losses.distance_preservation_loss)
  assert float(loss(flat, images)) == pytest.approx(0.0, abs=1e-9)
  assert float(loss(flat @ q + 3.0, images)) == pytest.approx(0.0, abs=1e-8)  # rotation+shift
  assert float(loss(2.0 * flat, images)) > 0.1  # a stretched code is penalised


def test_pairwise_squared_distances_match_the_direct_computation():
  x = jax.random.normal(jax.random.key(2), (7, 4, 5))
  direct = np.sum(np.square(np.asarray(x)[:, None] - np.asarray(x)[None]), axis=(2, 3))
  d = regularizers.pairwise_squared_distances(x)
  assert_close(d, direct, rtol=1e-5, atol=1e-4)
  assert np.all(np.diag(np.asarray(d)) == 0.0)


def test_distance_preservation_gradient_reaches_the_codes():
  grad = jax.grad(losses.distance_preservation_loss)(CODES, IMAGES)
  # d/dz_a of mean_pairs gap²: gap = D_img − (z_a − z_b)², ∂/∂z_a = 2·gap·(−2(z_a − z_b)) / 3.
  # z = 0, 2, 1; gaps: (0,1) −3, (0,2) 3, (1,2) 4.
  g0 = (2 * -3.0 * -2 * (0 - 2) + 2 * 3.0 * -2 * (0 - 1)) / 3
  g1 = (2 * -3.0 * -2 * (2 - 0) + 2 * 4.0 * -2 * (2 - 1)) / 3
  g2 = (2 * 3.0 * -2 * (1 - 0) + 2 * 4.0 * -2 * (1 - 2)) / 3
  assert_close(grad, [[g0], [g1], [g2]])


def test_distance_preservation_rejects_bad_batches():
  with pytest.raises(ValueError, match='same batch size'):
    losses.distance_preservation_loss(CODES[:2], IMAGES)
  with pytest.raises(ValueError, match='at least 2'):
    losses.distance_preservation_loss(CODES[:1], IMAGES[:1])


# ----------------------------------------------------------------------------------------------
# Type 2: denoising


def test_gaussian_corruption_has_the_requested_level_and_is_reproducible():
  images = jnp.full((64, 16, 16, 1), 0.5)
  corrupt = jax.jit(functools.partial(losses.corrupt, noise_level=0.2))
  noisy = corrupt(jax.random.key(0), images)
  noise = np.asarray(noisy - images)
  assert abs(noise.mean()) < 0.005 and abs(noise.std() - 0.2) < 0.005
  np.testing.assert_array_equal(noisy, corrupt(jax.random.key(0), images))
  assert not np.array_equal(noisy, corrupt(jax.random.key(1), images))
  np.testing.assert_array_equal(losses.corrupt(jax.random.key(0), images, noise_level=0.0), images)
  clipped = losses.corrupt(jax.random.key(0), images, noise_level=1.0, clip=(0.0, 1.0))
  assert float(clipped.min()) == 0.0 and float(clipped.max()) == 1.0


def test_masking_corruption_zeroes_the_requested_fraction():
  images = jnp.ones((32, 16, 16, 1))
  noisy = losses.corrupt(jax.random.key(3), images, noise_level=0.25, kind='masking')
  assert set(np.unique(np.asarray(noisy))) == {0.0, 1.0}
  assert abs(float((noisy == 0).mean()) - 0.25) < 0.01
  with pytest.raises(ValueError, match='kind must be one of'):
    losses.corrupt(jax.random.key(3), images, kind='salt')


def test_denoising_loss_scores_against_the_clean_images():
  pred = jnp.array([[[1.0, 2.0]], [[0.0, -1.0]]])
  clean = jnp.zeros((2, 1, 2))
  # per example: ‖·‖² = 5 and 1.
  assert_close(jax.jit(losses.denoising_loss)(pred, clean), 3.0)
  assert_close(losses.denoising_loss(pred, clean, reduction='sum'), 6.0)
  assert_close(losses.denoising_loss(pred, clean, reduction='none'), [5.0, 1.0])
  assert_close(losses.denoising_loss(pred, clean, event_reduction='mean'), 1.5)
  with pytest.raises(ValueError, match='same shape'):
    losses.denoising_loss(pred, clean[:, :, :1])


def test_a_perfect_denoiser_costs_nothing_and_the_identity_pays_the_noise():
  clean = jax.random.uniform(jax.random.key(5), (128, 8, 8, 1))
  noisy = losses.corrupt(jax.random.key(6), clean, noise_level=0.1)
  assert float(losses.denoising_loss(clean, clean)) == 0.0
  # The identity map reproduces the noise: E‖η‖² = 64 σ² = 0.64 per image.
  assert float(losses.denoising_loss(noisy, clean)) == pytest.approx(0.64, rel=0.03)


# ----------------------------------------------------------------------------------------------
# Type 3: encoder weight decay


PARAMS = {
    'encoder': {
        'Dense_0': {'kernel': jnp.array([[1.0, 2.0], [3.0, 4.0]]), 'bias': jnp.array([1.0, 1.0])},
        'Conv_0': {'kernel': jnp.ones((3, 3, 1, 2)), 'bias': jnp.zeros((2,))},
        'BatchNorm_0': {'scale': jnp.full((2,), 2.0)},
    },
    'decoder': {'Dense_0': {'kernel': jnp.full((2, 2), 100.0)}},
}


def test_weight_decay_of_the_encoder_subtree_at_hand_computed_values():
  # Kernels: 1 + 4 + 9 + 16 = 30, plus 18 ones = 48. Biases 2, BatchNorm scale 8.
  wd = jax.jit(losses.weight_decay)
  assert_close(wd(PARAMS['encoder']), 48.0)
  assert_close(losses.weight_decay(PARAMS['encoder'], weights_only=False), 58.0)
  assert_close(wd(PARAMS['decoder']), 40000.0)
  assert float(losses.weight_decay({})) == 0.0


def test_weight_decay_gradient_is_2w_on_the_encoder_and_zero_on_the_decoder():
  grads = jax.grad(lambda p: losses.weight_decay(p['encoder']))(PARAMS)
  assert_close(grads['encoder']['Dense_0']['kernel'], 2.0 * PARAMS['encoder']['Dense_0']['kernel'])
  assert float(jnp.abs(grads['encoder']['Dense_0']['bias']).max()) == 0.0
  assert float(jnp.abs(grads['decoder']['Dense_0']['kernel']).max()) == 0.0


def test_regularisers_accumulate_low_precision_in_float32():
  half = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), PARAMS['encoder'])
  out = losses.weight_decay(half)
  assert out.dtype == jnp.float32
  assert_close(out, 48.0)
  d = losses.distance_preservation_loss(CODES.astype(jnp.float16), IMAGES.astype(jnp.bfloat16))
  assert d.dtype == jnp.float32
  assert_close(d, 34.0 / 3.0)

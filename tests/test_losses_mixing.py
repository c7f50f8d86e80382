"""Known-answer tests of the mixing autoencoder's losses (`disentangle_jax.losses.mixing`)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import losses
from disentangle_jax.losses import mixing

LOG2 = math.log(2.0)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def _linear_autoencoder(image_shape=(4, 4, 3), code_size=12, seed=0):
  """A small non-trivial encoder/decoder pair: linear maps with tanh, like the DCGAN ends."""
  pixels = int(np.prod(image_shape))
  k1, k2 = jax.random.split(jax.random.key(seed))
  w_enc = jax.random.normal(k1, (pixels, code_size)) / math.sqrt(pixels)
  w_dec = jax.random.normal(k2, (code_size, pixels)) / math.sqrt(code_size)

  def encode(x):
    return jax.nn.leaky_relu(x.reshape(x.shape[0], -1) @ w_enc, 0.2)

  def decode(f):
    return jnp.tanh(f @ w_dec).reshape(f.shape[0], *image_shape)

  return encode, decode


def _images(batch=5, shape=(4, 4, 3), seed=1):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return (
      jax.random.uniform(k1, (batch, *shape), minval=-1.0, maxval=1.0),
      jax.random.uniform(k2, (batch, *shape), minval=-1.0, maxval=1.0),
  )


# ----------------------------------------------------------------------------------------------
# Masks, mixing and unmixing


def test_shared_mask_is_one_row_repeated_and_per_example_masks_differ():
  sample = jax.jit(functools.partial(mixing.sample_chunk_mask, batch_size=64, num_chunks=8))
  shared = sample(jax.random.key(0))
  assert shared.shape == (64, 8) and shared.dtype == jnp.float32
  assert set(np.unique(np.asarray(shared))) <= {0.0, 1.0}
  np.testing.assert_array_equal(shared, np.broadcast_to(shared[:1], shared.shape))
  per_example = mixing.sample_chunk_mask(
      jax.random.key(0), batch_size=64, num_chunks=8, per_example=True
  )
  assert len({tuple(row) for row in np.asarray(per_example)}) > 10


def test_mask_is_bernoulli_half_per_chunk():
  keys = jax.random.split(jax.random.key(3), 2000)
  masks = jax.vmap(lambda k: mixing.sample_chunk_mask(k, batch_size=1, num_chunks=8))(keys)
  freq = np.asarray(masks).mean(axis=(0, 1))
  np.testing.assert_allclose(freq, 0.5, atol=0.05)
  # Constant masks are not excluded (the released code does not exclude them): 2·2000/256 ≈ 16.
  constant = np.all(masks == masks[:, :, :1], axis=(1, 2))
  assert 3 <= constant.sum() <= 40


def test_mix_codes_takes_each_chunk_from_the_masked_image():
  f1 = jnp.arange(2 * 6, dtype=jnp.float32).reshape(2, 6)  # 3 chunks of 2
  f2 = -f1 - 100.0
  mask = jnp.array([1.0, 0.0, 1.0])
  mixed = jax.jit(mixing.mix_codes)(f1, f2, mask)
  expected = np.array(
      [[0.0, 1.0, -102.0, -103.0, 4.0, 5.0], [6.0, 7.0, -108.0, -109.0, 10.0, 11.0]]
  )
  np.testing.assert_array_equal(mixed, expected)
  per_example = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
  np.testing.assert_array_equal(mixing.mix_codes(f1, f2, per_example), np.stack([f1[0], f2[1]]))
  np.testing.assert_array_equal(
      mixing.expand_chunk_mask(mask, 2), [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
  )


def test_unmix_restores_the_first_code_when_the_reencoding_is_exact():
  f1, f2 = _images(batch=4, shape=(12,), seed=5)
  mask = mixing.sample_chunk_mask(jax.random.key(2), batch_size=4, num_chunks=4, per_example=True)
  f3 = mixing.mix_codes(f1, f2, mask)
  np.testing.assert_array_equal(mixing.unmix_codes(f3, f1, mask), f1)


def test_mix_rejects_a_feature_size_that_is_not_a_multiple_of_the_chunk_count():
  with pytest.raises(ValueError, match='cannot be split into 4 equal chunks'):
    mixing.mix_codes(jnp.zeros((2, 10)), jnp.zeros((2, 10)), jnp.ones((4,)))
  with pytest.raises(ValueError, match='mask must be'):
    mixing.mix_codes(jnp.zeros((2, 8)), jnp.zeros((2, 8)), jnp.ones((3, 4)))


# ----------------------------------------------------------------------------------------------
# L_M and L_AE


def test_all_ones_mask_makes_x3_the_reconstruction_of_x1_and_lm_the_ae_loss_twice():
  encode, decode = _linear_autoencoder()
  x1, x2 = _images()
  mask = jnp.ones((5, 3))  # 3 chunks of 4

  @jax.jit
  def run(x1, x2, mask):
    p = mixing.mix_and_unmix(encode, decode, x1, x2, mask)
    return p, mixing.mixing_loss(p.unmixed_images, x1)

  p, l_m = run(x1, x2, mask)
  assert_close(p.mixed_images, decode(encode(x1)))
  assert_close(p.mixed_images, p.first_reconstructions)
  twice = decode(encode(decode(encode(x1))))
  assert_close(l_m, np.mean(np.square(np.asarray(twice) - np.asarray(x1))), rtol=1e-5)
  assert float(l_m) > 1e-3  # the network is far from the identity: the equality is not 0 = 0.


def test_all_zeros_mask_makes_x3_the_reconstruction_of_x2():
  encode, decode = _linear_autoencoder()
  x1, x2 = _images()
  p = mixing.mix_and_unmix(encode, decode, x1, x2, jnp.zeros((3,)))
  assert_close(p.mixed_images, p.second_reconstructions)
  # Every chunk of x4 is x1's own code: x4 is the plain reconstruction of x1.
  assert_close(p.unmixed_images, p.first_reconstructions)


@pytest.mark.parametrize('per_example', [False, True])
def test_identity_encoder_and_decoder_give_zero_mixing_loss(per_example):
  x1, x2 = _images(batch=6, shape=(2, 2, 4))
  encode = lambda x: x.reshape(x.shape[0], -1)  # noqa: E731
  decode = lambda f: f.reshape(f.shape[0], 2, 2, 4)  # noqa: E731
  mask = mixing.sample_chunk_mask(
      jax.random.key(4), batch_size=6, num_chunks=4, per_example=per_example
  )
  assert 0.0 < float(mask.mean()) < 1.0  # a genuine mix, not a trivial mask

  @jax.jit
  def run(x1, x2, mask):
    p = mixing.mix_and_unmix(encode, decode, x1, x2, mask)
    return p.mixed_images, mixing.mixing_loss(p.unmixed_images, x1)

  x3, l_m = run(x1, x2, mask)
  assert float(l_m) == 0.0
  assert float(jnp.mean(jnp.square(x3 - x1))) > 0.0  # x3 is a real mixture of the two


def test_mixing_loss_is_the_mean_over_all_elements_and_reduces_per_example():
  pred = jnp.array([[[1.0, -1.0]], [[0.5, 0.0]]])  # [2, 1, 2]
  target = jnp.zeros((2, 1, 2))
  # per example: (1 + 1)/2 = 1 and (0.25 + 0)/2 = 0.125.
  assert_close(jax.jit(mixing.mixing_loss)(pred, target), 0.5625)
  assert_close(mixing.mixing_loss(pred, target, reduction='sum'), 1.125)
  assert_close(mixing.mixing_loss(pred, target, reduction='none'), [1.0, 0.125])
  with pytest.raises(ValueError, match='same shape'):
    mixing.mixing_loss(pred, target[:, :, :1])


def test_losses_accumulate_low_precision_inputs_in_float32():
  pred = jnp.full((2, 3), 0.1, jnp.bfloat16)
  loss = mixing.mixing_loss(pred, jnp.zeros((2, 3), jnp.bfloat16))
  assert loss.dtype == jnp.float32
  logits = jnp.zeros((4, 8), jnp.float16)
  assert mixing.chunk_classifier_loss(logits, jnp.ones((8,))).dtype == jnp.float32
  assert mixing.gan_generator_loss(logits[:, :1]).dtype == jnp.float32


# ----------------------------------------------------------------------------------------------
# GAN and chunk classifier


def test_gan_losses_at_known_logits():
  disc = jax.jit(mixing.gan_discriminator_loss)
  gen = jax.jit(mixing.gan_generator_loss)
  zeros = jnp.zeros((3, 1))
  assert_close(disc(zeros, zeros), 2.0 * LOG2)
  assert_close(gen(zeros), LOG2)
  real = jnp.array([2.0, -1.0])
  fake = jnp.array([0.5, -3.0])
  # BCE(1, l) = log(1 + e^{−l}); BCE(0, l) = log(1 + e^{l}); each averaged over the batch.
  sp = lambda v: np.log1p(np.exp(v))  # noqa: E731
  expected_disc = np.mean(sp(-np.array([2.0, -1.0]))) + np.mean(sp(np.array([0.5, -3.0])))
  assert_close(disc(real, fake), expected_disc)
  assert_close(gen(fake), np.mean(sp(-np.array([0.5, -3.0]))))
  assert_close(
      mixing.gan_discriminator_loss(real, fake, reduction='none'),
      sp(-np.array([2.0, -1.0])) + sp(np.array([0.5, -3.0])),
  )
  # A confident, correct discriminator: both of its terms vanish, the generator's loss is large.
  assert float(disc(jnp.full((2,), 40.0), jnp.full((2,), -40.0))) < 1e-12
  assert_close(gen(jnp.full((2,), -40.0)), 40.0)


def test_generator_gradient_pushes_fake_logits_up():
  grad = jax.grad(mixing.gan_generator_loss)(jnp.array([0.0, 1.0]))
  # d/dl mean softplus(−l) = −σ(−l)/B.
  assert_close(grad, -jax.nn.sigmoid(-jnp.array([0.0, 1.0])) / 2.0)


def test_chunk_classifier_loss_is_zero_for_perfect_and_log2_for_zero_logits():
  mask = mixing.sample_chunk_mask(jax.random.key(7), batch_size=6, num_chunks=8, per_example=True)
  labels = mixing.chunk_origin_labels(mask)
  np.testing.assert_array_equal(labels, 1.0 - np.asarray(mask))
  loss = jax.jit(mixing.chunk_classifier_loss)
  perfect = 30.0 * (2.0 * labels - 1.0)
  assert float(loss(perfect, labels)) < 1e-12
  assert_close(loss(jnp.zeros((6, 8)), labels), LOG2)
  wrong = -perfect
  assert_close(loss(wrong, labels), 30.0, rtol=1e-6)
  # A shared [n] label vector broadcasts over the batch.
  assert_close(loss(jnp.zeros((6, 8)), labels[0]), LOG2)


def test_chunk_classifier_loss_at_a_hand_computed_value():
  logits = jnp.array([[1.0, -2.0], [0.0, 3.0]])
  targets = jnp.array([[1.0, 0.0], [1.0, 1.0]])
  # softplus(l) − y·l: [log(1+e^{-1}), log(1+e^{-2})], [log 2, log(1+e^{-3})].
  per_ex = np.array(
      [
          (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-2.0))) / 2,
          (LOG2 + np.log1p(np.exp(-3.0))) / 2,
      ]
  )
  assert_close(mixing.chunk_classifier_loss(logits, targets, reduction='none'), per_ex)
  assert_close(mixing.chunk_classifier_loss(logits, targets), per_ex.mean())
  with pytest.raises(ValueError, match='one label per chunk'):
    mixing.chunk_classifier_loss(logits, jnp.ones((3,)))


def test_gradients_reach_the_encoder_and_decoder_through_every_term():
  """A tiny end-to-end composition: L_M + L_AE + L_G + L_C all have non-zero, finite gradients."""
  image_shape = (4, 4, 3)
  pixels = int(np.prod(image_shape))
  k = jax.random.split(jax.random.key(11), 4)
  params = {
      'enc': jax.random.normal(k[0], (pixels, 8)) / math.sqrt(pixels),
      'dec': jax.random.normal(k[1], (8, pixels)) / math.sqrt(8),
      'disc': jax.random.normal(k[2], (pixels, 1)) / math.sqrt(pixels),
      'cls': jax.random.normal(k[3], (3 * pixels, 4)) / math.sqrt(3 * pixels),
  }
  x1, x2 = _images(batch=4, shape=image_shape)
  mask = mixing.sample_chunk_mask(jax.random.key(0), batch_size=4, num_chunks=4)

  def gen_loss(p):
    encode = lambda x: x.reshape(x.shape[0], -1) @ p['enc']  # noqa: E731
    decode = lambda f: jnp.tanh(f @ p['dec']).reshape(f.shape[0], *image_shape)  # noqa: E731
    out = mixing.mix_and_unmix(encode, decode, x1, x2, mask)
    flat = lambda x: x.reshape(x.shape[0], -1)  # noqa: E731
    cls_logits = jnp.concatenate([flat(x1), flat(x2), flat(out.mixed_images)], 1) @ p['cls']
    return (
        10.0 * losses.mixing_loss(out.unmixed_images, x1)
        + 10.0 * losses.mixing_loss(out.second_reconstructions, x2)
        + losses.gan_generator_loss(flat(out.mixed_images) @ p['disc'])
        + losses.chunk_classifier_loss(cls_logits, losses.chunk_origin_labels(mask))
    )

  grads = jax.jit(jax.grad(gen_loss))(params)
  for name in ('enc', 'dec', 'disc', 'cls'):
    g = np.asarray(grads[name])
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0.0, name

"""Known-answer tests of `disentangle_jax.losses`, every one under `jax.jit`."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import losses

LOG2 = math.log(2.0)


def jitted(fn, **static):
  """`fn` with its non-array keyword arguments bound, compiled."""
  return jax.jit(functools.partial(fn, **static))


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def _random_vae_inputs(batch=6, latents=3, shape=(4, 4, 1), seed=0):
  k = jax.random.split(jax.random.key(seed), 4)
  images = jax.random.uniform(k[0], (batch, *shape))
  logits = 3.0 * jax.random.normal(k[1], (batch, *shape))
  mean = jax.random.normal(k[2], (batch, latents))
  logvar = 0.5 * jax.random.normal(k[3], (batch, latents))
  return images, logits, mean, logvar


# ----------------------------------------------------------------------------------------------
# Primitives


def test_gaussian_kl_of_two_known_gaussians():
  # KL(N(1, 2) ‖ N(0, 1)) = 0.5·(0 − log 2 + (2 + 1)/1 − 1) = 1 − log(2)/2.
  # KL(N(1, 1) ‖ N(−1, 4)) = 0.5·(log 4 − 0 + (1 + 4)/4 − 1) = log 2 + 1/8.
  mean = jnp.array([[1.0, 1.0]])
  logvar = jnp.array([[LOG2, 0.0]])
  prior_mean = jnp.array([0.0, -1.0])
  prior_logvar = jnp.array([0.0, math.log(4.0)])
  expected = np.array([[1.0 - LOG2 / 2.0, LOG2 + 0.125]])
  kl = jitted(losses.gaussian_kl, event_reduction='none')
  assert_close(kl(mean, logvar, prior_mean, prior_logvar), expected)
  assert_close(jax.jit(losses.gaussian_kl)(mean, logvar, prior_mean, prior_logvar), expected.sum(1))
  kl_mean = jitted(losses.gaussian_kl, event_reduction='mean')
  assert_close(kl_mean(mean, logvar, prior_mean, prior_logvar), expected.mean(1))


def test_gaussian_kl_to_standard_normal_matches_the_dlib_formula_and_is_zero_at_the_prior():
  mean = jnp.array([[0.0, 0.0, 0.0], [0.5, -2.0, 1.0]])
  logvar = jnp.array([[0.0, 0.0, 0.0], [-1.0, 0.3, 0.0]])
  kl = jax.jit(losses.gaussian_kl)(mean, logvar)
  expected = 0.5 * np.sum(np.square(mean) + np.exp(logvar) - logvar - 1.0, axis=1)
  assert_close(kl, expected)
  assert float(kl[0]) == 0.0


def test_gaussian_log_density_matches_the_normal_pdf():
  x = jnp.array([0.0, 1.0, -2.0, 0.5])
  mean = jnp.array([0.0, 0.0, 1.0, 0.5])
  logvar = jnp.array([0.0, math.log(4.0), -1.0, 2.0])
  var = np.exp(np.asarray(logvar))
  expected = -0.5 * np.log(2 * np.pi * var) - 0.5 * np.square(x - mean) / var
  assert_close(jax.jit(losses.gaussian_log_density)(x, mean, logvar), expected)
  assert_close(losses.gaussian_log_density(0.0, 0.0, 0.0), -0.5 * math.log(2 * math.pi))


def test_reparameterize_is_mean_plus_std_times_noise_and_differentiable():
  rng = jax.random.key(3)
  mean = jnp.full((20000, 2), 3.0)
  logvar = jnp.log(jnp.array([[0.25, 4.0]])) * jnp.ones((20000, 1))
  z = jax.jit(losses.reparameterize)(rng, mean, logvar)
  eps = jax.random.normal(rng, mean.shape)
  assert_close(z, mean + jnp.exp(0.5 * logvar) * eps)
  assert_close(z.mean(0), [3.0, 3.0], atol=0.05)
  assert_close(z.std(0), [0.5, 2.0], rtol=0.03)
  grad_mean = jax.grad(lambda m: losses.reparameterize(rng, m, logvar).sum())(mean)
  assert_close(grad_mean, jnp.ones_like(mean))


def test_bernoulli_nll_at_known_logits():
  # logit 0: −log ½ whatever the target; logit log 3 (p = ¾): −log ¾ for x = 1, −log ¼ for x = 0.
  targets = jnp.array([[1.0, 0.0, 0.5, 1.0, 0.0]])
  logits = jnp.array([[0.0, 0.0, 0.0, math.log(3.0), math.log(3.0)]])
  expected = np.array([[LOG2, LOG2, LOG2, -math.log(0.75), -math.log(0.25)]])
  nll = jitted(losses.bernoulli_nll_logits, event_reduction='none')
  assert_close(nll(logits, targets), expected)
  assert_close(jax.jit(losses.bernoulli_nll_logits)(logits, targets), expected.sum(1))
  # Image-shaped input: summed over H, W, C per example.
  images = jnp.zeros((2, 3, 3, 1))
  assert_close(jax.jit(losses.bernoulli_nll_logits)(jnp.zeros_like(images), images), [9 * LOG2] * 2)


def test_bernoulli_nll_is_stable_at_large_logits_and_can_subtract_the_entropy():
  targets = jnp.array([[1.0, 0.0, 1.0, 0.0]])
  logits = jnp.array([[100.0, 100.0, -100.0, -100.0]])
  nll = jitted(losses.bernoulli_nll_logits, event_reduction='none')
  assert_close(nll(logits, targets), [[0.0, 100.0, 100.0, 0.0]], atol=1e-5)
  # For a target of ½ the minimum (logit 0) is the entropy log 2; with it subtracted, 0.
  nll_ent = jitted(losses.bernoulli_nll_logits, subtract_entropy=True)
  assert_close(nll_ent(jnp.array([[0.0]]), jnp.array([[0.5]])), [0.0], atol=1e-6)


def test_gaussian_nll_and_mse():
  x = jnp.array([[1.0, 3.0]])
  m = jnp.array([[0.0, 1.0]])
  assert_close(jax.jit(losses.gaussian_nll)(x, m), [0.5 * (1 + 4)])
  assert_close(jitted(losses.gaussian_nll, variance=2.0)(x, m), [0.25 * (1 + 4)])
  with_const = jitted(losses.gaussian_nll, include_constant=True)(x, m)
  assert_close(with_const, [2.5 + math.log(2 * math.pi)])
  assert_close(jax.jit(losses.mse)(x, m), [2.5])
  assert_close(jitted(losses.mse, event_reduction='sum')(x, m), [5.0])


def test_batch_cov_of_a_known_batch():
  z = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
  assert_close(jax.jit(losses.batch_cov)(z), [[0.5, 0.0], [0.0, 2.0]])
  # Perfectly correlated, with a non-zero mean: biased (÷B) covariance.
  z = jnp.array([[2.0, 3.0], [0.0, 1.0]])
  assert_close(jax.jit(losses.batch_cov)(z), [[1.0, 1.0], [1.0, 1.0]])
  rng = np.random.default_rng(0)
  z = rng.normal(size=(50, 4))
  assert_close(losses.batch_cov(z), np.cov(z, rowvar=False, bias=True), rtol=1e-4, atol=1e-5)


def test_reductions():
  values = jnp.arange(6.0).reshape(2, 3)
  assert_close(losses.reduce_events(values, 'sum'), [3.0, 12.0])
  assert_close(losses.reduce_events(values, 'mean'), [1.0, 4.0])
  assert_close(losses.reduce_batch(jnp.array([1.0, 3.0]), 'mean'), 2.0)
  assert_close(losses.reduce_batch(jnp.array([1.0, 3.0]), 'sum'), 4.0)
  with pytest.raises(ValueError, match='reduction'):
    losses.reduce_batch(values, 'avg')
  with pytest.raises(ValueError, match='event_reduction'):
    losses.reduce_events(values, 'avg')


# ----------------------------------------------------------------------------------------------
# Autoencoder, VAE, β-VAE


def test_reconstruction_likelihoods():
  images = jnp.array([[[[1.0]], [[0.0]]]])  # [1, 2, 1, 1]
  logits = jnp.zeros_like(images)  # sigmoid = ½
  rec = lambda lik: jitted(losses.reconstruction_loss, likelihood=lik)(logits, images)  # noqa
  assert_close(rec('bernoulli'), [2 * LOG2])
  assert_close(rec('gaussian'), [0.5 * (0.25 + 0.25)])
  assert_close(rec('mse'), [0.25 + 0.25])
  with pytest.raises(ValueError, match='likelihood'):
    losses.reconstruction_loss(logits, images, likelihood='poisson')
  with pytest.raises(ValueError, match='same shape'):
    losses.reconstruction_loss(logits, images[:, :1])


def test_autoencoder_loss_reductions():
  images = jnp.zeros((3, 2, 2, 1))
  logits = jnp.zeros_like(images)
  loss, terms = jax.jit(losses.autoencoder_loss)(logits, images)
  assert_close(loss, 4 * LOG2)
  assert_close(terms['recon'], loss)
  per_example, _ = jitted(losses.autoencoder_loss, reduction='none')(logits, images)
  assert per_example.shape == (3,)
  summed, _ = jitted(losses.autoencoder_loss, reduction='sum')(logits, images)
  assert_close(summed, 12 * LOG2)


def test_vae_loss_is_recon_plus_kl():
  images, logits, mean, logvar = _random_vae_inputs()
  loss, terms = jax.jit(losses.vae_loss)(logits, images, mean, logvar)
  recon = losses.bernoulli_nll_logits(logits, images)
  kl = losses.gaussian_kl(mean, logvar)
  assert_close(loss, jnp.mean(recon + kl), rtol=1e-6)
  assert_close(terms['recon'], recon.mean(), rtol=1e-6)
  assert_close(terms['kl'], kl.mean(), rtol=1e-6)
  loss_g, _ = jitted(losses.vae_loss, likelihood='gaussian')(logits, images, mean, logvar)
  expected_g = losses.gaussian_nll(jax.nn.sigmoid(logits), images) + kl
  assert_close(loss_g, expected_g.mean(), rtol=1e-6)


def test_normalized_beta_known_answer_and_inverse():
  assert losses.normalized_beta(4.0, 10, 4096) == 0.009765625
  assert losses.normalized_beta(4.0, 10, losses.input_size((64, 64, 1))) == 0.009765625
  assert losses.raw_beta(0.009765625, 10, 4096) == 4.0
  assert losses.raw_beta(losses.normalized_beta(6.0, 32, 12288), 32, 12288) == pytest.approx(6.0)


def test_beta_vae_raw_mode_is_recon_plus_beta_kl():
  images, logits, mean, logvar = _random_vae_inputs()
  loss, terms = jitted(losses.beta_vae_loss, beta=4.0)(logits, images, mean, logvar)
  assert_close(loss, terms['recon'] + 4.0 * terms['kl'], rtol=1e-6)
  vae, _ = losses.vae_loss(logits, images, mean, logvar)
  b1, _ = losses.beta_vae_loss(logits, images, mean, logvar, beta=1.0)
  assert_close(b1, vae, rtol=1e-6)


def test_beta_vae_normalized_mode_is_the_raw_loss_over_the_input_size():
  # With β_norm = β·M/N and mean reductions, loss_norm = (recon_sum + β·KL_sum) / N.
  shape, latents = (8, 8, 1), 5
  images, logits, mean, logvar = _random_vae_inputs(latents=latents, shape=shape)
  n = losses.input_size(shape)
  beta_norm = losses.normalized_beta(4.0, latents, n)
  norm_fn = jitted(losses.beta_vae_loss, beta_mode='normalized')
  loss_norm, terms = norm_fn(logits, images, mean, logvar, beta=beta_norm)
  loss_raw, raw_terms = jitted(losses.beta_vae_loss, beta=4.0)(logits, images, mean, logvar)
  assert_close(loss_norm, loss_raw / n, rtol=1e-5)
  assert_close(terms['recon'], raw_terms['recon'] / n, rtol=1e-5)  # per-pixel mean
  assert_close(terms['kl'], raw_terms['kl'] / latents, rtol=1e-5)  # per-latent mean
  with pytest.raises(ValueError, match='beta_mode'):
    losses.beta_vae_loss(logits, images, mean, logvar, beta_mode='norm')


def test_beta_accepts_a_traced_schedule_value():
  images, logits, mean, logvar = _random_vae_inputs()

  @jax.jit
  def at_step(step):
    beta = losses.schedules.linear_warmup(step, value=4.0, warmup_steps=10)
    return losses.beta_vae_loss(logits, images, mean, logvar, beta=beta)[0]

  recon, kl = (t.mean() for t in (losses.bernoulli_nll_logits(logits, images),
                                  losses.gaussian_kl(mean, logvar)))
  assert_close(at_step(0), recon, rtol=1e-6)
  assert_close(at_step(5), recon + 2.0 * kl, rtol=1e-6)
  assert_close(at_step(50), recon + 4.0 * kl, rtol=1e-6)


def test_annealed_vae_capacity_term():
  # One example, one latent: KL(N(1, 1) ‖ N(0, 1)) = 0.5; logits 0 on 4 pixels: 4·log 2.
  images = jnp.zeros((1, 2, 2, 1))
  logits = jnp.zeros_like(images)
  mean, logvar = jnp.ones((1, 1)), jnp.zeros((1, 1))
  fn = jitted(losses.annealed_vae_loss, gamma=1000.0)
  loss, terms = fn(logits, images, mean, logvar, capacity=0.25)
  assert_close(terms['capacity_term'], 1000.0 * 0.25, rtol=1e-6)
  assert_close(loss, 4 * LOG2 + 250.0, rtol=1e-6)
  loss_at_c, _ = fn(logits, images, mean, logvar, capacity=0.5)
  assert_close(loss_at_c, 4 * LOG2, rtol=1e-6)
  # The capacity term uses the batch-mean KL and is charged once per example.
  images2 = jnp.zeros((2, 2, 2, 1))
  mean2, logvar2 = jnp.array([[1.0], [0.0]]), jnp.zeros((2, 1))  # KLs 0.5 and 0: mean 0.25
  loss2, terms2 = fn(images2, jnp.zeros_like(images2), mean2, logvar2, capacity=0.0)
  assert_close(terms2['capacity_term'], 250.0, rtol=1e-6)
  assert_close(loss2, 4 * LOG2 + 250.0, rtol=1e-6)
  summed, _ = jitted(losses.annealed_vae_loss, gamma=1000.0, reduction='sum')(
      images2, jnp.zeros_like(images2), mean2, logvar2, capacity=0.0
  )
  assert_close(summed, 2 * loss2, rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# FactorVAE


def test_permute_dims_preserves_each_column_and_breaks_the_pairing():
  batch, latents = 64, 5
  # Every row is constant across columns: any cross-column pairing shows up as equal entries.
  z = jnp.tile(jnp.arange(batch, dtype=jnp.float32)[:, None], (1, latents))
  permuted = jax.jit(losses.permute_dims)(jax.random.key(0), z)
  assert permuted.shape == z.shape
  np.testing.assert_array_equal(np.sort(permuted, axis=0), np.asarray(z))  # same multisets
  rows_intact = np.all(permuted == permuted[:, :1], axis=1)
  assert rows_intact.mean() < 0.2  # a joint row survives only by chance
  # Each column gets its own permutation.
  for j in range(1, latents):
    assert not np.array_equal(permuted[:, 0], permuted[:, j])
  # Deterministic given the key, different for another key.
  again = losses.permute_dims(jax.random.key(0), z)
  np.testing.assert_array_equal(again, permuted)
  assert not np.array_equal(losses.permute_dims(jax.random.key(1), z), permuted)


def test_tc_estimate_sign_and_value():
  real_looking = jnp.array([[3.0, 1.0], [2.0, -1.0]])  # logit0 > logit1: dependent codes
  assert_close(jax.jit(losses.tc_estimate)(real_looking), 2.5)
  assert float(losses.tc_estimate(real_looking)) > 0
  assert float(losses.tc_estimate(-real_looking)) < 0
  per_example = jitted(losses.tc_estimate, reduction='none')(real_looking)
  assert_close(per_example, [2.0, 3.0])


def test_discriminator_loss_and_accuracy():
  zeros = jnp.zeros((4, 2))
  loss_fn = jax.jit(losses.discriminator_loss)
  assert_close(loss_fn(zeros, zeros), LOG2)  # chance
  confident = jnp.array([[20.0, -20.0]] * 4)
  # A perfect discriminator: probabilities clipped at 1 − 1e-6, so the loss is ≈ 1e-6, not 0.
  perfect = loss_fn(confident, -confident)
  assert_close(perfect, -math.log(1 - 1e-6), rtol=1e-2, atol=1e-7)
  # A totally wrong one: clipped at 1e-6, so at most −log(1e-6).
  assert_close(loss_fn(-confident, confident), -math.log(1e-6), rtol=1e-4)
  acc = jax.jit(losses.discriminator_accuracy)
  assert_close(acc(confident, -confident), 1.0)
  assert_close(acc(-confident, confident), 0.0)
  assert_close(acc(zeros, zeros), 0.5)
  assert_close(acc(confident, confident), 0.5)


def test_factor_vae_loss_is_recon_plus_kl_plus_gamma_tc():
  images, logits, mean, logvar = _random_vae_inputs()
  disc_logits = jax.random.normal(jax.random.key(9), (images.shape[0], 2))
  fn = jitted(losses.factor_vae_loss, gamma=35.0)
  loss, terms = fn(logits, images, mean, logvar, disc_logits)
  vae, _ = losses.vae_loss(logits, images, mean, logvar)
  tc = jnp.mean(disc_logits[:, 0] - disc_logits[:, 1])
  assert_close(loss, vae + 35.0 * tc, rtol=1e-5)
  assert_close(terms['tc'], tc, rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# β-TCVAE


def _legacy_matrix_by_flat_strides(batch_size, dataset_size):
  """The official code's construction, literally: strided writes into the flattened matrix."""
  n, m = dataset_size, batch_size - 1
  w = np.full((batch_size, batch_size), 1.0 / m)
  flat = w.reshape(-1)  # a view
  flat[:: m + 1] = 1.0 / n
  flat[1 :: m + 1] = (n - m) / (n * m)
  w[m - 1, 0] = (n - m) / (n * m)
  return w


@pytest.mark.parametrize('batch_size', [2, 3, 5, 64])
def test_mss_weight_matrix_rows_sum_to_one_and_the_legacy_matrix_differs(batch_size):
  n = 1000
  w = losses.importance_weight_matrix(batch_size, n)
  np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
  m = batch_size - 1
  np.testing.assert_allclose(np.diag(w), 1.0 / n)
  np.testing.assert_allclose(w[np.arange(batch_size), (np.arange(batch_size) + 1) % batch_size],
                             (n - m) / (n * m))
  legacy = losses.importance_weight_matrix(batch_size, n, legacy_bug=True)
  np.testing.assert_array_equal(legacy, _legacy_matrix_by_flat_strides(batch_size, n))
  assert not np.allclose(legacy, w)
  np.testing.assert_allclose(losses.log_importance_weight_matrix(batch_size, n), np.log(w))


def test_minibatch_estimates_with_identical_posteriors():
  # All posteriors equal: q(z) = q(z|x) and q(z_d) = q(z_d|x), so under MSS (rows summing to 1)
  # MI = TC = 0 and DWKL = log q(z|x) − log p(z) exactly.
  batch, latents = 6, 3
  mean = jnp.tile(jnp.array([[0.3, -1.0, 2.0]]), (batch, 1))
  logvar = jnp.tile(jnp.array([[-0.5, 0.2, 0.0]]), (batch, 1))
  z = losses.reparameterize(jax.random.key(0), mean, logvar)
  fn = jitted(losses.minibatch_log_densities, estimator='mss', dataset_size=100)
  d = fn(z, mean, logvar)
  assert_close(d.log_qz, d.log_qz_given_x, rtol=1e-5)
  per_dim = losses.gaussian_log_density(z, mean, logvar).sum(-1)
  assert_close(d.log_prod_qz, per_dim, rtol=1e-5)
  assert_close(d.log_pz, losses.gaussian_log_density(z, 0.0, 0.0).sum(-1), rtol=1e-6)
  # dlib's MWS without constants: log-sum-exp of B equal terms adds log B to each log-density,
  # so TC = log B − D·log B = −(D − 1)·log B.
  tc = jitted(losses.total_correlation, reduction='none')(z, mean, logvar)
  assert_close(tc, np.full(batch, -(latents - 1) * math.log(batch)), rtol=1e-5)
  # MWS with N given: each log-density is log q(·|x) − log N, so TC = (D − 1)·log N (MWS is
  # biased: it treats every other posterior as if it had weight 1/N).
  tc_mws = jitted(losses.total_correlation, dataset_size=100)(z, mean, logvar)
  assert_close(tc_mws, (latents - 1) * math.log(100), rtol=1e-5)


def test_minibatch_log_densities_match_a_loop():
  batch, latents, n = 5, 3, 50
  rng = np.random.default_rng(1)
  z, mean = rng.normal(size=(batch, latents)), rng.normal(size=(batch, latents))
  logvar = 0.3 * rng.normal(size=(batch, latents))

  def log_normal(x, m, lv):
    return -0.5 * ((x - m) ** 2 / np.exp(lv) + lv + np.log(2 * np.pi))

  for estimator in ('mws', 'mss'):
    if estimator == 'mws':
      log_w = np.full((batch, batch), -np.log(n * batch))
    else:
      log_w = np.log(losses.importance_weight_matrix(batch, n))
    fn = jitted(losses.minibatch_log_densities, estimator=estimator, dataset_size=n)
    d = fn(jnp.asarray(z, jnp.float32), jnp.asarray(mean, jnp.float32),
           jnp.asarray(logvar, jnp.float32))
    for i in range(batch):
      joint = [log_w[i, j] + log_normal(z[i], mean[j], logvar[j]).sum() for j in range(batch)]
      assert_close(d.log_qz[i], np.logaddexp.reduce(joint), rtol=1e-4)
      marginals = [np.logaddexp.reduce([log_w[i, j] + log_normal(z[i, k], mean[j, k], logvar[j, k])
                                        for j in range(batch)]) for k in range(latents)]
      assert_close(d.log_prod_qz[i], sum(marginals), rtol=1e-4)


def test_beta_tcvae_variants():
  images, logits, mean, logvar = _random_vae_inputs(batch=8)
  z = losses.reparameterize(jax.random.key(4), mean, logvar)
  chen = jitted(losses.beta_tcvae_loss, beta=6.0, dataset_size=1000)
  loss, t = chen(logits, images, mean, logvar, z)
  assert_close(loss, t['recon'] + t['mi'] + 6.0 * t['tc'] + t['dwkl'], rtol=1e-5)
  # MI + TC + DWKL = log q(z|x) − log p(z): a one-sample estimate of the KL.
  log_ratio = (losses.gaussian_log_density(z, mean, logvar).sum(-1)
               - losses.gaussian_log_density(z, 0.0, 0.0).sum(-1)).mean()
  assert_close(t['mi'] + t['tc'] + t['dwkl'], log_ratio, rtol=1e-4, atol=1e-4)
  dlib = jitted(losses.beta_tcvae_loss, beta=6.0, variant='dlib')
  loss_d, td = dlib(logits, images, mean, logvar, z)
  assert_close(td['tc'], losses.total_correlation(z, mean, logvar), rtol=1e-5)
  assert_close(loss_d, td['recon'] + td['kl'] + 5.0 * td['tc'], rtol=1e-5)
  legacy, _ = jitted(losses.beta_tcvae_loss, dataset_size=1000, mss_legacy_bug=True)(
      logits, images, mean, logvar, z
  )
  assert not np.isclose(float(legacy), float(loss))
  with pytest.raises(ValueError, match='dataset_size'):
    losses.beta_tcvae_loss(logits, images, mean, logvar, z)  # chen's MSS needs N


# ----------------------------------------------------------------------------------------------
# DIP-VAE


def test_dip_covariance_and_regularizer_of_a_known_batch():
  mean = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
  logvar = jnp.zeros_like(mean)
  cov_i = jitted(losses.dip_covariance, dip_type='i')(mean, logvar)
  assert_close(cov_i, [[0.5, 0.0], [0.0, 2.0]])
  cov_ii = jitted(losses.dip_covariance, dip_type='ii')(mean, logvar)
  assert_close(cov_ii, [[1.5, 0.0], [0.0, 3.0]])  # + E_b[diag(exp(logvar))] = + I
  reg = jax.jit(losses.dip_regularizer)
  # Diagonal only: λ_d·((0.5 − 1)² + (2 − 1)²) = 10·1.25.
  assert_close(reg(cov_i, lambda_od=1.0, lambda_d=10.0), 12.5)
  # Off-diagonal only: λ_od·(1² + 1²).
  assert_close(reg(jnp.array([[1.0, 1.0], [1.0, 1.0]]), lambda_od=3.0, lambda_d=10.0), 6.0)
  assert_close(reg(jnp.eye(3), lambda_od=5.0, lambda_d=5.0), 0.0)


def test_dip_vae_loss_default_weights():
  images, logits, mean, logvar = _random_vae_inputs()
  vae, _ = losses.vae_loss(logits, images, mean, logvar)
  for dip_type, factor in (('i', 10.0), ('ii', 1.0)):
    loss, terms = jitted(losses.dip_vae_loss, lambda_od=2.0, dip_type=dip_type)(
        logits, images, mean, logvar
    )
    cov = losses.dip_covariance(mean, logvar, dip_type=dip_type)
    expected = losses.dip_regularizer(cov, lambda_od=2.0, lambda_d=factor * 2.0)
    assert_close(terms['dip'], expected, rtol=1e-5)
    assert_close(loss, vae + expected, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Gradients


def test_gradients_of_every_loss_are_finite():
  images, logits, mean, logvar = _random_vae_inputs(batch=8)
  logits = logits * 30.0  # saturated logits must not produce NaN gradients
  rng = jax.random.key(2)

  def total(fn):
    def f(logits, mean, logvar):
      z = losses.reparameterize(rng, mean, logvar)
      disc = jnp.stack([z[:, 0], z[:, 1]], axis=1)
      return fn(logits, mean, logvar, z, disc)
    return f

  loss_fns = {
      'ae': lambda lo, m, lv, z, d: losses.autoencoder_loss(lo, images)[0],
      'vae_gaussian': lambda lo, m, lv, z, d: losses.vae_loss(
          lo, images, m, lv, likelihood='gaussian')[0],
      'betavae_norm': lambda lo, m, lv, z, d: losses.beta_vae_loss(
          lo, images, m, lv, beta=0.01, beta_mode='normalized')[0],
      'annealed': lambda lo, m, lv, z, d: losses.annealed_vae_loss(
          lo, images, m, lv, capacity=5.0)[0],
      'factorvae': lambda lo, m, lv, z, d: losses.factor_vae_loss(lo, images, m, lv, d)[0],
      'disc': lambda lo, m, lv, z, d: losses.discriminator_loss(
          d, losses.permute_dims(rng, d)),
      'tcvae_chen': lambda lo, m, lv, z, d: losses.beta_tcvae_loss(
          lo, images, m, lv, z, dataset_size=1000)[0],
      'tcvae_dlib': lambda lo, m, lv, z, d: losses.beta_tcvae_loss(
          lo, images, m, lv, z, variant='dlib')[0],
      'dip_ii': lambda lo, m, lv, z, d: losses.dip_vae_loss(
          lo, images, m, lv, dip_type='ii')[0],
  }
  for name, fn in loss_fns.items():
    value, grads = jax.jit(jax.value_and_grad(total(fn), argnums=(0, 1, 2)))(logits, mean, logvar)
    assert np.isfinite(float(value)), name
    for g in grads:
      assert np.all(np.isfinite(np.asarray(g))), name


def test_the_argument_convention_is_optax_s_and_keyword_friendly():
  images, logits, mean, logvar = _random_vae_inputs()
  by_position, _ = losses.vae_loss(logits, images, mean, logvar)
  by_keyword, _ = losses.vae_loss(targets=images, logits=logits, mean=mean, logvar=logvar)
  assert_close(by_keyword, by_position)
  # Bernoulli reads logits: swapping the arguments must change the value.
  swapped, _ = losses.vae_loss(images, logits, mean, logvar)
  assert not np.isclose(float(swapped), float(by_position))
  assert_close(losses.mse(predictions=jnp.ones((1, 2)), targets=jnp.zeros((1, 2))), [1.0])


def test_output_activation_of_the_gaussian_and_mse_likelihoods():
  logits = jnp.array([[[[0.3]], [[-2.0]]]]).reshape(2, 1, 1, 1)
  targets = jnp.array([0.1, -0.5]).reshape(2, 1, 1, 1)
  for act, fn in (('sigmoid', jax.nn.sigmoid), ('tanh', jnp.tanh), ('identity', lambda x: x)):
    got = losses.reconstruction_loss(logits, targets, likelihood='mse', output_activation=act)
    assert_close(got, ((fn(logits) - targets) ** 2).reshape(2))
  with pytest.raises(ValueError, match='output_activation'):
    losses.reconstruction_loss(logits, targets, likelihood='mse', output_activation='relu')


def test_low_precision_inputs_are_accumulated_in_float32():
  images, logits, mean, logvar = _random_vae_inputs(shape=(32, 32, 3))
  full, _ = losses.beta_vae_loss(logits, images, mean, logvar, beta=4.0)
  half = [x.astype(jnp.bfloat16) for x in (logits, images, mean, logvar)]
  low, terms = jax.jit(losses.beta_vae_loss)(*half)
  assert low.dtype == jnp.float32 and terms['recon'].dtype == jnp.float32
  # Only the inputs' rounding remains (bfloat16 has 8 bits of mantissa): summing 3,072 pixels in
  # bfloat16 would be off by far more.
  ref, _ = losses.beta_vae_loss(*[x.astype(jnp.float32) for x in half], beta=4.0)
  assert_close(low, ref, rtol=1e-6)
  assert_close(low, full, rtol=1e-2)

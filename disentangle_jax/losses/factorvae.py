"""FactorVAE (Kim & Mnih, ICML 2018, §3): a total-correlation penalty by density ratio.

A discriminator D: z -> 2 logits tells codes of the aggregate posterior q(z) (class 0, "real")
from codes whose dimensions were shuffled independently across the batch (class 1, "permuted"),
which are samples of Π_j q(z_j). Then `TC(z) ≈ E[logit₀(z) − logit₁(z)]`.

Where the gradients must stop (the functions below take logits, so the caller places them):
  * VAE loss: `tc_estimate(D(z))` with z the reparameterised sample. The gradient flows through
    z into the encoder; it must *not* update D (give each group its own optimizer and
    differentiate each loss with respect to its own group only).
  * Discriminator loss: `discriminator_loss(D(sg(z)), D(sg(permute_dims(z))))`, sg being
    `jax.lax.stop_gradient`.
    The codes are constants for D, so the discriminator's loss never reaches the encoder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common
from disentangle_jax.losses.reconstruction import reconstruction_loss

Array = jax.Array


def permute_dims(rng: jax.Array, z: ArrayLike) -> Array:
  """Shuffles every latent dimension independently across the batch.

  Each column of the result holds the same multiset of values as the same column of `z`, but the
  pairing across columns is broken: the rows are samples of the product of the marginals.
  Vectorised: one `argsort` of uniform noise gives an independent permutation per column.

  Args:
    rng: a PRNG key.
    z: [batch, latents].

  Returns:
    [batch, latents].
  """
  z = jnp.asarray(z)
  perms = jnp.argsort(jax.random.uniform(rng, z.shape), axis=0)
  return jnp.take_along_axis(z, perms, axis=0)


def tc_estimate(logits: ArrayLike, *, reduction: str = 'mean') -> Array:
  """Total-correlation estimate `logit₀(z) − logit₁(z)` from the discriminator's logits on z.

  With an optimal discriminator, `logit₀ − logit₁ = log q(z) / Π_j q(z_j)`, whose expectation is
  TC(z) ≥ 0. Positive values mean the codes look "real" (dependent) to the discriminator.

  Args:
    logits: [batch, 2] discriminator logits on the sampled codes z (class 0 = real).
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    A scalar ([batch] with 'none').
  """
  logits = jnp.asarray(logits)
  return common.reduce_batch(logits[:, 0] - logits[:, 1], reduction)


def discriminator_loss(
    real_logits: ArrayLike, permuted_logits: ArrayLike, *, eps: float = 1e-6
) -> Array:
  """The discriminator's cross-entropy, real codes as class 0 and permuted codes as class 1.

  `−[½ E_b log p₀(z) + ½ E_b log p₁(z̃)]` with p = softmax(logits) clipped to [eps, 1 − eps] (dlib).
  Pass logits computed on `stop_gradient` codes (see the module docstring).

  Args:
    real_logits: [batch, 2] logits on z.
    permuted_logits: [batch', 2] logits on z̃ = permute_dims(z) (or a second batch's codes).
    eps: the probability clipping.

  Returns:
    A scalar.
  """
  p_real = jax.nn.softmax(jnp.asarray(real_logits), axis=-1)
  p_perm = jax.nn.softmax(jnp.asarray(permuted_logits), axis=-1)
  return -(
      0.5 * jnp.mean(common.clipped_log(p_real[:, 0], eps))
      + 0.5 * jnp.mean(common.clipped_log(p_perm[:, 1], eps))
  )


def discriminator_accuracy(real_logits: ArrayLike, permuted_logits: ArrayLike) -> Array:
  """Balanced accuracy of the discriminator: the mean of its accuracies on real and on permuted.

  0.5 is chance; a discriminator that tells q(z) from Π_j q(z_j) scores above it.

  Args:
    real_logits: [batch, 2] logits on z (correct when class 0 wins).
    permuted_logits: [batch', 2] logits on permuted codes (correct when class 1 wins).

  Returns:
    A scalar in [0, 1].
  """
  real_logits, permuted_logits = jnp.asarray(real_logits), jnp.asarray(permuted_logits)
  real_ok = jnp.mean((real_logits[:, 0] > real_logits[:, 1]).astype(jnp.float32))
  perm_ok = jnp.mean((permuted_logits[:, 1] >= permuted_logits[:, 0]).astype(jnp.float32))
  return 0.5 * (real_ok + perm_ok)


def factor_vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    disc_logits: ArrayLike,
    *,
    gamma: ArrayLike = 35.0,
    likelihood: str = 'bernoulli',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """The FactorVAE VAE-side loss: `NLL + KL + γ · TC_est` (the KL weight is 1).

  Args:
    logits: [batch, H, W, C] decoder outputs for one sample z ~ q(z|x).
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [batch, latents].
    logvar: [batch, latents].
    disc_logits: [batch, 2] discriminator logits on that same z (not stop-gradient: the TC
      gradient reaches the encoder through z).
    gamma: the TC weight γ.
    likelihood: 'bernoulli', 'gaussian' or 'mse'.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, {'recon', 'kl', 'tc'})`, each reduced like the loss.
  """
  recon = reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction='sum')
  kl = common.gaussian_kl(mean, logvar, event_reduction='sum')
  tc = tc_estimate(disc_logits, reduction='none')
  loss = recon + kl + gamma * tc
  return common.reduce_batch(loss, reduction), {
      'recon': common.reduce_batch(recon, reduction),
      'kl': common.reduce_batch(kl, reduction),
      'tc': common.reduce_batch(tc, reduction),
  }

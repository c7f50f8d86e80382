"""The VAE, β-VAE (raw or normalised β) and AnnealedVAE losses (Kingma & Welling 2014; Higgins et al. 2017; Burgess et al. 2018).

Every loss takes the decoder's logits for one posterior sample, and the posterior's `mean` and
`logvar`; it returns `(loss, terms)` where `terms` holds each named term reduced like the loss,
so every term can be logged by name.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common
from disentangle_jax.losses.reconstruction import reconstruction_loss

Array = jax.Array

BETA_MODES = ('raw', 'normalized')


def add_batch_term(per_example: Array, batch_term: Array, reduction: str) -> Array:
  """Adds a batch-level scalar (a DIP penalty, a capacity term) to per-example values.

  The scalar is charged once per example, so that 'sum' is always `batch × 'mean'` and 'none'
  averages to 'mean'.

  Args:
    per_example: [batch].
    batch_term: scalar.
    reduction: 'mean', 'sum' or 'none'.
  """
  common.check_reduction(reduction)
  return common.reduce_batch(per_example + batch_term, reduction)


def vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    likelihood: str = 'bernoulli',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """The negative ELBO, `E_b[NLL(x | z) + KL(q(z|x) ‖ N(0, I))]` (dlib's reductions).

  Args:
    logits: [batch, H, W, C] decoder outputs for one sample z ~ q(z|x).
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [batch, latents] posterior means.
    logvar: [batch, latents] posterior log-variances.
    likelihood: 'bernoulli' (logits), 'gaussian' (fixed unit variance) or 'mse'.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, {'recon', 'kl'})`, each a scalar ([batch] with 'none'). Pixels and latents are summed.
  """
  return beta_vae_loss(
      logits, targets, mean, logvar, beta=1.0, beta_mode='raw', likelihood=likelihood,
      reduction=reduction,
  )


def beta_vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    beta: ArrayLike = 4.0,
    beta_mode: str = 'raw',
    likelihood: str = 'bernoulli',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """β-VAE: `NLL + β · KL`, with β raw or normalised (Higgins et al. 2017, §2).

  `beta_mode='raw'`: pixels and latents are summed (dlib); `beta` is the paper's β.
  `beta_mode='normalized'`: `beta` is β_norm = β·M/N (M latents, N pixels); the reconstruction
  is the per-pixel mean and the KL the per-latent mean. The normalised loss is then exactly the
  raw loss with β = β_norm·N/M divided by N, so both modes train alike under Adam.

  Args:
    logits: [batch, H, W, C] decoder outputs for one sample z ~ q(z|x).
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [batch, latents].
    logvar: [batch, latents].
    beta: the KL weight (β, or β_norm in 'normalized' mode); may be a traced schedule value.
    beta_mode: 'raw' or 'normalized'.
    likelihood: 'bernoulli', 'gaussian' or 'mse'.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, {'recon', 'kl'})`, each reduced like the loss, in the mode's units.
  """
  if beta_mode == 'raw':
    event_reduction = 'sum'
  elif beta_mode == 'normalized':
    event_reduction = 'mean'
  else:
    raise ValueError(f'beta_mode must be one of {BETA_MODES}, got {beta_mode!r}')
  recon = reconstruction_loss(
      logits, targets, likelihood=likelihood, event_reduction=event_reduction
  )
  kl = common.gaussian_kl(mean, logvar, event_reduction=event_reduction)
  loss = recon + beta * kl
  return common.reduce_batch(loss, reduction), {
      'recon': common.reduce_batch(recon, reduction),
      'kl': common.reduce_batch(kl, reduction),
  }


def normalized_beta(beta: float, latent_dim: int, input_size: int) -> float:
  """β_norm = β · M / N (Higgins et al. 2017): M = latent size, N = input size (H·W·C).

  Example: β = 4, M = 10, N = 64·64 gives 0.009765625.
  """
  return beta * latent_dim / input_size


def raw_beta(beta_norm: float, latent_dim: int, input_size: int) -> float:
  """The inverse of `normalized_beta`: β = β_norm · N / M."""
  return beta_norm * input_size / latent_dim


def input_size(image_shape) -> int:
  """N for `normalized_beta`: the number of scalars in one image, H·W·C."""
  return int(math.prod(image_shape))


def annealed_vae_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    capacity: ArrayLike,
    gamma: ArrayLike = 1000.0,
    likelihood: str = 'bernoulli',
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """AnnealedVAE (Burgess et al. 2018): `E_b[NLL] + γ · |E_b[KL] − C|` (Burgess et al. 2018, §4, eq. 8).

  As in dlib, the absolute value is taken of the *batch-mean* KL, so the capacity term is one
  batch-level scalar; it is charged once per example (see `add_batch_term`). `capacity` is
  usually `schedules.capacity(step, max_capacity=..., anneal_steps=...)`.

  Args:
    logits: [batch, H, W, C] decoder outputs for one sample z ~ q(z|x).
    targets: [batch, H, W, C] images (in [0, 1] for 'bernoulli').
    mean: [batch, latents].
    logvar: [batch, latents].
    capacity: C(t) in nats, a scalar.
    gamma: the weight γ of the capacity term.
    likelihood: 'bernoulli', 'gaussian' or 'mse'.
    reduction: over the batch: 'mean', 'sum' or 'none'.

  Returns:
    `(loss, {'recon', 'kl', 'capacity_term'})`: 'recon' and 'kl' reduced like the loss,
    'capacity_term' the batch-level scalar γ·|E_b[KL] − C|.
  """
  recon = reconstruction_loss(logits, targets, likelihood=likelihood, event_reduction='sum')
  kl = common.gaussian_kl(mean, logvar, event_reduction='sum')
  capacity_term = gamma * jnp.abs(jnp.mean(kl) - capacity)
  loss = add_batch_term(recon, capacity_term, reduction)
  return loss, {
      'recon': common.reduce_batch(recon, reduction),
      'kl': common.reduce_batch(kl, reduction),
      'capacity_term': capacity_term,
  }

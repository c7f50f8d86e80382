"""The loss of the VAE on aggregated image features (Seitzer, Foltyn, Kemeth 2020).

"Improved Disentanglement through Learned Aggregation of Convolutional Feature Maps", Seitzer,
Foltyn and Kemeth, NeurIPS 2019 Disentanglement Challenge report (arXiv 2002.12356, 2020), §2.3
("VAE Training"). The objective, as printed there and in the authors' released code (a Gaussian
likelihood with unit variance and no ½ factor):

    L = (1/B) Σ_b Σ_i (μ̂_bi − x_bi)²  −  0.5 · β/(B·C) · Σ_b Σ_j (1 + log σ²_bj − μ²_bj − σ²_bj)

with B the batch, F the feature size (512), C the latent size. The squared error is summed over
features and averaged over the batch; the KL is summed over latents and divided by B *and* by C,
"such that β can be varied independently of C".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disentangle_jax.losses import common

Array = jax.Array


def feature_vae_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    mean: ArrayLike,
    logvar: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    kl_per_latent: bool = True,
    recon_per_feature: bool = False,
    reduction: str = 'mean',
) -> tuple[Array, dict[str, Array]]:
  """Seitzer et al. (2020, §2.3): `Σ_i (μ̂ − x)²  +  β · KL / C`, averaged over the batch.

  The defaults are the published loss (and the released stage-2 config: `scale_loss_by_batch`,
  not `scale_loss_by_dims`, the KL divided by the latent size). `reduction='sum'` gives the
  released stage-1 config, whose losses are not divided by B.

  Args:
    predictions: [B, F] the decoder's mean μ̂ (after its output activation: sigmoid as published,
      identity in the stage-1 config).
    targets: [B, F] the aggregated features x.
    mean: [B, C] posterior means.
    logvar: [B, C] posterior log-variances.
    beta: the KL weight β (a scalar; may be a traced schedule value, e.g. the cosine schedule of
      `disentangle_jax.losses.schedules`).
    kl_per_latent: divide the KL by C (published); False keeps nats per example.
    recon_per_feature: divide the squared error by F (the released code's `scale_loss_by_dims`,
      off in both released configs).
    reduction: over the batch: 'mean' (÷ B, published), 'sum' or 'none'.

  Returns:
    `(loss, {'recon', 'kl'})`: 'recon' the scaled squared error, 'kl' the scaled KL before β,
    each reduced like the loss; at least float32.
  """
  predictions, targets = common.as_float(predictions), common.as_float(targets)
  if predictions.shape != targets.shape:
    raise ValueError(
        f'predictions {predictions.shape} and targets {targets.shape} must have the same shape'
    )
  common.check_reduction(reduction)
  squared = jnp.square(predictions - targets).reshape(targets.shape[0], -1)
  recon = jnp.mean(squared, axis=1) if recon_per_feature else jnp.sum(squared, axis=1)
  kl = common.gaussian_kl(mean, logvar, event_reduction='mean' if kl_per_latent else 'sum')
  return common.reduce_batch(recon + beta * kl, reduction), {
      'recon': common.reduce_batch(recon, reduction),
      'kl': common.reduce_batch(kl, reduction),
  }

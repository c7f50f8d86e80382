"""FactorVAE (Kim & Mnih, ICML 2018): a VAE plus a total-correlation discriminator.

Two parameter groups with their own optimizers, updated simultaneously on one batch (dlib):
  'vae':           NLL + KL + γ·TC_est, TC_est = E_b[D(z)₀ − D(z)₁]; its gradient reaches the
                   encoder through z, and is applied to the VAE only.
  'discriminator': cross-entropy of D on z (class 0) against z̃ = permute_dims(z) (class 1), both
                   under stop_gradient, so the discriminator's loss never reaches the encoder.

Config (`config.objective`), on top of the VAE's (`latent_dim`, `likelihood`):
  name:   'factorvae'
  gamma:  the TC weight γ (dlib study: 10–100; 1Konny's dSprites script: 35)
  two_batches: False (dlib: z̃ permutes the same batch's codes). True (the paper): the batch is
          split in halves; the VAE trains on the first, z̃ permutes the second half's codes.
  discriminator_optimizer: the discriminator's optimizer config (dlib: Adam 1e-4, β = 0.5, 0.9)
Networks: `config.model.encoder`, `config.model.decoder`, `config.model.discriminator`
(default 'mlp_discriminator': 6 × 1000 LeakyReLU(0.2), 2 logits).
Metrics: 'tc' (the estimate), 'disc_loss', 'disc_accuracy' (on real vs permuted codes; 0.5 is
chance), plus the VAE's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from disentangle_jax import losses as loss_lib
from disentangle_jax.objectives import register
from disentangle_jax.objectives._common import build_network
from disentangle_jax.objectives.base import rng_stream
from disentangle_jax.objectives._vae_core import VAECore, posterior_metrics
from disentangle_jax.optimizers import make_optimizer


@register('factorvae')
class FactorVAE(VAECore):
  """FactorVAE with dlib's defaults: one batch, both optimizer steps per iteration."""

  groups = ('vae', 'discriminator')
  update_order = 'simultaneous'
  name = 'factorvae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.gamma = float(self.hparam('gamma'))
    self.two_batches = bool(self.hparam('two_batches', False))
    self.discriminator_config = self.hparam('discriminator_optimizer')
    self.discriminator = build_network(config, 'discriminator', 'mlp_discriminator', num_outputs=2)

  def init(self, rng, batch):
    k_vae, k_disc = jax.random.split(rng)
    vae_params, state = self.init_vae(k_vae, batch['image'])
    codes = jnp.zeros((batch['image'].shape[0], self.latent_dim), batch['image'].dtype)
    disc_params, disc_state = self.discriminator.init(k_disc, codes)
    return (
        {'vae': vae_params, 'discriminator': disc_params},
        {**state, 'discriminator': disc_state},
    )

  def optimizers(self):
    return {
        'vae': make_optimizer(self.config.optimizer),
        'discriminator': make_optimizer(self.discriminator_config),
    }

  def discriminate(self, disc_params, model_state, codes, rng):
    """Logits [B, 2] (class 0 = real, 1 = permuted) and the discriminator's new state."""
    return self.discriminator.apply(
        disc_params, model_state['discriminator'], codes, train=True, rng=rng
    )

  def losses(self, params, model_state, batch, rng, step):
    del step
    images = batch['image']
    if self.two_batches:
      half = images.shape[0] // 2
      if half < 1:
        raise ValueError('factorvae two_batches needs a batch of at least 2 examples')
      images, other_images = images[:half], images[half : 2 * half]
    mean, logvar, z, logits, new_state = self.forward(params['vae'], model_state, images, rng)

    disc_rng = rng_stream(rng, 'dropout_discriminator')
    # VAE side: D(z) with z differentiable; the step applies this loss to the 'vae' group only.
    disc_logits, _ = self.discriminate(params['discriminator'], model_state, z, disc_rng)
    vae_loss, terms = loss_lib.factor_vae_loss(
        logits, images, mean, logvar, disc_logits, gamma=self.gamma, likelihood=self.likelihood
    )

    # Discriminator side: codes are constants.
    real = jax.lax.stop_gradient(z)
    if self.two_batches:
      other_mean, other_logvar, _ = self.posterior(
          params['vae'], model_state, other_images, train=True,
          rng=rng_stream(rng, 'dropout_encoder_second_batch'),
      )
      other_z = loss_lib.reparameterize(rng_stream(rng, 'reparam_second_batch'),
                                        other_mean, other_logvar)
      source = jax.lax.stop_gradient(other_z)
    else:
      source = real
    permuted = loss_lib.permute_dims(rng_stream(rng, 'permute'), source)
    both = jnp.concatenate([real, permuted], axis=0)
    both_logits, disc_state = self.discriminate(
        params['discriminator'], model_state, both, disc_rng
    )
    real_logits, permuted_logits = jnp.split(both_logits, [real.shape[0]], axis=0)
    disc_loss = loss_lib.discriminator_loss(real_logits, permuted_logits)

    new_state = {**new_state, 'discriminator': disc_state}
    metrics = {
        **terms,
        **posterior_metrics(mean, logvar),
        'gamma': jnp.asarray(self.gamma, jnp.float32),
        'disc_loss': disc_loss,
        'disc_accuracy': loss_lib.discriminator_accuracy(real_logits, permuted_logits),
    }
    return {'vae': vae_loss, 'discriminator': disc_loss}, (new_state, metrics)

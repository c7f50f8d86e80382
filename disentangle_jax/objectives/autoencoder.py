"""The deterministic autoencoder: encoder → z (latent_dim) → decoder, reconstruction only.

Config (`config.objective`):
  name:             'ae'
  latent_dim:       size of the code z
  likelihood:       'bernoulli' (logits, the default) | 'gaussian' | 'mse'
  event_reduction:  over pixels: 'sum' (default, nats per image) | 'mean' (per pixel: the PCA-like
                    autoencoder's notebook and the mixing autoencoder's code use means)
Networks: `config.model.encoder` (latent_dim outputs), `config.model.decoder`.
Optimizer: `config.optimizer`. Group: 'ae'. The representation is z itself; there is no prior.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses.reconstruction import LIKELIHOODS
from disentangle_jax.objectives import register
from disentangle_jax.objectives._common import build_decoder, build_encoder, init_encoder_decoder
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer

EVENT_REDUCTIONS = ('sum', 'mean')


@register('ae')
class Autoencoder(Objective):
  """A deterministic autoencoder (the baseline of the mixing and PCA-like autoencoders)."""

  groups = ('ae',)
  name = 'ae'

  def __init__(self, config, data):
    super().__init__(config, data)
    owner = f'objective {self.name!r}'
    self._latent_dim = int(self.hparam('latent_dim'))
    self.likelihood = self.hparam('likelihood', 'bernoulli')
    if self.likelihood not in LIKELIHOODS:
      raise ValueError(
          f'config.objective.likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}'
      )
    self.event_reduction = self.hparam('event_reduction', 'sum')
    if self.event_reduction not in EVENT_REDUCTIONS:
      raise ValueError(f'config.objective.event_reduction must be one of {EVENT_REDUCTIONS}, '
                       f'got {self.event_reduction!r}')
    self.encoder = build_encoder(config, self._latent_dim, owner)
    self.decoder = build_decoder(config, self.image_shape, owner)

  @property
  def latent_dim(self) -> int:
    return self._latent_dim

  def init(self, rng, batch):
    params, state = init_encoder_decoder(self.encoder, self.decoder, rng, batch['image'],
                                         self._latent_dim, self.condition(batch))
    return {'ae': params}, state

  def optimizers(self):
    return {'ae': make_optimizer(self.config.optimizer)}

  def losses(self, params, model_state, batch, rng, step):
    del step
    images, cond = batch['image'], self.condition(batch)
    p = params['ae']
    z, enc_state = self.encoder.apply(
        p['encoder'], model_state['encoder'], images, cond, train=True,
        rng=rng_stream(rng, 'dropout_encoder'),
    )
    logits, dec_state = self.decoder.apply(
        p['decoder'], model_state['decoder'], z, cond, train=True,
        rng=rng_stream(rng, 'dropout_decoder'),
    )
    loss, terms = loss_lib.autoencoder_loss(
        logits, images, likelihood=self.likelihood, event_reduction=self.event_reduction
    )
    metrics = {**terms, 'code_std': jnp.mean(jnp.std(z, axis=0))}
    return {'ae': loss}, ({'encoder': enc_state, 'decoder': dec_state}, metrics)

  def encode(self, params, model_state, images, cond=None):
    z, _ = self.encoder.apply(
        params['ae']['encoder'], model_state['encoder'], images, cond, train=False
    )
    return z

  def decode(self, params, model_state, codes, cond=None):
    logits, _ = self.decoder.apply(
        params['ae']['decoder'], model_state['decoder'], codes, cond, train=False
    )
    return jax.nn.sigmoid(logits)

"""An autoencoder with an L2 reconstruction and one of Newson et al.'s latent regularisers.

Newson, Almansa, Gousseau and Ladjal, "Processing Simple Geometric Attributes with Autoencoders"
(JMIV 2020): a centred-disk autoencoder with a 1-D code, trained without the radii of a band,
interpolates across the band only when its encoder is regularised. The loss is the plain squared
L2 reconstruction ‖D(E(x)) − x‖²₂ (summed over pixels, averaged over the batch) plus λ times

  'none':                  nothing (the unregularised baseline)
  'distance':              type 1, distance preservation over every pair of the batch,
                           E_{x,x'} (s·‖x − x'‖²₂ − ‖E(x) − E(x')‖²₂)² (`distance_preservation_loss`)
  'denoising':             type 2: the reconstruction term itself becomes ‖D(E(x + η)) − x‖²₂ with
                           η ~ N(0, σ²) (`corrupt`, `denoising_loss`; λ is unused)
  'encoder_weight_decay':  type 3, Σ ‖W‖²₂ over the encoder's kernels only, the decoder left free
                           (`weight_decay`)

Config (`config.objective`):
  name:          'regularized_ae'
  latent_dim:    the code size (1 in the paper)
  regularizer:   one of the above (default 'none')
  reg_weight:    λ (default 1e-2)
  noise_level:   σ of the denoising corruption (default 0.1, images in [0, 1])
  image_scale:   s of the distance preservation (default 1)
  output:        'linear' (default: the decoder's output is the image, as needed for a positively
                 homogeneous decoder without biases) | 'sigmoid'
Networks: `config.model.encoder` / `config.model.decoder` ('disk_conv' or 'disk_conv_nobias').
Optimizer: `config.optimizer`. Group: 'ae'. The representation is the code; there is no prior.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from disentangle_jax.losses.regularizers import (corrupt, denoising_loss,
                                                 distance_preservation_loss, weight_decay)
from disentangle_jax.objectives import register
from disentangle_jax.objectives._common import build_decoder, build_encoder, init_encoder_decoder
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer

REGULARIZERS = ('none', 'distance', 'denoising', 'encoder_weight_decay')
OUTPUTS = ('linear', 'sigmoid')


@register('regularized_ae')
class RegularizedAutoencoder(Objective):
  """An L2 autoencoder with an optional latent regulariser (Newson et al. 2020)."""

  groups = ('ae',)
  name = 'regularized_ae'

  def __init__(self, config, data):
    super().__init__(config, data)
    owner = f'objective {self.name!r}'
    self._latent_dim = int(self.hparam('latent_dim'))
    self.regularizer = self.hparam('regularizer', 'none')
    if self.regularizer not in REGULARIZERS:
      raise ValueError(f'config.objective.regularizer must be one of {REGULARIZERS}, got '
                       f'{self.regularizer!r}')
    self.reg_weight = float(self.hparam('reg_weight', 1e-2))
    self.noise_level = float(self.hparam('noise_level', 0.1))
    self.image_scale = float(self.hparam('image_scale', 1.0))
    self.output = self.hparam('output', 'linear')
    if self.output not in OUTPUTS:
      raise ValueError(f'config.objective.output must be one of {OUTPUTS}, got {self.output!r}')
    self.encoder = build_encoder(config, self._latent_dim, owner)
    self.decoder = build_decoder(config, self.image_shape, owner)

  @property
  def latent_dim(self) -> int:
    return self._latent_dim

  def init(self, rng, batch):
    params, state = init_encoder_decoder(self.encoder, self.decoder, rng, batch['image'],
                                         self._latent_dim)
    return {'ae': params}, state

  def optimizers(self):
    return {'ae': make_optimizer(self.config.optimizer)}

  def _output(self, raw):
    return jax.nn.sigmoid(raw) if self.output == 'sigmoid' else raw

  def losses(self, params, model_state, batch, rng, step):
    del step
    images = batch['image']
    p = params['ae']
    inputs = images
    if self.regularizer == 'denoising':
      inputs = corrupt(rng_stream(rng, 'corruption'), images, noise_level=self.noise_level)
    z, enc_state = self.encoder.apply(p['encoder'], model_state['encoder'], inputs, train=True)
    raw, dec_state = self.decoder.apply(p['decoder'], model_state['decoder'], z, train=True)
    # Against the clean images in every case: with 'denoising' this is the denoising term.
    rec = denoising_loss(self._output(raw), images, event_reduction='sum')
    if self.regularizer == 'distance':
      reg = distance_preservation_loss(z, images, image_scale=self.image_scale)
    elif self.regularizer == 'encoder_weight_decay':
      reg = weight_decay(p['encoder'])
    else:
      reg = jnp.zeros((), jnp.float32)
    loss = rec + self.reg_weight * reg
    metrics = {'reconstruction': rec, 'regularizer': reg, 'code_std': jnp.mean(jnp.std(z, 0))}
    return {'ae': loss}, ({'encoder': enc_state, 'decoder': dec_state}, metrics)

  def encode(self, params, model_state, images, cond=None):
    del cond
    z, _ = self.encoder.apply(params['ae']['encoder'], model_state['encoder'], images,
                              train=False)
    return z

  def decode(self, params, model_state, codes, cond=None):
    del cond
    raw, _ = self.decoder.apply(params['ae']['decoder'], model_state['decoder'], codes,
                                train=False)
    return jnp.clip(self._output(raw), 0.0, 1.0)

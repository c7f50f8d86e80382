"""The mixing autoencoder of Hu, Szabó, Portenier, Favaro and Zwicker ("Disentangling Factors of
Variation by Mixing Them", CVPR 2018), with the ablation rows of its Sprites table.

The encoder's feature `f = lrelu(Enc(x))` (size n·d) is read as n chunks of d values. One step on
a batch of 2B images: the first B are x1, the last B are x2 (two independent images per pair: the
pipeline shuffles every epoch, so the halves of a batch are independent draws; splitting one batch
keeps the data iterator, its checkpoint and its sharding as for every other objective). Then
(losses.mixing): f1 = Enc(x1), f2 = Enc(x2); a chunk mask m (1 = from x1); x3 = Dec(m⊙f1 +
(1−m)⊙f2); f3 = Enc(x3); x4 = Dec(m⊙f3 + (1−m)⊙f1), whose target is x1.

Three parameter groups, each with its own optimizer, updated one after another on the same batch
and the same mask (`update_order='sequential'`, the released code's order):
  'generator'     = encoder + decoder:
                    λ_AE·[L_AE(x2) + L_AE(x1) if ae_on_x1] + λ_M·L_M + λ_G·L_G + λ_C·L_C
  'classifier'    : L_C, the sigmoid cross-entropy of C(x1, x2, x3) (stacked along channels)
                    against the chunk-origin labels 1 − m (1 = the chunk came from x2)
  'discriminator' : L_D = BCE(1, D(x1)) + BCE(0, D(x3)), x3 a constant for it
The generator's loss reaches the classifier's and the discriminator's outputs through x3, and the
step applies its gradient to the generator's parameters only (TF `var_list` semantics). L_C is
cooperative (minimised by the generator and the classifier alike), L_G adversarial. L_M, L_AE are
squared errors averaged over all elements, on images in [−1, 1] with a tanh decoder (the released
code); `decode` returns (tanh + 1) / 2 in [0, 1] as the protocol asks, and `encode` returns the
chunked feature f [B, n·d] that the retrieval metric scores chunk by chunk.
D and C run in train mode (batch statistics; D sees x1 and x3 in separate calls, as the released
code's two discriminator calls). Their running statistics are carried in the model state and move
in their own group's pass only (`model_state_owners`); no evaluation or picture uses them, and
so the classifier's pass does not run D and the discriminator's pass does not run C.

Config (`config.objective`):
  name: 'mixing'
  num_chunks, chunk_size: n and d (Sprites 8 × 64 in the released code)
  mix, ae, cls, gan: the ablation flags (the Sprites table's rows: AE = ae; C+G = cls, gan;
      AE+C+G; MIX = mix, ae; MIX+C; MIX+G; MIX+C+G = all four). A group whose loss is off is not
      built (no classifier without `cls`, no discriminator without `gan`).
  lambda_mix (10), lambda_ae (10), lambda_gan (1), lambda_cls (1): the weights of the released
      code; ae_on_x1 (True): L_AE on x1 too (the released code's x1 weight comes from a line that
      does not parse; we weight both images by λ_AE)
  mask_per_example (False: one mask per minibatch as the released code), mask_p_first (0.5)
  feature_activation ('leaky_relu': lrelu(0.2) of the encoder's last dense layer, the released
      code's feature; None keeps the dense output)
  classifier_optimizer, discriminator_optimizer: their optimizer configs (default: a copy of
      `config.optimizer`); the generator uses `config.optimizer`
  pictures: {num_pairs (6), max_chunks (8), num_masks (6)}: caps of the transfer and mixing grids
Networks: `config.model.encoder` (n·d outputs, 'dcgan'), `config.model.decoder` ('dcgan'),
`config.model.discriminator` ('dcgan_discriminator'), `config.model.classifier` ('alexnet_bn';
'alexnet_bn_small' below 60 px), each with `<role>_kwargs`.
Metrics: the loss terms ('mix', 'ae_x1', 'ae_x2', 'gen_adv', 'cls', 'disc'), the classifier's
chunk accuracy, D's outputs on real and mixed images, and the feature's scale.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.losses import mixing as mixing_lib
from disentangle_jax.objectives import register
from disentangle_jax.objectives._common import (build_decoder, build_encoder, build_network,
                                                to_kwargs)
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer

#: The ablation rows of the Sprites table (Hu et al. 2018) as flag sets, by config spelling.
VARIANTS = {
    'ae': dict(mix=False, ae=True, cls=False, gan=False),
    'c_g': dict(mix=False, ae=False, cls=True, gan=True),
    'ae_c_g': dict(mix=False, ae=True, cls=True, gan=True),
    'mix': dict(mix=True, ae=True, cls=False, gan=False),
    'mix_c': dict(mix=True, ae=True, cls=True, gan=False),
    'mix_g': dict(mix=True, ae=True, cls=False, gan=True),
    'mix_c_g': dict(mix=True, ae=True, cls=True, gan=True),
}
#: The table's row names.
VARIANT_TITLES = {'ae': 'AE', 'c_g': 'C+G', 'ae_c_g': 'AE+C+G', 'mix': 'MIX', 'mix_c': 'MIX+C',
                  'mix_g': 'MIX+G', 'mix_c_g': 'MIX+C+G'}
FEATURE_ACTIVATIONS = (None, 'leaky_relu')


def to_unit(images: jax.Array) -> jax.Array:
  """[0, 1] images (the pipeline's) to the released code's [−1, 1]."""
  return 2.0 * images - 1.0


def from_unit(images: jax.Array) -> jax.Array:
  """[−1, 1] images back to [0, 1]."""
  return (images + 1.0) * 0.5


@register('mixing')
class MixingAutoencoder(Objective):
  """The mixing autoencoder and its ablations; groups built only where their loss is on."""

  update_order = 'sequential'
  name = 'mixing'

  def __init__(self, config, data):
    super().__init__(config, data)
    owner = f'objective {self.name!r}'
    self.num_chunks = int(self.hparam('num_chunks'))
    self.chunk_size = int(self.hparam('chunk_size'))
    if self.num_chunks < 1 or self.chunk_size < 1:
      raise ValueError(f'config.objective.num_chunks and chunk_size must be >= 1, got '
                       f'{self.num_chunks} and {self.chunk_size}')
    self.flags = {k: bool(self.hparam(k)) for k in ('mix', 'ae', 'cls', 'gan')}
    if not (self.flags['mix'] or self.flags['ae'] or self.flags['cls'] or self.flags['gan']):
      raise ValueError('config.objective: every loss is off (mix, ae, cls, gan all False); turn '
                       'at least one on')
    self.lambda_mix = float(self.hparam('lambda_mix', 10.0))
    self.lambda_ae = float(self.hparam('lambda_ae', 10.0))
    self.lambda_gan = float(self.hparam('lambda_gan', 1.0))
    self.lambda_cls = float(self.hparam('lambda_cls', 1.0))
    self.ae_on_x1 = bool(self.hparam('ae_on_x1', True))
    self.mask_per_example = bool(self.hparam('mask_per_example', False))
    self.mask_p_first = float(self.hparam('mask_p_first', 0.5))
    self.feature_activation = self.hparam('feature_activation', 'leaky_relu')
    if self.feature_activation not in FEATURE_ACTIVATIONS:
      raise ValueError(f'config.objective.feature_activation must be one of '
                       f'{FEATURE_ACTIVATIONS}, got {self.feature_activation!r}')
    self.picture_settings = to_kwargs(self.hparam('pictures', None))

    groups = ['generator']
    if self.flags['cls']:
      groups.append('classifier')
    if self.flags['gan']:
      groups.append('discriminator')
    self.groups = tuple(groups)  # the paper's order: generator, classifier, discriminator

    self.encoder = build_encoder(config, self.latent_dim, owner)
    self.decoder = build_decoder(config, self.image_shape, owner)
    small = min(self.image_shape[:2]) < 60
    self.classifier = (
        build_network(config, 'classifier', 'alexnet_bn_small' if small else 'alexnet_bn',
                      num_outputs=self.num_chunks) if self.flags['cls'] else None)
    self.discriminator = (
        build_network(config, 'discriminator', 'dcgan_discriminator', num_outputs=1)
        if self.flags['gan'] else None)

  @property
  def latent_dim(self) -> int:
    return self.num_chunks * self.chunk_size

  # -- networks -------------------------------------------------------------------------------

  def _features(self, params, model_state, images, train: bool):
    """f = lrelu(Enc(x)) for images in [−1, 1]; returns (features, new encoder state)."""
    f, state = self.encoder.apply(params['encoder'], model_state['encoder'], images,
                                  train=train)
    if self.feature_activation == 'leaky_relu':
      f = jax.nn.leaky_relu(f, 0.2)
    return f, state

  def _images(self, params, model_state, codes, train: bool):
    """tanh(Dec(f)), images in [−1, 1]; returns (images, new decoder state)."""
    x, state = self.decoder.apply(params['decoder'], model_state['decoder'], codes, train=train)
    return jnp.tanh(x), state

  def init(self, rng, batch):
    images = to_unit(batch['image'])
    k_enc, k_dec, k_cls, k_disc = jax.random.split(rng, 4)
    enc_params, enc_state = self.encoder.init(k_enc, images)
    codes = jnp.zeros((images.shape[0], self.latent_dim), images.dtype)
    dec_params, dec_state = self.decoder.init(k_dec, codes)
    params = {'generator': {'encoder': enc_params, 'decoder': dec_params}}
    state = {'encoder': enc_state, 'decoder': dec_state}
    if self.classifier is not None:
      stacked = jnp.concatenate([images] * 3, axis=-1)
      params['classifier'], state['classifier'] = self.classifier.init(k_cls, stacked)
    if self.discriminator is not None:
      params['discriminator'], state['discriminator'] = self.discriminator.init(k_disc, images)
    return params, state

  def optimizers(self):
    base = self.config.optimizer
    out = {'generator': make_optimizer(base)}
    for group in self.groups[1:]:
      out[group] = make_optimizer(self.hparam(f'{group}_optimizer', None) or base)
    return out

  # -- one step's losses ----------------------------------------------------------------------

  def split_pairs(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x1 = the first half of the batch, x2 = the second half (B = batch // 2 pairs)."""
    half = images.shape[0] // 2
    if half < 1:
      raise ValueError(f'the mixing objective needs a batch of at least 2 images (x1 and x2), '
                       f'got {images.shape[0]}; raise config.batch_size')
    return images[:half], images[half:2 * half]

  def model_state_owners(self) -> dict[str, str]:
    return {name: name for name in ('classifier', 'discriminator') if name in self.groups}

  def sample_mask(self, rng, num_pairs: int) -> jax.Array:
    """[B, n] chunk mask, 1 = chunk from x1 (one draw per batch unless `mask_per_example`)."""
    return mixing_lib.sample_chunk_mask(
        rng_stream(rng, 'mix_mask'), batch_size=num_pairs, num_chunks=self.num_chunks,
        per_example=self.mask_per_example, p_first=self.mask_p_first)

  def losses(self, params, model_state, batch, rng, step):
    del step
    x1, x2 = self.split_pairs(to_unit(batch['image']))
    gen = params['generator']
    state = dict(model_state)

    # Enc and Dec have no running statistics (instance norm): their state passes through.
    def encode_fn(x):
      return self._features(gen, model_state, x, train=True)[0]

    def decode_fn(f):
      return self._images(gen, model_state, f, train=True)[0]

    mask = self.sample_mask(rng, x1.shape[0])
    out = mixing_lib.mix_and_unmix(encode_fn, decode_fn, x1, x2, mask)
    x3 = out.mixed_images
    metrics = {'feature_mean': jnp.mean(out.first_codes),
               'feature_std': jnp.mean(jnp.std(out.first_codes, axis=0))}

    zero = jnp.zeros((), jnp.float32)
    gen_loss = zero
    if self.flags['ae']:
      ae_x2 = mixing_lib.mixing_loss(out.second_reconstructions, x2)
      ae_x1 = mixing_lib.mixing_loss(out.first_reconstructions, x1)
      gen_loss += self.lambda_ae * (ae_x2 + (ae_x1 if self.ae_on_x1 else 0.0))
      metrics.update(ae_x1=ae_x1, ae_x2=ae_x2)
    if self.flags['mix']:
      mix = mixing_lib.mixing_loss(out.unmixed_images, x1)
      gen_loss += self.lambda_mix * mix
      metrics['mix'] = mix
    losses = {}
    if self.flags['cls']:
      stacked = jnp.concatenate([x1, x2, x3], axis=-1)
      logits, state['classifier'] = self.classifier.apply(
          params['classifier'], model_state['classifier'], stacked, train=True,
          rng=rng_stream(rng, 'dropout_classifier'))
      labels = mixing_lib.chunk_origin_labels(mask)
      cls = mixing_lib.chunk_classifier_loss(logits, labels)
      gen_loss += self.lambda_cls * cls
      losses['classifier'] = cls
      metrics['cls'] = cls
      metrics['cls_accuracy'] = jnp.mean(((logits > 0) == (labels > 0.5)).astype(jnp.float32))
    if self.flags['gan']:
      disc_rng = rng_stream(rng, 'dropout_discriminator')
      disc_params = params['discriminator']
      real_logits, disc_state = self.discriminator.apply(
          disc_params, model_state['discriminator'], x1, train=True, rng=disc_rng)
      fake_logits, disc_state = self.discriminator.apply(
          disc_params, disc_state, x3, train=True, rng=disc_rng)
      state['discriminator'] = disc_state
      gen_adv = mixing_lib.gan_generator_loss(fake_logits)
      # L_D is differentiated w.r.t. the discriminator only (the step's groups), so x3 acts as a
      # constant in it, as stop_gradient(x3) would make it; one call on x3 serves both losses.
      disc = mixing_lib.gan_discriminator_loss(real_logits, fake_logits)
      gen_loss += self.lambda_gan * gen_adv
      losses['discriminator'] = disc
      metrics.update(gen_adv=gen_adv, disc=disc,
                     disc_real=jnp.mean(jax.nn.sigmoid(real_logits)),
                     disc_fake=jnp.mean(jax.nn.sigmoid(fake_logits)))
    losses = {'generator': gen_loss, **losses}
    return losses, (state, metrics)

  # -- representation -------------------------------------------------------------------------

  def encode(self, params, model_state, images, cond=None):
    del cond
    return self._features(params['generator'], model_state, to_unit(images), train=False)[0]

  def decode(self, params, model_state, codes, cond=None):
    del cond
    return from_unit(self._images(params['generator'], model_state, codes, train=False)[0])

  def latent_activity(self, params, model_state, images, cond=None) -> np.ndarray:
    codes = np.asarray(self.jitted('encode')(params, model_state, images))
    return codes.var(axis=0)

  def pictures(self, params, model_state, batch, rng):
    """Reconstructions, one attribute-transfer grid per chunk (at most `pictures.max_chunks`,
    the most varying), the cumulative transfer and the mixing grid (`visualization.transfer`)."""
    from disentangle_jax.visualization import transfer  # pylint: disable=g-import-not-at-top

    del rng
    encode = self.jitted('encode')
    decode = self.jitted('decode')
    return transfer.mixing_pictures(
        lambda x: np.asarray(encode(params, model_state, x)),
        lambda f: np.asarray(decode(params, model_state, f)),
        np.asarray(batch['image']), num_chunks=self.num_chunks,
        seed=int(self.config.get('seed', 0)), **self.picture_settings)

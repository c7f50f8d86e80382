"""The PCA-like autoencoder: a latent grown one component (or packet) per stage.

Ladjal, Newson and Pham, "A PCA-like Autoencoder" (arXiv 2019), and Pham, Ladjal and Newson,
"PCA-AE: Principal Component Analysis Autoencoder for Organising the Latent Space of Generative
Networks" (JMIV 2022). Stage k (1..K) trains a new encoder head E(k) with p outputs (p = 1 in the
papers) and a new decoder D_k of the p·k-dimensional code z = [E(1)(x), …, E(k)(x)]; the earlier
heads are fixed ("each encoder E(i) is trained, and then fixed; at each iteration the decoder is
thrown away, and a new one is trained"). The loss at stage k is

    λ_rec · rec(D_k(z), x) + λ_cov · L_cov^(k)(z),

`L_cov` being the covariance of the new component(s) with the earlier ones
(`losses.pcaae_covariance_loss`). Every head ends with a BatchNorm without learned scale or shift,
so every component is zero-mean with unit variance over the batch.

Every head and decoder is allocated at the start, as its own parameter group 'stage_k' (with its own
Adam, fresh when its stage starts, as the notebook's per-stage optimizer). Stage k trains group
'stage_k' only: the loop neither differentiates nor updates the others, and the loss stops the
gradient at the frozen heads' outputs, so their gradients are exactly zero. The frozen heads run
their BatchNorm in inference mode, on the running statistics they ended their stage with [ours;
the notebook leaves them in training mode, i.e. on each batch's statistics, which
`frozen_batch_norm='batch'` reproduces without updating the stored statistics]; their statistics
never change after their stage.

Config (`config.objective`):
  name:              'pcaae'
  num_stages:        K, how many stages (heads)
  packet_size:       p, components added per stage (default 1); the code at stage k has p·k
  steps_per_stage:   steps of each stage; `config.total_steps` should be K·steps_per_stage
  cov_weight:        λ_cov (default 1; 0 gives the "PCA-AE without covariance loss" baseline)
  rec_weight:        λ_rec (default 1)
  reconstruction:    'bce_mean' (the notebook: binary cross-entropy of the sigmoid output averaged
                     over every pixel, default) | 'l2_sum' (the slides: ‖x − D(z)‖²₂ summed over
                     pixels, averaged over the batch; re-tune λ_cov, the scale is ~H·W larger)
  normalization:     the covariance loss's 'k_minus_1' (notebook, default) | 'k' (slides)
  bn_epsilon:        the latent BatchNorm's ε (default 1e-5; the notebook's 0 divides by zero on a
                     constant batch)
  bn_momentum:       its running-average momentum (default 0.9 = PyTorch's 0.1)
  frozen_batch_norm: 'running' (default) | 'batch' (see above)
Networks: `config.model.encoder` (each head, p outputs) and `config.model.decoder` (each stage's
decoder). Optimizer: `config.optimizer`, one per group. The representation at stage k is the p·k
components live at that stage (`for_stage(k − 1).encode`); the objective built from a config is the
last stage's. There is no prior: the code is standardised, so pictures traverse ±2 standard units.
"""

from __future__ import annotations

import copy

import flax.linen as nn
import jax
import jax.numpy as jnp

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses.pcaae import NORMALIZATIONS, pcaae_covariance_loss
from disentangle_jax.objectives import register
from disentangle_jax.objectives._common import Network, build_decoder, build_encoder
from disentangle_jax.objectives.base import Objective, Stage, rng_stream
from disentangle_jax.optimizers import make_optimizer

RECONSTRUCTIONS = ('bce_mean', 'l2_sum')
FROZEN_BATCH_NORMS = ('running', 'batch')


class LatentNorm(nn.Module):
  """BatchNorm without learned scale or shift (Ioffe & Szegedy 2015 with γ = 1, β = 0): each
  component zero-mean with unit variance over the batch in training, over the running statistics
  otherwise. `update_stats=False` normalises by the batch but leaves the running statistics."""

  epsilon: float = 1e-5
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False, update_stats: bool = True):
    x = jnp.asarray(x, jnp.promote_types(x.dtype, jnp.float32))
    ra_mean = self.variable('batch_stats', 'mean', jnp.zeros, x.shape[-1:], jnp.float32)
    ra_var = self.variable('batch_stats', 'var', jnp.ones, x.shape[-1:], jnp.float32)
    if not train:
      mean, var = ra_mean.value, ra_var.value
    else:
      mean = jnp.mean(x, axis=0)
      var = jnp.mean(jnp.square(x - mean), axis=0)
      if update_stats and not self.is_initializing():
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return (x - mean) * jax.lax.rsqrt(var + self.epsilon)


def group_name(stage: int) -> str:
  """The parameter group of stage `stage` (0-based): 'stage_1', 'stage_2', …"""
  return f'stage_{stage + 1}'


@register('pcaae')
class PCAAE(Objective):
  """The PCA-like autoencoder (Ladjal et al. 2019; Pham et al. 2022)."""

  name = 'pcaae'

  def __init__(self, config, data, stage: int | None = None):
    super().__init__(config, data)
    owner = f'objective {self.name!r}'
    self.num_stages = int(self.hparam('num_stages'))
    self.packet_size = int(self.hparam('packet_size', 1))
    self.steps_per_stage = int(self.hparam('steps_per_stage'))
    if self.num_stages < 1 or self.packet_size < 1 or self.steps_per_stage < 1:
      raise ValueError('config.objective.num_stages, packet_size and steps_per_stage must be >= 1, '
                       f'got {self.num_stages}, {self.packet_size}, {self.steps_per_stage}')
    self.cov_weight = float(self.hparam('cov_weight', 1.0))
    self.rec_weight = float(self.hparam('rec_weight', 1.0))
    self.reconstruction = self.hparam('reconstruction', 'bce_mean')
    if self.reconstruction not in RECONSTRUCTIONS:
      raise ValueError(f'config.objective.reconstruction must be one of {RECONSTRUCTIONS}, got '
                       f'{self.reconstruction!r}')
    self.normalization = self.hparam('normalization', 'k_minus_1')
    if self.normalization not in NORMALIZATIONS:
      raise ValueError(f'config.objective.normalization must be one of {NORMALIZATIONS}, got '
                       f'{self.normalization!r}')
    self.frozen_batch_norm = self.hparam('frozen_batch_norm', 'running')
    if self.frozen_batch_norm not in FROZEN_BATCH_NORMS:
      raise ValueError(f'config.objective.frozen_batch_norm must be one of {FROZEN_BATCH_NORMS}, '
                       f'got {self.frozen_batch_norm!r}')
    self.groups = tuple(group_name(i) for i in range(self.num_stages))
    self.stage = self.num_stages - 1 if stage is None else int(stage)
    if not 0 <= self.stage < self.num_stages:
      raise ValueError(f'stage {self.stage} is not one of the {self.num_stages} stages')
    self.encoder = build_encoder(config, self.packet_size, owner)
    self.decoder = build_decoder(config, self.image_shape, owner)
    self.norm = Network(LatentNorm(epsilon=float(self.hparam('bn_epsilon', 1e-5)),
                                   momentum=float(self.hparam('bn_momentum', 0.9))))

  # -- stages -----------------------------------------------------------------------------------

  def stages(self):
    return tuple(Stage(f'component_{i + 1}' if self.packet_size == 1 else f'packet_{i + 1}',
                       self.steps_per_stage, (group_name(i),)) for i in range(self.num_stages))

  def for_stage(self, index):
    index = int(index)
    if index == self.stage:
      return self
    other = copy.copy(self)
    other.stage = index
    other._jitted = {}
    if not 0 <= index < self.num_stages:
      raise ValueError(f'stage {index} is not one of the {self.num_stages} stages')
    return other

  @property
  def latent_dim(self) -> int:
    return self.packet_size * (self.stage + 1)

  # -- training ---------------------------------------------------------------------------------

  def init(self, rng, batch):
    images, cond = batch['image'], self.condition(batch)
    params, state = {}, {}
    for i in range(self.num_stages):
      k_enc, k_dec = jax.random.split(jax.random.fold_in(rng, i))
      enc_params, enc_state = self.encoder.init(k_enc, images, cond)
      h = jnp.zeros((images.shape[0], self.packet_size), images.dtype)
      _, norm_state = self.norm.init(k_enc, h)
      codes = jnp.zeros((images.shape[0], self.packet_size * (i + 1)), images.dtype)
      dec_params, dec_state = self.decoder.init(k_dec, codes, cond)
      params[group_name(i)] = {'encoder': enc_params, 'decoder': dec_params}
      state[group_name(i)] = {'encoder': enc_state, 'norm': norm_state, 'decoder': dec_state}
    return params, state

  def optimizers(self):
    return {g: make_optimizer(self.config.optimizer) for g in self.groups}

  def _head(self, params, model_state, i, images, cond, *, mode: str, rng=None):
    """Head i's standardised components [B, p] and its new state. mode: 'train' (this stage's
    head), 'frozen' (an earlier head during training) or 'eval'."""
    g = group_name(i)
    p, s = params[g]['encoder'], model_state[g]
    train = mode == 'train'
    h, enc_state = self.encoder.apply(p, s['encoder'], images, cond, train=train,
                                      rng=None if rng is None else rng_stream(rng, f'dropout_{g}'))
    if mode == 'frozen' and self.frozen_batch_norm == 'batch':
      z = self.norm.module.apply(s['norm'], h, train=True, update_stats=False)
      norm_state = s['norm']
    else:
      z, norm_state = self.norm.apply({}, s['norm'], h, train=train)
    if not train:
      enc_state, norm_state = s['encoder'], s['norm']
    return z, {**s, 'encoder': enc_state, 'norm': norm_state}

  def losses(self, params, model_state, batch, rng, step):
    del step
    images, cond = batch['image'], self.condition(batch)
    k = self.stage
    new_state = dict(model_state)
    components = []
    for i in range(k):
      z_i, _ = self._head(params, model_state, i, images, cond, mode='frozen')
      components.append(jax.lax.stop_gradient(z_i))
    z_k, head_state = self._head(params, model_state, k, images, cond, mode='train', rng=rng)
    components.append(z_k)
    z = jnp.concatenate(components, axis=-1)
    g = group_name(k)
    logits, dec_state = self.decoder.apply(
        params[g]['decoder'], model_state[g]['decoder'], z, cond, train=True,
        rng=rng_stream(rng, f'dropout_decoder_{g}'),
    )
    new_state[g] = {**head_state, 'decoder': dec_state}
    rec = self._reconstruction(logits, images)
    cov = pcaae_covariance_loss(z, num_new=self.packet_size, normalization=self.normalization)
    loss = self.rec_weight * rec + self.cov_weight * cov
    metrics = {'reconstruction': rec, 'covariance': cov,
               'code_std_new': jnp.mean(jnp.std(z_k, axis=0))}
    return {g: loss}, (new_state, metrics)

  def _reconstruction(self, logits, images):
    if self.reconstruction == 'bce_mean':
      per_example = loss_lib.reconstruction_loss(logits, images, likelihood='bernoulli',
                                                 event_reduction='mean')
    else:
      per_example = loss_lib.reconstruction_loss(logits, images, likelihood='mse',
                                                 event_reduction='sum',
                                                 output_activation='sigmoid')
    return jnp.mean(per_example)

  # -- representation ---------------------------------------------------------------------------

  def encode(self, params, model_state, images, cond=None):
    return jnp.concatenate(
        [self._head(params, model_state, i, images, cond, mode='eval')[0]
         for i in range(self.stage + 1)], axis=-1)

  def decode(self, params, model_state, codes, cond=None):
    g = group_name(self.stage)
    logits, _ = self.decoder.apply(params[g]['decoder'], model_state[g]['decoder'], codes, cond,
                                   train=False)
    return jax.nn.sigmoid(logits)

"""Step 3 of the feature-aggregation VAE: a β-VAE on the frozen extractor's feature vectors.

Seitzer, Foltyn and Kemeth, "Improved Disentanglement through Learned Aggregation of Convolutional
Feature Maps" (NeurIPS 2019 Disentanglement Challenge report, arXiv 2002.12356), §2.2-2.3: MLP
encoder and decoder with batch norm and orthogonal initialisation on the 512-d aggregated features
x, C = 16 latents, a sigmoid decoder mean with unit-variance Gaussian likelihood, and the loss

    L = (1/B) Σ_b Σ_i (μ̂_bi − x_bi)²  +  β(t) · (1/(B·C)) Σ_b KL_b

(`disentangle_jax.losses.feature_vae_loss`), with β on a half-cosine schedule of the epoch t
(§2.3: β from 0.001 at epoch 10 to 0.4 at epoch 49, constant within an epoch).

The extractor is a frozen group ('extractor'), loaded on the host from the finetuning step's
`.npz` (`config.objective.extractor`): a batch may bring the stored features ('features' [B, F],
written once by the features step) or images ('image'), whose features are computed in evaluation
mode. `encode(images)` is the posterior mean of the image's features, so every metric that samples
images scores this model unchanged.

Config (`config.objective`):
  name:           'featvae'
  latent_dim:     C (16 as published; 18 in the released configs)
  extractor:      path of the extractor `.npz` (`objectives._features.save_extractor`); None: an
                  untrained extractor initialised from `config.seed` (tests, ablations)
  beta:           constant β when `beta_schedule` is None
  beta_schedule:  None | {'start_value', 'end_value', 'start_step', 'end_step'} of the cosine
                  schedule in epochs (published: 0.001, 0.4, 10, 49)
  steps_per_epoch: None: the training split's size // config.batch_size
  output:         'sigmoid' (published) | 'linear' (stage-1 config)
  reduction:      'mean' (÷ B, published) | 'sum' (stage-1 config)
  kl_per_latent:  divide the KL by C (published: True)
Networks: `config.model.encoder` / `decoder` ('feature_mlp': 4 × 1024; 'feature_mlp_released':
[4096] / [4096] × 4), `config.model.extractor`. Optimizer: `config.optimizer` (RAdam 1e-3).
Group: 'vae'; frozen group: 'extractor'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses import schedules
from disentangle_jax.objectives import register
from disentangle_jax.objectives import _features
from disentangle_jax.objectives._common import build_decoder, build_encoder, to_kwargs
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer

OUTPUTS = ('sigmoid', 'linear')
_SCHEDULE_KEYS = ('start_value', 'end_value', 'start_step', 'end_step')


@register('featvae')
class FeatureVAE(Objective):
  """β-VAE on aggregated features of a frozen extractor (Seitzer et al. 2020)."""

  groups = ('vae',)
  frozen_groups = ('extractor',)
  name = 'featvae'

  def __init__(self, config, data):
    super().__init__(config, data)
    owner = f'objective {self.name!r}'
    self._latent_dim = int(self.hparam('latent_dim'))
    self.output = self.hparam('output', 'sigmoid')
    if self.output not in OUTPUTS:
      raise ValueError(f'config.objective.output must be one of {OUTPUTS}, got {self.output!r}')
    self.reduction = self.hparam('reduction', 'mean')
    if self.reduction not in ('mean', 'sum'):
      raise ValueError(f"config.objective.reduction must be 'mean' or 'sum', got "
                       f'{self.reduction!r}')
    self.kl_per_latent = bool(self.hparam('kl_per_latent', True))
    self.extractor_path = self.hparam('extractor', None)
    self.extractor = _features.build_extractor(config)
    self.feature_dim = _features.feature_dim(self.extractor, self.image_shape)
    self.encoder = build_encoder(config, 2 * self._latent_dim, owner)
    self.decoder = build_decoder(config, (self.feature_dim,), owner)
    self.beta = float(self.hparam('beta', 1.0))
    self.steps_per_epoch = self._steps_per_epoch()
    spec = to_kwargs(self.hparam('beta_schedule', None))
    if spec:
      missing = [k for k in _SCHEDULE_KEYS if k not in spec]
      unknown = sorted(set(spec) - set(_SCHEDULE_KEYS))
      if missing or unknown:
        raise ValueError(f'config.objective.beta_schedule needs exactly {_SCHEDULE_KEYS} (epochs '
                         f'for the steps); missing {missing}, unknown {unknown}')
      self.beta_fn = schedules.make_schedule(
          'cosine', steps_per_unit=self.steps_per_epoch, **{k: float(v) for k, v in spec.items()})
    else:
      self.beta_fn = None

  def _steps_per_epoch(self) -> int:
    given = self.hparam('steps_per_epoch', None)
    if given is not None:
      return max(1, int(given))
    batch = int(self.config.get('batch_size', 0) or 0)
    if batch and self.data.num_examples:
      return max(1, int(self.data.num_examples) // batch)
    return 1

  @property
  def latent_dim(self) -> int:
    return self._latent_dim

  def beta_at(self, step) -> jax.Array:
    """β of the epoch that `step` falls in (`step // steps_per_epoch`)."""
    if self.beta_fn is None:
      return jnp.asarray(self.beta, jnp.float32)
    return self.beta_fn(step)

  # -- variables ------------------------------------------------------------------------------

  def init(self, rng, batch):
    k_enc, k_dec = jax.random.split(rng)
    rows = jax.tree.leaves(batch)[0].shape[0]
    features = jnp.zeros((rows, self.feature_dim), jnp.float32)
    enc_params, enc_state = self.encoder.init(k_enc, features)
    dec_params, dec_state = self.decoder.init(
        k_dec, jnp.zeros((rows, self._latent_dim), jnp.float32))
    return ({'vae': {'encoder': enc_params, 'decoder': dec_params}},
            {'encoder': enc_state, 'decoder': dec_state})

  def _extractor_template(self):
    params, state = self.extractor.init(jax.random.key(int(self.config.get('seed', 0) or 0)),
                                        jnp.zeros((1, *self.image_shape), jnp.float32))
    return {'params': params, **state}

  def load_frozen(self):
    if self.extractor_path is None:
      variables = jax.tree.map(np.asarray, self._extractor_template())
    else:
      template = jax.eval_shape(self._extractor_template)
      variables = _features.load_extractor(self.extractor_path, template)
    return {'extractor': variables}

  def optimizers(self):
    return {'vae': make_optimizer(self.config.optimizer)}

  # -- forward passes -------------------------------------------------------------------------

  def features(self, params, batch) -> jax.Array:
    """The batch's stored features, or its images' features from the frozen extractor."""
    if 'features' in batch:
      return jnp.asarray(batch['features'], jnp.float32)
    return self.extract(params, batch['image'])

  def extract(self, params, images) -> jax.Array:
    """Features [B, F] of images [B, H, W, C] in [0, 1] (the frozen extractor, evaluation mode)."""
    return _features.extract(self.extractor, params['extractor'], images)

  def posterior(self, params, model_state, features, *, train=False, rng=None):
    """`(mean, logvar, new_encoder_state)` of features [B, F]."""
    out, enc_state = self.encoder.apply(params['vae']['encoder'], model_state['encoder'],
                                        features, train=train, rng=rng)
    mean, logvar = jnp.split(out, 2, axis=-1)
    return mean, logvar, enc_state

  def decode_features(self, params, model_state, codes, *, train=False, rng=None):
    """`(μ̂ [B, F], new_decoder_state)`: the decoder's mean of the features."""
    out, dec_state = self.decoder.apply(params['vae']['decoder'], model_state['decoder'], codes,
                                        train=train, rng=rng)
    return (jax.nn.sigmoid(out) if self.output == 'sigmoid' else out), dec_state

  def losses(self, params, model_state, batch, rng, step):
    x = self.features(params, batch)
    mean, logvar, enc_state = self.posterior(params, model_state, x, train=True,
                                             rng=rng_stream(rng, 'dropout_encoder'))
    z = loss_lib.reparameterize(rng_stream(rng, 'reparam'), mean, logvar)
    recon, dec_state = self.decode_features(params, model_state, z, train=True,
                                            rng=rng_stream(rng, 'dropout_decoder'))
    beta = self.beta_at(step)
    loss, terms = loss_lib.feature_vae_loss(
        recon, x, mean, logvar, beta=beta, kl_per_latent=self.kl_per_latent,
        reduction=self.reduction)
    kl_per_dim = jnp.mean(loss_lib.gaussian_kl(mean, logvar, event_reduction='none'), axis=0)
    metrics = {**terms, 'beta': beta, 'active_dims': jnp.sum(kl_per_dim > 0.1).astype(jnp.float32),
               **{f'kl_per_dim/{i:02d}': kl_per_dim[i] for i in range(self._latent_dim)}}
    return {'vae': loss}, ({'encoder': enc_state, 'decoder': dec_state}, metrics)

  # -- what evaluators use --------------------------------------------------------------------

  def encode(self, params, model_state, images, cond=None):
    del cond
    return self.encode_features(params, model_state, self.extract(params, images))

  def encode_features(self, params, model_state, features):
    """The posterior mean [B, C] of stored features [B, F]."""
    return self.posterior(params, model_state, features)[0]

  def sample_prior(self, rng, num, cond=None):
    del cond
    return jax.random.normal(rng, (num, self._latent_dim))

  def latent_activity(self, params, model_state, images, cond=None):
    """Mean KL per latent over `images`: collapsed latents score ≈ 0."""
    del cond
    x = self.jitted('extract')(params, images)
    mean, logvar, _ = self.jitted('posterior')(params, model_state, x)
    kl = loss_lib.gaussian_kl(mean, logvar, event_reduction='none')
    return np.asarray(jnp.mean(kl, axis=0))

  def pictures(self, params, model_state, batch, rng):
    del params, model_state, batch, rng
    return {}  # the decoder gives features, not images

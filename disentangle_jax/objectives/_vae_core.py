"""The VAE core that the VAE-family objectives share (not a plugin itself).

`VAECore`: a Gaussian encoder (2·M outputs: means then log-variances), a decoder of logits, one
reparameterised sample per example, an optional condition y appended to the encoder's features
and to the decoder's codes (Sohn et al. 2015). Subclasses override `vae_loss` (and, for extra
players, `init`, `optimizers`, `losses`).

Config (`config.objective`):
  latent_dim:  M, the number of latents (dlib: 10)
  likelihood:  'bernoulli' (logits; dlib) | 'gaussian' (fixed unit variance) | 'mse'
Networks: `config.model.encoder` (2·M outputs), `config.model.decoder`.
Optimizer: `config.optimizer` (see `disentangle_jax.optimizers`). Group: 'vae'.
The representation for metrics is the posterior mean.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax import losses as loss_lib
from disentangle_jax.losses import schedules
from disentangle_jax.losses.reconstruction import LIKELIHOODS
from disentangle_jax.objectives._common import (build_decoder, build_encoder,
                                                init_encoder_decoder, to_kwargs)
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer


class VAECore(Objective):
  """A Gaussian encoder, a decoder of logits, one reparameterised sample per example."""

  groups = ('vae',)
  update_order = 'simultaneous'
  name = 'vae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self._latent_dim = int(self.hparam('latent_dim'))
    self.likelihood = self.hparam('likelihood', 'bernoulli')
    if self.likelihood not in LIKELIHOODS:
      raise ValueError(
          f'config.objective.likelihood must be one of {LIKELIHOODS}, '
          f'got {self.likelihood!r}'
      )
    owner = f'objective {self.name!r}'
    self.encoder = build_encoder(config, 2 * self._latent_dim, owner)
    self.decoder = build_decoder(config, self.image_shape, owner)

  @property
  def latent_dim(self) -> int:
    return self._latent_dim

  # -- variables ------------------------------------------------------------------------------

  def init_vae(self, rng: jax.Array, images: jax.Array, cond=None):
    return init_encoder_decoder(self.encoder, self.decoder, rng, images, self._latent_dim, cond)

  def init(self, rng, batch):
    params, state = self.init_vae(rng, batch['image'], self.condition(batch))
    return {'vae': params}, state

  def optimizers(self):
    return {'vae': make_optimizer(self.config.optimizer)}

  # -- forward passes -------------------------------------------------------------------------

  def posterior(self, vae_params, model_state, images, cond=None, *, train=False, rng=None):
    """Returns `(mean, logvar, new_encoder_state)`, each code [B, latent_dim]."""
    out, enc_state = self.encoder.apply(
        vae_params['encoder'], model_state['encoder'], images, cond, train=train, rng=rng
    )
    mean, logvar = jnp.split(out, 2, axis=-1)
    return mean, logvar, enc_state

  def decoder_logits(self, vae_params, model_state, codes, cond=None, *, train=False, rng=None):
    """Returns `(logits [B, H, W, C], new_decoder_state)`."""
    return self.decoder.apply(
        vae_params['decoder'], model_state['decoder'], codes, cond, train=train, rng=rng
    )

  def forward(self, vae_params, model_state, images, rng, cond=None):
    """One training pass: posterior, one sample, its reconstruction logits."""
    mean, logvar, enc_state = self.posterior(
        vae_params, model_state, images, cond, train=True, rng=rng_stream(rng, 'dropout_encoder')
    )
    z = loss_lib.reparameterize(rng_stream(rng, 'reparam'), mean, logvar)
    logits, dec_state = self.decoder_logits(
        vae_params, model_state, z, cond, train=True, rng=rng_stream(rng, 'dropout_decoder')
    )
    new_state = {**model_state, 'encoder': enc_state, 'decoder': dec_state}
    return mean, logvar, z, logits, new_state

  # -- loss -----------------------------------------------------------------------------------

  def vae_loss(self, images, logits, z, mean, logvar, step, rng):
    """The objective's loss on one batch: `(scalar, {term: scalar})`; `rng` is the step's key
    (draw from it with a named `rng_stream`)."""
    del z, step, rng
    return loss_lib.vae_loss(logits, images, mean, logvar, likelihood=self.likelihood)

  def losses(self, params, model_state, batch, rng, step):
    images = batch['image']
    mean, logvar, z, logits, new_state = self.forward(
        params['vae'], model_state, images, rng, self.condition(batch)
    )
    loss, terms = self.vae_loss(images, logits, z, mean, logvar, step, rng)
    metrics = {**terms, **posterior_metrics(mean, logvar)}
    return {'vae': loss}, (new_state, metrics)

  # -- what evaluators and pictures use -------------------------------------------------------

  def encode(self, params, model_state, images, cond=None):
    mean, _, _ = self.posterior(params['vae'], model_state, images, cond)
    return mean

  def decode(self, params, model_state, codes, cond=None):
    logits, _ = self.decoder_logits(params['vae'], model_state, codes, cond)
    return jax.nn.sigmoid(logits)

  def sample_prior(self, rng, num, cond=None):
    del cond  # the prior is N(0, I) whatever the condition (Sohn et al. 2015, §4.2)
    return jax.random.normal(rng, (num, self._latent_dim))

  #: `latent_activity` is the mean KL per latent, shown on the traversal rows.
  activity_is_kl = True

  def latent_activity(self, params, model_state, images, cond=None):
    """Mean KL per latent over `images`: collapsed latents score ≈ 0."""
    mean, logvar, _ = self.jitted('posterior')(params['vae'], model_state, images, cond)
    kl = loss_lib.gaussian_kl(mean, logvar, event_reduction='none')
    return np.asarray(jnp.mean(kl, axis=0))


def posterior_metrics(mean, logvar) -> dict[str, jax.Array]:
  """Diagnostics of the posterior: KL per latent (collapsed latents show ≈ 0), mean variance."""
  kl_per_dim = jnp.mean(loss_lib.gaussian_kl(mean, logvar, event_reduction='none'), axis=0)
  metrics = {f'kl_per_dim/{i:02d}': kl_per_dim[i] for i in range(kl_per_dim.shape[0])}
  metrics['active_dims'] = jnp.sum(kl_per_dim > 0.1).astype(jnp.float32)
  metrics['posterior_var'] = jnp.mean(jnp.exp(logvar))
  return metrics


def parse_schedule_spec(spec: str, what: str) -> dict:
  """'linear_warmup,warmup_steps=10000' -> {'name': 'linear_warmup', 'warmup_steps': 10000}."""
  name, *pairs = [part.strip() for part in spec.split(',') if part.strip()]
  kwargs = {'name': name}
  for pair in pairs:
    key, sep, text = pair.partition('=')
    if not sep:
      raise ValueError(f'config.objective.{what}: expected key=value after the name, got {pair!r}')
    try:
      kwargs[key.strip()] = int(text) if text.strip().lstrip('-').isdigit() else float(text)
    except ValueError:
      raise ValueError(f'config.objective.{what}: {key.strip()} must be a number, got {text!r}')
  return kwargs


def make_weight_schedule(spec, value: float | None, what: str):
  """A schedule from `{'name': ..., **kwargs}` or its text form 'name,key=value,...'; `value`
  fills the schedule's `value` argument."""
  kwargs = parse_schedule_spec(spec, what) if isinstance(spec, str) else to_kwargs(spec)
  if 'name' not in kwargs:
    raise KeyError(f'config.objective.{what} needs a "name" (one of {schedules.available()})')
  name = kwargs.pop('name')
  fn = getattr(schedules, name, None)
  if fn is not None and 'value' in inspect.signature(fn).parameters and value is not None:
    kwargs.setdefault('value', value)
  return schedules.make_schedule(name, **kwargs)


def optional_schedule(objective: Objective, key: str, value: float):
  """`config.objective.<key>` as a schedule of the step, or None when unset."""
  spec = objective.hparam(key, None)
  return None if spec is None else make_weight_schedule(spec, value, key)

"""Toy objectives that exercise the objective protocol: stages, frozen groups, three sequential
groups with a carried model state, a condition. Importing this module registers them."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax

from disentangle_jax.objectives import Objective, register
from disentangle_jax.objectives.base import Stage

CODE = 2


def _flat(images):
  return images.reshape(images.shape[0], -1)


def _linear_ae_loss(x, w):
  return jnp.mean((x @ w @ w.T - x) ** 2)


@register('toy_two_stages')
class TwoStages(Objective):
  """Two linear heads: stage 0 trains head0, stage 1 head1 on what head0 leaves (Adam, so a
  frozen head that moved through momentum would show)."""

  groups = ('head0', 'head1')
  name = 'toy_two_stages'

  def __init__(self, config, data, stage_index=1):
    super().__init__(config, data)
    self.stage_index = stage_index

  def stages(self):
    steps = self.config.objective.steps_per_stage
    return (Stage('first', steps, ('head0',)), Stage('second', steps, ('head1',)))

  def for_stage(self, index):
    view = copy.copy(self)
    view.stage_index = index
    view._jitted = {}
    return view

  def init(self, rng, batch):
    size = int(np.prod(self.image_shape))
    k0, k1 = jax.random.split(rng)
    return {'head0': jax.random.normal(k0, (size, CODE)) * 0.01,
            'head1': jax.random.normal(k1, (size, CODE)) * 0.01}, {}

  def optimizers(self):
    return {'head0': optax.adam(1e-2), 'head1': optax.adam(1e-2)}

  def losses(self, params, model_state, batch, rng, step):
    x = _flat(batch['image'])
    first = _linear_ae_loss(x, params['head0'])
    residual = x - x @ params['head0'] @ params['head0'].T
    second = _linear_ae_loss(residual, params['head1'])
    return {'head0': first, 'head1': second}, (model_state, {'first': first})

  @property
  def latent_dim(self):
    return CODE * (self.stage_index + 1)

  def encode(self, params, model_state, images, cond=None):
    heads = [params['head0'], params['head1']][: self.stage_index + 1]
    return jnp.concatenate([_flat(images) @ w for w in heads], axis=1)

  def decode(self, params, model_state, codes, cond=None):
    heads = [params['head0'], params['head1']][: self.stage_index + 1]
    w = jnp.concatenate(heads, axis=1)
    return jnp.clip(codes @ w.T, 0, 1).reshape(codes.shape[0], *self.image_shape)


@register('toy_frozen_extractor')
class FrozenExtractor(Objective):
  """A linear code on top of a frozen random projection loaded from `objective.extractor_path`."""

  groups = ('model',)
  frozen_groups = ('extractor',)
  name = 'toy_frozen_extractor'

  def load_frozen(self):
    with np.load(self.config.objective.extractor_path) as f:
      return {'extractor': {'w': f['w'], 'b': f['b']}}

  def init(self, rng, batch):
    features = self.config.objective.features
    return {'model': jax.random.normal(rng, (features, CODE)) * 0.1}, {}

  def optimizers(self):
    return {'model': optax.adam(1e-2)}

  def features(self, params, images):
    return jnp.tanh(_flat(images) @ params['extractor']['w'] + params['extractor']['b'])

  def losses(self, params, model_state, batch, rng, step):
    f = self.features(params, batch['image'])
    loss = _linear_ae_loss(f, params['model'])
    return {'model': loss}, (model_state, {})

  @property
  def latent_dim(self):
    return CODE

  def encode(self, params, model_state, images, cond=None):
    return self.features(params, images) @ params['model']


@register('toy_three_groups')
class ThreeGroups(Objective):
  """Three groups updated in sequence with SGD; a BatchNorm-like running mean in the model
  state that each pass updates from its own group's output."""

  groups = ('a', 'b', 'c')
  update_order = 'sequential'
  name = 'toy_three_groups'

  def init(self, rng, batch):
    size = int(np.prod(self.image_shape))
    keys = jax.random.split(rng, 3)
    params = {g: jax.random.normal(k, (size, CODE)) * 0.1 for g, k in zip(self.groups, keys)}
    return params, {'running': jnp.zeros((CODE,))}

  def optimizers(self):
    return {g: optax.sgd(0.05 * (i + 1)) for i, g in enumerate(self.groups)}

  def losses(self, params, model_state, batch, rng, step):
    x = _flat(batch['image'])
    ha, hb, hc = (x @ params[g] for g in self.groups)
    running = model_state['running']
    noise = jax.random.normal(rng, ha.shape) * 0.01
    losses = {
        'a': jnp.mean((ha + noise - hb) ** 2) + jnp.sum(running ** 2),
        'b': jnp.mean((hb - hc) ** 2) + jnp.mean(hb * running),
        'c': jnp.mean((hc - ha) ** 2) + 0.1 * jnp.mean(hc ** 2),
    }
    # The new state depends on every group's parameters, so each pass leaves a different one:
    # a step that did not carry it from pass to pass would end elsewhere.
    new_running = 0.9 * running + 0.1 * jnp.mean(ha + hb + hc, axis=0)
    return losses, ({'running': new_running}, {'running_norm': jnp.sum(running ** 2)})

  @property
  def latent_dim(self):
    return CODE

  def encode(self, params, model_state, images, cond=None):
    return _flat(images) @ params['a']


@register('toy_overfits')
class Overfits(TwoStages):
  """One stage; its validation loss falls until step 6 and rises after, whatever the params."""

  groups = ('head0',)
  name = 'toy_overfits'

  def stages(self):
    return (Stage('train', int(self.config.total_steps), None),)

  def optimizers(self):
    return {'head0': optax.sgd(1e-3)}

  def init(self, rng, batch):
    params, state = super().init(rng, batch)
    return {'head0': params['head0']}, state

  def losses(self, params, model_state, batch, rng, step):
    loss = _linear_ae_loss(_flat(batch['image']), params['head0'])
    return {'head0': loss}, (model_state, {})

  def validation_losses(self, params, model_state, batch, rng, step):
    return {'head0': (step.astype(jnp.float32) - 6.0) ** 2 + 0.0 * jnp.sum(params['head0'])}

  @property
  def latent_dim(self):
    return CODE

  def encode(self, params, model_state, images, cond=None):
    return _flat(images) @ params['head0']

  def decode(self, params, model_state, codes, cond=None):
    return jnp.clip(codes @ params['head0'].T, 0, 1).reshape(codes.shape[0], *self.image_shape)


@register('toy_self_scoring')
class SelfScoring(Overfits):
  """Scores itself on held-out data: the number of examples it was shown and their mean."""

  name = 'toy_self_scoring'

  def evaluate(self, params, model_state, data_config, *, num_examples=None):
    from disentangle_jax.data import pipeline
    images = np.concatenate([b['image'] for b in pipeline.make_eval_iterator(
        data_config, batch_size=4, num_examples=num_examples)])
    return {'examples': len(images), 'mean_pixel': float(images.mean())}

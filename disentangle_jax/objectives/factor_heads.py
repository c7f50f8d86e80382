"""Step 1 of the feature-aggregation VAE: finetune the extractor to classify every factor.

Seitzer, Foltyn and Kemeth, "Improved Disentanglement through Learned Aggregation of Convolutional
Feature Maps" (NeurIPS 2019 Disentanglement Challenge report, arXiv 2002.12356), §2.1: the
extractor (VGG19-BN `features`, then the learned aggregation to a unit-norm 512-d vector) gets one
linear layer per ground-truth factor, producing that factor's logits; the loss is the sum over
factors of the mean cross-entropy. Heads (and the aggregation) start from uniform He
initialisation; the heads are discarded afterwards and the extractor feeds steps 2 and 3.

Config (`config.objective`):
  name: 'factor_heads'
  pretrained_backbone: None (from scratch) | the `.npz` of torchvision's ImageNet VGG19-BN
                (`launch/convert_vgg19_bn.py`), loaded into the backbone before training (as
                published; needs `config.model.extractor='vgg_extractor'`, width 1)
Networks: `config.model.extractor` (see `objectives._features`). Group: 'model' (extractor and
heads, one optimizer: the paper's RAdam, lr 1e-3, weight decay 0.01). Needs a dataset with
factors; the head sizes are the data's factor sizes.

Training metrics: 'cross_entropy' (the loss) and 'accuracy/<factor>' per factor. Validation
accuracy per factor over batches of another split: `validation_accuracy`. The representation
(`encode`) is the extractor's feature vector.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from disentangle_jax.networks import vgg
from disentangle_jax.objectives import register
from disentangle_jax.objectives import _features
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer

_he_uniform = nn.initializers.variance_scaling(2.0, 'fan_in', 'uniform')


class FactorHeadsNet(nn.Module):
  """Images → (features [B, F], [logits [B, k_i] per factor i])."""

  extractor: nn.Module
  factor_sizes: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    features = self.extractor(x, train=train)  # a child named 'extractor'
    logits = [nn.Dense(int(k), kernel_init=_he_uniform, name=f'head_{i}')(features)
              for i, k in enumerate(self.factor_sizes)]
    return features, logits


def factor_cross_entropy(logits: Sequence[jax.Array], factors: jax.Array):
  """Σ_i mean_b CE(logits_i[b], factors[b, i]) and the per-factor accuracies [K]."""
  factors = jnp.asarray(factors, jnp.int32)
  total, accuracies = 0.0, []
  for i, lg in enumerate(logits):
    lg = jnp.asarray(lg, jnp.promote_types(lg.dtype, jnp.float32))
    total = total + jnp.mean(optax.softmax_cross_entropy_with_integer_labels(lg, factors[:, i]))
    accuracies.append(jnp.mean(jnp.argmax(lg, axis=-1) == factors[:, i]))
  return total, jnp.stack(accuracies)


@register('factor_heads')
class FactorHeads(Objective):
  """The extractor with one linear head per factor (Seitzer et al. 2020, §2.1)."""

  groups = ('model',)
  name = 'factor_heads'

  def __init__(self, config, data):
    super().__init__(config, data)
    if not self.data.factor_sizes:
      raise ValueError(f"objective 'factor_heads' needs a dataset with ground-truth factors; "
                       f'{self.data.name!r} has none (use e.g. procedural_shapes3d or mpi3d)')
    self.factor_sizes = tuple(int(k) for k in self.data.factor_sizes)
    self.factor_names = tuple(self.data.factor_names) or tuple(
        f'factor_{i}' for i in range(len(self.factor_sizes)))
    self.extractor = _features.build_extractor(config)
    self.net = FactorHeadsNet(self.extractor.module, self.factor_sizes)
    self._feature_dim = _features.feature_dim(self.extractor, self.image_shape)

  @property
  def latent_dim(self) -> int:
    return self._feature_dim

  def init(self, rng, batch):
    variables = dict(self.net.init({'params': rng, 'dropout': rng}, batch['image'], train=False))
    path = self.hparam('pretrained_backbone', None)
    if path:
      extractor = {'params': variables['params']['extractor'],
                   'batch_stats': variables['batch_stats']['extractor']}
      extractor = vgg.set_backbone(extractor, vgg.load_vgg19_bn(path))
      variables['params']['extractor'] = extractor['params']
      variables['batch_stats']['extractor'] = extractor['batch_stats']
    params = variables.pop('params')
    return {'model': params}, variables

  def optimizers(self):
    return {'model': make_optimizer(self.config.optimizer)}

  def apply(self, params, model_state, images, *, train: bool, rng=None):
    variables = {'params': params['model'], **model_state}
    if train:
      (features, logits), new_state = self.net.apply(
          variables, images, train=True, rngs={'dropout': rng}, mutable=list(model_state))
      return features, logits, {**model_state, **new_state}
    return (*self.net.apply(variables, images, train=False), model_state)

  def losses(self, params, model_state, batch, rng, step):
    del step
    _, logits, new_state = self.apply(params, model_state, batch['image'], train=True,
                                      rng=rng_stream(rng, 'dropout'))
    loss, accuracies = factor_cross_entropy(logits, batch['factors'])
    metrics = {'cross_entropy': loss}
    metrics.update({f'accuracy/{n}': accuracies[i] for i, n in enumerate(self.factor_names)})
    return {'model': loss}, (new_state, metrics)

  def encode(self, params, model_state, images, cond=None):
    del cond
    return self.apply(params, model_state, images, train=False)[0]

  def predict(self, params, model_state, images) -> jax.Array:
    """The predicted value of every factor, int32 [B, K]."""
    logits = self.apply(params, model_state, images, train=False)[1]
    return jnp.stack([jnp.argmax(lg, axis=-1) for lg in logits], axis=1).astype(jnp.int32)

  def extractor_variables(self, params, model_state) -> dict:
    """The extractor's {'params', 'batch_stats'} (what `_features.save_extractor` writes)."""
    out = {'params': params['model']['extractor']}
    for collection, value in model_state.items():
      if 'extractor' in value:
        out[collection] = value['extractor']
    return out

  def pictures(self, params, model_state, batch, rng):
    del params, model_state, batch, rng
    return {}


def validation_accuracy(objective: FactorHeads, params, model_state,
                        batches: Iterable[dict]) -> dict:
  """Per-factor accuracy over batches with 'image' and 'factors' (e.g. the held-out split).

  Returns {'accuracy': {factor: float}, 'mean_accuracy': float, 'num_examples': int}.
  """
  predict = objective.jitted('predict')
  correct, count = np.zeros(len(objective.factor_sizes)), 0
  for batch in batches:
    pred = np.asarray(predict(params, model_state, jnp.asarray(batch['image'])))
    correct += (pred == np.asarray(batch['factors'])).sum(axis=0)
    count += len(pred)
  if not count:
    raise ValueError('validation_accuracy got no batches: is the validation split empty?')
  accuracy = {n: float(c / count) for n, c in zip(objective.factor_names, correct)}
  return {'accuracy': accuracy, 'mean_accuracy': float(np.mean(list(accuracy.values()))),
          'num_examples': int(count)}

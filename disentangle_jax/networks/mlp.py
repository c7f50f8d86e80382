"""MLPs with batch norm for a VAE on feature vectors (Seitzer, Foltyn, Kemeth, "Improved
Disentanglement through Learned Aggregation of Convolutional Feature Maps", NeurIPS 2019
Disentanglement Challenge report, arXiv 2002.12356, §2.2; its stage-1 report, arXiv 2002.10003;
and the released configs).

Each hidden layer is dense (no bias, since batch norm follows) → batch norm → ReLU; the last layer
is dense with a bias and no norm. The encoder's output is [B, num_outputs] (a VAE asks for
2·latent_dim, means and log-variances side by side); the decoder's is the pre-activation mean of
the features, [B, *output_shape] (the paper's decoder ends with a sigmoid, the stage-1 one is
linear: the objective applies it, or `output_activation`).

Widths, registered under these names (`get_encoder` / `get_decoder`):
* 'feature_mlp': the paper's 4 × 1024 in both, orthogonal initialisation of every layer;
* 'feature_mlp_released': the released stage-2 config: encoder [4096], decoder [4096] × 4; its
  encoder is initialised orthogonally and its decoder with PyTorch's default (the config sets the
  encoder's init twice and never the decoder's);
* 'feature_mlp_stage1': the stage-1 config: encoder [256, 128, 64], decoder [64, 128, 256].
`hidden=` and `weight_init=` override any of them.

Initialisers (`weight_init`): 'orthogonal' (gain 1, as `torch.nn.init.orthogonal_`),
'torch_default' (uniform ±1/√fan_in, PyTorch's `nn.Linear` default), 'lecun_normal'
(Flax's default). Biases start at 0. Batch norm as PyTorch's defaults: momentum 0.1 (Flax decay
0.9), ε 1e-5.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np

from disentangle_jax.networks.layers import activation, concat_condition

INITS = {
    'orthogonal': nn.initializers.orthogonal(1.0),
    'torch_default': nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform'),
    'lecun_normal': nn.initializers.lecun_normal(),
}


def _kernel_init(name: str):
  try:
    return INITS[name]
  except KeyError:
    raise ValueError(f'unknown init {name!r}; known: {", ".join(INITS)}') from None


def _mlp(h: jax.Array, hidden: Sequence[int], num_outputs: int, init: str, train: bool):
  kernel_init = _kernel_init(init)
  for width in hidden:
    h = nn.Dense(width, use_bias=False, kernel_init=kernel_init)(h)
    h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(h))
  return nn.Dense(num_outputs, kernel_init=kernel_init)(h)


class FeatureMLPEncoder(nn.Module):
  """Features [B, F] (or any [B, ...], flattened) → [B, num_outputs]."""

  num_outputs: int
  hidden: Sequence[int] = (1024,) * 4
  weight_init: str = 'orthogonal'

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    h = concat_condition(x.reshape(x.shape[0], -1), cond)
    return _mlp(h, self.hidden, self.num_outputs, self.weight_init, train)


class FeatureMLPDecoder(nn.Module):
  """Codes [B, Z] → pre-activation features [B, *output_shape] (e.g. output_shape=(512,))."""

  output_shape: Sequence[int]
  hidden: Sequence[int] = (1024,) * 4
  weight_init: str = 'orthogonal'
  output_activation: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    h = concat_condition(z, cond)
    out = _mlp(h, self.hidden, int(np.prod(self.output_shape)), self.weight_init, train)
    return activation(self.output_activation)(out.reshape(z.shape[0], *self.output_shape))


ENCODERS = {
    'feature_mlp': FeatureMLPEncoder,
    'feature_mlp_released': functools.partial(FeatureMLPEncoder, hidden=(4096,)),
    'feature_mlp_stage1': functools.partial(FeatureMLPEncoder, hidden=(256, 128, 64)),
}
DECODERS = {
    'feature_mlp': FeatureMLPDecoder,
    'feature_mlp_released': functools.partial(FeatureMLPDecoder, hidden=(4096,) * 4,
                                              weight_init='torch_default'),
    'feature_mlp_stage1': functools.partial(FeatureMLPDecoder, hidden=(64, 128, 256)),
}

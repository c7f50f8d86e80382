"""The conv encoder and deconv decoder of the disentanglement benchmarks (disentanglement_lib;
Locatello et al., ICML 2019, appendix).

Encoder: convs with 32, 32, 64, 64 channels, stride 2, 'SAME' padding, ReLU (4×4 kernels; 'conv_k2'
uses 2×2 kernels from layer 3 on, the dlib default), then dense 256 ReLU and a dense head to
`num_outputs` (a VAE asks for 2·latent_dim: means and log-variances side by side, as dlib's two
heads). Decoder: dense 256 ReLU, dense to the smallest feature map (4×4×64 for 64 px) ReLU, then
4×4 stride-2 transposed convs with 64, 32, 32 channels (ReLU) and one to C channels (logits).

One stride-2 level per halving down to 4×4: 32 px inputs use 3 levels (32, 32, 64 channels),
64 px 4 levels, 128 px 5 levels (a fifth level of 64); 28 px inputs are zero-padded to 32 and the
decoder's 32 px output is cropped back to 28 (our choice; dlib has no 28 px network).
An optional condition `cond` [B, K] (the conditional VAE's y) is appended to the flattened
encoder features and to the decoder's input codes.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disentangle_jax.networks.layers import (Conv, ConvTranspose, activation, check_image,
                                             concat_condition)

_LEVELS = {28: 3, 32: 3, 64: 4, 128: 5}
_CHANNELS = (32, 32, 64, 64, 64)
_BASE = 4  # side of the smallest feature map


def num_levels(size: int) -> int:
  """Stride-2 levels for a `size` px image."""
  if size not in _LEVELS:
    raise ValueError(f'conv networks support {sorted(_LEVELS)} px square images, got {size} px')
  return _LEVELS[size]


class ConvEncoder(nn.Module):
  """Images [B, S, S, C] (S in 28, 32, 64, 128) → [B, num_outputs].

  Attributes:
    kernel_sizes: kernel of each level (the first `num_levels` are used).
    conv_impl: 'auto', 'xla' or 'fast' (see `fast_conv`).
  """

  num_outputs: int
  kernel_sizes: Sequence[int] = (4, 4, 4, 4, 4)
  hidden: int = 256
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    size = check_image(x, tuple(_LEVELS), 'ConvEncoder')
    if size == 28:
      x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for level in range(num_levels(size)):
      k = self.kernel_sizes[level]
      x = nn.relu(Conv(_CHANNELS[level], k, 2, conv_impl=self.conv_impl)(x))
    h = concat_condition(x.reshape(x.shape[0], -1), cond)
    h = nn.relu(nn.Dense(self.hidden)(h))
    return nn.Dense(self.num_outputs)(h)


class ConvDecoder(nn.Module):
  """Codes [B, Z] → pre-activation images [B, *output_shape] (logits for a Bernoulli likelihood).

  Attributes:
    output_shape: (S, S, C) with S in 28, 32, 64, 128.
    output_activation: None (default: logits) or 'sigmoid' / 'tanh'.
    conv_impl: 'auto', 'xla' or 'fast' (see `fast_conv`).
  """

  output_shape: Sequence[int]
  hidden: int = 256
  output_activation: str | None = None
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    size, width, channels = self.output_shape
    if size != width:
      raise ValueError(f'ConvDecoder needs a square output_shape, got {tuple(self.output_shape)}')
    levels = num_levels(size)
    widths = _CHANNELS[:levels][::-1]
    h = nn.relu(nn.Dense(self.hidden)(concat_condition(z, cond)))
    h = nn.relu(nn.Dense(_BASE * _BASE * widths[0])(h))
    x = h.reshape(h.shape[0], _BASE, _BASE, widths[0])
    for level in range(levels):
      last = level == levels - 1
      x = ConvTranspose(channels if last else widths[level + 1], 4, 2,
                        conv_impl=self.conv_impl)(x)
      if not last:
        x = nn.relu(x)
    if size == 28:
      x = x[:, 2:30, 2:30, :]
    return activation(self.output_activation)(x)

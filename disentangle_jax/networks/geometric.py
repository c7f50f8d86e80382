"""The small conv nets of the geometric-attribute autoencoders (PCA-like AE; Newson et al.'s disks).

`PCAAEEncoder` / `PCAAEDecoder` ('pcaae_conv'): the networks of the PCA-like autoencoder's released
ellipse notebook (Ladjal, Newson, Pham 2019; Pham, Ladjal, Newson, JMIV 2022). For an S×S image
(S a power of two, 64 for the ellipses) the encoder of a c-dimensional output has log2(S) stride-2
4×4 convs with padding 1 (64 → 32 → … → 1), channels 32c, 16c, 8c, 4c, 2c, c for 64 px (the last
level has c channels, each earlier one doubles, from the end), LeakyReLU(0.2) after every conv but
the last, then flattens to [B, c]. The objective adds the affine-free BatchNorm before the latent.
The decoder of a k-dimensional code reshapes it to 1×1×k and applies log2(S) stride-2 4×4
transposed convs with channels 2k, 4k, …, 32k (for 64 px) and C, LeakyReLU(0.2) between them; its
width grows with k. It returns pre-activation images (logits; the notebook's sigmoid is the
objective's). Initialisation is flax's default (lecun normal kernels, zero biases) [ours]: the
notebook means a truncated normal, but its init function assigns nothing, so it runs with
PyTorch's default initialisation.

`DiskEncoder` / `DiskDecoder` ('disk_conv', 'disk_conv_nobias'): the 1-D disk autoencoder of
Newson, Almansa, Gousseau and Ladjal ("Processing simple geometric attributes with autoencoders",
JMIV 2020): log2(S) levels of [3×3 conv + bias + LeakyReLU + subsampling by 2] down to 1×1, and
log2(S) levels of [upsampling by 2 + 3×3 conv + bias + LeakyReLU] back. What the paper leaves open
we choose [ours]: `width` channels per level (8 by default), subsampling as a stride-2 'SAME' conv
(the same as convolving then keeping every other pixel), nearest-neighbour upsampling, slope 0.2,
a linear code (the encoder's last conv has `num_outputs` channels and no activation) and a linear
output (the decoder's last conv has C channels and no activation). Without biases
(`use_bias=False`, 'disk_conv_nobias') every layer is positively homogeneous, so
D(λz) = λ·D(z) for λ > 0, the case the paper analyses.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disentangle_jax.networks.layers import Conv, ConvTranspose, activation

_SLOPE = 0.2
_PAD1 = ((1, 1), (1, 1))


def _levels(size: int, network: str) -> int:
  levels = int(round(math.log2(size))) if size > 0 else 0
  if size < 2 or 2**levels != size:
    raise ValueError(f'{network} needs square images whose side is a power of two (64 for the '
                     f'ellipses and disks), got {size} px')
  return levels


def _square(x: jax.Array, network: str) -> int:
  if x.ndim != 4 or x.shape[1] != x.shape[2]:
    raise ValueError(f'{network} needs images [B, S, S, C], got shape {x.shape}')
  return _levels(x.shape[1], network)


def _leaky(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, _SLOPE)


class PCAAEEncoder(nn.Module):
  """Images [B, S, S, C] → [B, num_outputs] (the notebook's encoder, before its BatchNorm).

  Attributes:
    num_outputs: c, the code size of this encoder (1 per stage in the notebook); level l
      (0-based, of L) has c·2^(L−1−l) channels (32c, …, c for L = 6).
    conv_impl: 'auto', 'xla' or 'fast' (see `fast_conv`).
  """

  num_outputs: int
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del cond, train
    levels = _square(x, 'PCAAEEncoder')
    c = self.num_outputs
    for level in range(levels):
      last = level == levels - 1
      x = Conv(c * 2 ** (levels - 1 - level), 4, 2, padding=_PAD1, conv_impl=self.conv_impl)(x)
      if not last:
        x = _leaky(x)
    return x.reshape(x.shape[0], -1)


class PCAAEDecoder(nn.Module):
  """Codes [B, k] → pre-activation images [B, *output_shape] (the notebook's decoder).

  Attributes:
    output_shape: (S, S, C), S a power of two.
    output_activation: None (logits, default) or 'sigmoid' / 'tanh'.
    conv_impl: 'auto', 'xla' or 'fast'.
  """

  output_shape: Sequence[int]
  output_activation: str | None = None
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del cond, train
    size, width, channels = self.output_shape
    if size != width:
      raise ValueError(f'PCAAEDecoder needs a square output_shape, got {tuple(self.output_shape)}')
    levels = _levels(size, 'PCAAEDecoder')
    k = z.shape[-1]
    x = z.reshape(z.shape[0], 1, 1, k)
    for level in range(levels):
      last = level == levels - 1
      features = channels if last else k * 2 ** (level + 1)
      # Padding (2, 2) of the dilated input = PyTorch's ConvTranspose2d(k=4, s=2, p=1): 2× size.
      x = ConvTranspose(features, 4, 2, padding=((2, 2), (2, 2)), conv_impl=self.conv_impl)(x)
      if not last:
        x = _leaky(x)
    return activation(self.output_activation)(x)


class DiskEncoder(nn.Module):
  """Images [B, S, S, C] → [B, num_outputs] (Newson et al.'s disk encoder).

  Attributes:
    num_outputs: the code size (1 in the paper).
    width: channels of every hidden level.
    use_bias: False for the positively homogeneous variant.
    conv_impl: 'auto', 'xla' or 'fast'.
  """

  num_outputs: int
  width: int = 8
  use_bias: bool = True
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del cond, train
    levels = _square(x, 'DiskEncoder')
    for level in range(levels):
      last = level == levels - 1
      x = Conv(self.num_outputs if last else self.width, 3, 2, use_bias=self.use_bias,
               conv_impl=self.conv_impl)(x)
      if not last:
        x = _leaky(x)
    return x.reshape(x.shape[0], -1)


class DiskDecoder(nn.Module):
  """Codes [B, d] → images [B, *output_shape], linear output (Newson et al.'s disk decoder).

  Attributes:
    output_shape: (S, S, C), S a power of two.
    width: channels of every hidden level.
    use_bias: False for the positively homogeneous variant.
    output_activation: None (linear, default) or 'sigmoid' / 'tanh'.
    conv_impl: 'auto', 'xla' or 'fast'.
  """

  output_shape: Sequence[int]
  width: int = 8
  use_bias: bool = True
  output_activation: str | None = None
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del cond, train
    size, width, channels = self.output_shape
    if size != width:
      raise ValueError(f'DiskDecoder needs a square output_shape, got {tuple(self.output_shape)}')
    levels = _levels(size, 'DiskDecoder')
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1])
    for level in range(levels):
      last = level == levels - 1
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest-neighbour upsampling
      x = Conv(channels if last else self.width, 3, 1, use_bias=self.use_bias,
               conv_impl=self.conv_impl)(x)
      if not last:
        x = _leaky(x)
    return activation(self.output_activation)(x)


ENCODERS = {
    'pcaae_conv': PCAAEEncoder,
    'disk_conv': DiskEncoder,
    'disk_conv_nobias': functools.partial(DiskEncoder, use_bias=False),
}
DECODERS = {
    'pcaae_conv': PCAAEDecoder,
    'disk_conv': DiskDecoder,
    'disk_conv_nobias': functools.partial(DiskDecoder, use_bias=False),
}

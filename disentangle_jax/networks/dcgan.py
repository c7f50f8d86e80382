"""The DCGAN-style networks of the mixing autoencoder (Hu, Szabó, Portenier, Favaro, Zwicker,
"Disentangling Factors of Variation by Mixing Them", CVPR 2018; the released code's Sprites model).

For 60×60 Sprites these are the released code's layers exactly; other sizes (28, 32, 64, 128 px)
follow the same pattern with one stride-2 level per halving (our choice; the paper does not give
them). For 64×64 (CelebA) the encoder's maps are 32, 16, 8, 4, 2 (kernels 4, 4, 4, 2, 2), the
decoder's 4, 8, 16, 32, 64 and the discriminator's 32, 16, 8, 8:

* encoder: conv 4×4/2 with 64, 128, 256 channels, then 2×2/2 convs with 512, until the map is
  2×2; each conv → instance norm → LeakyReLU(0.2); flatten → dense(num_outputs). The features f
  of the mixing autoencoder are `leaky_relu` of that dense layer (`output_activation`).
* decoder: codes as a 1×1 map → transposed conv 4×4 VALID to 4×4×512, ReLU; then stride-2
  transposed convs (3×3 for the first, 4×4 after) up the encoder's size ladder (4, 8, 15, 30, 60
  for Sprites), 512, 256, 128 channels from the top, each → instance norm → ReLU; the last one to
  C channels with no norm. The released code ends with tanh (images in [−1, 1]); this decoder
  returns the pre-activation output, and the objective applies tanh (or pass
  `output_activation='tanh'`), so a loss can work on logits where it wants to.
* discriminator: conv 3×3/2 with 64, 128, 256 channels until the map is at most 8×8, then a 1×1
  conv with 512; each → batch norm (decay 0.99, ε 1e-5, γ ~ N(1, 0.02)) → LeakyReLU(0.2);
  flatten → dense(num_outputs) logits.

Initialisers as in the released code: convs truncated-normal(0.01) with bias 0.01, dense layers
normal(0.02) with bias 0.02, transposed convs normal(0.02) without bias.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disentangle_jax.networks.layers import (Conv, ConvTranspose, activation, check_image,
                                             concat_condition, instance_norm)

SIZES = (28, 32, 60, 64, 128)

_conv_init = dict(kernel_init=nn.initializers.truncated_normal(0.01),
                  bias_init=nn.initializers.constant(0.01))
_dense_init = dict(kernel_init=nn.initializers.normal(0.02),
                   bias_init=nn.initializers.constant(0.02))
_deconv_init = dict(kernel_init=nn.initializers.normal(0.02), use_bias=False)


def size_ladder(size: int, smallest: int) -> list[int]:
  """[size, ⌈size/2⌉, …] down to the first entry ≤ `smallest` (60 → 60, 30, 15, 8, 4, 2)."""
  ladder = [size]
  while ladder[-1] > smallest:
    ladder.append(-(-ladder[-1] // 2))
  return ladder


def _upsample_pads(kernel: int, size_in: int, size_out: int) -> tuple[int, int]:
  """Pads of the dilated input for a stride-2 transposed conv from `size_in` to `size_out`
  (2·size_in or 2·size_in − 1), aligned as TF's conv2d_transpose: the adjoint of a 'SAME' conv
  from `size_out` to `size_in`, whose low pad is half its total pad, rounded down."""
  low = max(2 * (size_in - 1) + kernel - size_out, 0) // 2
  before = kernel - 1 - low
  return before, size_out - 2 * size_in - before + kernel


class DCGANEncoder(nn.Module):
  """Images [B, S, S, C] → [B, num_outputs] (S in 28, 32, 60, 64, 128)."""

  num_outputs: int
  base_features: int = 64
  max_features: int = 512
  output_activation: str | None = None
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    size = check_image(x, SIZES, 'DCGANEncoder')
    for level in range(len(size_ladder(size, 2)) - 1):
      kernel = 4 if level < 3 else 2
      features = min(self.base_features * 2**level, self.max_features)
      x = Conv(features, kernel, 2, conv_impl=self.conv_impl, **_conv_init)(x)
      x = nn.leaky_relu(instance_norm(x), 0.2)
    h = concat_condition(x.reshape(x.shape[0], -1), cond)
    h = nn.Dense(self.num_outputs, **_dense_init)(h)
    return activation(self.output_activation)(h)


class DCGANDecoder(nn.Module):
  """Codes [B, Z] → pre-activation images of `output_shape` (H = W in 28, 32, 60, 64, 128).

  The released code's decoder applies tanh to these; here the caller does (`output_activation`
  does it inside, for the callers that want images).
  """

  output_shape: Sequence[int]
  top_features: int = 512
  bottom_features: int = 128
  output_activation: str | None = None
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    size, width, channels = self.output_shape
    if size != width or size not in SIZES:
      raise ValueError(f'DCGANDecoder supports square {list(SIZES)} px outputs, got '
                       f'{tuple(self.output_shape)}')
    ladder = size_ladder(size, 4)[::-1]  # 4, …, size
    h = concat_condition(z, cond)
    x = h.reshape(h.shape[0], 1, 1, h.shape[-1])
    x = ConvTranspose(self.top_features, 4, 1, 'VALID', conv_impl=self.conv_impl,
                      **_deconv_init)(x)
    x = nn.relu(x)
    steps = len(ladder) - 1
    for step in range(steps):
      last = step == steps - 1
      from_top = steps - 2 - step  # 0 for the map just before the output
      features = channels if last else min(self.bottom_features * 2**from_top,
                                           self.top_features)
      kernel = 3 if step == 0 else 4
      pads = (_upsample_pads(kernel, ladder[step], ladder[step + 1]),) * 2
      x = ConvTranspose(features, kernel, 2, pads, conv_impl=self.conv_impl, **_deconv_init)(x)
      if not last:
        x = nn.relu(instance_norm(x))
    return activation(self.output_activation)(x)


class DCGANDiscriminator(nn.Module):
  """Images [B, S, S, C] → [B, num_outputs] logits, with batch norm (S in 28 … 128)."""

  num_outputs: int = 1
  base_features: int = 64
  top_features: int = 512
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    size = check_image(x, SIZES, 'DCGANDiscriminator')
    levels = len(size_ladder(size, 8)) - 1
    layers = [(min(self.base_features * 2**i, self.top_features), 3, 2) for i in range(levels)]
    layers.append((self.top_features, 1, 1))
    for features, kernel, stride in layers:
      x = Conv(features, kernel, stride, conv_impl=self.conv_impl, **_conv_init)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-5,
                       scale_init=lambda key, shape, dtype=jnp.float32:
                       1.0 + 0.02 * jax.random.normal(key, shape, dtype))(x)
      x = nn.leaky_relu(x, 0.2)
    return nn.Dense(self.num_outputs, **_dense_init)(x.reshape(x.shape[0], -1))

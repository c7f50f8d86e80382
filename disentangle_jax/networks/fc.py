"""Fully connected networks: the β-VAE paper's dSprites MLPs (Higgins et al., ICLR 2017, appendix)
and the FactorVAE discriminator (Kim & Mnih, ICML 2018, appendix)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import numpy as np

from disentangle_jax.networks.layers import activation, concat_condition


class FCEncoder(nn.Module):
  """Images [B, H, W, C] → flatten → 1200 → 1200 (ReLU) → [B, num_outputs].

  `cond` [B, K], if given, is appended to the flattened image.
  """

  num_outputs: int
  hidden: Sequence[int] = (1200, 1200)

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    h = concat_condition(x.reshape(x.shape[0], -1), cond)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    return nn.Dense(self.num_outputs)(h)


class FCDecoder(nn.Module):
  """Codes [B, Z] → 1200 → 1200 → 1200 (tanh) → pre-activation images [B, *output_shape].

  `cond` [B, K], if given, is appended to the codes.
  """

  output_shape: Sequence[int]
  hidden: Sequence[int] = (1200, 1200, 1200)
  output_activation: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    h = concat_condition(z, cond)
    for width in self.hidden:
      h = nn.tanh(nn.Dense(width)(h))
    out = nn.Dense(int(np.prod(self.output_shape)))(h)
    return activation(self.output_activation)(out.reshape(z.shape[0], *self.output_shape))


class MLPDiscriminator(nn.Module):
  """FactorVAE's discriminator: codes [B, Z] → 6 × (dense 1000, LeakyReLU 0.2) → [B, num_outputs]
  logits (class 0: real codes, class 1: dimension-permuted codes)."""

  num_outputs: int = 2
  hidden: Sequence[int] = (1000,) * 6
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    del train
    h = z
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), self.negative_slope)
    return nn.Dense(self.num_outputs)(h)

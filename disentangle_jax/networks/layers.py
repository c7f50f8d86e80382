"""Layers shared by the networks: convolutions with a selectable implementation, instance norm.

`Conv` and `ConvTranspose` have exactly the parameters of `flax.linen.Conv` and
`flax.linen.ConvTranspose` (same names, shapes, initialisers and meaning), so a model trained with
one `conv_impl` runs with the other, and with plain flax.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disentangle_jax.networks import fast_conv

Initializer = Callable[..., jax.Array]
Padding = str | Sequence[tuple[int, int]]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class Conv(nn.Module):
  """A 2-D conv, NHWC, as `nn.Conv` (kernel [kh, kw, C_in/groups, features], bias [features]).

  Attributes:
    conv_impl: 'xla', 'fast' or 'auto' (see `fast_conv.conv2d`).
  """

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Padding = 'SAME'
  feature_group_count: int = 1
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = _pair(self.kernel_size)
    in_features = x.shape[-1]
    if in_features % self.feature_group_count:
      raise ValueError(f'{in_features} input channels do not split into '
                       f'{self.feature_group_count} groups')
    kernel = self.param('kernel', self.kernel_init,
                        (kh, kw, in_features // self.feature_group_count, self.features))
    y = fast_conv.conv2d(x, kernel, _pair(self.strides), self.padding, impl=self.conv_impl,
                         feature_group_count=self.feature_group_count)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,))
    return y


class ConvTranspose(nn.Module):
  """A 2-D transposed conv, NHWC, as `nn.ConvTranspose` (kernel [kh, kw, C_in, features], not
  flipped; 'SAME' gives stride × the input size).

  Attributes:
    conv_impl: 'xla', 'fast' or 'auto' (see `fast_conv.conv_transpose2d`).
  """

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Padding = 'SAME'
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = _pair(self.kernel_size)
    kernel = self.param('kernel', self.kernel_init, (kh, kw, x.shape[-1], self.features))
    y = fast_conv.conv_transpose2d(x, kernel, _pair(self.strides), self.padding,
                                   impl=self.conv_impl)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,))
    return y


def instance_norm(x: jax.Array, epsilon: float = 1e-9) -> jax.Array:
  """Normalises each example's channels over H and W (no learned scale or shift)."""
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + epsilon)


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'relu': nn.relu,
    'leaky_relu': lambda x: nn.leaky_relu(x, 0.2),
    'sigmoid': nn.sigmoid,
    'tanh': jnp.tanh,
}


def activation(name: str | None) -> Callable[[jax.Array], jax.Array]:
  """An activation by name ('relu', 'leaky_relu' (slope 0.2), 'sigmoid', 'tanh'); None: identity."""
  if name is None:
    return lambda x: x
  try:
    return _ACTIVATIONS[name]
  except KeyError:
    raise ValueError(f'unknown activation {name!r}; known: {sorted(_ACTIVATIONS)} or None') \
        from None


def concat_condition(h: jax.Array, cond: Any) -> jax.Array:
  """[B, F] features with an optional [B, C] condition appended (the conditional VAE's y)."""
  if cond is None:
    return h
  if isinstance(cond, bool):
    raise TypeError('cond must be an array or None; pass train= by keyword')
  cond = jnp.asarray(cond, h.dtype).reshape(h.shape[0], -1)
  return jnp.concatenate([h, cond], axis=-1)


def check_image(x: jax.Array, sizes: Sequence[int], network: str) -> int:
  """The side of a square [B, S, S, C] batch; a clear error for other shapes and sizes."""
  if x.ndim != 4 or x.shape[1] != x.shape[2]:
    raise ValueError(f'{network} expects square images [B, S, S, C], got shape {x.shape}')
  if x.shape[1] not in sizes:
    raise ValueError(f'{network} supports {sorted(sizes)} px inputs, got {x.shape[1]}')
  return x.shape[1]


with_condition = concat_condition

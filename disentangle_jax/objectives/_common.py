"""What the objectives share: reading their config, building and applying Flax networks.

Networks are Flax modules used functionally. A module's variables are split into `params` (trained)
and its other collections (BatchNorm statistics: `model_state`), which go in and out explicitly.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from disentangle_jax import networks

REQUIRED = object()  # the default of a required config key


def config_value(config, dotted: str, default: Any = REQUIRED, *, owner: str = '') -> Any:
  """`config.<dotted>`, or `default`; a missing required key is an error that names it.

  Args:
    config: the run config (a ConfigDict or nested mappings).
    dotted: e.g. 'objective.latent_dim'.
    default: returned when the key is absent or None; omit it to make the key required.
    owner: who needs the key, for the error message (e.g. "objective 'betavae'").
  """
  node = config
  for part in dotted.split('.'):
    try:
      node = node[part]
    except (KeyError, AttributeError, TypeError):
      node = None
    if node is None:
      if default is REQUIRED:
        who = f' (needed by {owner})' if owner else ''
        raise KeyError(f'config.{dotted} is missing{who}')
      return default
  return node


def to_kwargs(value) -> dict[str, Any]:
  """A ConfigDict or mapping as a plain dict (None as {})."""
  if value is None:
    return {}
  if hasattr(value, 'to_dict'):
    return value.to_dict()
  return dict(value)


def network_kwargs(config, role: str) -> dict[str, Any]:
  """Extra keyword arguments for the `role` network: `config.model.<role>_kwargs`, plus
  `config.model.conv_impl` for every network that takes it."""
  kwargs = to_kwargs(config_value(config, f'model.{role}_kwargs', None))
  conv_impl = config_value(config, 'model.conv_impl', None)
  if conv_impl is not None:
    kwargs.setdefault('conv_impl', conv_impl)
  return kwargs


class Network:
  """A Flax module with its variables split into params and state, applied functionally."""

  def __init__(self, module: nn.Module):
    self.module = module

  def init(self, rng: jax.Array, *inputs) -> tuple[Any, Any]:
    """Returns `(params, state)`; state holds every non-param collection ({} when none)."""
    variables = self.module.init({'params': rng, 'dropout': rng}, *inputs, train=False)
    variables = dict(variables)
    params = variables.pop('params', {})
    return params, variables

  def apply(self, params, state, *inputs, train: bool, rng: jax.Array | None = None):
    """Returns `(outputs, new_state)`; in training, the state collections are updated."""
    variables = {'params': params, **state}
    rngs = {'dropout': rng} if (train and rng is not None) else None
    if train and state:
      out, new_state = self.module.apply(
          variables, *inputs, train=True, rngs=rngs, mutable=list(state)
      )
      return out, {**state, **new_state}
    return self.module.apply(variables, *inputs, train=train, rngs=rngs), state


def _build(kind: str, name: str, config, role: str, **kwargs) -> Network:
  getter = {'encoder': networks.get_encoder, 'decoder': networks.get_decoder,
            'network': networks.get_network}[kind]
  return Network(getter(name, **kwargs, **network_kwargs(config, role)))


def build_encoder(config, num_outputs: int, owner: str) -> Network:
  """`config.model.encoder` with `num_outputs` outputs."""
  name = config_value(config, 'model.encoder', owner=owner)
  return _build('encoder', name, config, 'encoder', num_outputs=num_outputs)


def build_decoder(config, output_shape: tuple[int, int, int], owner: str) -> Network:
  """`config.model.decoder`, producing logits of `output_shape` (H, W, C)."""
  name = config_value(config, 'model.decoder', owner=owner)
  return _build('decoder', name, config, 'decoder', output_shape=tuple(output_shape))


def build_network(config, role: str, default_name: str, **kwargs) -> Network:
  """`config.model.<role>` (default `default_name`), e.g. FactorVAE's discriminator."""
  name = config_value(config, f'model.{role}', default_name)
  return _build('network', name, config, role, **kwargs)


def init_encoder_decoder(encoder: Network, decoder: Network, rng: jax.Array, images: jax.Array,
                         latent_dim: int, cond=None) -> tuple[dict, dict]:
  """`({'encoder': params, 'decoder': params}, {'encoder': state, 'decoder': state})` of an
  encoder on `images` and a decoder of `latent_dim` codes (both given `cond`, if any)."""
  k_enc, k_dec = jax.random.split(rng)
  enc_params, enc_state = encoder.init(k_enc, images, cond)
  codes = jax.numpy.zeros((images.shape[0], latent_dim), images.dtype)
  dec_params, dec_state = decoder.init(k_dec, codes, cond)
  return ({'encoder': enc_params, 'decoder': dec_params},
          {'encoder': enc_state, 'decoder': dec_state})

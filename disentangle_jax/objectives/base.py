"""The objective protocol: what the one train loop needs from every method.

An objective owns its networks, names its parameter groups (each with its own optimizer) and
returns one scalar loss per group. The loop in `disentangle_jax.training` never special-cases a
method: adding one is adding a module under `objectives/` and a config.

Variables are plain pytrees:
  params: {group_name: pytree}, e.g. {'vae': ..., 'discriminator': ...}
  model_state: non-trained collections (BatchNorm statistics), {} when there are none.

`losses(params, model_state, batch, rng, step)` returns `(losses, (new_model_state, metrics))` with
`losses = {group_name: scalar}`. Gradients of `losses[g]` are applied to `params[g]` only, which
reproduces TF's `var_list` semantics: a loss may depend on another group's parameters (the
generator's loss on the discriminator) without updating them.

`update_order`:
  'simultaneous': one forward pass; every group's gradient is taken at the same parameters and all
    groups are updated together (dlib's FactorVAE).
  'sequential': groups are updated one after another in `groups` order, each recomputing the
    forward pass with the groups before it already updated (the mixing autoencoder's gen, cls, disc).
"""

from __future__ import annotations

import abc
import zlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Batch = Mapping[str, jax.Array]


def rng_stream(rng: jax.Array, name: str) -> jax.Array:
  """A named, independent RNG stream: adding a new stream never changes the others."""
  return jax.random.fold_in(rng, zlib.crc32(name.encode()) & 0x7FFFFFFF)


class Objective(abc.ABC):
  """Base class of every objective. Instances are immutable and hashable by identity."""

  #: Parameter groups in update order.
  groups: tuple[str, ...] = ('model',)
  #: 'simultaneous' or 'sequential'; see the module docstring.
  update_order: str = 'simultaneous'

  def __init__(self, config, image_shape: tuple[int, int, int]):
    """Args: config: the whole run config (objective, model, optimizer keys); image_shape: (H, W, C)."""
    self.config = config
    self.image_shape = tuple(image_shape)

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: Batch) -> tuple[dict[str, PyTree], PyTree]:
    """Returns `(params, model_state)` for a batch of the training data."""

  @abc.abstractmethod
  def optimizers(self) -> dict[str, optax.GradientTransformation]:
    """One optax transformation per group (learning-rate schedules included)."""

  @abc.abstractmethod
  def losses(
      self, params: dict[str, PyTree], model_state: PyTree, batch: Batch, rng: jax.Array,
      step: jax.Array,
  ) -> tuple[dict[str, jax.Array], tuple[PyTree, dict[str, jax.Array]]]:
    """Per-group scalar losses, the new model state and scalar metrics to log."""

  # What evaluators and pictures use. `images` are float in [0, 1], [B, H, W, C].

  @property
  @abc.abstractmethod
  def latent_dim(self) -> int:
    """Size of the representation returned by `encode`."""

  @abc.abstractmethod
  def encode(self, params, model_state, images: jax.Array) -> jax.Array:
    """The representation used by metrics, [B, latent_dim] (a VAE's posterior mean)."""

  @abc.abstractmethod
  def decode(self, params, model_state, codes: jax.Array) -> jax.Array:
    """Images in [0, 1], [B, H, W, C], from codes [B, latent_dim]."""

  def reconstruct(self, params, model_state, images: jax.Array) -> jax.Array:
    return self.decode(params, model_state, self.encode(params, model_state, images))

  def sample_prior(self, rng: jax.Array, num: int) -> jax.Array | None:
    """Codes drawn from the prior, [num, latent_dim], or None if the model has no prior."""
    del rng, num
    return None


def sum_losses(losses: Mapping[str, jax.Array]) -> jax.Array:
  return sum(jnp.asarray(v) for v in losses.values())

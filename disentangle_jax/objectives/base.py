"""The objective protocol: what the one train loop needs from every method.

An objective owns its networks, names its parameter groups (each with its own optimizer) and
returns one scalar loss per group. The loop in `disentangle_jax.training` never special-cases a
method: adding one is adding a module under `objectives/` and a config.

It is built as `Objective(config, data)`, where `data` is the dataset's `DatasetInfo` (image
shape, factor names and sizes, label names, split sizes), so sizes derive from the data; tests may
pass an image shape `(H, W, C)` instead.

Variables are plain pytrees:
  params: {group_name: pytree}: the trained groups (`groups`) and, read-only, the frozen ones
    (`frozen_groups`: loaded on the host by `load_frozen`, never optimised, saved in checkpoints,
    passed into the compiled step as arguments, never baked in as constants).
  model_state: non-trained collections (BatchNorm statistics), {} when there are none.

`losses(params, model_state, batch, rng, step)` returns `(losses, (new_model_state, metrics))` with
`losses = {group_name: scalar}`. Gradients of `losses[g]` are applied to `params[g]` only, which
reproduces TF's `var_list` semantics: a loss may depend on another group's parameters (the
generator's loss on the discriminator) without updating them.

`update_order`:
  'simultaneous': one forward pass; every group's gradient is taken at the same parameters and all
    groups are updated together (dlib's FactorVAE).
  'sequential': groups are updated one after another in `groups` order on the same batch, each
    pass seeing the parameters and the model state (BatchNorm statistics) left by the passes
    before it (the mixing autoencoder's generator, classifier, discriminator). Each group's logged
    loss is the one of its own pass. `model_state_owners()` ({model-state key: group}) keeps an
    entry's new value from its owner's pass only: the other passes leave it as it was, and the
    forward computations that only fed it are compiled away.
`update_every()`: {group: k} updates a group on every k-th step only (default 1; config key
`objective.update_every`, e.g. {'discriminator': 5}).

Stages (`stages()`): a run may be a sequence of stages, each with its length in steps and the
groups it trains (a PCA-like autoencoder grows its code one stage at a time). The loop compiles a
step per stage from `for_stage(i)`; groups outside a stage's list are neither differentiated nor
touched by their optimizer (their momentum cannot move them). Checkpoints carry the stage.

Evaluators and pictures use `encode` (the representation that metrics score), `decode`,
`reconstruct`, `sample_prior` and `pictures`, each with an optional condition `cond` that
`condition(batch)` extracts (None for unconditional models).
"""

from __future__ import annotations

import abc
import dataclasses
import zlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from disentangle_jax.data.info import DatasetInfo, as_dataset_info
from disentangle_jax.objectives import _common

PyTree = Any
Batch = Mapping[str, jax.Array]

def rng_stream(rng: jax.Array, name: str) -> jax.Array:
  """A named, independent RNG stream: adding a new stream never changes the others."""
  return jax.random.fold_in(rng, zlib.crc32(name.encode()) & 0x7FFFFFFF)


@dataclasses.dataclass(frozen=True)
class Stage:
  """One stage of training.

  Attributes:
    name: shown in logs ('train', 'component_2', ...).
    steps: the stage's length in steps.
    groups: the groups it trains (None: every group of `Objective.groups`).
  """

  name: str
  steps: int
  groups: tuple[str, ...] | None = None


class Objective(abc.ABC):
  """Base class of every objective. Instances are immutable and hashable by identity."""

  #: Trained parameter groups, in update order.
  groups: tuple[str, ...] = ('model',)
  #: Groups loaded by `load_frozen` and never optimised.
  frozen_groups: tuple[str, ...] = ()
  #: 'simultaneous' or 'sequential'; see the module docstring.
  update_order: str = 'simultaneous'
  #: The name used in error messages (subclasses set their registered name).
  name: str = 'objective'

  def __init__(self, config, data: DatasetInfo | tuple[int, int, int]):
    """Args: config: the whole run config; data: the dataset's `DatasetInfo` (or an image shape)."""
    self.config = config
    self.data = as_dataset_info(data)
    self.image_shape = tuple(self.data.image_shape)
    self._jitted = {}

  def hparam(self, key: str, default=_common.REQUIRED):
    """`config.objective.<key>`; required unless a default is given."""
    return _common.config_value(
        self.config, f'objective.{key}', default, owner=f'objective {self.name!r}'
    )

  # -- training -------------------------------------------------------------------------------

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: Batch) -> tuple[dict[str, PyTree], PyTree]:
    """Returns `(params, model_state)` of the trained groups for a batch of the training data."""

  @abc.abstractmethod
  def optimizers(self) -> dict[str, optax.GradientTransformation]:
    """One optax transformation per trained group (learning-rate schedules included)."""

  @abc.abstractmethod
  def losses(
      self, params: dict[str, PyTree], model_state: PyTree, batch: Batch, rng: jax.Array,
      step: jax.Array,
  ) -> tuple[dict[str, jax.Array], tuple[PyTree, dict[str, jax.Array]]]:
    """Per-group scalar losses, the new model state and scalar metrics to log."""

  def validation_losses(self, params, model_state, batch: Batch, rng: jax.Array,
                        step: jax.Array) -> dict[str, jax.Array]:
    """Losses on held-out data, for early stopping (default: `losses`' per-group values; the
    new model state is discarded). Objectives with BatchNorm or dropout may override it to run
    their networks in inference mode."""
    return self.losses(params, model_state, batch, rng, step)[0]

  def load_frozen(self) -> dict[str, PyTree]:
    """The frozen groups' variables, read on the host (e.g. from a file the config names).

    Returns {group: pytree of arrays} for every name in `frozen_groups` ({} by default). Called
    once per run before the step is compiled; the values travel in the train state.
    """
    if self.frozen_groups:
      raise NotImplementedError(f'{type(self).__name__} declares frozen groups '
                                f'{self.frozen_groups} but does not load them')
    return {}

  def update_every(self) -> dict[str, int]:
    """{group: k}: the group is updated on steps divisible by k only (config
    `objective.update_every`); groups not named are updated every step."""
    every = _common.to_kwargs(self.hparam('update_every', None))
    unknown = sorted(set(every) - set(self.groups))
    if unknown:
      raise ValueError(f'config.objective.update_every names unknown groups {unknown}; the '
                       f'groups of {self.name!r} are {list(self.groups)}')
    for group, k in every.items():
      if int(k) < 1:
        raise ValueError(f'config.objective.update_every.{group} must be >= 1, got {k}')
    return {g: int(k) for g, k in every.items() if int(k) != 1}

  def model_state_owners(self) -> dict[str, str]:
    """{model-state key: group}: in 'sequential' order, that entry (e.g. a network's BatchNorm
    statistics) moves in its group's pass only; entries not named move in every pass."""
    return {}

  def stages(self) -> tuple[Stage, ...]:
    """The run's stages in order; by default one stage of `config.total_steps` steps."""
    return (Stage('train', int(self.config.total_steps), None),)

  def for_stage(self, index: int) -> 'Objective':
    """The objective as it trains and evaluates in stage `index` (default: itself)."""
    del index
    return self

  # -- what evaluators and pictures use (images are float in [0, 1], [B, H, W, C]) ------------

  @property
  @abc.abstractmethod
  def latent_dim(self) -> int:
    """Size of the representation returned by `encode`."""

  @property
  def is_conditional(self) -> bool:
    """Whether `condition` reads anything from a batch."""
    return type(self).condition is not Objective.condition

  def condition(self, batch: Batch) -> jax.Array | None:
    """The condition a conditional model reads from a batch ([B, C] float), else None."""
    del batch
    return None

  @abc.abstractmethod
  def encode(self, params, model_state, images: jax.Array, cond=None) -> jax.Array:
    """The representation that metrics score, [B, latent_dim] (a VAE's posterior mean)."""

  @property
  def can_decode(self) -> bool:
    """Whether `decode` exists (a classifier has none)."""
    return type(self).decode is not Objective.decode

  def decode(self, params, model_state, codes: jax.Array, cond=None) -> jax.Array:
    """Images in [0, 1], [B, H, W, C], from codes [B, latent_dim]."""
    raise NotImplementedError(f'{type(self).__name__} has no decoder')

  def reconstruct(self, params, model_state, images: jax.Array, cond=None) -> jax.Array:
    return self.decode(params, model_state, self.encode(params, model_state, images, cond), cond)

  def sample_prior(self, rng: jax.Array, num: int, cond=None) -> jax.Array | None:
    """Codes drawn from the prior, [num, latent_dim], or None if the model has no prior."""
    del rng, num, cond
    return None

  def latent_activity(self, params, model_state, images, cond=None) -> np.ndarray:
    """How much each latent is used, [latent_dim] (default: the code's variance over `images`);
    the default pictures traverse the most active latents."""
    codes = np.asarray(self.jitted('encode')(params, model_state, images, cond))
    return codes.var(axis=0)

  def pictures(self, params, model_state, batch: Batch, rng: jax.Array) -> dict[str, np.ndarray]:
    """What this model's pictures are: {name: image [H, W, C], or frames [T, H, W, C] (a GIF)},
    floats in [0, 1] or uint8. Runs on the host; the default draws reconstructions, prior
    samples and traversals of the most active latents (at most ten, so that a 512-d code does
    not mean thousands of decodes)."""
    from disentangle_jax.visualization import default_pictures  # pylint: disable=g-import-not-at-top

    return default_pictures.draw(self, params, model_state, batch, rng)

  def evaluate(self, params, model_state, data_config, *,
               num_examples: int | None = None) -> dict[str, float]:
    """The objective's own held-out scores (a classifier's validation accuracy), computed on the
    host over `data_config`'s eval split (its first `num_examples` records; None: all); the loop
    writes them as `eval/<name>/<key>` at every evaluation. Default: none."""
    del params, model_state, data_config, num_examples
    return {}

  def jitted(self, method: str):
    """`jax.jit` of one of this objective's methods, compiled once per instance."""
    fn = self._jitted.get(method)
    if fn is None:
      static = (1,) if method == 'sample_prior' else ()  # the sample count
      fn = self._jitted[method] = jax.jit(getattr(self, method), static_argnums=static)
    return fn


def sum_losses(losses: Mapping[str, jax.Array]) -> jax.Array:
  return sum(jnp.asarray(v) for v in losses.values())

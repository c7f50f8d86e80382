"""The conditional VAE (Sohn, Lee, Yan, "Learning Structured Output Representation using Deep
Conditional Generative Models", NeurIPS 2015).

An encoder q(z | x, y), a decoder p(x | z, y) and the prior N(0, I) whatever y (Sohn et al.'s
learned prior network p(z | y) is not built). The loss is the negative conditional ELBO with one
posterior sample,

    L = E_b[ −log p(x | z, y) + KL(q(z | x, y) ‖ N(0, I)) ],   z ~ q(z | x, y)

(Sohn et al.'s conditional variational bound, with their input and output renamed: here the image
x is what is generated and the condition y is given). The condition y is appended to the
encoder's flattened features and to the decoder's input code (the networks' `cond` argument).

What y is (`config.objective.condition_on`):
  'labels'   every label column as a float: CelebA's 40 binary attributes as a multi-hot vector.
             The columns are taken as they are, so labels must be 0/1 (a multi-class label such as
             MNIST's digit would enter as one number; condition on a factor instead).
  'shape' or 'shape,scale' (or a list of names): the one-hot of each named ground-truth factor
             (sizes from the dataset), concatenated in the order given.
  None       the data decides: its labels if it has any, else its factor with the fewest values
             (dSprites: shape; 3D Shapes: shape).

Config (`config.objective`), on top of the VAE core's (`latent_dim`, `likelihood`):
  name:           'cvae'
  condition_on:   see above
  picture_rows:   examples in the condition picture (default 6)
Networks, optimizer: see `objectives._vae_core`. The representation for metrics is the posterior
mean given the image and its own condition, so conditional models are evaluated on labelled or
factor-annotated samples (codes against labels or factors), never on images rendered by factors
without their condition.

Pictures: the default ones (reconstructions, prior samples, traversals of the most active latents)
drawn with each example's condition, plus `condition_manipulation`: for a few examples, the input,
its reconstruction, then the same z decoded with one binary label flipped at a time (labels) or
with a chosen factor set to each of its values (factors).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.objectives import register
from disentangle_jax.objectives._vae_core import VAECore

LABELS = 'labels'
DEFAULT_PICTURE_ROWS = 6


@dataclasses.dataclass(frozen=True)
class ConditionPart:
  """One piece of the condition vector.

  Attributes:
    name: the label's or factor's name.
    column: its column in `batch['label']` or `batch['factors']`.
    offset: where its entries start in the condition vector.
    size: 1 for a binary label, else the factor's number of values (a one-hot).
  """

  name: str
  column: int
  offset: int
  size: int

  @property
  def is_binary(self) -> bool:
    return self.size == 1


def parse_condition_on(value) -> str | tuple[str, ...] | None:
  """None, 'labels', or a tuple of factor names from 'a,b' or a list."""
  if value is None:
    return None
  if isinstance(value, str):
    names = tuple(part.strip() for part in value.split(',') if part.strip())
  else:
    names = tuple(str(v).strip() for v in value)
  if not names:
    return None
  if LABELS in names:
    if len(names) > 1:
      raise ValueError(f"config.objective.condition_on: 'labels' cannot be mixed with factor "
                       f"names, got {value!r}")
    return LABELS
  return names


@register('cvae')
class CVAE(VAECore):
  """The conditional VAE (Sohn et al. 2015): labels or one-hot factors into encoder and decoder."""

  name = 'cvae'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.source, self.parts = self._condition_layout(parse_condition_on(
        self.hparam('condition_on', None)))
    self.picture_rows = int(self.hparam('picture_rows', DEFAULT_PICTURE_ROWS))

  def _condition_layout(self, choice) -> tuple[str, tuple[ConditionPart, ...]]:
    """('label' or 'factors', the parts of the condition vector) for the configured choice."""
    info = self.data
    if choice is None:
      if info.has_labels:
        choice = LABELS
      elif info.has_factors:
        choice = (info.factor_names[int(np.argmin(info.factor_sizes))],)
      else:
        raise ValueError(
            f"objective 'cvae' needs labels or ground-truth factors to condition on; dataset "
            f'{info.name!r} has neither: use a labelled dataset (celeb_a64) or one with factors')
    if choice == LABELS:
      if not info.has_labels:
        raise ValueError(
            f"config.objective.condition_on='labels' but dataset {info.name!r} has no labels; "
            f'condition on factors instead, one of {list(info.factor_names)}')
      parts = tuple(ConditionPart(name, i, i, 1) for i, name in enumerate(info.label_names))
      return 'label', parts
    unknown = [n for n in choice if n not in info.factor_names]
    if unknown:
      raise ValueError(
          f'config.objective.condition_on names unknown factors {unknown}; the factors of '
          f"{info.name!r} are {list(info.factor_names)}" + (" (or use 'labels')"
                                                             if info.has_labels else ''))
    if len(set(choice)) != len(choice):
      raise ValueError(f'config.objective.condition_on names a factor twice: {list(choice)}')
    parts, offset = [], 0
    for name in choice:
      column = info.factor_names.index(name)
      size = int(info.factor_sizes[column])
      parts.append(ConditionPart(name, column, offset, size))
      offset += size
    return 'factors', tuple(parts)

  @property
  def condition_dim(self) -> int:
    """C, the width of the condition vector."""
    return sum(part.size for part in self.parts)

  def condition(self, batch):
    """y [B, C] float32: the labels as they are, or the chosen factors' one-hots."""
    if self.source not in batch:
      raise KeyError(f"objective 'cvae' conditions on batch[{self.source!r}], which this batch "
                     f'does not have (keys: {sorted(batch)})')
    values = jnp.asarray(batch[self.source])
    values = values.reshape(values.shape[0], -1)
    if self.source == 'label':
      if values.shape[1] != len(self.parts):
        raise ValueError(f"objective 'cvae' expects {len(self.parts)} label columns "
                         f'({self.data.name}), got {values.shape[1]}')
      return values.astype(jnp.float32)
    return jnp.concatenate(
        [jax.nn.one_hot(values[:, p.column], p.size, dtype=jnp.float32) for p in self.parts],
        axis=-1)

  # -- the condition picture ------------------------------------------------------------------

  def condition_variants(self, cond_row: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The manipulated conditions of one example: ([J, C] float32, J column names).

    Binary labels are flipped one at a time; a one-hot factor is set to each of its values.
    """
    cond_row = np.asarray(cond_row, np.float32).reshape(-1)
    variants, names = [], []
    for part in self.parts:
      span = slice(part.offset, part.offset + part.size)
      if part.is_binary:
        variant = cond_row.copy()
        variant[span] = 1.0 - variant[span]
        variants.append(variant)
        names.append(part.name)
        continue
      for value in range(part.size):
        variant = cond_row.copy()
        variant[span] = np.eye(part.size, dtype=np.float32)[value]
        variants.append(variant)
        names.append(f'{part.name}={value}')
    return np.stack(variants), names

  def condition_picture(self, params, model_state, batch) -> np.ndarray:
    """Rows: examples. Columns: input, reconstruction, then the same z (the posterior mean
    given the example's own condition) decoded under each manipulated condition."""
    from disentangle_jax.visualization import images as image_lib  # pylint: disable=g-import-not-at-top

    rows = min(self.picture_rows, len(batch['image']))
    inputs = np.asarray(batch['image'])[:rows]
    cond = np.asarray(self.condition({k: np.asarray(v)[:rows] for k, v in batch.items()}))
    codes = np.asarray(self.jitted('encode')(params, model_state, inputs, cond))
    recon = np.asarray(self.jitted('decode')(params, model_state, codes, cond))
    variants = [self.condition_variants(c) for c in cond]
    names = variants[0][1]
    all_conds = np.concatenate([v for v, _ in variants])
    all_codes = np.repeat(codes, len(names), axis=0)
    decoded = np.asarray(self.jitted('decode')(params, model_state, all_codes, all_conds))
    decoded = decoded.reshape(rows, len(names), *decoded.shape[1:])
    grid = np.concatenate([inputs[:, None], recon[:, None], decoded], axis=1)
    what = 'one label flipped' if self.source == 'label' else 'factor set'
    return image_lib.labelled_grid(
        grid, col_labels=['input', 'recon', *names],
        title=f'same z, {what} (columns)')

  def pictures(self, params, model_state, batch, rng):
    pictures = super().pictures(params, model_state, batch, rng)
    pictures['condition_manipulation'] = self.condition_picture(params, model_state, batch)
    return pictures

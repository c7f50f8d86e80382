"""The small convnet of the Mixture-of-MNIST unit experiment (Zhou, "Interpreting deep visual
representations", with Wentao Zhu; the experiment that motivates Network Dissection, Bau, Zhou,
Khosla, Oliva, Torralba, CVPR 2017).

As in the talk: three conv layers with 10, 20 and 10 units, global average pooling over the last
layer's maps, a linear layer to the classes (softmax in the loss). The kernel size, pooling and
padding are not given there; ours [our choice]: 5×5 'same' convs with ReLU, 2×2 max-pooling after
layers 1 and 2 (56 → 28 → 14 px maps), so that a conv3 unit sees 29 px, about one digit (with 3×3
kernels it sees 18 px and the 45-class network barely learns: 3.8 % validation accuracy after 600
steps of the small mixture, where 5×5 reaches 18 % and is still climbing).

Variants, one constructor argument (`variant`):
* 'baseline';
* 'dropout': dropout on conv3's activations (rate `dropout_rate`, 0.5 by default; per activation,
  or per unit and image with `dropout_per_unit=True`);
* 'wider': conv3 has three times the units (30);
* 'wider_dropout': both.

For unit analysis and dissection the network returns its per-layer activations on request
(`return_activations=True`) and zeroes chosen units (`ablate`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disentangle_jax.networks.layers import Conv

VARIANTS = ('baseline', 'dropout', 'wider', 'wider_dropout')
LAYERS = ('conv1', 'conv2', 'conv3')


class DigitsConvNet(nn.Module):
  """Images [B, H, W, C] → [B, num_outputs] class logits.

  Attributes:
    num_outputs: classes (45 for unordered pairs of distinct digits, 28 for the distractor
      variant).
    variant: one of `VARIANTS`.
    features: units of conv1, conv2, conv3 before the variant ('wider' triples conv3's).
    kernel_size: side of every conv kernel.
    dropout_rate: dropout on conv3 in the dropout variants (needs a 'dropout' rng in training).
    dropout_per_unit: drop whole maps (one draw per image and unit) instead of single activations.
    conv_impl: see `layers.Conv`.
  """

  num_outputs: int = 45
  variant: str = 'baseline'
  features: Sequence[int] = (10, 20, 10)
  kernel_size: int = 5
  dropout_rate: float = 0.5
  dropout_per_unit: bool = False
  conv_impl: str = 'auto'

  def layer_units(self) -> dict[str, int]:
    """Units of each conv layer, after the variant."""
    if self.variant not in VARIANTS:
      raise ValueError(f'unknown DigitsConvNet variant {self.variant!r}; known: '
                       f'{", ".join(VARIANTS)}')
    units = list(self.features)
    if self.variant.startswith('wider'):
      units[2] *= 3
    return dict(zip(LAYERS, units))

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, *, return_activations: bool = False,
               ablate: Mapping[str, jax.Array] | None = None):
    """Class logits, and the activations if asked.

    Args:
      x: images [B, H, W, C] (H and W even, 56 for the two-digit canvases).
      train: dropout on (in the dropout variants).
      return_activations: also return {'conv1': [B, H, W, 10], 'conv2': [B, H/2, W/2, 20],
        'conv3': [B, H/4, W/4, 10 or 30], 'pooled': [B, conv3 units]}: each conv's ReLU output
        after ablation (and conv3's after dropout), the pooled vector the linear layer reads.
      ablate: {layer name: [units] mask}: each layer's activations are multiplied by its mask
        (0 zeroes a unit, 1 keeps it) before anything downstream reads them. A mask may also be
        [B, units], one per image.

    Returns:
      logits [B, num_outputs], or (logits, activations) with `return_activations`.
    """
    if x.ndim != 4:
      raise ValueError(f'DigitsConvNet expects images [B, H, W, C], got shape {x.shape}')
    units = self.layer_units()
    ablate = dict(ablate or {})
    unknown = set(ablate) - set(LAYERS)
    if unknown:
      raise ValueError(f'ablate names unknown layers {sorted(unknown)}; layers: '
                       f'{", ".join(LAYERS)}')
    activations = {}
    for i, name in enumerate(LAYERS):
      x = nn.relu(Conv(units[name], self.kernel_size, 1, 'SAME', conv_impl=self.conv_impl, name=name)(x))
      if name in ablate:
        mask = jnp.asarray(ablate[name], x.dtype)
        if mask.shape[-1] != units[name]:
          raise ValueError(f'ablate[{name!r}] has {mask.shape[-1]} entries; {name} has '
                           f'{units[name]} units')
        x = x * mask[..., None, None, :]  # [U] or [B, U] over [B, H, W, U]
      if name == 'conv3' and self.variant.endswith('dropout'):
        x = nn.Dropout(self.dropout_rate, broadcast_dims=(1, 2) if self.dropout_per_unit else (),
                       deterministic=not train)(x)
      activations[name] = x
      if i < 2:
        x = nn.max_pool(x, (2, 2), (2, 2), 'VALID')
    pooled = jnp.mean(x, axis=(1, 2))
    activations['pooled'] = pooled
    logits = nn.Dense(self.num_outputs, name='classifier')(pooled)
    return (logits, activations) if return_activations else logits

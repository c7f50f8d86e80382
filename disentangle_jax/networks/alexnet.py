"""The mixing autoencoder's chunk-origin classifier: AlexNet with batch norm.

Hu, Szabó, Portenier, Favaro, Zwicker, "Disentangling Factors of Variation by Mixing Them", CVPR
2018, §3 and the released code's classifier. Its input is the three images of one mixing step
(x1, x2 and the mixed-then-reconstructed x3 of the paper) stacked along channels, so 9 channels
for colour images; its output has one logit per feature chunk, which says whether that chunk of
x3's code came from x1 or from x2 (the objective applies the sigmoid and the chunk-origin loss).

`AlexNetBN` (≥ 60 px, the released code's layers; 60×60 Sprites and 64×64 CelebA). Body, each
conv → ReLU → batch norm: conv 8×8/2 VALID 96 → max-pool 3/2; conv 5×5 256 (2 groups) → max-pool
3/2; conv 3×3 384; conv 3×3 384 (2 groups); conv 3×3 256 (2 groups) → max-pool 3/2. Head: dense
4096 ReLU → dense 4096 ReLU → dense num_outputs. For 60×60 inputs the maps are 27, 13, 13, 6, 6, 6,
2; for 64×64 they are 29, 14, 14, 6, 6, 6, 2. No dropout. Grouped convs are
`feature_group_count=2`.

`AlexNetBNSmall` (16–59 px; 28×28 or 32×32 digits) keeps the same five-conv, three-pool pattern
for small images, which the 8×8/2 VALID first layer would shrink to nothing [our choice; the
paper gives no classifier for MNIST]: conv 5×5/1 64 → max-pool 3/2; conv 5×5 128 (2 groups) →
max-pool 3/2; conv 3×3 192; conv 3×3 192 (2 groups); conv 3×3 128 (2 groups) → max-pool 3/2; dense
1024 ReLU → dense 1024 ReLU → dense num_outputs. For 32×32 inputs the maps are 32, 15, 15, 7, 7, 7,
3; for 28×28: 28, 13, 13, 6, 6, 6, 2.

Batch norm as the discriminator's: decay 0.99, ε 1e-5.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from disentangle_jax.networks.layers import Conv


def _alexnet(x: jax.Array, layers: Sequence[tuple], dense: Sequence[int], num_outputs: int,
             train: bool, conv_impl: str) -> jax.Array:
  """The shared body and head; `layers` rows are (features, kernel, stride, padding, groups,
  pool after). Called inside a compact `__call__`, so the submodules are named Conv_i,
  BatchNorm_i, Dense_i in order."""
  for features, kernel, stride, padding, groups, pool in layers:
    x = Conv(features, kernel, stride, padding, feature_group_count=groups,
             conv_impl=conv_impl)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-5)(nn.relu(x))
    if pool:
      x = nn.max_pool(x, (3, 3), (2, 2), 'VALID')
  x = x.reshape(x.shape[0], -1)
  for width in dense:
    x = nn.relu(nn.Dense(width)(x))
  return nn.Dense(num_outputs)(x)


class AlexNetBN(nn.Module):
  """Images [B, S, S, C] (S ≥ 60 px; C = 9 for three stacked RGB images) → [B, num_outputs]
  logits (one per chunk in the mixing autoencoder)."""

  num_outputs: int
  dense_features: int = 4096
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4 or min(x.shape[1:3]) < 60:
      raise ValueError(f'AlexNetBN needs images [B, H, W, C] of at least 60×60 px, got {x.shape}; '
                       "use 'alexnet_bn_small' for smaller images")
    layers = [(96, 8, 2, 'VALID', 1, True), (256, 5, 1, 'SAME', 2, True),
              (384, 3, 1, 'SAME', 1, False), (384, 3, 1, 'SAME', 2, False),
              (256, 3, 1, 'SAME', 2, True)]
    return _alexnet(x, layers, (self.dense_features,) * 2, self.num_outputs, train,
                    self.conv_impl)


class AlexNetBNSmall(nn.Module):
  """Images [B, S, S, C] (16 ≤ S < 60 px, e.g. 28 or 32) → [B, num_outputs] logits."""

  num_outputs: int
  dense_features: int = 1024
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4 or min(x.shape[1:3]) < 16:
      raise ValueError(f'AlexNetBNSmall needs images [B, H, W, C] of at least 16×16 px, got '
                       f'{x.shape}')
    layers = [(64, 5, 1, 'SAME', 1, True), (128, 5, 1, 'SAME', 2, True),
              (192, 3, 1, 'SAME', 1, False), (192, 3, 1, 'SAME', 2, False),
              (128, 3, 1, 'SAME', 2, True)]
    return _alexnet(x, layers, (self.dense_features,) * 2, self.num_outputs, train,
                    self.conv_impl)

"""The mixing autoencoder's classifier: AlexNet with batch norm (methods.md §1.5).

Body, each conv → ReLU → batch norm: conv 8×8/2 VALID 96 → max-pool 3/2; conv 5×5 256 (2 groups)
→ max-pool 3/2; conv 3×3 384; conv 3×3 384 (2 groups); conv 3×3 256 (2 groups) → max-pool 3/2.
Head: dense 4096 ReLU → dense 4096 ReLU → dense num_outputs (logits; the objective applies the
sigmoid). For a 60×60×9 input (three Sprites frames stacked) the maps are 27, 13, 13, 6, 6, 6, 2.
No dropout. Grouped convs are `feature_group_count=2`.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from disentangle_jax.networks.layers import Conv


class AlexNetBN(nn.Module):
  """Images [B, S, S, C] (S ≥ 60 px) → [B, num_outputs] logits."""

  num_outputs: int
  dense_features: int = 4096
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4 or min(x.shape[1:3]) < 60:
      raise ValueError(f'AlexNetBN needs images [B, H, W, C] of at least 60×60 px, got {x.shape}')

    def conv_relu_bn(x, features, kernel, stride=1, padding='SAME', groups=1):
      x = Conv(features, kernel, stride, padding, feature_group_count=groups,
               conv_impl=self.conv_impl)(x)
      return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-5)(nn.relu(x))

    def pool(x):
      return nn.max_pool(x, (3, 3), (2, 2), 'VALID')

    x = pool(conv_relu_bn(x, 96, 8, 2, 'VALID'))
    x = pool(conv_relu_bn(x, 256, 5, groups=2))
    x = conv_relu_bn(x, 384, 3)
    x = conv_relu_bn(x, 384, 3, groups=2)
    x = pool(conv_relu_bn(x, 256, 3, groups=2))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.dense_features)(x))
    x = nn.relu(nn.Dense(self.dense_features)(x))
    return nn.Dense(self.num_outputs)(x)

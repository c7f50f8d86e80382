"""VGG19 with batch norm, feature aggregation and R-MAC: the extractor of the feature-aggregation
VAE (Seitzer, Foltyn, Kemeth, "Improved Disentanglement through Learned Aggregation of
Convolutional Feature Maps", NeurIPS 2019 Disentanglement Challenge report, arXiv 2002.12356, §2.1;
its stage-1 report, arXiv 2002.10003).

* `VGG`: the `features` stack of VGG19 with batch norm (Simonyan & Zisserman, ICLR 2015; the
  torchvision `vgg19_bn` layout): five stages of 3×3 'same' convs (64, 64 | 128, 128 | 256 × 4 |
  512 × 4 | 512 × 4 channels), each conv → batch norm → ReLU, a 2×2/2 max-pool after each stage.
  A 64×64 image gives a 2×2×512 map, a 224×224 one 7×7×512. `width` scales every stage's
  channels: `width=1/8` (8, 16, 32, 64, 64 channels; about 1/64 of the full network's 1.6 GMAC per
  64×64 image) is the narrow extractor trained from scratch on a CPU.
* `ConvAggregation`: the stage-2 report's learned aggregation: three times Dropout2d(0.1) → conv
  without bias → batch norm → ReLU, with 1024, 2048, 512 channels and kernels 1, 2, 1 ('VALID'),
  so a 2×2 map becomes 1×1; flattened and ℓ2-normalised (the report found the normalisation
  important for disentanglement).
* `rmac`, `RMACAggregation`: the stage-1 report's R-MAC (Tolias, Sicre, Jégou, ICLR 2016) with the
  region set "1-3-5-G": max-pools of 1×1/1, 3×3/2 and 5×5/2 windows and a global max, each
  regional vector ℓ2-normalised, all summed, the sum ℓ2-normalised.
* `VGGExtractor`: images in [0, 1] → (optional bilinear resize, 224 in stage 1) → ImageNet
  standardisation → `VGG` → aggregation → [B, 512] unit vectors.

The ℓ2 normalisation maps a zero vector to zero (its norm is replaced by 1), with finite gradients.

ImageNet weights: `convert_vgg19_bn` turns torchvision's `vgg19_bn` checkpoint (a `.pth` file
the user has, e.g. `vgg19_bn-c79401a0.pth`) into an `.npz` of plain arrays (needs torch, once);
`load_vgg19_bn` reads that file with numpy alone into this module's `params` and `batch_stats`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.networks.layers import Conv

VGG19_STAGES = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMAT = 'disentangle_jax/vgg19_bn/v1'

# torchvision's VGG initialisation: He normal over fan-out for convs, zero bias.
_vgg_conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
# The aggregation's convs: He uniform over fan-in (PyTorch's kaiming_uniform_ with a = 0).
_he_uniform = nn.initializers.variance_scaling(2.0, 'fan_in', 'uniform')


def _batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
  """PyTorch's BatchNorm2d defaults: momentum 0.1 (decay 0.9), ε 1e-5."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """`x / ‖x‖` along `axis`; a zero vector stays zero (its norm counts as 1), gradients finite."""
  squared = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
  positive = squared > 0
  norm = jnp.sqrt(jnp.where(positive, squared, 1.0))
  return x / norm


def vgg_stages(width: float = 1.0) -> tuple[tuple[int, ...], ...]:
  """VGG19's channels per stage, scaled by `width` (at least 1 channel each)."""
  return tuple(tuple(max(1, round(c * width)) for c in stage) for stage in VGG19_STAGES)


class VGG(nn.Module):
  """Images [B, H, W, 3] (already standardised) → feature map [B, H/32, W/32, channels].

  Submodules `conv_0` … `conv_15` and `bn_0` … `bn_15` in order (torchvision's `features.0`,
  `features.1`, `features.3`, … skipping ReLUs and pools), which `load_vgg19_bn` fills.
  """

  width: float = 1.0
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4 or min(x.shape[1:3]) < 32:
      raise ValueError(f'VGG needs images [B, H, W, C] of at least 32×32 px, got {x.shape}')
    k = 0
    for stage in vgg_stages(self.width):
      for channels in stage:
        x = Conv(channels, 3, 1, ((1, 1), (1, 1)), kernel_init=_vgg_conv_init,
                 conv_impl=self.conv_impl, name=f'conv_{k}')(x)
        x = nn.relu(_batch_norm(train, f'bn_{k}')(x))
        k += 1
      x = nn.max_pool(x, (2, 2), (2, 2), 'VALID')
    return x


class ConvAggregation(nn.Module):
  """Feature map [B, h, w, C] → [B, features[-1] · h' · w'] ℓ2-normalised (h' = w' = 1 for the
  2×2 maps of 64×64 images). Dropout needs a 'dropout' rng in training."""

  features: Sequence[int] = (1024, 2048, 512)
  kernel_sizes: Sequence[int] = (1, 2, 1)
  dropout_rate: float = 0.1
  normalize: bool = True
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if len(self.features) != len(self.kernel_sizes):
      raise ValueError(f'ConvAggregation: {len(self.features)} features but '
                       f'{len(self.kernel_sizes)} kernel sizes; give one kernel per layer')
    need = 1 + sum(k - 1 for k in self.kernel_sizes)
    if x.ndim != 4 or min(x.shape[1:3]) < need:
      raise ValueError(f'ConvAggregation needs maps [B, h, w, C] of at least {need}×{need} '
                       f'(e.g. VGG on 64×64 images), got {x.shape}')
    for features, kernel in zip(self.features, self.kernel_sizes):
      if self.dropout_rate > 0:  # Dropout2d: whole channels
        x = nn.Dropout(self.dropout_rate, broadcast_dims=(1, 2), deterministic=not train)(x)
      x = Conv(features, kernel, 1, 'VALID', use_bias=False, kernel_init=_he_uniform,
               conv_impl=self.conv_impl)(x)
      x = nn.relu(_batch_norm(train)(x))
    x = x.reshape(x.shape[0], -1)
    return l2_normalize(x) if self.normalize else x


def rmac(feature_map: jax.Array, regions: Sequence[int] = (1, 3, 5),
         global_max: bool = True) -> jax.Array:
  """R-MAC of a feature map [B, h, w, C] → [B, C], unit norm (zero for an all-zero map).

  Each `regions` entry k is a max-pool with a k×k window (stride 1 for k = 1, else 2, no padding);
  windows larger than the map are skipped. Every pooled vector is ℓ2-normalised, all are summed
  (with the global max's, if `global_max`), and the sum is ℓ2-normalised.
  """
  if feature_map.ndim != 4:
    raise ValueError(f'rmac expects a feature map [B, h, w, C], got shape {feature_map.shape}')
  x = jnp.asarray(feature_map, jnp.promote_types(feature_map.dtype, jnp.float32))
  total = jnp.zeros((x.shape[0], x.shape[-1]), x.dtype)
  used = 0
  for k in regions:
    if k > min(x.shape[1:3]):
      continue
    stride = 1 if k == 1 else 2
    pooled = nn.max_pool(x, (k, k), (stride, stride), 'VALID')
    total = total + jnp.sum(l2_normalize(pooled), axis=(1, 2))
    used += 1
  if global_max:
    total = total + l2_normalize(jnp.max(x, axis=(1, 2)))
    used += 1
  if not used:
    raise ValueError(f'rmac: no region of {tuple(regions)} fits a {x.shape[1:3]} map and '
                     'global_max is off')
  return l2_normalize(total)


class RMACAggregation(nn.Module):
  """`rmac` as a module (no parameters), interchangeable with `ConvAggregation`."""

  regions: Sequence[int] = (1, 3, 5)
  global_max: bool = True

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    return rmac(x, self.regions, self.global_max)


class VGGExtractor(nn.Module):
  """Images [B, H, W, C] in [0, 1] → [B, 512] unit-norm features (VGG, then an aggregation).

  Attributes:
    width: VGG channel multiplier (1: VGG19-BN, loadable with ImageNet weights; 1/8: narrow).
    aggregation: 'conv' (`ConvAggregation`, stage 2), 'rmac' (stage 1) or 'none' (the map).
    aggregation_features: the conv aggregation's channels (1024, 2048, 512).
    dropout_rate: the conv aggregation's Dropout2d rate.
    resize_to: bilinear resize to this square size first (224 in stage 1; None: as given).
    standardize: subtract ImageNet's channel mean and divide by its std (what the ImageNet weights
      expect). One-channel images are repeated to three channels.
  Submodules: 'backbone' (`VGG`) and, for 'conv', 'aggregation'.
  """

  width: float = 1.0
  aggregation: str = 'conv'
  aggregation_features: Sequence[int] = (1024, 2048, 512)
  dropout_rate: float = 0.1
  resize_to: int | None = None
  standardize: bool = True
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.aggregation not in ('conv', 'rmac', 'none'):
      raise ValueError(f"unknown aggregation {self.aggregation!r}; known: 'conv', 'rmac', 'none'")
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f'VGGExtractor expects images [B, H, W, 1 or 3], got shape {x.shape}')
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    if self.resize_to is not None:
      x = jax.image.resize(x, (x.shape[0], self.resize_to, self.resize_to, 3), 'bilinear')
    if self.standardize:
      x = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
    x = VGG(self.width, conv_impl=self.conv_impl, name='backbone')(x, train)
    if self.aggregation == 'rmac':
      return rmac(x)
    if self.aggregation == 'none':
      return x
    return ConvAggregation(self.aggregation_features, dropout_rate=self.dropout_rate,
                           conv_impl=self.conv_impl, name='aggregation')(x, train)


# ------------------------------------------------------------------------------------------------
# torchvision weights


def _torch_feature_indices() -> list[tuple[int, int]]:
  """(conv, batch norm) indices in torchvision's `vgg19_bn().features` Sequential."""
  pairs, i = [], 0
  for stage in VGG19_STAGES:
    for _ in stage:
      pairs.append((i, i + 1))  # conv, batch norm, then the ReLU at i + 2
      i += 3
    i += 1  # max-pool
  return pairs


def _to_numpy(value: Any) -> np.ndarray:
  if hasattr(value, 'detach'):  # a torch tensor
    value = value.detach().cpu().numpy()
  return np.asarray(value, np.float32)


def vgg19_bn_arrays(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """torchvision `vgg19_bn` state dict (tensors or arrays) → {'<collection>/<module>/<name>': array}
  in `VGG`'s layout (conv kernels [3, 3, in, out], batch norm scale/bias/mean/var). Only the
  `features.*` entries are read; a 'module.' prefix (DataParallel) is ignored."""
  state = {k.removeprefix('module.'): v for k, v in state_dict.items()}
  missing = [f'features.{c}.weight' for c, _ in _torch_feature_indices()
             if f'features.{c}.weight' not in state]
  if missing:
    raise ValueError(f'not a torchvision vgg19_bn state dict: {len(missing)} conv weights missing '
                     f'(first {missing[0]}); keys start {sorted(state)[:3]}')
  out = {}
  for k, (c, b) in enumerate(_torch_feature_indices()):
    weight = _to_numpy(state[f'features.{c}.weight'])
    if weight.ndim != 4 or weight.shape[2:] != (3, 3):
      raise ValueError(f'features.{c}.weight has shape {weight.shape}, not [out, in, 3, 3]: is '
                       'this vgg19_bn (with batch norm)?')
    out[f'params/conv_{k}/kernel'] = weight.transpose(2, 3, 1, 0)  # OIHW → HWIO
    out[f'params/conv_{k}/bias'] = _to_numpy(state[f'features.{c}.bias'])
    try:
      out[f'params/bn_{k}/scale'] = _to_numpy(state[f'features.{b}.weight'])
      out[f'params/bn_{k}/bias'] = _to_numpy(state[f'features.{b}.bias'])
      out[f'batch_stats/bn_{k}/mean'] = _to_numpy(state[f'features.{b}.running_mean'])
      out[f'batch_stats/bn_{k}/var'] = _to_numpy(state[f'features.{b}.running_var'])
    except KeyError as e:
      raise ValueError(f'{e.args[0]} missing: the checkpoint is VGG19 without batch norm; use '
                       'torchvision vgg19_bn') from None
  return out


def convert_vgg19_bn(pth_path: str, npz_path: str) -> str:
  """Converts torchvision's `vgg19_bn` checkpoint to an `.npz` that `load_vgg19_bn` reads.

  Args:
    pth_path: the torchvision checkpoint (e.g. `vgg19_bn-c79401a0.pth`, from
      `torchvision.models.vgg19_bn(weights='IMAGENET1K_V1')`), read with torch's `weights_only`
      loader (no code from the file runs). Needs torch.
    npz_path: where the arrays go (numpy's format, no pickles).

  Returns:
    npz_path.
  """
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError('converting a .pth file needs torch: pip install torch (or '
                      "pip install -e '.[convert]')") from None
  if not os.path.exists(pth_path):
    raise FileNotFoundError(f'no checkpoint at {pth_path}; give the path of torchvision\'s '
                            'vgg19_bn-c79401a0.pth')
  state = torch.load(pth_path, map_location='cpu', weights_only=True)
  if isinstance(state, Mapping) and 'state_dict' in state:
    state = state['state_dict']
  arrays = vgg19_bn_arrays(state)
  os.makedirs(os.path.dirname(os.path.abspath(npz_path)), exist_ok=True)
  with open(npz_path, 'wb') as f:
    np.savez(f, __format__=np.asarray(FORMAT), **arrays)
  return npz_path


def load_vgg19_bn(npz_path: str) -> dict[str, Any]:
  """{'params': …, 'batch_stats': …} of `VGG(width=1)` from a `convert_vgg19_bn` file.

  Put them into an extractor's variables with `set_backbone`.
  """
  if not os.path.exists(npz_path):
    raise FileNotFoundError(f'no VGG19-BN weights at {npz_path}; make them from torchvision\'s '
                            'checkpoint with launch/convert_vgg19_bn.py')
  with np.load(npz_path, allow_pickle=False) as data:
    if '__format__' not in data or str(data['__format__']) != FORMAT:
      raise ValueError(f'{npz_path} is not a VGG19-BN weight file of this project ({FORMAT}); '
                       'make one with launch/convert_vgg19_bn.py')
    variables: dict[str, Any] = {'params': {}, 'batch_stats': {}}
    for key in data.files:
      if key == '__format__':
        continue
      collection, module, name = key.split('/')
      variables[collection].setdefault(module, {})[name] = jnp.asarray(data[key])
  want = flax.core.unfreeze(jax.eval_shape(VGG().init, jax.random.key(0),
                                           jnp.zeros((1, 32, 32, 3))))
  if jax.tree.map(jnp.shape, want) != jax.tree.map(jnp.shape, variables):
    raise ValueError(f'{npz_path} does not hold VGG19-BN (width 1) arrays of the right shapes')
  return variables


def set_backbone(variables: Mapping[str, Any], backbone: Mapping[str, Any]) -> dict[str, Any]:
  """A `VGGExtractor`'s variables with the 'backbone' entries replaced by `backbone` (e.g.
  `load_vgg19_bn(path)`); the aggregation's stay. Shapes must match (width 1)."""
  out = {k: dict(v) for k, v in variables.items()}
  for collection in ('params', 'batch_stats'):
    have = jax.tree.map(jnp.shape, out[collection]['backbone'])
    if have != jax.tree.map(jnp.shape, dict(backbone[collection])):
      raise ValueError('set_backbone: the weights do not fit this extractor\'s backbone; ImageNet '
                       'weights need width=1')
    out[collection]['backbone'] = backbone[collection]
  return out

"""The feature extractor that the feature-aggregation VAE's objectives share (not a plugin).

Seitzer, Foltyn and Kemeth, "Improved Disentanglement through Learned Aggregation of Convolutional
Feature Maps" (NeurIPS 2019 Disentanglement Challenge report, arXiv 2002.12356), §2.1: a VGG19-BN
`features` stack followed by a learned aggregation to one unit-norm 512-d vector per image. Step 1
('factor_heads') trains it with one linear head per factor; steps 2 and 3 ('featvae') use it
frozen. It travels between the steps as an `.npz` of plain arrays (`save_extractor`,
`load_extractor`): keys '<collection>/<module path>/<name>' ('params/backbone/conv_0/kernel',
'batch_stats/aggregation/BatchNorm_0/mean', ...) and a format tag.

Config (`config.model`):
  extractor:        a feature extractor of `disentangle_jax.networks` ('vgg_extractor_narrow' on a
                    CPU, 'vgg_extractor' for VGG19-BN; default 'vgg_extractor_narrow')
  extractor_kwargs: its keyword arguments (aggregation, dropout_rate, resize_to, ...)
"""

from __future__ import annotations

import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.objectives._common import Network, build_network

EXTRACTOR_FORMAT = 'disentangle_jax/feature_extractor/v1'
DEFAULT_EXTRACTOR = 'vgg_extractor_narrow'


def build_extractor(config) -> Network:
  """`config.model.extractor` (images [B, H, W, C] in [0, 1] → [B, F] unit vectors)."""
  return build_network(config, 'extractor', DEFAULT_EXTRACTOR)


def feature_dim(extractor: Network, image_shape) -> int:
  """F, the size of the extractor's output for images of `image_shape` (H, W, C)."""
  def out(rng):
    variables = extractor.module.init({'params': rng, 'dropout': rng},
                                      jnp.zeros((1, *image_shape)), train=False)
    return extractor.module.apply(variables, jnp.zeros((1, *image_shape)), train=False)

  shape = jax.eval_shape(out, jax.random.key(0)).shape
  if len(shape) != 2:
    raise ValueError(f'the feature extractor must return vectors [B, F], got shape {shape}; use '
                     "an aggregation ('conv' or 'rmac'), not 'none'")
  return int(shape[-1])


def extract(extractor: Network, variables, images: jax.Array) -> jax.Array:
  """Features [B, F] of images in evaluation mode (running BatchNorm statistics, no dropout).

  `variables`: {'params': ..., 'batch_stats': ...} of the extractor. No gradient reaches them.
  """
  variables = jax.lax.stop_gradient(variables)
  out = extractor.module.apply(dict(variables), images, train=False)
  return jax.lax.stop_gradient(out)


def _flatten(variables) -> dict[str, np.ndarray]:
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(variables)), sep='/')
  return {k: np.asarray(v) for k, v in flat.items()}


def save_extractor(path: str, variables) -> str:
  """Writes an extractor's {'params', 'batch_stats'} to `path` (`.npz`, no pickles), atomically:
  a crash leaves the old file or the new one."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'wb') as f:
    np.savez(f, __format__=np.asarray(EXTRACTOR_FORMAT), **_flatten(variables))
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


def load_extractor(path: str, template=None) -> dict[str, Any]:
  """An extractor's variables from a `save_extractor` file, as numpy arrays.

  Args:
    path: the `.npz`.
    template: the extractor's variables as initialised (any arrays of the right shapes); when
      given, every leaf must be in the file with the same shape.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f'no feature extractor at {path}; run the finetuning step first (it '
                            'writes extractor.npz into its workdir) or give its path in '
                            'config.objective.extractor')
  with np.load(path, allow_pickle=False) as data:
    if '__format__' not in data.files or str(data['__format__']) != EXTRACTOR_FORMAT:
      raise ValueError(f'{path} is not a feature-extractor file of this project '
                       f'({EXTRACTOR_FORMAT}); write one with save_extractor')
    flat = {k: data[k] for k in data.files if k != '__format__'}
  if template is not None:
    flat_template = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(template)), sep='/')
    want = {k: tuple(v.shape) for k, v in flat_template.items()}
    have = {k: tuple(v.shape) for k, v in flat.items()}
    if want != have:
      diff = sorted(set(want.items()) ^ set(have.items()))
      raise ValueError(f'{path} does not fit the configured extractor (config.model.extractor '
                       f'and its kwargs must match the finetuning run); first difference: '
                       f'{diff[0]}')
  return flax.traverse_util.unflatten_dict(flat, sep='/')

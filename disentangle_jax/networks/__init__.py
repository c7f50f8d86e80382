"""Flax networks by name: `get_encoder`, `get_decoder`, `get_network`.

Conventions, so that objectives can use any network interchangeably:
* an encoder `get_encoder(name, num_outputs=N, ...)` maps images [B, H, W, C] to [B, N] (a VAE
  asks for 2·latent_dim and splits means and log-variances itself); `__call__(x, cond=None,
  train=False)`;
* a decoder `get_decoder(name, output_shape=(H, W, C), ...)` maps codes [B, Z] to pre-activation
  images [B, H, W, C] (the objective applies sigmoid or tanh; `output_activation` can do it here);
* other networks (discriminators, classifiers) map their input to [B, num_outputs] logits;
  `__call__(x, train=False)`; the feature extractors ('vgg19_bn', 'vgg_extractor', their
  '_narrow' versions, 'feature_aggregation', 'rmac') take no num_outputs and return feature maps
  or unit-norm vectors (see `vgg`).
BatchNorm statistics live in the 'batch_stats' collection (apply with `mutable=['batch_stats']` in
training). Conv networks take `conv_impl` ('auto' | 'xla' | 'fast'; see `fast_conv`); the
registry drops it for networks without convolutions, so a config can set it once for all.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn

from disentangle_jax.networks import alexnet, conv, dcgan, digits, fc, geometric, mlp, vgg

_ENCODERS: dict[str, Callable[..., nn.Module]] = {
    'conv': conv.ConvEncoder,
    'conv_k2': functools.partial(conv.ConvEncoder, kernel_sizes=(4, 4, 2, 2, 2)),
    'fc': fc.FCEncoder,
    'dcgan': dcgan.DCGANEncoder,
    **mlp.ENCODERS,
    **geometric.ENCODERS,
}
_DECODERS: dict[str, Callable[..., nn.Module]] = {
    'conv': conv.ConvDecoder,
    'conv_k2': conv.ConvDecoder,  # dlib's decoder has 4×4 kernels in both variants
    'fc': fc.FCDecoder,
    'dcgan': dcgan.DCGANDecoder,
    **mlp.DECODERS,
    **geometric.DECODERS,
}
_NETWORKS: dict[str, Callable[..., nn.Module]] = {
    'mlp_discriminator': fc.MLPDiscriminator,
    'dcgan_discriminator': dcgan.DCGANDiscriminator,
    'alexnet_bn': alexnet.AlexNetBN,
    'alexnet_bn_small': alexnet.AlexNetBNSmall,
    'digits_convnet': digits.DigitsConvNet,
    # feature extractors: images → feature maps or unit-norm feature vectors (no num_outputs)
    'vgg19_bn': vgg.VGG,
    'vgg19_bn_narrow': functools.partial(vgg.VGG, width=1 / 8),
    'vgg_extractor': vgg.VGGExtractor,
    'vgg_extractor_narrow': functools.partial(vgg.VGGExtractor, width=1 / 8),
    'feature_aggregation': vgg.ConvAggregation,
    'rmac': vgg.RMACAggregation,
}
_NO_CONV = (fc.FCEncoder, fc.FCDecoder, fc.MLPDiscriminator, mlp.FeatureMLPEncoder,
            mlp.FeatureMLPDecoder, vgg.RMACAggregation)


def _get(table: dict, kind: str, name: str, kwargs: dict) -> nn.Module:
  if name not in table:
    raise ValueError(f'unknown {kind} {name!r}; known: {", ".join(sorted(table))}')
  ctor = table[name]
  if getattr(ctor, 'func', ctor) in _NO_CONV:
    kwargs.pop('conv_impl', None)
  return ctor(**kwargs)


def get_encoder(name: str, **kwargs) -> nn.Module:
  """The encoder `name` (see `available()`: 'conv', 'conv_k2', 'fc', 'dcgan', 'feature_mlp', ...);
  kwargs: num_outputs=, ..."""
  return _get(_ENCODERS, 'encoder', name, kwargs)


def get_decoder(name: str, **kwargs) -> nn.Module:
  """The decoder `name` (see `available()`: 'conv', 'conv_k2', 'fc', 'dcgan', 'feature_mlp', ...);
  kwargs: output_shape=, ..."""
  return _get(_DECODERS, 'decoder', name, kwargs)


def get_network(name: str, **kwargs) -> nn.Module:
  """Another network by name (see `available()['network']`), e.g. 'dcgan_discriminator',
  'alexnet_bn' (≥ 60 px), 'alexnet_bn_small' (16–59 px); kwargs: num_outputs=, ..."""
  return _get(_NETWORKS, 'network', name, kwargs)


def available() -> dict[str, tuple[str, ...]]:
  """The registered names, by kind."""
  return {'encoder': tuple(sorted(_ENCODERS)), 'decoder': tuple(sorted(_DECODERS)),
          'network': tuple(sorted(_NETWORKS))}

"""The network registry and the networks' shapes, options and errors.

Shapes are checked with `jax.eval_shape` (nothing is compiled); a few tests run real values.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import networks
from disentangle_jax.networks import dcgan

KEY = jax.random.key(0)


def shapes(module, *inputs, **kwargs):
  """Output shape and parameter shapes of `module` on `inputs`, without computing anything."""
  variables = jax.eval_shape(module.init, KEY, *inputs)
  out = jax.eval_shape(lambda v, *xs: module.apply(v, *xs, **kwargs), variables, *inputs)
  return jax.tree.map(lambda a: a.shape, out), variables


def image(size, channels=1, batch=2):
  return jax.ShapeDtypeStruct((batch, size, size, channels), jnp.float32)


def codes(dim, batch=2):
  return jax.ShapeDtypeStruct((batch, dim), jnp.float32)


@pytest.mark.parametrize('name', ['conv', 'conv_k2', 'fc'])
@pytest.mark.parametrize('size', [28, 32, 64, 128])
@pytest.mark.parametrize('channels', [1, 3])
def test_encoders_and_decoders_by_size(name, size, channels):
  enc = networks.get_encoder(name, num_outputs=20, conv_impl='fast')
  assert shapes(enc, image(size, channels))[0] == (2, 20)
  dec = networks.get_decoder(name, output_shape=(size, size, channels), conv_impl='fast')
  assert shapes(dec, codes(10))[0] == (2, size, size, channels)


def test_dlib_conv_architecture():
  """methods.md §3.9: 32-32-64-64 with 4×4 / (4, 4, 2, 2) kernels, dense 256, 4×4×64 reshape."""
  _, variables = shapes(networks.get_encoder('conv', num_outputs=20), image(64))
  p = variables['params']
  assert [p[f'Conv_{i}']['kernel'].shape for i in range(4)] == [
      (4, 4, 1, 32), (4, 4, 32, 32), (4, 4, 32, 64), (4, 4, 64, 64)]
  assert p['Dense_0']['kernel'].shape == (1024, 256) and p['Dense_1']['kernel'].shape == (256, 20)
  _, variables = shapes(networks.get_encoder('conv_k2', num_outputs=20), image(64))
  assert [variables['params'][f'Conv_{i}']['kernel'].shape[:2] for i in range(4)] == [
      (4, 4), (4, 4), (2, 2), (2, 2)]
  _, variables = shapes(networks.get_decoder('conv', output_shape=(64, 64, 3)), codes(10))
  p = variables['params']
  assert p['Dense_0']['kernel'].shape == (10, 256) and p['Dense_1']['kernel'].shape == (256, 1024)
  assert [p[f'ConvTranspose_{i}']['kernel'].shape for i in range(4)] == [
      (4, 4, 64, 64), (4, 4, 64, 32), (4, 4, 32, 32), (4, 4, 32, 3)]


def test_fc_architecture():
  """methods.md §3.3: encoder 1200-1200 ReLU, decoder 1200-1200-1200 tanh."""
  _, variables = shapes(networks.get_encoder('fc', num_outputs=20, conv_impl='xla'), image(64))
  assert [variables['params'][f'Dense_{i}']['kernel'].shape for i in range(3)] == [
      (4096, 1200), (1200, 1200), (1200, 20)]
  _, variables = shapes(networks.get_decoder('fc', output_shape=(64, 64, 1)), codes(10))
  assert [variables['params'][f'Dense_{i}']['kernel'].shape for i in range(4)] == [
      (10, 1200), (1200, 1200), (1200, 1200), (1200, 4096)]


@pytest.mark.parametrize('size', [28, 32, 60, 64, 128])
def test_dcgan_networks_by_size(size):
  assert shapes(networks.get_encoder('dcgan', num_outputs=512), image(size, 3))[0] == (2, 512)
  dec = networks.get_decoder('dcgan', output_shape=(size, size, 3))
  assert shapes(dec, codes(512))[0] == (2, size, size, 3)
  disc = networks.get_network('dcgan_discriminator')
  (out, state), variables = shapes(disc, image(size, 3), train=True, mutable=['batch_stats'])
  assert out == (2, 1)
  assert set(state['batch_stats']) == set(variables['batch_stats'])


def test_dcgan_sprites_layers():
  """methods.md §1.5 for 60×60 Sprites: the released code's layer sizes."""
  _, variables = shapes(networks.get_encoder('dcgan', num_outputs=512), image(60, 3))
  p = variables['params']
  assert [p[f'Conv_{i}']['kernel'].shape for i in range(5)] == [
      (4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (2, 2, 256, 512), (2, 2, 512, 512)]
  assert p['Dense_0']['kernel'].shape == (2 * 2 * 512, 512)
  assert dcgan.size_ladder(60, 2) == [60, 30, 15, 8, 4, 2]
  _, variables = shapes(networks.get_decoder('dcgan', output_shape=(60, 60, 3)), codes(512))
  p = variables['params']
  assert [p[f'ConvTranspose_{i}']['kernel'].shape for i in range(5)] == [
      (4, 4, 512, 512), (3, 3, 512, 512), (4, 4, 512, 256), (4, 4, 256, 128), (4, 4, 128, 3)]
  assert all('bias' not in p[f'ConvTranspose_{i}'] for i in range(5))
  _, variables = shapes(networks.get_network('dcgan_discriminator'), image(60, 3))
  p = variables['params']
  assert [p[f'Conv_{i}']['kernel'].shape for i in range(4)] == [
      (3, 3, 3, 64), (3, 3, 64, 128), (3, 3, 128, 256), (1, 1, 256, 512)]
  assert p['Dense_0']['kernel'].shape == (8 * 8 * 512, 1)
  assert set(variables['batch_stats']) == {f'BatchNorm_{i}' for i in range(4)}


@pytest.mark.parametrize('size', [60, 64])
def test_alexnet_bn_classifier(size):
  """Three RGB images stacked along channels in, one logit per chunk out (8 chunks)."""
  net = networks.get_network('alexnet_bn', num_outputs=8)
  out, variables = shapes(net, image(size, 9))
  assert out == (2, 8)
  p = variables['params']
  assert p['Conv_0']['kernel'].shape == (8, 8, 9, 96)
  assert p['Conv_1']['kernel'].shape == (5, 5, 48, 256)  # two groups of 48 input channels
  assert p['Conv_4']['kernel'].shape == (3, 3, 192, 256)
  assert p['Dense_0']['kernel'].shape == (2 * 2 * 256, 4096)  # 2×2 maps at 60 and 64 px
  assert p['Dense_2']['kernel'].shape == (4096, 8)
  assert set(variables['batch_stats']) == {f'BatchNorm_{i}' for i in range(5)}
  with pytest.raises(ValueError, match='alexnet_bn_small'):
    shapes(net, image(32, 9))


@pytest.mark.parametrize('size,last_map', [(28, 2), (32, 3)])
def test_alexnet_bn_small_classifier(size, last_map):
  net = networks.get_network('alexnet_bn_small', num_outputs=8, conv_impl='xla')
  (out, state), variables = shapes(net, image(size, 3), train=True, mutable=['batch_stats'])
  assert out == (2, 8)
  p = variables['params']
  assert [p[f'Conv_{i}']['kernel'].shape for i in range(5)] == [
      (5, 5, 3, 64), (5, 5, 32, 128), (3, 3, 128, 192), (3, 3, 96, 192), (3, 3, 96, 128)]
  assert p['Dense_0']['kernel'].shape == (last_map * last_map * 128, 1024)
  assert set(state['batch_stats']) == {f'BatchNorm_{i}' for i in range(5)}
  with pytest.raises(ValueError, match='16'):
    shapes(net, image(12, 3))


def test_alexnet_bn_classifier_runs_and_sees_every_input_image():
  """Real values at 32 px: the logits depend on each of the three stacked images."""
  net = networks.get_network('alexnet_bn_small', num_outputs=4, dense_features=16,
                             conv_impl='xla')
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 9)), jnp.float32)
  v = jax.jit(net.init)(KEY, x)
  apply = jax.jit(lambda v, x: net.apply(v, x, train=True, mutable=['batch_stats'])[0])
  base = apply(v, x)
  assert base.shape == (2, 4) and np.all(np.isfinite(base))
  for image_index in range(3):
    changed = x.at[..., 3 * image_index:3 * image_index + 3].set(0.0)
    assert not np.allclose(apply(v, changed), base)


def test_dcgan_celeba_layers():
  """64×64: the Sprites pattern with one stride-2 level per halving."""
  _, variables = shapes(networks.get_encoder('dcgan', num_outputs=512), image(64, 3))
  p = variables['params']
  assert [p[f'Conv_{i}']['kernel'].shape for i in range(5)] == [
      (4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (2, 2, 256, 512), (2, 2, 512, 512)]
  assert p['Dense_0']['kernel'].shape == (2 * 2 * 512, 512)
  _, variables = shapes(networks.get_decoder('dcgan', output_shape=(64, 64, 3)), codes(512))
  p = variables['params']
  assert [p[f'ConvTranspose_{i}']['kernel'].shape for i in range(5)] == [
      (4, 4, 512, 512), (3, 3, 512, 512), (4, 4, 512, 256), (4, 4, 256, 128), (4, 4, 128, 3)]
  _, variables = shapes(networks.get_network('dcgan_discriminator'), image(64, 3))
  assert variables['params']['Dense_0']['kernel'].shape == (8 * 8 * 512, 1)


@pytest.mark.parametrize('size', [60, 64])
def test_dcgan_intermediate_map_sizes(size):
  """The decoder's maps climb the encoder's ladder (60: 4, 8, 15, 30, 60; 64: 4, 8, … 64)."""
  dec = networks.get_decoder('dcgan', output_shape=(size, size, 3), top_features=8,
                             bottom_features=4, conv_impl='xla')
  z = jnp.zeros((1, 6))
  v = jax.eval_shape(dec.init, KEY, z)
  _, inter = jax.eval_shape(
      lambda v, z: dec.apply(v, z, capture_intermediates=True, mutable=['intermediates']), v, z)
  sides = [inter['intermediates'][f'ConvTranspose_{i}']['__call__'][0].shape[1] for i in range(5)]
  assert sides == dcgan.size_ladder(size, 4)[::-1]


def test_dcgan_decoder_output_is_pre_activation():
  """The released code's tanh is left to the caller; `output_activation='tanh'` applies it."""
  kw = dict(output_shape=(32, 32, 3), top_features=8, bottom_features=4, conv_impl='xla')
  plain, tanh = networks.get_decoder('dcgan', **kw), networks.get_decoder(
      'dcgan', output_activation='tanh', **kw)
  z = jnp.asarray(np.random.default_rng(1).standard_normal((2, 16)) * 30, jnp.float32)
  v = jax.jit(plain.init)(KEY, z)
  raw = jax.jit(plain.apply)(v, z)
  np.testing.assert_allclose(jax.jit(tanh.apply)(v, z), np.tanh(raw), rtol=1e-5, atol=1e-6)


def test_mlp_discriminator():
  net = networks.get_network('mlp_discriminator', num_outputs=2, conv_impl='auto')
  out, variables = shapes(net, codes(10, batch=5))
  assert out == (5, 2)
  kernels = [variables['params'][f'Dense_{i}']['kernel'].shape for i in range(7)]
  assert kernels == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
  z = jnp.linspace(-1.0, 1.0, 20).reshape(2, 10)
  v = jax.jit(net.init)(KEY, z)
  h = z
  for i in range(6):  # LeakyReLU with slope 0.2, as TF's default
    d = v['params'][f'Dense_{i}']
    h = h @ d['kernel'] + d['bias']
    h = jnp.where(h > 0, h, 0.2 * h)
  want = h @ v['params']['Dense_6']['kernel'] + v['params']['Dense_6']['bias']
  np.testing.assert_allclose(jax.jit(net.apply)(v, z), want, rtol=1e-5, atol=1e-6)


def test_condition_is_appended():
  enc = networks.get_encoder('conv', num_outputs=8)
  _, with_cond = shapes(enc, image(32), codes(40))
  _, without = shapes(enc, image(32))
  assert with_cond['params']['Dense_0']['kernel'].shape[0] == \
      without['params']['Dense_0']['kernel'].shape[0] + 40
  dec = networks.get_decoder('fc', output_shape=(28, 28, 1))
  _, variables = shapes(dec, codes(10), codes(3))
  assert variables['params']['Dense_0']['kernel'].shape == (13, 1200)
  with pytest.raises(TypeError, match='train='):
    enc.init(KEY, jnp.zeros((2, 32, 32, 1)), True)


def test_condition_changes_the_output():
  dec = networks.get_decoder('conv', output_shape=(32, 32, 1), conv_impl='fast')
  z, y0, y1 = jnp.zeros((2, 4)), jnp.zeros((2, 3)), jnp.ones((2, 3))
  v = jax.jit(dec.init)(KEY, z, y0)
  apply = jax.jit(dec.apply)
  assert not np.allclose(apply(v, z, y0), apply(v, z, y1))


def test_output_activation():
  dec = networks.get_decoder('fc', output_shape=(4, 4, 1), hidden=(8,), output_activation='tanh')
  plain = networks.get_decoder('fc', output_shape=(4, 4, 1), hidden=(8,))
  z = jnp.ones((2, 3))
  v = jax.jit(plain.init)(KEY, z)
  np.testing.assert_allclose(jax.jit(dec.apply)(v, z), jnp.tanh(jax.jit(plain.apply)(v, z)),
                             rtol=1e-6)
  with pytest.raises(ValueError, match='activation'):
    shapes(networks.get_decoder('fc', output_shape=(4, 4, 1), output_activation='softmax'),
           codes(3))


def test_batch_norm_statistics_update_in_training_only():
  net = networks.get_network('dcgan_discriminator', base_features=4, top_features=8,
                             conv_impl='fast')
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 32, 32, 3)), jnp.float32)
  v = jax.jit(net.init)(KEY, x)
  train = jax.jit(lambda v, x: net.apply(v, x, train=True, mutable=['batch_stats']))
  _, new = train(v, x)
  before, after = v['batch_stats']['BatchNorm_0']['mean'], new['batch_stats']['BatchNorm_0']['mean']
  assert not np.allclose(before, after)
  np.testing.assert_array_equal(before, 0.0)  # the running mean starts at 0 ...
  assert np.max(np.abs(after)) < 0.05  # ... and moves by 1 - 0.99 of the batch mean
  out_eval = jax.jit(lambda v, x: net.apply(v, x, train=False))(v, x)
  assert out_eval.shape == (4, 1)


@pytest.mark.parametrize('make', [
    lambda: networks.get_encoder('conv', num_outputs=4),
    lambda: networks.get_encoder('dcgan', num_outputs=4),
])
def test_unsupported_images_are_refused(make):
  with pytest.raises(ValueError, match='px'):
    shapes(make(), image(48))
  with pytest.raises(ValueError, match='square'):
    shapes(make(), jax.ShapeDtypeStruct((2, 64, 32, 1), jnp.float32))


def test_unsupported_decoder_shapes_are_refused():
  with pytest.raises(ValueError, match='px'):
    shapes(networks.get_decoder('conv', output_shape=(48, 48, 1)), codes(4))
  with pytest.raises(ValueError, match='square'):
    shapes(networks.get_decoder('dcgan', output_shape=(64, 32, 3)), codes(4))


def test_registry():
  names = networks.available()
  feature_mlps = {'feature_mlp', 'feature_mlp_released', 'feature_mlp_stage1'}
  assert set(names['encoder']) >= {'conv', 'conv_k2', 'fc', 'dcgan'} | feature_mlps
  assert set(names['decoder']) >= {'conv', 'conv_k2', 'fc', 'dcgan'} | feature_mlps
  assert set(names['network']) >= {
      'mlp_discriminator', 'dcgan_discriminator', 'alexnet_bn', 'alexnet_bn_small',
      'digits_convnet', 'vgg19_bn', 'vgg19_bn_narrow', 'vgg_extractor', 'vgg_extractor_narrow',
      'feature_aggregation', 'rmac'}
  with pytest.raises(ValueError, match='unknown encoder'):
    networks.get_encoder('resnet', num_outputs=2)
  # conv_impl can be set once for every network, including those without convolutions
  for name in ('fc', 'conv', 'dcgan', 'feature_mlp'):
    assert networks.get_encoder(name, num_outputs=2, conv_impl='xla') is not None
  assert networks.get_network('rmac', conv_impl='xla') is not None
  with pytest.raises(ValueError, match='conv_impl'):
    shapes(networks.get_encoder('conv', num_outputs=2, conv_impl='gpu'), image(32))

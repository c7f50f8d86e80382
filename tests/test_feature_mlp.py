"""The feature-VAE MLPs: layouts of the paper's, the released and the stage-1 widths, batch norm,
initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import networks

KEY = jax.random.key(0)


def kernels(variables):
  p = variables['params']
  return [p[f'Dense_{i}']['kernel'].shape for i in range(sum(k.startswith('Dense') for k in p))]


@pytest.mark.parametrize('name,enc,dec', [
    ('feature_mlp', [(512, 1024)] + [(1024, 1024)] * 3 + [(1024, 32)],
     [(16, 1024)] + [(1024, 1024)] * 3 + [(1024, 512)]),
    ('feature_mlp_released', [(512, 4096), (4096, 32)],
     [(16, 4096)] + [(4096, 4096)] * 3 + [(4096, 512)]),
    ('feature_mlp_stage1', [(512, 256), (256, 128), (128, 64), (64, 32)],
     [(16, 64), (64, 128), (128, 256), (256, 512)]),
])
def test_widths(name, enc, dec):
  x, z = jnp.zeros((2, 512)), jnp.zeros((2, 16))
  e = networks.get_encoder(name, num_outputs=32, conv_impl='xla')
  v = jax.eval_shape(e.init, KEY, x)
  assert kernels(v) == enc
  assert len(v['batch_stats']) == len(enc) - 1
  assert all('bias' not in v['params'][f'Dense_{i}'] for i in range(len(enc) - 1))
  assert 'bias' in v['params'][f'Dense_{len(enc) - 1}']
  assert jax.eval_shape(e.apply, v, x).shape == (2, 32)
  d = networks.get_decoder(name, output_shape=(512,), conv_impl='xla')
  v = jax.eval_shape(d.init, KEY, z)
  assert kernels(v) == dec
  assert jax.eval_shape(d.apply, v, z).shape == (2, 512)


def test_orthogonal_and_torch_default_init():
  e = networks.get_encoder('feature_mlp', num_outputs=32, hidden=(64, 64))
  p = jax.jit(e.init)(KEY, jnp.zeros((2, 128)))['params']
  w = np.asarray(p['Dense_1']['kernel'])
  np.testing.assert_allclose(w.T @ w, np.eye(64), atol=1e-5)  # square: orthogonal
  w = np.asarray(p['Dense_0']['kernel'])  # 128 × 64: orthonormal columns
  np.testing.assert_allclose(w.T @ w, np.eye(64), atol=1e-5)
  np.testing.assert_array_equal(p['Dense_2']['bias'], 0.0)
  d = networks.get_decoder('feature_mlp_released', output_shape=(512,), hidden=(256,))
  w = np.asarray(jax.jit(d.init)(KEY, jnp.zeros((2, 16)))['params']['Dense_1']['kernel'])
  bound = 1 / np.sqrt(256)
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound  # uniform ±1/√fan_in
  with pytest.raises(ValueError, match='unknown init'):
    jax.eval_shape(networks.get_encoder('feature_mlp', num_outputs=2, weight_init='he').init, KEY,
                   jnp.zeros((2, 4)))


def test_batch_norm_normalises_in_training_and_output_activation():
  d = networks.get_decoder('feature_mlp', output_shape=(8,), hidden=(32,))
  d_sig = networks.get_decoder('feature_mlp', output_shape=(8,), hidden=(32,),
                               output_activation='sigmoid')
  z = jnp.asarray(np.random.default_rng(0).standard_normal((64, 4)) * 5 + 3, jnp.float32)
  v = jax.jit(d.init)(KEY, z)
  out, state = d.apply(v, z, train=True, mutable=['batch_stats'])
  # the hidden layer's batch statistics: mean of the pre-norm activations, decay 0.9
  h = np.asarray(z @ v['params']['Dense_0']['kernel'])
  np.testing.assert_allclose(state['batch_stats']['BatchNorm_0']['mean'], 0.1 * h.mean(0),
                             rtol=1e-4, atol=1e-5)
  sig = d_sig.apply(v, z, train=True, mutable=['batch_stats'])[0]
  np.testing.assert_allclose(sig, jax.nn.sigmoid(out), rtol=1e-6)
  assert out.shape == (64, 8)

"""The fast CPU convolutions equal `lax` exactly: values, input gradients and kernel gradients."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np
import pytest

from disentangle_jax import networks
from disentangle_jax.networks import fast_conv
from disentangle_jax.networks.layers import Conv, ConvTranspose

DN = ('NHWC', 'HWIO', 'NHWC')
RTOL = 2e-5  # relative to the largest magnitude of each compared array


def reference_conv(x, w, padding):
  return lax.conv_general_dilated(x, w, (2, 2), padding, dimension_numbers=DN,
                                  precision=lax.Precision.HIGHEST)


def reference_conv_transpose(x, w, padding):
  return lax.conv_transpose(x, w, (2, 2), padding, dimension_numbers=DN,
                            precision=lax.Precision.HIGHEST)


def _errors(fn, ref, x, w, dy):
  """Relative max errors of fn against ref: value, input gradient, kernel gradient."""
  y_ref, vjp_ref = jax.vjp(ref, x, w)
  y, vjp = jax.vjp(fn, x, w)
  errs = []
  for got, want in zip((y, *vjp(dy)), (y_ref, *vjp_ref(dy))):
    errs.append(jnp.max(jnp.abs(got - want)) / (jnp.max(jnp.abs(want)) + 1e-6))
  return jnp.stack(errs)


def normal(seed, shape):
  """Random test data from numpy (jax.random would compile a program for every shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def assert_same_function(fn, ref, x, w, seed=0):
  """fn and ref agree in value and in both gradients, for a random output cotangent."""
  dy = normal(seed, jax.eval_shape(ref, x, w).shape)
  errs = np.asarray(jax.jit(lambda x, w, dy: _errors(fn, ref, x, w, dy))(x, w, dy))
  assert np.all(errs < RTOL), f'relative errors (value, input grad, kernel grad): {errs}'


def random_pair(seed, x_shape, w_shape):
  return normal(2 * seed, x_shape), normal(2 * seed + 1, w_shape)


# Paddings: the string modes, explicit pads, and explicit pads that crop (negative).
PADDINGS = ['SAME', 'VALID', ((-1, 2), (2, 1))]
# (height, width, kernel): even, odd and mixed sizes; the kernels of the networks (4, 3, 2 and
# AlexNet's 8) and an odd one.
GEOMETRIES = [(8, 8, 4), (9, 7, 4), (8, 9, 3), (7, 8, 2), (11, 10, 8), (6, 7, 5)]


def _assert_exact_on_all_geometries(kind, formulation, padding):
  """One jitted check of every geometry (one compilation per formulation and padding)."""
  plan = fast_conv.Plan(formulation, formulation, formulation)
  if kind == 'conv':
    fast = lambda x, w: fast_conv.conv2d(x, w, (2, 2), padding, impl='fast', plan=plan)
    ref = lambda x, w: reference_conv(x, w, padding)
  else:
    fast = lambda x, w: fast_conv.conv_transpose2d(x, w, (2, 2), padding, impl='fast', plan=plan)
    ref = lambda x, w: reference_conv_transpose(x, w, padding)
  cases = []
  for i, (h, w, k) in enumerate(GEOMETRIES):
    x, kernel = random_pair(i, (2, h, w, 3), (k, k, 3, 5))
    try:
      y = jax.eval_shape(ref, x, kernel)
    except (ValueError, TypeError):  # an empty output, which lax refuses too
      continue
    if 0 in y.shape:
      continue
    cases.append((x, kernel, normal(100 + i, y.shape)))
  errs = jax.jit(lambda cases: [_errors(fast, ref, *case) for case in cases])(cases)
  for (x, kernel, _), err in zip(cases, errs):
    assert np.all(np.asarray(err) < RTOL), (
        f'{kind} {formulation} x{x.shape} k{kernel.shape}: relative errors (value, input grad, '
        f'kernel grad) {np.asarray(err)}')


# 'lax' is the reference itself; the default plans' tests below run it through the custom VJP.
@pytest.mark.parametrize('formulation', fast_conv.formulations('conv')[1:])
@pytest.mark.parametrize('padding', PADDINGS, ids=str)
def test_strided_conv_formulations_are_exact(formulation, padding):
  _assert_exact_on_all_geometries('conv', formulation, padding)


@pytest.mark.parametrize('formulation', fast_conv.formulations('conv_transpose')[1:])
@pytest.mark.parametrize('padding', PADDINGS, ids=str)
def test_transposed_conv_formulations_are_exact(formulation, padding):
  _assert_exact_on_all_geometries('conv_transpose', formulation, padding)


# The layers of the standard networks (64 px, 1 and 3 channels), with the default plans.
NETWORK_CONVS = [((64, 64, 1), (4, 4, 1, 32)), ((32, 32, 32), (4, 4, 32, 32)),
                 ((16, 16, 32), (2, 2, 32, 64)), ((15, 15, 128), (4, 4, 128, 256)),
                 ((64, 64, 3), (4, 4, 3, 32))]
NETWORK_DECONVS = [((4, 4, 64), (4, 4, 64, 64)), ((16, 16, 32), (4, 4, 32, 32)),
                   ((32, 32, 32), (4, 4, 32, 1)), ((32, 32, 32), (4, 4, 32, 3)),
                   ((4, 4, 512), (3, 3, 512, 512))]


@pytest.mark.parametrize('x_shape,w_shape', NETWORK_CONVS, ids=str)
def test_network_convs_with_default_plan(x_shape, w_shape):
  x, w = random_pair(1, (4, *x_shape), w_shape)
  fn = jax.jit(lambda x, w: fast_conv.conv2d(x, w, (2, 2), 'SAME', impl='fast'))
  assert_same_function(fn, lambda x, w: reference_conv(x, w, 'SAME'), x, w)


@pytest.mark.parametrize('x_shape,w_shape', NETWORK_DECONVS, ids=str)
def test_network_deconvs_with_default_plan(x_shape, w_shape):
  x, w = random_pair(2, (4, *x_shape), w_shape)
  fn = jax.jit(lambda x, w: fast_conv.conv_transpose2d(x, w, (2, 2), 'SAME', impl='fast'))
  assert_same_function(fn, lambda x, w: reference_conv_transpose(x, w, 'SAME'), x, w)


def test_mixed_plans_and_second_order_free_use_under_jit():
  """Each part may use a different formulation; under jit and vmap-free grad of a sum."""
  x, w = random_pair(3, (2, 10, 10, 4), (4, 4, 4, 6))
  for fwd, dx, dw in itertools.product(('lax', 's2d_gemm'), ('s2d_conv', 's2d_gemm'),
                                       ('lax', 's2d_gemm_tt')):
    plan = fast_conv.Plan(fwd, dx, dw)
    fn = jax.jit(lambda x, w, plan=plan: fast_conv.conv2d(x, w, (2, 2), 'SAME', impl='fast',
                                                         plan=plan))
    assert_same_function(fn, lambda x, w: reference_conv(x, w, 'SAME'), x, w)


def test_space_to_depth_round_trip_and_kernel_layout():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  s = fast_conv.space_to_depth(x)
  assert s.shape == (2, 2, 3, 12)
  np.testing.assert_array_equal(fast_conv.depth_to_space(s), x)
  # block (0, 0), phase (1, 0), channel 2 is pixel (1, 0), channel 2
  assert s[0, 0, 0, 1 * 6 + 0 * 3 + 2] == x[0, 1, 0, 2]
  assert fast_conv.s2d_kernel(jnp.ones((3, 3, 2, 5))).shape == (2, 2, 8, 5)


@pytest.mark.parametrize('strides,groups', [((1, 1), 2), ((2, 2), 2), ((1, 1), 3)])
def test_grouped_convs_as_one_conv_per_group_are_exact(strides, groups):
  x, w = random_pair(4, (2, 9, 9, 6), (3, 3, 6 // groups, 6))

  def loss(fn):
    return lambda x, w: jnp.sum(jnp.sin(fn(x, w)))

  fast = lambda x, w: fast_conv.conv2d(x, w, strides, 'SAME', impl='fast',
                                       feature_group_count=groups)
  ref = lambda x, w: lax.conv_general_dilated(x, w, strides, 'SAME', dimension_numbers=DN,
                                              feature_group_count=groups,
                                              precision=lax.Precision.HIGHEST)
  np.testing.assert_allclose(fast(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
  for got, want in zip(jax.grad(loss(fast), (0, 1))(x, w), jax.grad(loss(ref), (0, 1))(x, w)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_unsupported_cases_fall_back_to_xla():
  x, w = random_pair(5, (2, 9, 9, 4), (3, 3, 4, 6))
  for strides in ((1, 1), (2, 1)):
    got = fast_conv.conv2d(x, w, strides, 'SAME', impl='fast')
    ref = lax.conv_general_dilated(x, w, strides, 'SAME', dimension_numbers=DN)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_bad_arguments_are_named():
  x, w = random_pair(6, (2, 8, 8, 3), (4, 4, 3, 5))
  with pytest.raises(ValueError, match='conv_impl'):
    fast_conv.conv2d(x, w, (2, 2), impl='cuda')
  with pytest.raises(ValueError, match='formulation'):
    fast_conv.conv2d(x, w, (2, 2), impl='fast', plan=fast_conv.Plan('lax', 'nope', 'lax'))
  assert fast_conv.resolve_conv_impl('auto', backend='cpu') == 'fast'
  assert fast_conv.resolve_conv_impl('auto', backend='gpu') == 'xla'
  assert fast_conv.resolve_conv_impl('xla', backend='cpu') == 'xla'


def test_layers_have_flax_parameters_and_values():
  """Conv / ConvTranspose: the same parameter tree as nn.Conv / nn.ConvTranspose, initialised
  identically, and the same outputs with either impl."""
  x = normal(7, (2, 16, 16, 3))
  pairs = [(nn.Conv(8, (4, 4), (2, 2)), Conv(8, 4, 2, conv_impl='fast')),
           (nn.ConvTranspose(8, (4, 4), (2, 2)), ConvTranspose(8, 4, 2, conv_impl='fast'))]
  for flax_layer, layer in pairs:
    flax_vars = jax.jit(flax_layer.init)(jax.random.key(0), x)
    ours = jax.jit(layer.init)(jax.random.key(0), x)
    assert jax.tree.structure(flax_vars) == jax.tree.structure(ours)
    jax.tree.map(np.testing.assert_array_equal, flax_vars, ours)
    np.testing.assert_allclose(layer.apply(flax_vars, x), flax_layer.apply(flax_vars, x),
                               rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Whole networks: 'fast' and 'xla' give the same outputs and parameter gradients.


def _assert_networks_agree(make, inputs, train=False):
  fast, xla = make('fast'), make('xla')
  variables = jax.jit(xla.init)(jax.random.key(0), *inputs)
  assert jax.tree.structure(jax.eval_shape(fast.init, jax.random.key(0), *inputs)) == \
      jax.tree.structure(variables)
  mutable = ['batch_stats'] if 'batch_stats' in variables else False

  def loss(params, module):
    out = module.apply({**variables, 'params': params}, *inputs, train=train, mutable=mutable)
    out = out[0] if mutable else out
    return jnp.sum(jnp.sin(out)), out

  grad_fn = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)
  # numpy from here on: eager jnp ops would compile a program for every parameter's shape
  g_fast, out_fast = jax.device_get(grad_fn(variables['params'], fast))
  g_xla, out_xla = jax.device_get(grad_fn(variables['params'], xla))
  np.testing.assert_allclose(out_fast, out_xla, rtol=1e-4, atol=1e-4)
  # Tolerances relative to the largest gradient: a bias followed by instance norm has a zero
  # gradient in exact arithmetic (both impls give float noise there), and a leaky ReLU or a max
  # that flips on float noise moves a few entries by a few percent.
  scale = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(g_xla))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-2, atol=2e-3 * scale),
               g_fast, g_xla)


@pytest.mark.parametrize('name,size,channels', [('conv', 64, 1), ('conv_k2', 28, 3)])
def test_conv_networks_fast_equals_xla(name, size, channels):
  x = normal(1, (2, size, size, channels))
  _assert_networks_agree(
      lambda impl: networks.get_encoder(name, num_outputs=20, conv_impl=impl), (x,))
  z = normal(2, (2, 10))
  _assert_networks_agree(
      lambda impl: networks.get_decoder(name, output_shape=(size, size, channels),
                                        conv_impl=impl), (z,))


def test_dcgan_networks_fast_equals_xla():
  """The Sprites layer ladder (60 → 30 → 15 → 8 → 4 → 2 and back), at reduced widths."""
  x = normal(3, (2, 60, 60, 3))
  _assert_networks_agree(lambda impl: networks.get_encoder(
      'dcgan', num_outputs=16, base_features=8, max_features=32, conv_impl=impl), (x,))
  _assert_networks_agree(lambda impl: networks.get_decoder(
      'dcgan', output_shape=(60, 60, 3), top_features=32, bottom_features=8, conv_impl=impl),
                         (normal(4, (2, 16)),))
  _assert_networks_agree(lambda impl: networks.get_network(
      'dcgan_discriminator', base_features=8, top_features=32, conv_impl=impl), (x,), train=True)

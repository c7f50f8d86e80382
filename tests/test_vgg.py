"""VGG19-BN, the feature aggregation, R-MAC and the torchvision weight converter."""

import itertools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import networks
from disentangle_jax.networks import vgg

KEY = jax.random.key(0)


def test_vgg19_bn_layout_matches_torchvision_features():
  model = networks.get_network('vgg19_bn', conv_impl='xla')
  x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  v = jax.eval_shape(model.init, KEY, x)
  kernels = [v['params'][f'conv_{k}']['kernel'].shape for k in range(16)]
  channels = [64, 64, 128, 128] + [256] * 4 + [512] * 8
  assert kernels == [(3, 3, i, o) for i, o in zip([3] + channels[:-1], channels)]
  assert len(v['params']) == 32 and len(v['batch_stats']) == 16
  assert jax.eval_shape(model.apply, v, x).shape == (2, 2, 2, 512)
  narrow = networks.get_network('vgg19_bn_narrow', conv_impl='xla')
  vn = jax.eval_shape(narrow.init, KEY, x)
  assert [vn['params'][f'conv_{k}']['kernel'].shape[-1] for k in (0, 2, 4, 8, 12)] == [
      8, 16, 32, 64, 64]
  assert jax.eval_shape(narrow.apply, vn, x).shape == (2, 2, 2, 64)
  with pytest.raises(ValueError, match='32×32'):
    jax.eval_shape(model.init, KEY, jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32))


def test_conv_aggregation_layout_and_unit_norm():
  agg = networks.get_network('feature_aggregation', conv_impl='xla')
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 2, 2, 64)), jnp.float32)
  p = jax.eval_shape(agg.init, KEY, x)['params']
  assert [p[f'Conv_{i}']['kernel'].shape for i in range(3)] == [
      (1, 1, 64, 1024), (2, 2, 1024, 2048), (1, 1, 2048, 512)]
  assert all('bias' not in p[f'Conv_{i}'] for i in range(3))
  small = vgg.ConvAggregation(features=(32, 64, 16), conv_impl='xla')
  v = jax.jit(small.init)(KEY, x)
  train = jax.jit(lambda v, x, r: small.apply(v, x, train=True, rngs={'dropout': r},
                                              mutable=['batch_stats'])[0])
  out = train(v, x, KEY)
  assert out.shape == (4, 16)
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
  out_eval = jax.jit(small.apply)(v, x)
  np.testing.assert_allclose(np.linalg.norm(out_eval, axis=1), 1.0, rtol=1e-5)
  # dropout acts in training only: two rng keys give different features
  assert not np.allclose(out, train(v, x, jax.random.key(5)))
  with pytest.raises(ValueError, match='at least 2×2'):
    jax.eval_shape(agg.init, KEY, jnp.zeros((1, 1, 1, 64)))


def test_zero_map_gives_a_finite_zero_vector_and_finite_gradients():
  agg = vgg.ConvAggregation(features=(16, 32, 8), conv_impl='xla')
  zero = jnp.zeros((3, 2, 2, 4))
  v = jax.jit(agg.init)(KEY, zero)
  for train in (False, True):
    out = jax.jit(lambda v, x: agg.apply(v, x, train=train, rngs={'dropout': KEY},
                                         mutable=['batch_stats'])[0])(v, zero)
    assert np.all(np.isfinite(out)) and np.all(np.asarray(out) == 0.0)
  grads = jax.jit(jax.grad(lambda p, x: jnp.sum(agg.apply({**v, 'params': p}, x)),
                           argnums=(0, 1)))(v['params'], zero)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  np.testing.assert_array_equal(vgg.l2_normalize(jnp.zeros((2, 5))), 0.0)
  assert np.all(np.isfinite(jax.grad(lambda x: vgg.l2_normalize(x).sum())(jnp.zeros(5))))
  np.testing.assert_array_equal(vgg.rmac(jnp.zeros((2, 7, 7, 3))), 0.0)


def rmac_reference(fmap, regions=(1, 3, 5)):
  """R-MAC written out with loops over the windows, for one [h, w, C] map."""
  h, w, _ = fmap.shape

  def unit(v):
    n = np.linalg.norm(v)
    return v / n if n > 0 else v

  total = np.zeros(fmap.shape[-1])
  for k in regions:
    if k > min(h, w):
      continue
    s = 1 if k == 1 else 2
    for i, j in itertools.product(range(0, h - k + 1, s), range(0, w - k + 1, s)):
      total += unit(fmap[i:i + k, j:j + k].max(axis=(0, 1)))
  total += unit(fmap.max(axis=(0, 1)))
  return unit(total)


@pytest.mark.parametrize('side', [2, 4, 7])
def test_rmac_against_the_windows(side):
  fmap = np.maximum(np.random.default_rng(side).standard_normal((3, side, side, 6)), 0)
  fmap = fmap.astype(np.float32)
  got = jax.jit(vgg.rmac)(fmap)
  want = np.stack([rmac_reference(m) for m in fmap])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
  # one active channel: every region's vector is that channel's axis, so is the sum
  one = np.zeros((1, side, side, 6), np.float32)
  one[0, side // 2, 0, 4] = 2.5
  np.testing.assert_allclose(vgg.rmac(one), np.eye(6)[None, 4], atol=1e-6)
  module = networks.get_network('rmac', conv_impl='xla')
  np.testing.assert_allclose(module.apply({}, fmap), got, rtol=1e-6)


@pytest.mark.parametrize('aggregation,resize,dims', [('conv', None, (2, 512)),
                                                     ('rmac', None, (2, 64)),
                                                     ('rmac', 224, (2, 64)),
                                                     ('none', None, (2, 2, 2, 64))])
def test_extractor_shapes(aggregation, resize, dims):
  ext = networks.get_network('vgg_extractor_narrow', aggregation=aggregation, resize_to=resize,
                             conv_impl='xla')
  x = jax.ShapeDtypeStruct((2, 64, 64, 1), jnp.float32)
  v = jax.eval_shape(ext.init, KEY, x)
  assert jax.eval_shape(ext.apply, v, x).shape == dims
  assert ('aggregation' in v['params']) == (aggregation == 'conv')
  with pytest.raises(ValueError, match='aggregation'):
    jax.eval_shape(vgg.VGGExtractor(aggregation='mean').init, KEY, x)


def test_extractor_is_standardise_vgg_then_aggregate():
  """Grey images are repeated to RGB and standardised with ImageNet's statistics, the backbone's
  map goes to the aggregation (conv or R-MAC), and the features are unit vectors."""
  width = 1 / 16
  ext = vgg.VGGExtractor(width=width, conv_impl='xla')
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 1)), jnp.float32)
  v = jax.jit(ext.init)(KEY, x)
  out = jax.jit(ext.apply)(v, x)
  assert out.shape == (2, 512)
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
  z = (np.repeat(x, 3, axis=-1) - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD)
  part = lambda name: {c: v[c][name] for c in ('params', 'batch_stats')}  # noqa: E731
  fmap = jax.jit(vgg.VGG(width, conv_impl='xla').apply)(part('backbone'), z)
  assert fmap.shape == (2, 2, 2, 32)
  agg = jax.jit(vgg.ConvAggregation(conv_impl='xla').apply)(part('aggregation'), fmap)
  np.testing.assert_allclose(out, agg, rtol=1e-4, atol=1e-5)
  rmac_ext = vgg.VGGExtractor(width=width, aggregation='rmac', conv_impl='xla')
  np.testing.assert_allclose(jax.jit(rmac_ext.apply)(v, x), vgg.rmac(fmap), rtol=1e-4,
                             atol=1e-5)


def fake_state_dict(rng):
  """A torchvision vgg19_bn `features` state dict of random numpy arrays (no torch needed)."""
  state = {}
  channels = [3] + [c for stage in vgg.VGG19_STAGES for c in stage]
  for k, (c, b) in enumerate(vgg._torch_feature_indices()):
    cin, cout = channels[k], channels[k + 1]
    state[f'features.{c}.weight'] = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
    state[f'features.{c}.bias'] = rng.standard_normal(cout).astype(np.float32)
    state[f'features.{b}.weight'] = rng.uniform(0.5, 1.5, cout).astype(np.float32)
    state[f'features.{b}.bias'] = rng.standard_normal(cout).astype(np.float32)
    state[f'features.{b}.running_mean'] = rng.standard_normal(cout).astype(np.float32)
    state[f'features.{b}.running_var'] = rng.uniform(0.5, 2, cout).astype(np.float32)
  return state


def test_arrays_round_trip_through_npz(tmp_path):
  state = fake_state_dict(np.random.default_rng(0))
  arrays = vgg.vgg19_bn_arrays({f'module.{k}': v for k, v in state.items()})
  path = tmp_path / 'w.npz'
  np.savez(path, __format__=np.asarray(vgg.FORMAT), **arrays)
  variables = vgg.load_vgg19_bn(str(path))
  np.testing.assert_array_equal(variables['params']['conv_2']['kernel'],
                                state['features.7.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables['batch_stats']['bn_15']['var'],
                                state['features.50.running_var'])
  ext = vgg.VGGExtractor(conv_impl='xla')
  v = jax.eval_shape(ext.init, KEY, jnp.zeros((1, 64, 64, 3)))
  filled = vgg.set_backbone(v, variables)
  assert filled['params']['backbone'] is variables['params']
  assert filled['params']['aggregation'] is v['params']['aggregation']
  with pytest.raises(ValueError, match='width=1'):
    vgg.set_backbone(jax.eval_shape(vgg.VGGExtractor(width=0.5).init, KEY,
                                    jnp.zeros((1, 64, 64, 3))), variables)
  bad = tmp_path / 'bad.npz'
  np.savez(bad, x=np.zeros(3))
  with pytest.raises(ValueError, match='convert_vgg19_bn'):
    vgg.load_vgg19_bn(str(bad))
  with pytest.raises(FileNotFoundError, match='convert_vgg19_bn'):
    vgg.load_vgg19_bn(str(tmp_path / 'absent.npz'))
  no_bn = {k: v for k, v in state.items() if 'running' not in k}
  with pytest.raises(ValueError, match='batch norm'):
    vgg.vgg19_bn_arrays(no_bn)
  with pytest.raises(ValueError, match='vgg19_bn state dict'):
    vgg.vgg19_bn_arrays({'conv1.weight': np.zeros((64, 3, 7, 7))})


def test_torchvision_vgg19_bn_equivalence(tmp_path):
  """A random torchvision vgg19_bn (eval mode, random batch-norm statistics), saved as a .pth and
  converted, gives our network the same features on the same input."""
  torch = pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  torch.manual_seed(0)
  model = torchvision.models.vgg19_bn(weights=None)
  with torch.no_grad():
    for m in model.features:
      if isinstance(m, torch.nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.2)
        m.running_mean.normal_(0, 0.2)
        m.running_var.uniform_(0.5, 2.0)
  model.eval()
  pth = tmp_path / 'vgg19_bn.pth'
  torch.save(model.state_dict(), pth)
  npz = str(tmp_path / 'out' / 'vgg19_bn.npz')
  script = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'launch',
                        'convert_vgg19_bn.py')
  done = subprocess.run([sys.executable, script, f'--input={pth}', f'--output={npz}'],
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip() == npz
  images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
  standardised = (images - np.array(vgg.IMAGENET_MEAN, np.float32)) / np.array(
      vgg.IMAGENET_STD, np.float32)
  with torch.no_grad():
    want = model.features(torch.from_numpy(standardised.transpose(0, 3, 1, 2))).numpy()
  want = want.transpose(0, 2, 3, 1)  # NCHW → NHWC: [2, 2, 2, 512]
  ext = vgg.VGGExtractor(aggregation='none', conv_impl='xla')
  v = vgg.set_backbone(jax.eval_shape(ext.init, KEY, jnp.zeros((1, 64, 64, 3))),
                       vgg.load_vgg19_bn(npz))
  got = np.asarray(jax.jit(ext.apply)(v, images))
  assert got.shape == want.shape == (2, 2, 2, 512)
  scale = np.abs(want).max()
  assert scale > 0.1
  np.testing.assert_allclose(got / scale, want / scale, atol=1e-4)


def test_resize_matches_torch_bilinear():
  """Stage 1 upsamples 64 → 224 px with torch's bilinear `interpolate` (align_corners=False);
  the extractor's `jax.image.resize` gives the same images."""
  torch = pytest.importorskip('torch')
  images = np.random.default_rng(3).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
  want = torch.nn.functional.interpolate(torch.from_numpy(images.transpose(0, 3, 1, 2)),
                                         size=(224, 224), mode='bilinear', align_corners=False)
  got = jax.image.resize(jnp.asarray(images), (2, 224, 224, 3), 'bilinear')
  np.testing.assert_allclose(np.asarray(got), want.numpy().transpose(0, 2, 3, 1), atol=1e-5)

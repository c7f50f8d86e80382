"""The Mixture-of-MNIST convnet: layout per variant, activations, ablation, dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import networks

KEY = jax.random.key(0)


def net(variant='baseline', **kw):
  return networks.get_network('digits_convnet', num_outputs=45, variant=variant,
                              conv_impl='xla', **kw)


@pytest.fixture(scope='module')
def images():
  return jnp.asarray(np.random.default_rng(0).uniform(0, 1, (3, 56, 56, 1)), jnp.float32)


@pytest.mark.parametrize('variant,conv3', [('baseline', 10), ('dropout', 10), ('wider', 30),
                                           ('wider_dropout', 30)])
def test_layout_and_activation_shapes(images, variant, conv3):
  model = net(variant)
  v = jax.eval_shape(model.init, KEY, images)
  p = v['params']
  assert [p[n]['kernel'].shape for n in ('conv1', 'conv2', 'conv3')] == [
      (5, 5, 1, 10), (5, 5, 10, 20), (5, 5, 20, conv3)]
  assert p['classifier']['kernel'].shape == (conv3, 45)
  logits, acts = jax.eval_shape(
      lambda v, x: model.apply(v, x, return_activations=True), v, images)
  assert logits.shape == (3, 45)
  assert {k: a.shape for k, a in acts.items()} == {
      'conv1': (3, 56, 56, 10), 'conv2': (3, 28, 28, 20), 'conv3': (3, 14, 14, conv3),
      'pooled': (3, conv3)}


def test_logits_are_the_linear_layer_of_the_pooled_conv3(images):
  model = net()
  v = jax.jit(model.init)(KEY, images)
  logits, acts = jax.jit(lambda v, x: model.apply(v, x, return_activations=True))(v, images)
  np.testing.assert_allclose(acts['pooled'], acts['conv3'].mean(axis=(1, 2)), rtol=1e-5)
  c = v['params']['classifier']
  np.testing.assert_allclose(logits, acts['pooled'] @ c['kernel'] + c['bias'], rtol=1e-5,
                             atol=1e-6)
  assert all(float(a.min()) >= 0 for k, a in acts.items())  # ReLU outputs
  np.testing.assert_allclose(jax.jit(model.apply)(v, images), logits, rtol=1e-6)


def test_ablation_zeroes_units_and_changes_only_what_reads_them(images):
  model = net()
  v = jax.jit(model.init)(KEY, images)
  run = jax.jit(lambda v, x, a: model.apply(v, x, return_activations=True, ablate=a))
  logits, acts = run(v, images, {})
  mask = jnp.ones(10).at[3].set(0.0)
  abl_logits, abl = run(v, images, {'conv3': mask})
  assert float(jnp.abs(abl['conv3'][..., 3]).max()) == 0.0
  assert float(jnp.abs(acts['conv3'][..., 3]).max()) > 0.0
  np.testing.assert_allclose(abl['conv3'][..., :3], acts['conv3'][..., :3])
  # the logits move by exactly the removed unit's contribution through the linear layer
  w = v['params']['classifier']['kernel']
  np.testing.assert_allclose(abl_logits, logits - acts['pooled'][:, 3:4] * w[3], rtol=1e-5,
                             atol=1e-5)
  # a unit the classifier ignores (zero weights) changes nothing when ablated
  params = jax.tree.map(lambda a: a, v['params'])
  params['classifier']['kernel'] = w.at[5].set(0.0)
  v2 = {'params': params}
  np.testing.assert_allclose(run(v2, images, {'conv3': jnp.ones(10).at[5].set(0)})[0],
                             run(v2, images, {})[0], rtol=1e-6)
  # an earlier layer's ablation reaches the later layers; per-image masks
  _, early = run(v, images, {'conv1': jnp.zeros(10)})
  conv2 = np.asarray(early['conv2'])  # relu(bias) everywhere: the image no longer reaches it
  np.testing.assert_allclose(conv2, np.broadcast_to(conv2[:1, :1, :1], conv2.shape))
  per_image = jnp.ones((3, 10)).at[1, 0].set(0.0)
  _, a = run(v, images, {'conv3': per_image})
  assert float(jnp.abs(a['conv3'][1, ..., 0]).max()) == 0.0
  np.testing.assert_allclose(a['conv3'][0], acts['conv3'][0])


def test_bad_ablation_and_variant_are_refused(images):
  v = jax.eval_shape(net().init, KEY, images)
  with pytest.raises(ValueError, match='10 units'):
    jax.eval_shape(lambda v, x: net().apply(v, x, ablate={'conv3': jnp.ones(30)}), v, images)
  with pytest.raises(ValueError, match='unknown layers'):
    jax.eval_shape(lambda v, x: net().apply(v, x, ablate={'fc': jnp.ones(3)}), v, images)
  with pytest.raises(ValueError, match='wider_dropout'):
    jax.eval_shape(net('wide').init, KEY, images)


@pytest.mark.parametrize('per_unit', [False, True])
def test_dropout_on_conv3_in_training_only(images, per_unit):
  model = net('dropout', dropout_per_unit=per_unit)
  v = jax.jit(model.init)(KEY, images)
  run = jax.jit(lambda v, x, r: model.apply(v, x, train=True, return_activations=True,
                                            rngs={'dropout': r}))
  _, eval_acts = jax.jit(lambda v, x: model.apply(v, x, return_activations=True))(v, images)
  _, acts = run(v, images, jax.random.key(1))
  np.testing.assert_allclose(acts['conv2'], eval_acts['conv2'])
  kept = np.asarray(acts['conv3']) != 0
  on = np.asarray(eval_acts['conv3']) != 0
  fraction = kept[on].mean()
  assert 0.3 < fraction < 0.7  # rate 0.5
  np.testing.assert_allclose(np.asarray(acts['conv3'])[kept],
                             2 * np.asarray(eval_acts['conv3'])[kept], rtol=1e-5)
  if per_unit:  # a unit is dropped everywhere in the image or nowhere
    dropped = kept.sum(axis=(1, 2)) == 0
    assert np.array_equal(dropped, (~kept | ~on).all(axis=(1, 2)))
  # the baseline has no dropout: training and evaluation agree
  base = net()
  vb = jax.jit(base.init)(KEY, images)
  np.testing.assert_allclose(
      base.apply(vb, images, train=True, rngs={'dropout': jax.random.key(1)}),
      base.apply(vb, images), rtol=1e-6)

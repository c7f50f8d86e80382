"""The PCA-like autoencoder's stages: frozen heads that never move, codes that grow per stage, a
resume inside stage 2 that ends bit-identical, and a tiny run of each geometric config."""

import importlib.util
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train_util
from disentangle_jax.objectives import get_objective
from disentangle_jax.objectives.pcaae import LatentNorm
from disentangle_jax.training import train as train_lib
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import create_train_state


def load_config(name, arg=None):
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(train_util.ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def tiny_pcaae(num_stages=2, steps=2, **objective):
  config = load_config('pcaae_ellipses', 'runlocal')
  config.objective.num_stages = num_stages
  config.objective.steps_per_stage = steps
  config.model.conv_impl = 'xla'  # the stage logic does not depend on it; compiles several x faster
  for key, value in objective.items():
    config.objective[key] = value
  return config


def _batch(seed=0, n=16):
  rng = np.random.default_rng(seed)
  from disentangle_jax.data.renderers import ellipses
  factors = np.stack([rng.integers(0, s, n) for s in ellipses.FACTOR_SIZES], axis=1)
  return {'image': jnp.asarray(ellipses.render(factors), jnp.float32) / 255.0}


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_total_steps_follow_the_stages():
  config = tiny_pcaae(num_stages=3, steps=7)
  assert config.total_steps == 21
  objective = get_objective('pcaae')(config, (64, 64, 1))
  stages = objective.stages()
  assert [s.groups for s in stages] == [('stage_1',), ('stage_2',), ('stage_3',)]
  assert [s.steps for s in stages] == [7, 7, 7]


@pytest.mark.parametrize('frozen_batch_norm', ['running', 'batch'])
def test_frozen_heads_are_bit_identical_and_get_exactly_zero_gradients(frozen_batch_norm):
  config = tiny_pcaae(num_stages=3, frozen_batch_norm=frozen_batch_norm)
  objective = get_objective('pcaae')(config, (64, 64, 1))
  batch = _batch()
  state = create_train_state(objective, jax.random.key(0), batch)
  rng = jax.random.key(1)
  # Stage 1 moves head 1, and only it.
  step1 = jax.jit(make_train_step(objective.for_stage(0), objective.stages()[0].groups))
  start = state
  for _ in range(2):
    state, _ = step1(state, batch, rng)
  for g in ('stage_2', 'stage_3'):
    for a, b in zip(_leaves(start.params[g]), _leaves(state.params[g])):
      np.testing.assert_array_equal(a, b)
  assert any((a != b).any() for a, b in zip(_leaves(start.params['stage_1']),
                                              _leaves(state.params['stage_1'])))
  assert not np.array_equal(np.asarray(start.model_state['stage_1']['norm']['batch_stats']['mean']),
                            np.asarray(state.model_state['stage_1']['norm']['batch_stats']['mean']))
  # Stage 3 at head 1 and 2: their gradients are exactly zero, their parameters and BatchNorm
  # statistics do not change over steps of stage 3.
  stage3 = objective.for_stage(2)
  # Jitted: run eagerly, every operation of the grad would compile on its own.
  grads = jax.jit(jax.grad(
      lambda p: stage3.losses(p, state.model_state, batch, rng, 0)[0]['stage_3']))(state.params)
  for g in ('stage_1', 'stage_2'):
    assert all((leaf == 0).all() for leaf in _leaves(grads[g])), g
  assert any((leaf != 0).any() for leaf in _leaves(grads['stage_3']['encoder']))
  before = state
  step3 = jax.jit(make_train_step(stage3, objective.stages()[2].groups))
  for _ in range(3):
    state, metrics = step3(state, batch, rng)
  for g in ('stage_1', 'stage_2'):
    for a, b in zip(_leaves((before.params[g], before.model_state[g], before.opt_state[g])),
                    _leaves((state.params[g], state.model_state[g], state.opt_state[g]))):
      np.testing.assert_array_equal(a, b)
  assert 'loss/stage_3' in metrics and 'loss/stage_1' not in metrics
  # The codes grow by one component per stage; earlier components do not change with the stage.
  codes = [np.asarray(jax.jit(objective.for_stage(i).encode)(state.variables(), state.model_state,
                                                             batch['image'])) for i in range(3)]
  assert [c.shape for c in codes] == [(16, 1), (16, 2), (16, 3)]
  np.testing.assert_array_equal(codes[2][:, :2], codes[1])
  assert objective.latent_dim == 3 and objective.for_stage(0).latent_dim == 1


def test_packets_add_several_components_per_stage():
  config = tiny_pcaae(num_stages=2, packet_size=2)
  objective = get_objective('pcaae')(config, (64, 64, 1))
  batch = _batch()
  state = create_train_state(objective, jax.random.key(0), batch)
  losses, (_, metrics) = objective.for_stage(1).losses(state.params, state.model_state, batch,
                                                       jax.random.key(1), 0)
  assert set(losses) == {'stage_2'}
  assert objective.for_stage(1).encode(state.params, state.model_state,
                                       batch['image']).shape == (16, 4)
  assert float(metrics['covariance']) >= 0.0


def test_latent_norm_standardises_the_batch_and_tracks_running_statistics():
  x = jnp.asarray(np.random.default_rng(0).normal(3.0, 2.0, (256, 2)), jnp.float32)
  norm = LatentNorm(epsilon=0.0, momentum=0.5)
  variables = norm.init(jax.random.key(0), x)
  assert jax.tree_util.tree_leaves(variables.get('params', {})) == []  # no scale, no shift
  z, updated = norm.apply(variables, x, train=True, mutable=['batch_stats'])
  np.testing.assert_allclose(np.mean(z, 0), 0.0, atol=1e-5)
  np.testing.assert_allclose(np.var(z, 0), 1.0, rtol=1e-4)
  np.testing.assert_allclose(updated['batch_stats']['mean'], 0.5 * np.mean(x, 0), rtol=1e-5)
  # update_stats=False: batch statistics, nothing written.
  z2 = norm.apply(variables, x, train=True, update_stats=False)
  np.testing.assert_array_equal(z, z2)
  # Inference: the running statistics.
  z3 = norm.apply(variables, x, train=False)
  np.testing.assert_allclose(z3, x, rtol=1e-6)  # initial mean 0, var 1


def test_covariance_term_is_the_mean_product_of_standardised_codes():
  """A stage-2 head that copies head 1 pays the covariance loss 1/(k − 1) = 1 (ε = 0: exactly
  unit variance; the fresh heads' outputs have variances near the default ε = 1e-5)."""
  config = tiny_pcaae(num_stages=2, bn_epsilon=0.0)
  objective = get_objective('pcaae')(config, (64, 64, 1))
  batch = _batch(n=32)
  state = create_train_state(objective, jax.random.key(0), batch)
  params = dict(state.params)
  params['stage_2'] = {**params['stage_2'], 'encoder': params['stage_1']['encoder']}
  model_state = dict(state.model_state)
  # Head 1 in inference mode on statistics equal to this batch's: the same standardised code.
  h = objective.encoder.apply(params['stage_1']['encoder'], {}, batch['image'], train=False)[0]
  model_state['stage_1'] = {**model_state['stage_1'], 'norm': {'batch_stats': {
      'mean': jnp.mean(h, 0), 'var': jnp.var(h, 0)}}}
  _, (_, metrics) = objective.for_stage(1).losses(params, model_state, batch, jax.random.key(1), 0)
  assert float(metrics['covariance']) == pytest.approx(1.0, rel=1e-3)


def _run(config, workdir):
  return train_lib.train_and_evaluate(config, workdir)


def _tiny_run_config(config, data_dir, *, batch_size=8):
  config.data.data_dir = data_dir
  config.batch_size = batch_size
  config.log_every = 1
  config.checkpoint_every = 1
  config.keep_checkpoints = 10
  config.image_every = 0
  config.eval_every = 0
  config.model.conv_impl = 'xla'
  return config


@pytest.mark.slow
def test_a_run_restored_in_stage_2_resumes_there_and_ends_bit_identical(tmp_path, tfds_data_dir):
  config = _tiny_run_config(tiny_pcaae(num_stages=2, steps=2), tfds_data_dir)
  reference = str(tmp_path / 'uninterrupted')
  want = _run(config, reference)
  assert int(want.step) == 4 and int(want.stage) == 1
  # The same run, stopped after step 3 (stage 2): its checkpoint of step 4 never existed.
  interrupted = str(tmp_path / 'interrupted')
  shutil.copytree(reference, interrupted)
  shutil.rmtree(os.path.join(interrupted, 'checkpoints', '4'))
  import orbax.checkpoint as ocp
  state3 = ocp.StandardCheckpointer().metadata(
      os.path.join(interrupted, 'checkpoints', '3', 'state')).item_metadata.tree
  assert 'stage' in state3
  got = _run(config, interrupted)
  assert int(got.stage) == 1
  for a, b in zip(_leaves((want.params, want.model_state, want.opt_state)),
                  _leaves((got.params, got.model_state, got.opt_state))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize('name,arg', [
    ('pcaae_ellipses', 'runlocal'),
    ('pcaae_disks', 'runlocal'),
    ('ae_disks', 'runlocal'),
    ('ae_disks', 'runlocal,regularizer=distance'),
    ('ae_disks', 'runlocal,regularizer=denoising,bias=False'),
    ('ae_disks', 'runlocal,regularizer=encoder_weight_decay'),
])
def test_tiny_run_of_every_config(tmp_path, tfds_data_dir, name, arg):
  config = _tiny_run_config(load_config(name, arg), tfds_data_dir)
  if config.objective.name == 'pcaae':
    config.objective.steps_per_stage = 2
    assert config.total_steps == 2 * config.objective.num_stages
  else:
    config.total_steps = 3
  config.image_every = config.total_steps
  workdir = str(tmp_path / 'run')
  state = _run(config, workdir)
  assert int(state.step) == config.total_steps
  images = os.listdir(os.path.join(workdir, 'images'))
  assert any(p.startswith('reconstructions') for p in images), images
  for leaf in _leaves(state.params):
    assert np.isfinite(leaf).all()

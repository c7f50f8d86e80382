"""The objective protocol: sequential groups, update frequency, frozen groups, stages, conditions,
labelled evaluation, start-up checks and the default pictures."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import protocol_toys  # noqa: F401  (registers the toy objectives)
import train_util
from configs import common
from disentangle_jax.data.info import DatasetInfo
from disentangle_jax.objectives import Objective, get_objective
from disentangle_jax.training import evaluation
from disentangle_jax.training import train as train_lib
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import create_train_state
from disentangle_jax.visualization import default_pictures

SHAPE = (8, 8, 1)


def _config(name, **objective):
  c = common.base_config('runlocal')
  c.objective = ml_collections.ConfigDict({'name': name, **objective})
  return c


def _batch(seed=0, n=6):
  rng = np.random.default_rng(seed)
  return {'image': jnp.asarray(rng.uniform(size=(n, *SHAPE)), jnp.float32)}


def _run_config(name, data_dir, *, steps=6, **objective):
  c = _config(name, **objective)
  c.data.data_dir = data_dir
  c.batch_size = 4
  c.total_steps = steps
  c.log_every = 1
  c.checkpoint_every = 2
  c.keep_checkpoints = 100
  c.image_every = 1000
  c.eval_every = 0
  return c


# ----------------------------------------------------------------------------------------------
# Sequential groups


def _hand_written_step(objective, state, batch, rng):
  """The sequential update written out: a, then b at the new a, then c at the new a and b; each
  pass starts from the model state the previous pass left."""
  rng = jax.random.fold_in(rng, state.step)
  params, model_state = dict(state.params), state.model_state
  lrs = {'a': 0.05, 'b': 0.10, 'c': 0.15}
  logged = {}
  for group in ('a', 'b', 'c'):
    def loss_fn(p, group=group):
      losses, (new_state, _) = objective.losses({**params, group: p}, model_state, batch, rng,
                                                state.step)
      return losses[group], (losses, new_state)

    grads, (losses, new_state) = jax.grad(loss_fn, has_aux=True)(params[group])
    params[group] = params[group] - lrs[group] * grads
    model_state = new_state
    logged[group] = losses[group]
  return params, model_state, logged


def test_sequential_three_groups_match_a_hand_written_update():
  objective = get_objective('toy_three_groups')(_config('toy_three_groups'), SHAPE)
  rng = jax.random.key(3)
  state = create_train_state(objective, jax.random.key(0), _batch())
  step = jax.jit(make_train_step(objective))
  reference = jax.jit(lambda s, b, r: _hand_written_step(objective, s, b, r))
  for i in range(3):
    batch = _batch(seed=i)
    want_params, want_state, want_losses = reference(state, batch, rng)
    state, metrics = step(state, batch, rng)
    for group in ('a', 'b', 'c'):
      np.testing.assert_array_equal(state.params[group], want_params[group])
      np.testing.assert_array_equal(metrics[f'loss/{group}'], want_losses[group])
    np.testing.assert_array_equal(state.model_state['running'], want_state['running'])
  # The state went through three passes a step: not what one pass (or the last alone) leaves.
  assert float(jnp.abs(state.model_state['running']).sum()) > 0


def test_owned_model_state_moves_in_its_owners_pass_only():
  objective = get_objective('toy_three_groups')(_config('toy_three_groups'), SHAPE)
  objective.model_state_owners = lambda: {'running': 'b'}
  rng, batch = jax.random.key(3), _batch()
  state = create_train_state(objective, jax.random.key(0), batch)
  new, _ = jax.jit(make_train_step(objective))(state, batch, rng)
  # Written out: pass a leaves the state alone; pass b's value is kept; pass c leaves it alone.
  step_rng = jax.random.fold_in(rng, state.step)
  params = dict(state.params)
  for group, lr in (('a', 0.05), ('b', 0.10), ('c', 0.15)):
    def loss_fn(p, group=group):
      losses, (new_state, _) = objective.losses({**params, group: p}, state.model_state, batch,
                                                step_rng, state.step)
      return losses[group], new_state
    grads, new_state = jax.grad(loss_fn, has_aux=True)(params[group])
    if group == 'b':
      want = new_state['running']
    params[group] = params[group] - lr * grads
  np.testing.assert_allclose(new.model_state['running'], want, rtol=1e-6, atol=1e-7)
  objective.model_state_owners = lambda: {'running': 'd'}
  with pytest.raises(ValueError, match='unknown groups'):
    make_train_step(objective)


def test_update_every_skips_a_group_without_touching_its_optimizer():
  config = _config('toy_three_groups', update_every={'c': 2})
  objective = get_objective('toy_three_groups')(config, SHAPE)
  assert objective.update_every() == {'c': 2}
  state = create_train_state(objective, jax.random.key(0), _batch())
  step = jax.jit(make_train_step(objective))
  after0, _ = step(state, _batch(0), jax.random.key(1))
  after1, metrics = step(after0, _batch(1), jax.random.key(1))
  after2, _ = step(after1, _batch(2), jax.random.key(1))
  assert not np.array_equal(after0.params['c'], state.params['c'])  # step 0: updated
  np.testing.assert_array_equal(after1.params['c'], after0.params['c'])  # step 1: skipped
  assert not np.array_equal(after2.params['c'], after1.params['c'])  # step 2: updated
  assert not np.array_equal(after1.params['a'], after0.params['a'])  # the others every step
  assert np.isfinite(float(metrics['loss/c']))
  with pytest.raises(ValueError, match='unknown groups'):
    get_objective('toy_three_groups')(_config('toy_three_groups', update_every={'d': 2}),
                                      SHAPE).update_every()


# ----------------------------------------------------------------------------------------------
# Frozen groups


def _write_extractor(path, features=16, size=64 * 64):
  rng = np.random.default_rng(0)
  np.savez(path, w=rng.normal(size=(size, features)).astype(np.float32) / 64,
           b=rng.normal(size=(features,)).astype(np.float32))
  with np.load(path) as f:
    return {'w': f['w'], 'b': f['b']}


def test_frozen_group_is_loaded_unchanged_by_training_and_checkpointed(tmp_path, tfds_data_dir):
  path = str(tmp_path / 'extractor.npz')
  extractor = _write_extractor(path)
  config = _run_config('toy_frozen_extractor', tfds_data_dir, extractor_path=path, features=16)
  workdir = str(tmp_path / 'run')
  state = train_lib.train_and_evaluate(config, workdir)
  assert int(state.step) == 6
  for key in ('w', 'b'):
    np.testing.assert_array_equal(np.asarray(state.frozen['extractor'][key]), extractor[key])
  # In the checkpoint, next to the trained params.
  import orbax.checkpoint as ocp
  path_6 = os.path.join(workdir, 'checkpoints', '6', 'state')
  tree = ocp.StandardCheckpointer().metadata(path_6).item_metadata.tree
  assert 'extractor' in tree['frozen'] and 'model' in tree['params']
  restored = ocp.StandardCheckpointer().restore(path_6)
  np.testing.assert_array_equal(restored['frozen']['extractor']['w'], extractor['w'])


def test_frozen_values_are_arguments_of_the_compiled_step_not_constants(tmp_path):
  path = str(tmp_path / 'extractor.npz')
  _write_extractor(path, size=int(np.prod(SHAPE)))
  config = _config('toy_frozen_extractor', extractor_path=path, features=16)
  objective = get_objective('toy_frozen_extractor')(config, SHAPE)
  frozen = objective.load_frozen()
  state = create_train_state(objective, jax.random.key(0), _batch(), frozen)
  step = jax.jit(make_train_step(objective))
  _, first = step(state, _batch(), jax.random.key(1))
  other = jax.tree.map(lambda x: x * 2.0, state.frozen)
  _, second = step(state.replace(frozen=other), _batch(), jax.random.key(1))
  assert float(first['loss/model']) != float(second['loss/model'])
  assert step._cache_size() == 1  # the new values did not recompile anything


# ----------------------------------------------------------------------------------------------
# Stages


def test_stages_train_only_their_groups_and_frozen_heads_never_move(tmp_path, tfds_data_dir):
  config = _run_config('toy_two_stages', tfds_data_dir, steps=8, steps_per_stage=4)
  workdir = str(tmp_path / 'run')
  train_lib.train_and_evaluate(config, workdir)
  params = {s: _params_at(workdir, s) for s in (2, 4, 6, 8)}
  # Stage 1 (steps 1-4) trains head0 only; stage 2 (5-8) head1 only: Adam's momentum must not
  # carry head0 on.
  np.testing.assert_array_equal(params[2]['head1'], params[4]['head1'])
  assert not np.array_equal(params[2]['head0'], params[4]['head0'])
  np.testing.assert_array_equal(params[4]['head0'], params[6]['head0'])
  np.testing.assert_array_equal(params[4]['head0'], params[8]['head0'])
  assert not np.array_equal(params[6]['head1'], params[8]['head1'])
  assert _stage_at(workdir, 4) == 0 and _stage_at(workdir, 6) == 1


def _restore(workdir, step):
  import orbax.checkpoint as ocp
  return ocp.StandardCheckpointer().restore(
      os.path.join(workdir, 'checkpoints', str(step), 'state'))


def _params_at(workdir, step):
  return {k: np.asarray(v) for k, v in _restore(workdir, step)['params'].items()}


def _stage_at(workdir, step):
  return int(_restore(workdir, step)['stage'])


_RUNNER = """
import json, logging, os, signal, sys, threading, time
logging.basicConfig(level=logging.INFO)
sys.path.insert(0, {tests!r})
sys.path.insert(0, {root!r})
import protocol_toys
import ml_collections
from disentangle_jax.training import train
config = ml_collections.ConfigDict(json.load(open(sys.argv[1])))
workdir, kill_at = sys.argv[2], int(sys.argv[3])

def watch():
  ckpt = os.path.join(workdir, 'checkpoints')
  while True:
    steps = [int(d) for d in os.listdir(ckpt) if d.isdigit()] if os.path.isdir(ckpt) else []
    if steps and max(steps) >= kill_at > 0:
      os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.002)

threading.Thread(target=watch, daemon=True).start()
train.train_and_evaluate(config, workdir)
"""


def _run_toy(config, workdir, kill_at=0):
  config_path = workdir + '.json'
  with open(config_path, 'w') as f:
    f.write(config.to_json())
  code = _RUNNER.format(tests=os.path.dirname(__file__), root=train_util.ROOT)
  return subprocess.run([sys.executable, '-c', code, config_path, workdir, str(kill_at)],
                        env=train_util.subprocess_env(), capture_output=True, text=True,
                        timeout=600, cwd=train_util.ROOT)


@pytest.mark.slow
def test_two_stage_run_killed_in_stage_two_resumes_there_bit_identically(tmp_path,
                                                                          tfds_data_dir):
  config = _run_config('toy_two_stages', tfds_data_dir, steps=24, steps_per_stage=12)
  config.checkpoint_every = 1
  config.keep_checkpoints = 3
  whole = str(tmp_path / 'whole')
  result = _run_toy(config, whole)
  assert result.returncode == 0, result.stderr[-3000:]

  killed = str(tmp_path / 'killed')
  result = _run_toy(config, killed, kill_at=15)
  assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
  steps = sorted(int(d) for d in os.listdir(os.path.join(killed, 'checkpoints')) if d.isdigit())
  assert 13 <= steps[-1] < 24, steps  # killed in stage 2, before the end
  result = _run_toy(config, killed)
  assert result.returncode == 0, result.stderr[-3000:]
  resumed = [line for line in result.stderr.splitlines() if 'Resumed from step' in line]
  assert resumed and int(resumed[0].split('Resumed from step ')[1].split()[0]) > 12
  assert "Stage 2/2 'second'" in result.stderr and "Stage 1/2" not in result.stderr
  want, got = train_util.final_params(whole), train_util.final_params(killed)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key])


# ----------------------------------------------------------------------------------------------
# Conditions, labelled evaluation and start-up checks


class ShapeConditioned(Objective):
  """Its code is the condition itself: the one-hot of the dSprites shape factor."""

  groups = ('model',)
  name = 'toy_shape_conditioned'

  def condition(self, batch):
    return jax.nn.one_hot(batch['factors'][:, 0], self.data.factor_sizes[0])

  def init(self, rng, batch):
    return {'model': jnp.zeros(())}, {}

  def optimizers(self):
    import optax
    return {'model': optax.sgd(0.0)}

  def losses(self, params, model_state, batch, rng, step):
    return {'model': params['model'] ** 2}, (model_state, {})

  @property
  def latent_dim(self):
    return self.data.factor_sizes[0]

  def encode(self, params, model_state, images, cond=None):
    return cond + 0.0 * params['model']


def test_conditional_models_are_scored_on_codes_encoded_with_their_condition(tfds_data_dir):
  config = _run_config('toy_shape_conditioned', tfds_data_dir)
  config.evaluators = ml_collections.ConfigDict(
      {'linear_probe': {'num_train': 300, 'num_test': 200}})
  from disentangle_jax.data import pipeline
  info = pipeline.dataset_info(config.data)
  objective = ShapeConditioned(config, info)
  assert objective.is_conditional and not evaluation.samples_by_factors(objective, info)
  evaluation.check_evaluators(config, info, objective)
  evaluator = evaluation.Evaluator(objective, config, writer=None, info=info)
  results = evaluator.evaluate({'model': jnp.zeros(())}, {})
  accuracy = np.asarray(results['linear_probe']['accuracy'])
  assert evaluator.target_names() == info.factor_names
  assert accuracy[0] == 1.0  # the code is the shape: the probe reads it exactly
  assert accuracy[1:].max() < 0.9  # and nothing else


def test_a_metric_the_data_cannot_feed_fails_at_step_zero(tmp_path, tfds_data_dir):
  config = _run_config('toy_shape_conditioned', tfds_data_dir)
  from disentangle_jax.data import pipeline
  info = pipeline.dataset_info(config.data)
  objective = ShapeConditioned(config, info)
  config.evaluators = ml_collections.ConfigDict({'factorvae': {}})
  with pytest.raises(ValueError, match='factorvae'):
    evaluation.check_evaluators(config, info, objective)
  config.evaluators = ml_collections.ConfigDict({'no_such_metric': {}})
  with pytest.raises(ValueError, match='no_such_metric'):
    evaluation.check_evaluators(config, info, objective)
  # Through the loop: the run fails before it trains or checkpoints anything.
  config.objective.name = 'toy_two_stages'
  config.objective.steps_per_stage = 2
  workdir = str(tmp_path / 'run')
  from disentangle_jax.errors import UserError
  with pytest.raises(UserError, match='config.evaluators: .*no_such_metric'):
    train_lib.train_and_evaluate(config, workdir)
  assert not os.path.exists(os.path.join(workdir, 'config.json'))
  assert not os.path.isdir(os.path.join(workdir, 'checkpoints')) or not os.listdir(
      os.path.join(workdir, 'checkpoints'))


def test_objectives_are_told_what_their_data_is(tfds_data_dir):
  config = _run_config('toy_two_stages', tfds_data_dir, steps_per_stage=2)
  from disentangle_jax.data import pipeline
  info = pipeline.dataset_info(config.data)
  objective = train_lib.build_objective(config, info)
  assert objective.data is info
  assert objective.data.factor_names[0] == 'shape' and objective.data.num_examples > 0
  assert objective.image_shape == info.image_shape
  # The short form for tests: an image shape.
  assert get_objective('toy_two_stages')(config, SHAPE).data.image_shape == SHAPE


# ----------------------------------------------------------------------------------------------
# Default pictures


class WideCode(Objective):
  """A 512-d linear code (the mixing autoencoder's size): the pictures must stay cheap."""

  groups = ('model',)

  def init(self, rng, batch):
    return {'model': jax.random.normal(rng, (int(np.prod(SHAPE)), 512)) * 0.1}, {}

  def optimizers(self):
    import optax
    return {'model': optax.sgd(0.0)}

  def losses(self, params, model_state, batch, rng, step):
    return {'model': jnp.sum(params['model'])}, (model_state, {})

  @property
  def latent_dim(self):
    return 512

  def encode(self, params, model_state, images, cond=None):
    return images.reshape(images.shape[0], -1) @ params['model']

  def decode(self, params, model_state, codes, cond=None):
    w = params['model']
    return jax.nn.sigmoid(codes @ w.T).reshape(codes.shape[0], *SHAPE)


def test_default_pictures_traverse_only_the_most_active_latents():
  np.testing.assert_array_equal(default_pictures.most_active([0.1, 3.0, 2.0, 3.0], 3), [1, 3, 2])
  objective = WideCode(_config('wide'), SHAPE)
  params = {'model': objective.init(jax.random.key(0), _batch())[0]['model']}
  pictures = objective.pictures(params, {}, _batch(n=16), jax.random.key(0))
  assert set(pictures) == {'reconstructions', 'traversal', 'traversal_animation'}
  assert pictures['traversal'].ndim == 3 and pictures['traversal_animation'].ndim == 4
  # 10 latents x 8 values for the traversal, whatever the code's size; 16 reconstructions.
  rows = default_pictures.most_active(objective.latent_activity(params, {}, _batch(n=16)['image']))
  assert len(rows) == default_pictures.MAX_TRAVERSED_LATENTS == 10


def test_a_model_without_decoder_has_no_default_pictures():
  class Encoder(WideCode):
    decode = Objective.decode

  objective = Encoder(_config('wide'), SHAPE)
  assert not objective.can_decode
  params = {'model': objective.init(jax.random.key(0), _batch())[0]['model']}
  assert objective.pictures(params, {}, _batch(), jax.random.key(0)) == {}


# ----------------------------------------------------------------------------------------------
# Early stopping


def test_early_stopping_stops_after_patience_and_a_rerun_stays_stopped(tmp_path, tfds_data_dir):
  config = _run_config('toy_overfits', tfds_data_dir, steps=40)
  config.early_stopping.every = 2
  config.early_stopping.patience = 2
  config.early_stopping.num_examples = 8
  workdir = str(tmp_path / 'run')
  state = train_lib.train_and_evaluate(config, workdir)
  # Validations at 2, 4, 6 (best, 0), 8 and 10 (two without improvement): stop at 10.
  assert int(state.step) == 10
  with open(os.path.join(workdir, 'early_stopping.json')) as f:
    assert [s for s, _ in json.load(f)['history']] == [2, 4, 6, 8, 10]
  assert max(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit()) == 10
  again = train_lib.train_and_evaluate(config, workdir)
  assert int(again.step) == 10


def test_a_resumed_run_forgets_validations_after_its_checkpoint(tmp_path):
  from disentangle_jax.training.early_stopping import EarlyStopping
  config = _config('toy_overfits')
  config.early_stopping.every = 2
  config.early_stopping.patience = 2
  with open(tmp_path / 'early_stopping.json', 'w') as f:
    json.dump({'loss': 'head0', 'history': [[2, 3.0], [4, 1.0], [6, 2.0], [8, 2.5]]}, f)
  stopper = EarlyStopping.from_config(config, str(tmp_path), resume_step=7)
  assert stopper.history == [(2, 3.0), (4, 1.0), (6, 2.0)] and stopper.stopped_at is None
  stopper = EarlyStopping.from_config(config, str(tmp_path), resume_step=8)
  assert stopper.stopped_at == 8


def test_the_loop_writes_the_objective_s_own_scores(tmp_path, tfds_data_dir):
  config = _run_config('toy_self_scoring', tfds_data_dir, steps=4)
  config.eval_every = 2
  config.objective_eval_examples = 12
  workdir = str(tmp_path / 'run')
  train_lib.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  scored = [r for r in rows if 'eval/toy_self_scoring/examples' in r]
  assert [r['step'] for r in scored] == [2, 4]
  assert scored[0]['eval/toy_self_scoring/examples'] == 12

"""The train loop in-process and through launch/main.py: outputs, errors, NaN handling."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import train_util
from disentangle_jax.objectives import Objective, register
from disentangle_jax.training import train as train_lib

CONFIG = 'configs/betavae_dsprites.py:runlocal'


def _load_config(arg='runlocal'):
  import importlib.util

  spec = importlib.util.spec_from_file_location(
      'betavae_dsprites', os.path.join(train_util.ROOT, 'configs', 'betavae_dsprites.py')
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@register('test_nan_after_three_steps')
class NanAfterThreeSteps(Objective):
  """A linear autoencoder whose loss turns NaN from step 3 on."""

  def init(self, rng, batch):
    size = int(np.prod(self.image_shape))
    return {'model': {'w': jax.random.normal(rng, (size, 2)) * 0.01}}, {}

  def optimizers(self):
    return {'model': optax.sgd(0.1)}

  def losses(self, params, model_state, batch, rng, step):
    x = batch['image'].reshape(batch['image'].shape[0], -1)
    loss = jnp.mean((x @ params['model']['w'] @ params['model']['w'].T - x) ** 2)
    loss = jnp.where(step >= 3, jnp.nan, loss)
    return {'model': loss}, (model_state, {'recon': loss})

  @property
  def latent_dim(self):
    return 2

  def encode(self, params, model_state, images, cond=None):
    return images.reshape(images.shape[0], -1) @ params['model']['w']

  def decode(self, params, model_state, codes, cond=None):
    return (codes @ params['model']['w'].T).reshape(codes.shape[0], *self.image_shape)


def test_nan_loss_stops_the_run_naming_step_and_checkpoint(tmp_path, tfds_data_dir):
  config = _load_config()
  with config.unlocked():
    config.objective = {'name': 'test_nan_after_three_steps'}
  config.data.data_dir = tfds_data_dir
  config.data.builder_config = 'small'
  config.total_steps = 10
  config.batch_size = 4
  config.log_every = 1
  config.checkpoint_every = 2
  config.image_every = 100
  config.eval_every = 100
  with pytest.raises(FloatingPointError) as error:
    train_lib.train_and_evaluate(config, str(tmp_path))
  message = str(error.value)
  assert 'step 4' in message and 'recon' in message and 'step 2' in message


@pytest.mark.slow
def test_runlocal_writes_logs_checkpoints_and_pictures(tmp_path, tfds_data_dir):
  workdir = str(tmp_path / 'run')
  train_util.run_main(CONFIG, workdir, train_util.tiny_flags(tfds_data_dir, steps=8, evaluate=True))
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert [r['step'] for r in records if 'loss/vae' in r]
  evals = [r for r in records if 'eval/mig/discrete_mig' in r]
  assert evals and evals[-1]['step'] == 8 and 0.0 <= evals[-1]['eval/mig/discrete_mig'] <= 1.0
  assert 'eval/factorvae/eval_accuracy' in evals[-1]
  assert os.path.isfile(os.path.join(workdir, 'config.json'))
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  pictures = os.listdir(os.path.join(workdir, 'images'))
  for kind in ('reconstructions', 'traversal'):
    assert any(p.startswith(kind) and p.endswith('.png') for p in pictures), pictures
  assert any(p.endswith('.gif') for p in pictures), pictures


def test_unknown_config_key_is_an_error_that_names_it(tmp_path, tfds_data_dir):
  result = train_util.run_main(
      CONFIG, str(tmp_path), ['--config.objective.bta=3'], check=False, timeout=120
  )
  assert result.returncode != 0
  assert 'bta' in result.stderr


def test_missing_real_dataset_is_an_error_that_says_how_to_get_it(tmp_path):
  result = train_util.run_main(
      CONFIG, str(tmp_path / 'run'),
      ['--config.data.name=dsprites', f'--config.data.data_dir={tmp_path / "empty"}'],
      check=False, timeout=120,
  )
  assert result.returncode != 0
  assert 'dsprites' in result.stderr and 'tfds build' in result.stderr


@pytest.mark.slow
def test_evaluate_writes_metrics_tables_and_heatmaps(tmp_path, tfds_data_dir):
  runs = [str(tmp_path / name) for name in ('a', 'b')]
  for seed, workdir in enumerate(runs):
    train_util.run_main(
        f'{CONFIG},seed={seed}', workdir, train_util.tiny_flags(tfds_data_dir, steps=2)
    )
  out = str(tmp_path / 'comparison')
  cache = tmp_path / 'cache'
  result = train_util.run_script(
      'launch/evaluate.py', [f'--workdir={w}' for w in runs] + [
          '--metrics=mig,unsupervised,factorvae', '--num_train=300', '--num_test=100',
          '--num_votes=20', f'--output_dir={out}', f'--compilation_cache={cache}',
      ], env={'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'},
  )
  assert os.listdir(cache)  # compiled programs were kept for the next run
  for workdir in runs:
    with open(os.path.join(workdir, 'metrics_2.json')) as f:
      payload = json.load(f)
    assert payload['step'] == 2
    assert 0.0 <= payload['results']['mig']['discrete_mig'] <= 1.0
    heatmaps = os.listdir(os.path.join(workdir, 'eval_2'))
    assert 'mig_mutual_info.png' in heatmaps
  with open(os.path.join(out, 'comparison.csv')) as f:
    lines = f.read().splitlines()
  assert lines[0].startswith('run,') and 'mig/discrete_mig' in lines[0]
  assert [line.split(',')[0] for line in lines[1:]] == ['a', 'b']
  assert os.path.isfile(os.path.join(out, 'comparison.md'))
  assert 'mig/discrete_mig' in result.stdout
  # The two runs differ only in their seed: one group, mean ± std over both, a bar plot a metric.
  with open(os.path.join(out, 'comparison_over_seeds.md')) as f:
    table = f.read().splitlines()
  assert len(table) == 3 and table[2].startswith('| a |') and '(2)' in table[2]
  mig = [payload_of(w)['results']['mig']['discrete_mig'] for w in runs]
  assert f'{np.mean(mig):.4f} ± {np.std(mig):.4f} (2)' in table[2]
  assert os.path.isfile(os.path.join(out, 'plots', 'mig_discrete_mig.png'))


def payload_of(workdir):
  with open(os.path.join(workdir, 'metrics_2.json')) as f:
    return json.load(f)

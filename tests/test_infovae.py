"""InfoVAE / MMD-VAE objectives: the loss against the pure losses on the same pass, the special
cases (α = 0, λ = 1 is the VAE; 'mmdvae' has no KL), the named prior stream, a few training steps
and a tiny run of configs/mmdvae_dsprites.py:runlocal through the train loop."""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disentangle_jax.losses import mmd as mmd_fn
from disentangle_jax.losses.mmd import info_vae_loss, mmd_vae_loss
from disentangle_jax.objectives import get_objective
from disentangle_jax.objectives.base import rng_stream
from disentangle_jax.training import train as train_lib
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import create_train_state

SHAPE = (32, 32, 1)
LATENTS = 4


def config(name, **objective):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 10
  c.objective = ml_collections.ConfigDict(dict(name=name, latent_dim=LATENTS, **objective))
  c.model = ml_collections.ConfigDict(dict(
      encoder='fc', decoder='fc', encoder_kwargs=dict(hidden=(64,)),
      decoder_kwargs=dict(hidden=(64,))))
  c.optimizer = ml_collections.ConfigDict(
      dict(name='adam', learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8))
  return c


def build(name, **objective):
  return get_objective(name)(config(name, **objective), SHAPE)


def squares(n=16, seed=0):
  rng = np.random.default_rng(seed)
  images = np.zeros((n, *SHAPE), np.float32)
  for i in range(n):
    size = rng.integers(4, 10)
    y, x = rng.integers(0, SHAPE[0] - size, size=2)
    images[i, y : y + size, x : x + size] = 1.0
  return {'image': images}


def _pass(objective, params, state, batch, rng):
  mean, logvar, z, logits, _ = objective.forward(params['vae'], state, batch['image'], rng)
  prior = jax.random.normal(rng_stream(rng, 'prior_samples'), z.shape)
  return mean, logvar, z, logits, prior


@pytest.mark.parametrize('kernel, bandwidth, estimator', [
    ('rbf', None, 'unbiased'), ('imq', 1.5, 'biased')])
def test_infovae_loss_is_the_pure_loss_on_the_same_pass(kernel, bandwidth, estimator):
  objective = build('infovae', alpha=-0.5, lambda_mmd=5.0, kernel=kernel, bandwidth=bandwidth,
                    estimator=estimator)
  batch, rng = squares(), jax.random.key(7)
  params, state = jax.jit(objective.init)(jax.random.key(0), batch)
  losses, (_, metrics) = objective.losses(params, state, batch, rng, jnp.int32(0))
  mean, logvar, z, logits, prior = _pass(objective, params, state, batch, rng)
  expected, terms = info_vae_loss(logits, batch['image'], mean, logvar, z, prior, alpha=-0.5,
                                  lambda_=5.0, kernel=kernel, bandwidth=bandwidth,
                                  estimator=estimator)
  np.testing.assert_allclose(losses['vae'], expected, rtol=1e-6)
  for key in ('recon', 'kl', 'mmd'):
    np.testing.assert_allclose(metrics[key], terms[key], rtol=1e-6)
  # By hand: recon + (1 − α)·KL + (α + λ − 1)·MMD², weight 3.5.
  np.testing.assert_allclose(
      losses['vae'], terms['recon'] + 1.5 * terms['kl'] + 3.5 * terms['mmd'], rtol=1e-5)
  assert float(metrics['mmd_weight']) == 3.5
  assert float(metrics['mmd']) == pytest.approx(float(mmd_fn(
      z, prior, kernel=kernel, bandwidth=bandwidth, estimator=estimator)), rel=1e-6)


def test_mmdvae_is_recon_plus_lambda_mmd_without_kl():
  objective = build('mmdvae', lambda_mmd=300.0)
  assert objective.alpha == 1.0 and objective.mmd_weight == 300.0
  batch, rng = squares(), jax.random.key(3)
  params, state = jax.jit(objective.init)(jax.random.key(0), batch)
  losses, (_, metrics) = objective.losses(params, state, batch, rng, jnp.int32(0))
  _, _, z, logits, prior = _pass(objective, params, state, batch, rng)
  expected, terms = mmd_vae_loss(logits, batch['image'], z, prior, lambda_=300.0)
  np.testing.assert_allclose(losses['vae'], expected, rtol=1e-6)
  np.testing.assert_allclose(losses['vae'], terms['recon'] + 300.0 * terms['mmd'], rtol=1e-5)
  assert 'kl' not in metrics
  # InfoVAE at α = 1 is the same loss.
  info = build('infovae', alpha=1.0, lambda_mmd=300.0)
  info_losses, _ = info.losses(params, state, batch, rng, jnp.int32(0))
  np.testing.assert_allclose(info_losses['vae'], losses['vae'], rtol=1e-6)


def test_infovae_at_alpha_0_lambda_1_is_the_vae():
  batch, rng = squares(), jax.random.key(5)
  vae = get_objective('vae')(config('vae'), SHAPE)
  params, state = jax.jit(vae.init)(jax.random.key(0), batch)
  vae_loss, _ = vae.losses(params, state, batch, rng, jnp.int32(0))
  info_loss, (_, metrics) = build('infovae', alpha=0.0, lambda_mmd=1.0).losses(
      params, state, batch, rng, jnp.int32(0))
  np.testing.assert_allclose(info_loss['vae'], vae_loss['vae'], rtol=1e-6)
  assert float(metrics['mmd_weight']) == 0.0


def test_prior_samples_come_from_the_steps_named_stream():
  objective = build('mmdvae')
  batch = squares()
  params, state = jax.jit(objective.init)(jax.random.key(0), batch)
  mmd_at = lambda seed: float(objective.losses(
      params, state, batch, jax.random.key(seed), jnp.int32(0))[1][1]['mmd'])
  assert mmd_at(1) == mmd_at(1)
  assert mmd_at(1) != mmd_at(2)


@pytest.mark.parametrize('name', ['infovae', 'mmdvae'])
def test_a_few_steps_lower_the_loss(name):
  objective = build(name, lambda_mmd=100.0)
  state = create_train_state(objective, jax.random.key(0), squares(32))
  step_fn = jax.jit(make_train_step(objective))
  history = []
  for i in range(40):
    state, metrics = step_fn(state, squares(32, seed=i), jax.random.key(1))
    history.append({k: float(v) for k, v in jax.device_get(metrics).items()})
  loss = np.array([h['loss/vae'] for h in history])
  assert np.all(np.isfinite(loss))
  assert loss[-5:].mean() < 0.8 * loss[:5].mean(), loss


@pytest.mark.parametrize('overrides, words', [
    (dict(kernel='laplace'), ['kernel', "'rbf'", "'laplace'"]),
    (dict(estimator='mean'), ['estimator', "'unbiased'"]),
    (dict(bandwidth=0.0), ['bandwidth', '> 0']),
])
def test_bad_settings_are_one_line_errors_that_name_them(overrides, words):
  with pytest.raises(ValueError) as error:
    build('infovae', **overrides)
  for word in words:
    assert word in str(error.value)


def test_mmdvae_refuses_another_alpha():
  with pytest.raises(ValueError, match="name='infovae'"):
    build('mmdvae', alpha=0.5)


def load_config(module, arg=None):
  return importlib.import_module(f'configs.{module}').get_config(arg)


def test_shipped_config_builds_and_switches_to_infovae():
  for arg in (None, 'runlocal'):
    c = load_config('mmdvae_dsprites', arg)
    objective = get_objective(c.objective.name)(c, (64, 64, 1))
    assert objective.name == 'mmdvae' and objective.mmd_weight == 1000.0
  c = load_config('mmdvae_dsprites')
  c.objective.name = 'infovae'
  c.objective.alpha = 0.0
  objective = get_objective(c.objective.name)(c, (64, 64, 1))
  assert objective.alpha == 0.0 and objective.mmd_weight == 999.0


@pytest.mark.slow
def test_mmdvae_dsprites_runlocal_trains_draws_and_evaluates(tmp_path, tfds_data_dir):
  c = load_config('mmdvae_dsprites', 'runlocal')
  c.data.data_dir = tfds_data_dir
  c.total_steps = 6
  c.batch_size = 8
  c.log_every = 2
  c.checkpoint_every = 6
  c.image_every = 6
  c.eval_every = 6
  c.model.encoder = 'fc'
  c.model.decoder = 'fc'
  c.evaluators = ml_collections.ConfigDict({'mig': {'num_train': 300, 'num_test': 200}})
  workdir = str(tmp_path / 'run')
  train_lib.train_and_evaluate(c, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  trained = [r for r in records if 'mmd' in r]
  assert trained and all(np.isfinite(r['loss/vae']) for r in trained)
  assert trained[-1]['mmd_weight'] == 1000.0
  evals = [r for r in records if 'eval/mig/discrete_mig' in r]
  assert evals and 0.0 <= evals[-1]['eval/mig/discrete_mig'] <= 1.0
  pictures = os.listdir(os.path.join(workdir, 'images'))
  assert {'reconstructions_00000006.png', 'samples_00000006.png'} <= set(pictures)

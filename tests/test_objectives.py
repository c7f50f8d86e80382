"""The objectives run in the generic train step: losses go down, FactorVAE's discriminator learns.

Each objective trains for a few dozen steps on a fixed stream of 32×32 images of moving squares.
"""

import functools
import importlib
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disentangle_jax.objectives import available, get_objective
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import create_train_state

IMAGE_SHAPE = (32, 32, 1)
BATCH = 32
LATENTS = 4


# ----------------------------------------------------------------------------------------------
# Data: a fixed pool of images with one or two squares at random positions and sizes.


def _squares_pool(num=256, seed=0):
  rng = np.random.default_rng(seed)
  images = np.zeros((num, *IMAGE_SHAPE), np.float32)
  for i in range(num):
    for _ in range(rng.integers(1, 3)):
      size = rng.integers(4, 10)
      y, x = rng.integers(0, IMAGE_SHAPE[0] - size, size=2)
      images[i, y : y + size, x : x + size, 0] = 1.0
  return images


POOL = _squares_pool()


def batch_at(step, batch_size=BATCH):
  idx = np.random.default_rng(1000 + step).choice(len(POOL), batch_size, replace=False)
  return {'image': jnp.asarray(POOL[idx]), 'label': jnp.zeros((batch_size,), jnp.int32)}


# ----------------------------------------------------------------------------------------------
# Configs


def make_config(name, *, lr=1e-3, **objective):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.objective = ml_collections.ConfigDict(dict(name=name, latent_dim=LATENTS, **objective))
  # The registry's fully connected networks, narrowed so that each test takes seconds.
  c.model = ml_collections.ConfigDict(
      dict(encoder='fc', decoder='fc', conv_impl='xla', encoder_kwargs=dict(hidden=(128,)),
           decoder_kwargs=dict(hidden=(128,)))
  )
  c.optimizer = ml_collections.ConfigDict(
      dict(name='adam', learning_rate=lr, b1=0.9, b2=0.999, eps=1e-8)
  )
  return c


def factorvae_config(**kw):
  kw.setdefault('gamma', 10.0)
  kw.setdefault('two_batches', False)
  c = make_config('factorvae', **kw)
  c.model.discriminator = 'mlp_discriminator'
  c.model.discriminator_kwargs = dict(hidden=(256,) * 3)
  c.objective.discriminator_optimizer = ml_collections.ConfigDict(
      dict(name='adam', learning_rate=1e-3, b1=0.5, b2=0.9, eps=1e-8)
  )
  return c


CONFIGS = {
    'ae': lambda: make_config('ae', likelihood='bernoulli'),
    'ae_mse': lambda: make_config('ae', likelihood='mse'),
    'vae': lambda: make_config('vae', likelihood='bernoulli'),
    'vae_gaussian': lambda: make_config('vae', likelihood='gaussian'),
    'betavae': lambda: make_config('betavae', beta=4.0, beta_mode='raw'),
    'betavae_normalized': lambda: make_config(
        'betavae', beta=4.0 * LATENTS / np.prod(IMAGE_SHAPE), beta_mode='normalized'
    ),
    'factorvae': factorvae_config,
    'annealedvae': lambda: make_config(
        'annealedvae', gamma=100.0, max_capacity=10.0, anneal_steps=100
    ),
    'betatcvae_dlib': lambda: make_config('betatcvae', beta=6.0, variant='dlib'),
    'betatcvae_chen_mss': lambda: make_config(
        'betatcvae', beta=6.0, variant='chen', dataset_size=len(POOL)
    ),
    'dipvae_i': lambda: make_config('dipvae', dip_type='i', lambda_od=10.0),
    'dipvae_ii': lambda: make_config('dipvae', dip_type='ii', lambda_od=10.0),
}


def build(config):
  return get_objective(config.objective.name)(config, IMAGE_SHAPE)


@functools.cache
def built(variant):
  """One objective per variant for the whole module, so its step compiles once."""
  return build(CONFIGS[variant]())


@functools.cache
def jitted_step(objective):
  return jax.jit(make_train_step(objective))


def train(objective, steps, seed=0, batch_size=BATCH):
  state = create_train_state(objective, jax.random.key(seed), batch_at(0, batch_size))
  step_fn = jitted_step(objective)
  rng = jax.random.key(seed + 1)
  history = []
  for i in range(steps):
    state, metrics = step_fn(state, batch_at(i, batch_size), rng)
    history.append(jax.device_get(metrics))
  return state, history


def series(history, key):
  return np.array([float(m[key]) for m in history])


# ----------------------------------------------------------------------------------------------


def test_objectives_are_registered():
  expected = {'ae', 'vae', 'betavae', 'factorvae', 'annealedvae', 'betatcvae', 'dipvae'}
  assert expected <= set(available())


@pytest.mark.parametrize('variant', sorted(CONFIGS))
def test_loss_goes_down(variant):
  objective = built(variant)
  group = objective.groups[0]
  _, history = train(objective, steps=60)
  loss = series(history, f'loss/{group}')
  assert np.all(np.isfinite(loss))
  assert loss[-10:].mean() < 0.8 * loss[:5].mean(), loss
  recon = series(history, 'recon')
  assert recon[-10:].mean() < recon[:5].mean()


def test_factorvae_discriminator_learns_and_reports_tc(seed=0):
  objective = built('factorvae')
  assert objective.groups == ('vae', 'discriminator')
  assert objective.update_order == 'simultaneous'
  losses_fn = jax.jit(objective.losses)

  def on_pool(state):
    """Discriminator accuracy and loss on all 256 images' codes against 4 of their permutations."""
    runs = [
        losses_fn(state.params, state.model_state, {'image': jnp.asarray(POOL)},
                  jax.random.key(k), state.step)[1][1]
        for k in range(4)
    ]
    return tuple(np.mean([float(m[key]) for m in runs]) for key in ('disc_accuracy', 'disc_loss'))

  initial = create_train_state(objective, jax.random.key(seed), batch_at(0))
  state, history = train(objective, steps=300, seed=seed)
  accuracy = series(history, 'disc_accuracy')
  assert np.all((0.0 <= accuracy) & (accuracy <= 1.0))
  initial_accuracy, initial_loss = on_pool(initial)
  final_accuracy, final_loss = on_pool(state)
  # An untrained discriminator is at chance; a trained one tells q(z) from Π_j q(z_j) better
  # than chance. (Over 5 seeds: 0.58–0.61 accuracy and 0.63–0.67 loss on the pool after training.)
  assert abs(initial_accuracy - 0.5) < 0.05, initial_accuracy
  assert final_accuracy > 0.56, final_accuracy
  assert final_loss < min(initial_loss, np.log(2.0)), (initial_loss, final_loss)
  assert accuracy.mean() > 0.53, accuracy
  assert np.all(np.isfinite(series(history, 'tc')))
  loss = series(history, 'loss/vae')
  assert loss[-10:].mean() < loss[:5].mean()


def test_factorvae_two_batches():
  objective = build(factorvae_config(two_batches=True))
  state, history = train(objective, steps=3)
  assert np.isfinite(series(history, 'loss/discriminator')).all()
  assert int(state.step) == 3


def test_factorvae_groups_only_update_their_own_params():
  """The discriminator's loss is constant in the VAE's parameters (stop_gradient), while the
  VAE's loss does depend on the discriminator (through γ·TC) without the step applying it there."""
  objective = built('factorvae')
  batch = batch_at(0)
  state = create_train_state(objective, jax.random.key(0), batch)
  rng = jax.random.key(1)

  def group_loss(loss_group, param_group):
    def fn(p):
      params = {**state.params, param_group: p}
      return objective.losses(params, state.model_state, batch, rng, state.step)[0][loss_group]
    return jax.jit(jax.grad(fn))(state.params[param_group])

  max_abs = lambda tree: max(float(jnp.abs(g).max()) for g in jax.tree.leaves(tree))  # noqa: E731
  assert max_abs(group_loss('discriminator', 'vae')) == 0.0
  assert max_abs(group_loss('vae', 'discriminator')) > 0.0
  # One step: each group moves, each by its own optimizer.
  new_state, _ = jitted_step(objective)(state, batch, rng)
  for group in objective.groups:
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params[group],
                         new_state.params[group])
    assert max(jax.tree.leaves(moved)) > 0.0, group


@pytest.mark.parametrize('name', ['ae', 'vae', 'betavae', 'factorvae'])
def test_shapes_and_determinism(name):
  objective = built(name)
  assert objective.latent_dim == LATENTS
  batch = batch_at(0, 8)
  state = create_train_state(objective, jax.random.key(0), batch)
  codes = jax.jit(objective.encode)(state.params, state.model_state, batch['image'])
  assert codes.shape == (8, LATENTS)
  images = jax.jit(objective.decode)(state.params, state.model_state, codes)
  assert images.shape == (8, *IMAGE_SHAPE)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
  recon = objective.reconstruct(state.params, state.model_state, batch['image'])
  assert recon.shape == (8, *IMAGE_SHAPE)
  prior = objective.sample_prior(jax.random.key(3), 5)
  if name == 'ae':
    assert prior is None
  else:
    assert prior.shape == (5, LATENTS)
    np.testing.assert_array_equal(prior, objective.sample_prior(jax.random.key(3), 5))
  # Same seeds, same parameters after training; another seed, different ones.
  leaves = lambda s: jax.tree.leaves(s.params)  # noqa: E731
  first, _ = train(objective, steps=3, batch_size=8)
  again, _ = train(objective, steps=3, batch_size=8)
  other, _ = train(objective, steps=3, seed=5, batch_size=8)
  for a, b in zip(leaves(first), leaves(again), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(leaves(first), leaves(other), strict=True))


def test_vae_encode_is_the_posterior_mean():
  objective = built('vae')
  batch = batch_at(0, 4)
  state = create_train_state(objective, jax.random.key(0), batch)
  mean, logvar, _ = objective.posterior(state.params['vae'], state.model_state, batch['image'])
  np.testing.assert_allclose(objective.encode(state.params, state.model_state, batch['image']),
                             mean)
  assert logvar.shape == mean.shape


def test_betavae_schedule_drives_beta():
  config = make_config('betavae', beta=4.0)
  config.objective.beta_schedule = ml_collections.ConfigDict(
      dict(name='linear_warmup', warmup_steps=4)
  )
  _, history = train(build(config), steps=6, batch_size=8)
  np.testing.assert_allclose(series(history, 'beta'), [0.0, 1.0, 2.0, 3.0, 4.0, 4.0])


def test_betavae_normalized_mode_logs_per_pixel_and_per_latent_terms():
  objective = built('betavae_normalized')
  _, history = train(objective, steps=1, batch_size=8)
  assert float(history[0]['recon']) < 1.0  # per-pixel mean, not a sum over 1024 pixels
  np.testing.assert_allclose(float(history[0]['beta']), 4.0 * LATENTS / 1024, rtol=1e-6)


def test_missing_config_keys_are_errors_that_name_them():
  config = make_config('betavae')  # no beta
  with pytest.raises(KeyError, match='objective.beta'):
    build(config)
  config = make_config('vae')
  del config.objective['latent_dim']
  with pytest.raises(KeyError, match='objective.latent_dim'):
    build(config)
  config = factorvae_config()
  del config.objective['discriminator_optimizer']
  with pytest.raises(KeyError, match='discriminator_optimizer'):
    build(config)
  with pytest.raises(ValueError, match='beta_mode'):
    build(make_config('betavae', beta=1.0, beta_mode='norm'))
  with pytest.raises(ValueError, match='likelihood'):
    build(make_config('vae', likelihood='laplace'))


def load_shipped_config(module: str, arg=None):
  """configs/<module>.py as launch/main.py loads it (the repository root on sys.path)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if root not in sys.path:
    sys.path.insert(0, root)
  return importlib.import_module(f'configs.{module}').get_config(arg)


@pytest.mark.parametrize(
    'module',
    [
        'ae_dsprites', 'betavae_dsprites', 'factorvae_dsprites', 'annealedvae_dsprites',
        'betatcvae_dsprites', 'dipvae_dsprites',
    ],
)
def test_shipped_configs_build_their_objectives(module):
  for arg in (None, 'runlocal'):
    config = load_shipped_config(module, arg)
    assert config.objective.latent_dim == 10 and config.batch_size == 64
    objective = get_objective(config.objective.name)(config, (64, 64, 1))
    assert objective.latent_dim == 10
    assert set(objective.optimizers()) == set(objective.groups)
  # The registry's conv networks (and FactorVAE's 6 × 1000 MLP) fit a 64×64 batch: traced
  # abstractly (shapes only, nothing compiled), one train step included.
  batch = {'image': jax.ShapeDtypeStruct((2, 64, 64, 1), jnp.float32)}
  state = jax.eval_shape(lambda rng: create_train_state(objective, rng, batch), jax.random.key(0))
  codes = jax.eval_shape(objective.encode, state.params, state.model_state, batch['image'])
  assert codes.shape == (2, 10)
  new_state, metrics = jax.eval_shape(make_train_step(objective), state, batch, jax.random.key(1))
  assert jax.tree.structure(new_state.params) == jax.tree.structure(state.params)
  assert all(m.shape == () for m in jax.tree.leaves(metrics))
  full = load_shipped_config(module)
  assert full.total_steps == 300_000 and full.optimizer.learning_rate == 1e-4
  assert full.data.name == 'procedural_dsprites'


def test_annealedvae_and_betatcvae_log_their_terms():
  _, history = train(built('annealedvae'), steps=2, batch_size=8)
  np.testing.assert_allclose(series(history, 'capacity'), [0.0, 0.1], atol=1e-7)
  assert 'capacity_term' in history[0]
  _, history = train(built('betatcvae_chen_mss'), steps=1, batch_size=8)
  assert {'mi', 'tc', 'dwkl', 'beta'} <= set(history[0])
  with pytest.raises(ValueError, match='dataset size'):
    build(make_config('betatcvae', beta=6.0, variant='chen'))
  # The dataset size comes from the data, not the config.
  from disentangle_jax.data.info import DatasetInfo
  info = DatasetInfo.for_images(IMAGE_SHAPE, num_examples=1234)
  chen = get_objective('betatcvae')(make_config('betatcvae', beta=6.0, variant='chen'), info)
  assert chen.dataset_size == 1234
  dlib = get_objective('betatcvae')(make_config('betatcvae', beta=6.0), info)
  assert dlib.dataset_size is None  # dlib's MWS drops the constants


# ----------------------------------------------------------------------------------------------
# Optimizers from config


def test_make_optimizer_matches_optax():
  import optax

  from disentangle_jax.optimizers import make_optimizer

  params = {'w': jnp.array([1.0, -2.0, 3.0])}
  grads = {'w': jnp.array([0.5, 0.1, -1.0])}
  config = ml_collections.ConfigDict(
      dict(name='adam', learning_rate=1e-2, b1=0.5, b2=0.9, eps=1e-8)
  )
  ours, ref = make_optimizer(config), optax.adam(1e-2, b1=0.5, b2=0.9, eps=1e-8)
  s1, s2 = ours.init(params), ref.init(params)
  for _ in range(3):
    u1, s1 = ours.update(grads, s1, params)
    u2, s2 = ref.update(grads, s2, params)
    np.testing.assert_allclose(u1['w'], u2['w'], rtol=1e-6)
  sgd = make_optimizer(
      dict(name='sgd', learning_rate=0.1, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8)
  )
  u, _ = sgd.update(grads, sgd.init(params), params)
  np.testing.assert_allclose(u['w'], -0.1 * grads['w'], rtol=1e-6)
  clipped = make_optimizer(dict(name='sgd', learning_rate=1.0, grad_clip_norm=0.1))
  u, _ = clipped.update(grads, clipped.init(params), params)
  np.testing.assert_allclose(float(jnp.linalg.norm(u['w'])), 0.1, rtol=1e-5)
  for name in ('adamw', 'radam', 'adagrad', 'rmsprop'):
    tx = make_optimizer(dict(name=name, learning_rate=1e-3))
    u, _ = tx.update(grads, tx.init(params), params)
    assert np.all(np.isfinite(u['w']))


def test_learning_rate_schedules():
  from disentangle_jax.optimizers import make_learning_rate

  # The mixing autoencoder's: ×0.9 every 20k steps, staircase.
  lr = make_learning_rate(dict(learning_rate=2e-4, schedule='exponential', decay_steps=20_000,
                               decay_rate=0.9, staircase=True))
  for step, value in ((0, 2e-4), (19_999, 2e-4), (20_000, 1.8e-4), (45_000, 1.62e-4)):
    assert float(lr(step)) == pytest.approx(value, rel=1e-5)
  lr = make_learning_rate(dict(learning_rate=1e-3, schedule='warmup_cosine', warmup_steps=100,
                               decay_steps=1000, alpha=0.1))
  assert float(lr(0)) == 0.0
  assert float(lr(50)) == pytest.approx(5e-4, rel=1e-5)
  assert float(lr(100)) == pytest.approx(1e-3, rel=1e-5)
  assert float(lr(600)) == pytest.approx(0.55e-3, rel=1e-4)
  assert float(lr(1100)) == pytest.approx(1e-4, rel=1e-4)
  lr = make_learning_rate(dict(learning_rate=1e-3, schedule='cosine', decay_steps=10))
  assert float(lr(10)) == pytest.approx(0.0, abs=1e-9)
  assert make_learning_rate(dict(learning_rate=3e-4)) == 3e-4


def test_optimizer_config_errors_name_the_key():
  from disentangle_jax.optimizers import make_optimizer

  with pytest.raises(ValueError, match='learnig_rate'):
    make_optimizer(dict(name='adam', learning_rate=1e-3, learnig_rate=1e-3))
  with pytest.raises(ValueError, match='adamm'):
    make_optimizer(dict(name='adamm', learning_rate=1e-3))
  with pytest.raises(KeyError, match='learning_rate'):
    make_optimizer(dict(name='adam'))
  with pytest.raises(KeyError, match='decay_rate'):
    make_optimizer(dict(name='adam', learning_rate=1e-3, schedule='exponential', decay_steps=10))
  with pytest.raises(ValueError, match='schedule'):
    make_optimizer(dict(name='adam', learning_rate=1e-3, schedule='linear'))


def test_beta_schedule_from_the_command_line_text_form():
  config = make_config('betavae', beta=4.0)
  config.objective.beta_schedule = 'linear_warmup, warmup_steps=4'
  _, history = train(build(config), steps=6, batch_size=8)
  np.testing.assert_allclose(series(history, 'beta'), [0.0, 1.0, 2.0, 3.0, 4.0, 4.0])
  config.objective.beta_schedule = 'linear_warmup,warmup_steps'
  with pytest.raises(ValueError, match='key=value'):
    build(config)
  config.objective.beta_schedule = 'linear_warmup,warmup_steps=soon'
  with pytest.raises(ValueError, match='warmup_steps must be a number'):
    build(config)
  # The shipped configs declare it as text, so `--config.objective.beta_schedule=...` overrides it.
  for module in ('betavae_dsprites', 'betatcvae_dsprites'):
    shipped = load_shipped_config(module)
    assert shipped.objective.beta_schedule is None
    shipped.objective.beta_schedule = 'cyclical,period=100,ratio=0.5'
    assert get_objective(shipped.objective.name)(shipped, (64, 64, 1)).beta_fn is not None

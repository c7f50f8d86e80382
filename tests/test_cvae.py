"""The conditional VAE: the condition reaches encoder and decoder, its layouts, its pictures, and a
tiny run of configs/cvae_dsprites.py:runlocal through the train loop."""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

from disentangle_jax.data.info import DatasetInfo
from disentangle_jax.objectives import get_objective
from disentangle_jax.training import train as train_lib

SHAPE = (32, 32, 1)
LABELLED = DatasetInfo.for_images(SHAPE, label_names=('Smiling', 'Male', 'Eyeglasses'))
FACTORS = DatasetInfo.for_images(SHAPE, factor_names=('shape', 'scale', 'x'),
                                 factor_sizes=(3, 6, 4))


def cvae_config(*, encoder='fc', decoder='fc', lr=1e-3, **objective):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 10
  c.objective = ml_collections.ConfigDict(dict(name='cvae', latent_dim=4, **objective))
  c.model = ml_collections.ConfigDict(dict(encoder=encoder, decoder=decoder, conv_impl='xla'))
  if encoder == 'fc':
    c.model.encoder_kwargs = dict(hidden=(64,))
    c.model.decoder_kwargs = dict(hidden=(64,))
  c.optimizer = ml_collections.ConfigDict(
      dict(name='adam', learning_rate=lr, b1=0.9, b2=0.999, eps=1e-8))
  return c


def build(info, **kw):
  return get_objective('cvae')(cvae_config(**kw), info)


def labelled_batch(n=4, seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.random((n, *SHAPE)).astype(np.float32),
          'label': rng.integers(0, 2, (n, 3)).astype(np.int32)}


# ---------------------------------------------------------------------------------------------
# The condition reaches the encoder and the decoder.


@pytest.mark.parametrize('networks', ['fc', 'conv'])
def test_condition_changes_encoder_and_decoder_outputs_and_nothing_else_does(networks):
  objective = build(LABELLED, encoder='conv_k2' if networks == 'conv' else 'fc',
                    decoder=networks)
  batch = labelled_batch()
  params, state = jax.jit(objective.init)(jax.random.key(0), batch)
  image = batch['image'][:1]
  y0 = np.array([[0.0, 1.0, 0.0]], np.float32)
  y1 = np.array([[1.0, 1.0, 0.0]], np.float32)
  z = np.asarray(jax.random.normal(jax.random.key(1), (1, 4)))

  decode = objective.jitted('decode')
  same_a, same_b = (np.asarray(decode(params, state, z, y0)) for _ in range(2))
  other = np.asarray(decode(params, state, z, y1))
  np.testing.assert_array_equal(same_a, same_b)
  assert np.abs(other - same_a).max() > 1e-4

  encode = objective.jitted('encode')
  codes_a, codes_b = (np.asarray(encode(params, state, image, y0)) for _ in range(2))
  codes_other = np.asarray(encode(params, state, image, y1))
  np.testing.assert_array_equal(codes_a, codes_b)
  assert np.abs(codes_other - codes_a).max() > 1e-5

  # The training loss reads the condition from the batch: another label, another loss; the
  # same batch twice, the same loss.
  rng, step = jax.random.key(2), jnp.int32(0)
  flipped = {**batch, 'label': 1 - batch['label']}
  loss = lambda b: float(objective.losses(params, state, b, rng, step)[0]['vae'])
  assert loss(batch) == loss(dict(batch))
  assert loss(flipped) != loss(batch)


def test_the_condition_is_not_optional_for_the_networks():
  """A CVAE's networks are built for [x, y]: decoding without y is a shape error, not a silent
  unconditional decode."""
  objective = build(LABELLED)
  params, state = jax.jit(objective.init)(jax.random.key(0), labelled_batch())
  with pytest.raises(Exception):
    objective.decode(params, state, jnp.zeros((1, 4)))


# ---------------------------------------------------------------------------------------------
# What the condition is.


def test_labels_are_the_default_on_labelled_data_and_enter_as_floats():
  objective = build(LABELLED)
  assert objective.is_conditional and objective.condition_dim == 3
  batch = labelled_batch()
  cond = objective.condition(batch)
  assert cond.dtype == jnp.float32
  np.testing.assert_array_equal(cond, batch['label'].astype(np.float32))


def test_factors_enter_as_concatenated_one_hots_in_the_order_given():
  objective = build(FACTORS, condition_on='x,shape')
  assert objective.condition_dim == 4 + 3
  batch = {'image': np.zeros((2, *SHAPE), np.float32),
           'factors': np.array([[2, 5, 1], [0, 0, 3]], np.int32)}
  expected = np.array([[0, 1, 0, 0, 0, 0, 1], [0, 0, 0, 1, 1, 0, 0]], np.float32)
  np.testing.assert_array_equal(objective.condition(batch), expected)
  # A list works as well as the text form.
  listed = build(FACTORS, condition_on=['x', 'shape'])
  np.testing.assert_array_equal(listed.condition(batch), expected)


def test_without_labels_the_default_is_the_factor_with_fewest_values():
  objective = build(FACTORS)
  assert [p.name for p in objective.parts] == ['shape'] and objective.condition_dim == 3


@pytest.mark.parametrize('info, condition_on, words', [
    (FACTORS, 'colour', ["'colour'", "'shape'", "'scale'"]),
    (FACTORS, 'labels', ['no labels', "'shape'"]),
    (LABELLED, 'labels,shape', ['cannot be mixed']),
    (FACTORS, 'shape,shape', ['twice']),
    (DatasetInfo.for_images(SHAPE), None, ['neither']),
])
def test_bad_conditions_are_one_line_errors_that_name_the_problem(info, condition_on, words):
  with pytest.raises(ValueError) as error:
    build(info, condition_on=condition_on)
  message = str(error.value)
  assert '\n' not in message
  for word in words:
    assert word in message, message


def test_a_batch_without_the_condition_is_an_error_naming_the_key():
  objective = build(LABELLED)
  with pytest.raises(KeyError, match="'label'"):
    objective.condition({'image': np.zeros((1, *SHAPE), np.float32)})


def test_condition_variants_flip_one_label_or_cycle_one_factor():
  flips, names = build(LABELLED).condition_variants(np.array([1.0, 0.0, 1.0]))
  np.testing.assert_array_equal(flips, [[0, 0, 1], [1, 1, 1], [1, 0, 0]])
  assert names == ['Smiling', 'Male', 'Eyeglasses']

  objective = build(FACTORS, condition_on='shape,x')
  cond = np.array([0, 1, 0, 0, 0, 1, 0], np.float32)  # shape 1, x 2
  variants, names = objective.condition_variants(cond)
  assert names == ['shape=0', 'shape=1', 'shape=2', 'x=0', 'x=1', 'x=2', 'x=3']
  np.testing.assert_array_equal(variants[0], [1, 0, 0, 0, 0, 1, 0])
  np.testing.assert_array_equal(variants[5], [0, 1, 0, 0, 0, 1, 0])  # x=2: unchanged
  np.testing.assert_array_equal(variants[6], [0, 1, 0, 0, 0, 0, 1])


# ---------------------------------------------------------------------------------------------
# Pictures


def test_pictures_are_the_default_ones_plus_the_condition_manipulation():
  objective = build(FACTORS, condition_on='shape')
  batch = {'image': np.random.default_rng(0).random((5, *SHAPE)).astype(np.float32),
           'factors': np.array([[0, 0, 0], [1, 2, 3], [2, 5, 1], [1, 1, 1], [0, 3, 2]])}
  params, state = jax.jit(objective.init)(jax.random.key(0), batch)
  pictures = objective.pictures(params, state, batch, jax.random.key(1))
  assert {'reconstructions', 'samples', 'traversal', 'traversal_animation',
          'condition_manipulation'} <= set(pictures)
  grid = pictures['condition_manipulation']
  assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[-1] == 1
  # The column whose shape is the example's own is its reconstruction, bit for bit.
  cond = np.asarray(objective.condition(batch))
  codes = objective.encode(params, state, batch['image'], cond)
  recon = np.asarray(objective.decode(params, state, codes, cond))
  for row in range(5):
    variants, _ = objective.condition_variants(cond[row])
    own = int(batch['factors'][row, 0])
    again = objective.decode(params, state, codes[row : row + 1], variants[own : own + 1])
    np.testing.assert_allclose(np.asarray(again)[0], recon[row], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# configs/cvae_dsprites.py:runlocal through the train loop, with pictures and evaluation.


def load_config(module, arg=None):
  return importlib.import_module(f'configs.{module}').get_config(arg)


def test_shipped_config_builds_on_the_dsprites_description():
  from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  for arg in (None, 'runlocal'):
    config = load_config('cvae_dsprites', arg)
    info = pipeline.dataset_info(config.data)
    objective = get_objective(config.objective.name)(config, info)
    assert [p.name for p in objective.parts] == ['shape'] and objective.condition_dim == 3
    assert objective.latent_dim == 10


def test_metrics_that_render_images_by_factors_are_refused_at_step_0():
  """A conditional model's code needs each image's condition, which images rendered by factors
  do not come with: BetaVAE / FactorVAE scores are refused before training."""
  from configs import common  # pylint: disable=g-import-not-at-top
  from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from disentangle_jax.training import evaluation  # pylint: disable=g-import-not-at-top

  config = load_config('cvae_dsprites', 'runlocal')
  info = pipeline.dataset_info(config.data)
  objective = get_objective('cvae')(config, info)
  evaluation.check_evaluators(config, info, objective)  # the shipped ones pass
  config.evaluators = common.standard_evaluators(True)
  with pytest.raises(ValueError, match='factorvae'):
    evaluation.check_evaluators(config, info, objective)


@pytest.mark.slow
def test_cvae_dsprites_runlocal_trains_draws_and_evaluates(tmp_path, tfds_data_dir):
  config = load_config('cvae_dsprites', 'runlocal')
  config.data.data_dir = tfds_data_dir
  config.total_steps = 6
  config.batch_size = 8
  config.log_every = 2
  config.checkpoint_every = 6
  config.image_every = 6
  config.eval_every = 6
  config.model.encoder = 'fc'  # the conv networks are checked above; this checks the plumbing
  config.model.decoder = 'fc'
  small = {'num_train': 300, 'num_test': 200}
  config.evaluators = ml_collections.ConfigDict({'mig': small, 'linear_probe': small})
  workdir = str(tmp_path / 'run')
  train_lib.train_and_evaluate(config, workdir)

  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert [r for r in records if 'loss/vae' in r and np.isfinite(r['loss/vae'])]
  evals = [r for r in records if 'eval/linear_probe/accuracy_mean' in r]
  assert evals and evals[-1]['step'] == 6
  assert 0.0 <= evals[-1]['eval/linear_probe/accuracy_mean'] <= 1.0
  assert 0.0 <= evals[-1]['eval/mig/discrete_mig'] <= 1.0
  pictures = sorted(os.listdir(os.path.join(workdir, 'images')))
  for kind in ('reconstructions', 'samples', 'traversal', 'condition_manipulation'):
    assert f'{kind}_00000006.png' in pictures, pictures
  assert 'traversal_animation_00000006.gif' in pictures
  grid = np.asarray(Image.open(
      os.path.join(workdir, 'images', 'condition_manipulation_00000006.png')))
  # Six rows of 64 px examples; input, recon and the three shapes: five columns.
  assert grid.shape[0] > 6 * 64 and grid.shape[1] > 5 * 64

"""The CelebA configs (conditional VAE, VAE, normalised β-VAE, DIP-VAE) on
`tfds.testing.mock_data`: each builds on the dataset's description, traces a step of its own conv
networks on 64×64×3 faces, and runs two steps through the train loop with pictures and the
labelled evaluation (linear probe, retrieval) against the 40 attributes."""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disentangle_jax.data import pipeline
from disentangle_jax.data import testing
from disentangle_jax.objectives import get_objective
from disentangle_jax.training import evaluation
from disentangle_jax.training import train as train_lib
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import create_train_state

MODULES = ('cvae_celeba', 'vae_celeba', 'betavae_celeba', 'dipvae_celeba')
NUM_MOCK = 24
# More examples than latents, which dlib's unsupervised scores need (a covariance of 64 codes).
NUM_MOCK_RUN = 72


def load_config(module, arg=None):
  return importlib.import_module(f'configs.{module}').get_config(arg)


@pytest.mark.parametrize('module', MODULES)
def test_config_builds_on_celeba_and_traces_a_step_of_its_networks(module, tmp_path):
  for arg in (None, 'runlocal'):
    c = load_config(module, arg)
    assert c.data.name == 'celeb_a64' and c.data.builder_config is None
    assert c.objective.latent_dim == 64
    c.data.data_dir = str(tmp_path / 'empty')
    with testing.mock_real_data(num_examples=NUM_MOCK):
      info = pipeline.dataset_info(c.data)
    assert info.image_shape == (64, 64, 3) and len(info.label_names) == 40
    objective = get_objective(c.objective.name)(c, info)
    # The evaluators are ones that labelled data feeds (checked as at step 0).
    evaluation.check_evaluators(c, info, objective)
    assert {'linear_probe', 'retrieval'} <= set(c.evaluators)
  assert objective.is_conditional == (module == 'cvae_celeba')
  batch = {'image': jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32),
           'label': jax.ShapeDtypeStruct((2, 40), jnp.int32)}
  state = jax.eval_shape(lambda rng, b: create_train_state(objective, rng, b),
                         jax.random.key(0), batch)
  codes = jax.eval_shape(
      lambda p, s, b: objective.encode(p, s, b['image'], objective.condition(b)),
      state.params, state.model_state, batch)
  assert codes.shape == (2, 64)
  _, metrics = jax.eval_shape(make_train_step(objective), state, batch, jax.random.key(1))
  assert all(m.shape == () for m in jax.tree.leaves(metrics))


def test_betavae_celeba_uses_the_normalised_beta():
  c = load_config('betavae_celeba')
  assert c.objective.beta_mode == 'normalized'
  assert c.objective.beta == pytest.approx(4.0 * 64 / (64 * 64 * 3))  # β_norm = β·M/N
  objective = get_objective('betavae')(c, (64, 64, 3))
  assert objective.beta_mode == 'normalized'


def test_cvae_celeba_conditions_on_the_40_attributes(tmp_path):
  c = load_config('cvae_celeba', 'runlocal')
  c.data.data_dir = str(tmp_path / 'empty')
  with testing.mock_real_data(num_examples=NUM_MOCK):
    info = pipeline.dataset_info(c.data)
  objective = get_objective('cvae')(c, info)
  assert objective.condition_dim == 40 and objective.source == 'label'
  assert [p.name for p in objective.parts] == list(info.label_names)


@pytest.mark.slow
@pytest.mark.parametrize('module', MODULES)
def test_two_steps_on_mock_celeba_with_pictures_and_labelled_evaluation(module, tmp_path):
  c = load_config(module, 'runlocal')
  c.data.data_dir = str(tmp_path / 'empty')
  c.total_steps = 2
  c.batch_size = 4
  c.log_every = 1
  c.checkpoint_every = 2
  c.image_every = 2
  c.eval_every = 2
  # Narrow fully connected networks keep compilation short; the configs' conv networks are
  # traced above.
  c.model.encoder = 'fc'
  c.model.decoder = 'fc'
  c.model.encoder_kwargs = {'hidden': (32,)}
  c.model.decoder_kwargs = {'hidden': (32,)}
  sizes = {'num_train': NUM_MOCK_RUN, 'num_test': NUM_MOCK_RUN}
  for name in c.evaluators:
    c.evaluators[name] = dict(sizes)
  c.evaluators.retrieval.num_validation = NUM_MOCK_RUN
  workdir = str(tmp_path / 'run')
  with testing.mock_real_data(num_examples=NUM_MOCK_RUN):
    train_lib.train_and_evaluate(c, workdir)

  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert [r['step'] for r in records if 'loss/vae' in r] == [1, 2]
  assert all(np.isfinite(r['loss/vae']) for r in records if 'loss/vae' in r)
  evals = [r for r in records if 'eval/linear_probe/accuracy_mean' in r]
  assert evals and evals[-1]['step'] == 2
  assert 0.0 <= evals[-1]['eval/linear_probe/accuracy_mean'] <= 1.0
  assert any(k.startswith('eval/retrieval/') for k in evals[-1]), sorted(evals[-1])
  pictures = set(os.listdir(os.path.join(workdir, 'images')))
  expected = {'reconstructions_00000002.png', 'samples_00000002.png', 'traversal_00000002.png'}
  if module == 'cvae_celeba':
    expected.add('condition_manipulation_00000002.png')
  assert expected <= pictures, pictures

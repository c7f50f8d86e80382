"""The feature-aggregation VAE (Seitzer et al. 2020): its objectives, feature store, configs and
the three-step pipeline on a fake MPI3D file, including a resume inside step 3."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import featvae_mpi3d, featvae_shapes3d
from disentangle_jax import errors
from disentangle_jax.data import fake_sources, pipeline
from disentangle_jax.data.builders import mpi3d
from disentangle_jax.data.info import DatasetInfo
from disentangle_jax.networks import vgg
from disentangle_jax.objectives import _features, get_objective
from disentangle_jax.objectives.base import rng_stream
from disentangle_jax.objectives.factor_heads import factor_cross_entropy
from disentangle_jax.pipelines import feature_store
from disentangle_jax.pipelines import featvae as featvae_pipeline
from disentangle_jax.training import restore

FAKE_SIZES = (2, 2, 1, 1, 1, 3, 3)  # 36 images
TINY_EXTRACTOR = {'width': 1 / 16, 'aggregation_features': (8, 8, 8)}
INFO = DatasetInfo(name='fake', image_shape=(64, 64, 3), num_examples=40,
                   factor_names=('a', 'b'), factor_sizes=(3, 4))


def _featvae_config(**objective):
  return ml_collections.ConfigDict({
      'seed': 0, 'batch_size': 4, 'total_steps': 10,
      'objective': {'name': 'featvae', 'latent_dim': 3, **objective},
      'model': {'extractor': 'vgg_extractor_narrow', 'extractor_kwargs': TINY_EXTRACTOR,
                'conv_impl': 'xla', 'encoder': 'feature_mlp', 'decoder': 'feature_mlp',
                'encoder_kwargs': {'hidden': (8,)}, 'decoder_kwargs': {'hidden': (8,)}},
      'optimizer': {'name': 'radam', 'learning_rate': 1e-3},
  })


# -- step 3's objective -------------------------------------------------------------------------


def test_the_objective_uses_the_papers_normalisation():
  """L = Σ_b Σ_i (μ̂ − x)² / B + β Σ_b KL_b / (B·C), recomputed from the objective's own passes."""
  objective = get_objective('featvae')(_featvae_config(beta=0.3), INFO)
  assert objective.feature_dim == 8
  x = jax.random.uniform(jax.random.key(1), (4, 8))
  params, state = objective.init(jax.random.key(0), {'features': x})
  rng = jax.random.key(2)
  losses, (_, metrics) = objective.losses(params, state, {'features': x}, rng, jnp.int32(0))

  mean, logvar, _ = objective.posterior(params, state, x, train=True,
                                        rng=rng_stream(rng, 'dropout_encoder'))
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng_stream(rng, 'reparam'), mean.shape)
  recon, _ = objective.decode_features(params, state, z, train=True)
  assert float(recon.min()) >= 0 and float(recon.max()) <= 1  # the sigmoid mean
  b, c = mean.shape
  squared = float(jnp.sum((recon - x) ** 2)) / b
  kl = float(-0.5 * jnp.sum(1 + logvar - mean ** 2 - jnp.exp(logvar))) / (b * c)
  np.testing.assert_allclose(float(metrics['recon']), squared, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['kl']), kl, rtol=1e-5)
  np.testing.assert_allclose(float(losses['vae']), squared + 0.3 * kl, rtol=1e-5)


def test_beta_follows_the_cosine_schedule_per_epoch():
  schedule = {'start_value': 0.001, 'end_value': 0.4, 'start_step': 10, 'end_step': 49}
  objective = get_objective('featvae')(
      _featvae_config(beta_schedule=schedule, steps_per_epoch=7), INFO)
  beta = lambda step: float(objective.beta_at(step))  # noqa: E731
  assert beta(0) == pytest.approx(0.001) and beta(10 * 7 - 1) == pytest.approx(0.001)
  assert beta(10 * 7) == pytest.approx(0.001)
  np.testing.assert_allclose([beta(s) for s in range(29 * 7, 30 * 7)],
                             0.001 + 0.5 * 0.399 * (1 - np.cos(np.pi * 19 / 39)), rtol=1e-6)
  assert beta(49 * 7) == pytest.approx(0.4) and beta(99 * 7) == pytest.approx(0.4)


def test_steps_per_epoch_default_to_the_data_size():
  objective = get_objective('featvae')(_featvae_config(), INFO)
  assert objective.steps_per_epoch == 40 // 4


def test_an_extractor_file_of_another_network_is_refused(tmp_path):
  objective = get_objective('featvae')(_featvae_config(), INFO)
  frozen = objective.load_frozen()['extractor']
  path = _features.save_extractor(str(tmp_path / 'extractor.npz'), frozen)
  assert jax.tree.map(np.shape, _features.load_extractor(path, frozen)) == jax.tree.map(
      np.shape, frozen)
  other = _featvae_config(extractor=path)
  other.model.extractor_kwargs = {'width': 1 / 16, 'aggregation_features': (8, 8, 16)}
  with pytest.raises(ValueError, match='does not fit the configured extractor'):
    get_objective('featvae')(other, INFO).load_frozen()
  with pytest.raises(FileNotFoundError, match='finetuning step'):
    _features.load_extractor(str(tmp_path / 'missing.npz'))


# -- step 1's loss --------------------------------------------------------------------------------


def test_factor_loss_is_the_sum_of_per_factor_mean_cross_entropies():
  logits = [jnp.log(jnp.asarray([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]])),
            jnp.log(jnp.asarray([[0.1, 0.9], [0.5, 0.5]]))]
  factors = jnp.asarray([[0, 0], [1, 0]])
  loss, accuracy = factor_cross_entropy(logits, factors)
  want = -(np.log(0.5) + np.log(0.6)) / 2 - (np.log(0.1) + np.log(0.5)) / 2
  np.testing.assert_allclose(float(loss), want, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(accuracy), [1.0, 0.5])


# -- the store ------------------------------------------------------------------------------------


def test_the_store_round_trips_and_its_iterator_resumes(tmp_path):
  features = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
  factors = np.arange(20, dtype=np.int32).reshape(10, 2)
  writer = feature_store.StoreWriter(str(tmp_path), 10, 3, factor_names=('a', 'b'),
                                     factor_sizes=(10, 20))
  writer.write(0, features[:6], factors[:6])
  assert not feature_store.is_complete(str(tmp_path))  # unpublished until closed
  writer.write(6, features[6:], factors[6:])
  writer.close()
  store = feature_store.FeatureStore(str(tmp_path))
  rows = store.read(np.array([7, 2, 5]))
  np.testing.assert_array_equal(rows['features'], features[[7, 2, 5]])
  np.testing.assert_array_equal(rows['factors'], factors[[7, 2, 5]])

  it = feature_store.make_train_iterator(str(tmp_path), batch_size=5, seed=3)
  epoch = [next(it) for _ in range(2)]
  seen = np.concatenate([b['factors'][:, 0] for b in epoch])
  assert sorted(seen) == list(range(0, 20, 2))  # one epoch is a permutation of the rows
  state = it.get_state()
  expected = [next(it)['factors'] for _ in range(3)]
  again = feature_store.make_train_iterator(str(tmp_path), batch_size=5, seed=3)
  again.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(again)['factors'], want)


def test_an_unfinished_store_is_named():
  with pytest.raises(FileNotFoundError, match='features step'):
    feature_store.FeatureStore('/nonexistent/features')


# -- configs --------------------------------------------------------------------------------------


def test_configs_hold_the_published_and_released_settings():
  paper = featvae_shapes3d.get_config()
  assert paper.featvae.model.encoder == 'feature_mlp' and paper.featvae.objective.latent_dim == 16
  assert paper.featvae_epochs == 100 and paper.featvae.batch_size == 256
  assert dict(paper.featvae.objective.beta_schedule) == {
      'start_value': 0.001, 'end_value': 0.4, 'start_step': 10, 'end_step': 49}
  assert paper.finetune.optimizer.name == 'radam' and paper.finetune.optimizer.weight_decay == 0.01
  assert paper.finetune.objective.name == 'factor_heads' and paper.finetune_epochs == 5
  released = featvae_mpi3d.get_config('widths=released')
  assert released.featvae.model.decoder == 'feature_mlp_released'
  assert released.featvae.objective.latent_dim == 18 and released.featvae_epochs == 120
  assert released.featvae.data.name == 'mpi3d' and released.finetune.data.builder_config == 'toy'
  local = featvae_shapes3d.get_config('runlocal')
  assert local.finetune.data.builder_config == 'small'
  assert local.finetune.model.extractor == 'vgg_extractor_narrow'
  with pytest.raises(KeyError, match='widths'):
    featvae_mpi3d.get_config('widths=huge')


# -- the pipeline on a fake MPI3D -----------------------------------------------------------------


def tiny_config(data_dir):
  c = featvae_mpi3d.get_config('runlocal')
  for run in (c.finetune, c.featvae):
    run.data.data_dir = data_dir
    run.data.read_block = 8
    run.batch_size = 4
    run.model.conv_impl = 'xla'
    run.model.extractor_kwargs = dict(TINY_EXTRACTOR)
    run.log_every = 1
    run.checkpoint_every = 2
    run.keep_checkpoints = 10
  c.featvae.model.encoder_kwargs = {'hidden': (16, 16)}
  c.featvae.model.decoder_kwargs = {'hidden': (16, 16)}
  c.featvae.objective.latent_dim = 4
  c.featvae.objective.beta_schedule = {'start_value': 0.001, 'end_value': 0.4, 'start_step': 0,
                                       'end_step': 1}
  c.finetune_epochs = 0.3  # 2 steps of the 29 training records
  c.featvae_epochs = 0.67  # 6 steps of the 36 stored features (9 steps per epoch)
  c.features.batch_size = 8
  c.table = {'factorvae': {'num_variance_estimate': 64, 'num_train': 20, 'num_eval': 10},
             'dci': {'num_train': 50, 'num_test': 20}, 'sap': {'num_train': 50, 'num_test': 20},
             'irs': {'num_train': 50}, 'mig': {'num_train': 50}}
  return c


@pytest.fixture(scope='module')
def fake_mpi3d(tmp_path_factory):
  """The TFDS data dir of a prepared fake MPI3D-toy (36 images)."""
  root = tmp_path_factory.mktemp('mpi3d')
  fake_sources.write_fake_mpi3d(str(root / 'src' / 'mpi3d_toy.npz'), FAKE_SIZES)
  data_dir = str(root / 'tfds')
  mpi3d.prepare(str(root / 'src'), variant='toy', data_dir=data_dir)
  return data_dir


def test_stage1_variant_writes_imagenet_vgg_with_rmac_as_the_extractor(fake_mpi3d, tmp_path):
  """No finetuning (arXiv 2002.10003): step 1 writes the ImageNet backbone as the extractor."""
  rng = np.random.default_rng(0)
  state = {}
  channels = [ch for stage in vgg.vgg_stages(1.0) for ch in stage]
  previous = 3
  for (c, b), ch in zip(vgg._torch_feature_indices(), channels):
    state[f'features.{c}.weight'] = rng.normal(size=(ch, previous, 3, 3)).astype(np.float32)
    state[f'features.{c}.bias'] = rng.normal(size=ch).astype(np.float32)
    for name in ('weight', 'bias', 'running_mean'):
      state[f'features.{b}.{name}'] = rng.normal(size=ch).astype(np.float32)
    state[f'features.{b}.running_var'] = rng.uniform(0.5, 2, size=ch).astype(np.float32)
    previous = ch
  backbone = str(tmp_path / 'vgg19_bn.npz')
  np.savez(backbone, __format__=np.asarray(vgg.FORMAT), **vgg.vgg19_bn_arrays(state))

  config = featvae_mpi3d.get_config('variant=stage1,runlocal')
  assert config.finetune_epochs == 0 and config.featvae.objective.reduction == 'sum'
  assert config.featvae.model.extractor_kwargs.aggregation == 'rmac'
  config.featvae.data.data_dir = fake_mpi3d
  directory = str(tmp_path / 'finetune')
  with pytest.raises(errors.UserError, match='imagenet_backbone'):
    featvae_pipeline.run_finetune(config, directory)
  config.imagenet_backbone = backbone
  report = featvae_pipeline.run_finetune(config, directory)
  assert report['finetuned'] is False and report['accuracy'] == {}
  stored = _features.load_extractor(os.path.join(directory, 'extractor.npz'))
  np.testing.assert_array_equal(stored['params']['backbone']['conv_3']['kernel'],
                                state['features.10.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(stored['batch_stats']['backbone']['bn_0']['var'],
                                state['features.1.running_var'])


@pytest.fixture(scope='module')
def run(fake_mpi3d, tmp_path_factory):
  root = tmp_path_factory.mktemp('featvae')
  data_dir = fake_mpi3d
  config = tiny_config(data_dir)
  workdir = str(root / 'work')
  result = featvae_pipeline.run_pipeline(config, workdir)
  return config, workdir, result


@pytest.mark.slow
def test_step1_reports_validation_accuracy_per_factor(run):
  config, workdir, result = run
  with open(os.path.join(workdir, 'finetune', 'validation.json')) as f:
    report = json.load(f)
  assert report == result['validation']
  assert list(report['accuracy']) == list(mpi3d_factor_names(config))
  assert all(0 <= a <= 1 for a in report['accuracy'].values())
  assert report['num_examples'] == 36 - 29 and report['split'] == 'train[80%:]'
  # single-valued factors are classified perfectly even after two steps
  assert report['accuracy']['object_size'] == 1.0
  assert os.path.exists(os.path.join(workdir, 'finetune', 'extractor.npz'))


def mpi3d_factor_names(config):
  return pipeline.dataset_info(config.featvae.data).factor_names


@pytest.mark.slow
def test_step2_stores_unit_norm_features_with_their_factors(run):
  config, workdir, _ = run
  store = feature_store.FeatureStore(os.path.join(workdir, 'features'))
  assert len(store) == 36 and store.features.shape == (36, 8)
  np.testing.assert_allclose(np.linalg.norm(store.features, axis=1), 1.0, rtol=1e-5)
  grid = np.stack(np.unravel_index(np.arange(36), FAKE_SIZES), axis=1)
  assert sorted(map(tuple, store.factors)) == sorted(map(tuple, grid))
  records = pipeline.read_examples(config.featvae.data, [0, 5, 9])
  np.testing.assert_array_equal(store.factors[[0, 5, 9]], records['factors'])


@pytest.mark.slow
def test_step3_encodes_images_as_the_posterior_mean_of_their_features(run):
  config, workdir, result = run
  model = restore.load_trained_model(os.path.join(workdir, 'featvae'))
  assert model.step == 6
  store = feature_store.FeatureStore(os.path.join(workdir, 'features'))
  images = pipeline.read_examples(config.featvae.data, [0, 1, 2, 3])['image']
  from_images = model.objective.encode(model.params, model.model_state, jnp.asarray(images))
  from_store = model.objective.encode_features(model.params, model.model_state,
                                               jnp.asarray(store.features[:4]))
  np.testing.assert_allclose(np.asarray(from_images), np.asarray(from_store), atol=1e-5)
  lines = [json.loads(line) for line in open(os.path.join(workdir, 'featvae', 'metrics.jsonl'))]
  betas = {line['step']: line['beta'] for line in lines if 'beta' in line}
  assert betas[1] == pytest.approx(0.001) and betas[6] == pytest.approx(0.001)  # all in epoch 0
  table = result['table']
  assert list(table) == ['FactorVAE', 'DCI', 'SAP', 'IRS', 'MIG']
  assert all(np.isfinite(v) for v in table.values())
  with open(os.path.join(workdir, 'table.json')) as f:
    assert json.load(f)['table'] == table
  assert '| FactorVAE | DCI | SAP | IRS | MIG |' in featvae_pipeline.format_table(table)


@pytest.mark.slow
def test_a_run_interrupted_in_step3_resumes_there(run):
  """Simulated interruption: step 3's checkpoints after step 2 are removed (as if killed after
  its first checkpoint); the rerun trains steps 3-6 only, leaves steps 1 and 2 untouched and ends
  bit-identical to the uninterrupted run."""
  config, workdir, _ = run
  vae_dir = os.path.join(workdir, 'featvae')
  done = restore.load_trained_model(vae_dir)
  untouched = [os.path.join(workdir, 'finetune', 'extractor.npz'),
               os.path.join(workdir, 'finetune', 'validation.json'),
               os.path.join(workdir, 'features', 'features.npy'),
               os.path.join(workdir, 'features', 'store.json')]
  mtimes = {p: os.stat(p).st_mtime_ns for p in untouched}
  finetune_steps = restore.checkpoint_steps(os.path.join(workdir, 'finetune'))
  assert restore.checkpoint_steps(vae_dir) == [2, 4, 6]
  for step in (4, 6):
    shutil.rmtree(os.path.join(vae_dir, 'checkpoints', str(step)))

  featvae_pipeline.run_pipeline(config, workdir, score=False)

  assert {p: os.stat(p).st_mtime_ns for p in untouched} == mtimes
  assert restore.checkpoint_steps(os.path.join(workdir, 'finetune')) == finetune_steps
  assert restore.checkpoint_steps(vae_dir) == [2, 4, 6]
  resumed = restore.load_trained_model(vae_dir)
  jax.tree.map(np.testing.assert_array_equal, (done.params, done.model_state),
               (resumed.params, resumed.model_state))


_SHARDED_EXTRACTION = '''
import sys
sys.path.insert(0, {tests!r})
import jax
from absl import flags
flags.FLAGS.mark_as_parsed()
assert jax.device_count() == 2, jax.devices()
from test_featvae_pipeline import tiny_config
from disentangle_jax.pipelines import featvae
config = tiny_config({data_dir!r})
config.features.batch_size = 7  # rounded up to whole rows per device; the last batch padded
featvae.run_features(config, {extractor!r}, {out!r})
'''


@pytest.mark.slow
def test_step2_sharded_over_two_devices_stores_the_same_features(run, fake_mpi3d, tmp_path):
  import subprocess  # noqa: PLC0415
  import sys  # noqa: PLC0415

  import train_util  # noqa: PLC0415

  _, workdir, _ = run
  out = str(tmp_path / 'features')
  code = _SHARDED_EXTRACTION.format(
      tests=os.path.dirname(os.path.abspath(__file__)), data_dir=fake_mpi3d, out=out,
      extractor=os.path.join(workdir, 'finetune', 'extractor.npz'))
  env = train_util.subprocess_env({'XLA_FLAGS': '--xla_force_host_platform_device_count=2'})
  done = subprocess.run([sys.executable, '-c', code], env=env, cwd=train_util.ROOT,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  sharded = feature_store.FeatureStore(out)
  single = feature_store.FeatureStore(os.path.join(workdir, 'features'))
  np.testing.assert_allclose(sharded.features, single.features, atol=1e-5)
  np.testing.assert_array_equal(sharded.factors, single.factors)


_KILLED_IN_STEP3 = '''
import os, signal, sys
sys.path.insert(0, {tests!r})
from absl import flags
flags.FLAGS.mark_as_parsed()
from disentangle_jax.training import checkpoint
save = checkpoint.Checkpointer.save

def save_then_die(self, step, *args, **kwargs):
  saved = save(self, step, *args, **kwargs)
  if step == 4 and os.path.basename(self.workdir) == 'featvae':
    self.wait_until_finished()
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, as a killed job gets none
  return saved

checkpoint.Checkpointer.save = save_then_die
from test_featvae_pipeline import tiny_config
from disentangle_jax.pipelines import featvae
featvae.run_pipeline(tiny_config({data_dir!r}), {workdir!r}, score=False)
'''


@pytest.mark.slow
def test_a_pipeline_sigkilled_in_step3_resumes_there(run, fake_mpi3d, tmp_path):
  """A real kill: the pipeline process SIGKILLs itself right after step 3's checkpoint 4; the
  rerun leaves steps 1 and 2 as they are, trains steps 5-6 of step 3 and ends bit-identical to
  the uninterrupted run. Steps 1 and 2 are the uninterrupted run's, copied (the killed process
  finds them done and goes straight to step 3)."""
  import subprocess  # noqa: PLC0415
  import sys  # noqa: PLC0415

  import train_util  # noqa: PLC0415

  config, done_workdir, _ = run
  workdir = str(tmp_path / 'work')
  for step in ('finetune', 'features'):
    shutil.copytree(os.path.join(done_workdir, step), os.path.join(workdir, step))
  code = _KILLED_IN_STEP3.format(tests=os.path.dirname(os.path.abspath(__file__)),
                                 data_dir=fake_mpi3d, workdir=workdir)
  killed = subprocess.run([sys.executable, '-c', code], env=train_util.subprocess_env(),
                          cwd=train_util.ROOT, capture_output=True, text=True, timeout=600)
  assert killed.returncode == -9, killed.stderr[-3000:]
  vae_dir = os.path.join(workdir, 'featvae')
  assert restore.checkpoint_steps(vae_dir) == [2, 4]
  untouched = [os.path.join(workdir, 'finetune', 'extractor.npz'),
               os.path.join(workdir, 'features', 'features.npy'),
               os.path.join(workdir, 'features', 'store.json')]
  mtimes = {p: os.stat(p).st_mtime_ns for p in untouched}
  finetune_steps = restore.checkpoint_steps(os.path.join(workdir, 'finetune'))

  featvae_pipeline.run_pipeline(config, workdir, score=False)

  assert {p: os.stat(p).st_mtime_ns for p in untouched} == mtimes
  assert restore.checkpoint_steps(os.path.join(workdir, 'finetune')) == finetune_steps
  assert restore.checkpoint_steps(vae_dir) == [2, 4, 6]
  resumed = restore.load_trained_model(vae_dir)
  uninterrupted = restore.load_trained_model(os.path.join(done_workdir, 'featvae'))
  jax.tree.map(np.testing.assert_array_equal, (uninterrupted.params, uninterrupted.model_state),
               (resumed.params, resumed.model_state))

"""The mixing autoencoder objective (Hu et al. 2018): its three sequential updates against a
hand-written step, known answers of its losses, every ablation row end to end, CelebA on mock data,
and the transfer pictures."""

import importlib.util
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import train_util
from disentangle_jax import networks
from disentangle_jax.data import testing as data_testing
from disentangle_jax.losses import mixing as mixing_lib
from disentangle_jax.objectives import get_objective, rng_stream
from disentangle_jax.objectives.mixing import VARIANTS
from disentangle_jax.training import train as train_lib
from disentangle_jax.training.step import make_train_step
from disentangle_jax.training.train_state import create_train_state
from disentangle_jax.visualization import transfer

SHAPE = (6, 6, 1)
NUM_CHUNKS, CHUNK_SIZE = 4, 2


class FlatHead(nn.Module):
  """A tiny stand-in for the discriminator and the classifier: flatten, dense, ReLU, batch norm,
  dense (batch norm, so that carrying the model state between passes is tested)."""

  num_outputs: int
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x, train=False):
    h = nn.relu(nn.Dense(8)(x.reshape(x.shape[0], -1)))
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
    return nn.Dense(self.num_outputs)(h)


@pytest.fixture(autouse=True)
def flat_head(monkeypatch):
  monkeypatch.setitem(networks._NETWORKS, 'test_flat_head', FlatHead)


# Adam's first step is lr·g/(|g| + eps): with eps = 1e-8 it is ±lr for every gradient but the
# near-zero ones, where rounding decides. A large eps keeps the comparison well-conditioned.
EPS = 1e-3


def _optimizer():
  return dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, eps=EPS,
              schedule='exponential', decay_steps=20_000, decay_rate=0.9, staircase=True)


def _config(variant='mix_c_g', **objective):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 1
  c.optimizer = _optimizer()
  c.objective = dict(name='mixing', num_chunks=NUM_CHUNKS, chunk_size=CHUNK_SIZE,
                     **{**VARIANTS[variant], **objective})
  c.model = dict(encoder='fc', decoder='fc', encoder_kwargs={'hidden': (16,)},
                 decoder_kwargs={'hidden': (16,)}, discriminator='test_flat_head',
                 classifier='test_flat_head')
  return c


def _batch(n=8, seed=1):
  return {'image': jax.random.uniform(jax.random.key(seed), (n, *SHAPE))}


# ---------------------------------------------------------------------------------------------
# The three updates against a hand-written sequence.


def _reference_losses(obj, gp, cp, dp, state, x, mask):
  """Every loss of one pass, written out from the paper's equations (not the objective's code)."""
  x = 2.0 * x - 1.0
  x1, x2 = x[:4], x[4:]
  m = jnp.repeat(mask, CHUNK_SIZE, axis=1)

  def enc(z):
    return jax.nn.leaky_relu(obj.encoder.module.apply({'params': gp['encoder']}, z), 0.2)

  def dec(f):
    return jnp.tanh(obj.decoder.module.apply({'params': gp['decoder']}, f))

  f1, f2 = enc(x1), enc(x2)
  x3 = dec(m * f1 + (1 - m) * f2)
  x4 = dec(m * enc(x3) + (1 - m) * f1)
  ae = jnp.mean((dec(f1) - x1) ** 2) + jnp.mean((dec(f2) - x2) ** 2)
  mix = jnp.mean((x4 - x1) ** 2)

  head = obj.classifier.module
  logits, c_new = head.apply({'params': cp, **state['classifier']},
                             jnp.concatenate([x1, x2, x3], -1), train=True, mutable=['batch_stats'])
  t = 1.0 - mask  # 1 = the chunk came from x2
  l_c = jnp.mean(jax.nn.softplus(logits) - t * logits)
  disc = obj.discriminator.module
  real, d_new = disc.apply({'params': dp, **state['discriminator']}, x1, train=True,
                           mutable=['batch_stats'])
  fake, d_new = disc.apply({'params': dp, **d_new}, x3, train=True, mutable=['batch_stats'])
  l_g = jnp.mean(jax.nn.softplus(-fake))
  l_d = jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))
  gen = 10.0 * ae + 10.0 * mix + 1.0 * l_g + 1.0 * l_c
  new_state = {**state, 'classifier': dict(c_new), 'discriminator': dict(d_new)}
  return (gen, l_c, l_d), new_state


def test_sequential_updates_match_a_hand_written_sequence():
  obj = get_objective('mixing')(_config(), SHAPE)
  assert obj.groups == ('generator', 'classifier', 'discriminator')
  assert obj.update_order == 'sequential'
  batch, base_rng = _batch(), jax.random.key(7)
  state = create_train_state(obj, jax.random.key(0), batch, {})
  new, metrics = jax.jit(make_train_step(obj))(state, batch, base_rng)

  rng = jax.random.fold_in(base_rng, state.step)
  mask = mixing_lib.sample_chunk_mask(rng_stream(rng, 'mix_mask'), batch_size=4,
                                      num_chunks=NUM_CHUNKS)
  assert np.all(mask == mask[:1])  # one mask per minibatch
  lr = optax.exponential_decay(2e-4, 20_000, 0.9, staircase=True)
  adam = optax.adam(lr, b1=0.5, b2=0.999, eps=EPS)
  x = batch['image']
  p, ms = dict(state.params), state.model_state
  logged = {}

  @jax.jit
  def adam_step(params, grads):
    updates, _ = adam.update(grads, adam.init(params), params)
    return optax.apply_updates(params, updates)

  # 1. generator: its own loss, differentiated through C and D, applied to Enc + Dec only.
  for index, group in enumerate(('generator', 'classifier', 'discriminator')):
    def loss(group_params, group=group, index=index, p=p, ms=ms):
      q = {**p, group: group_params}
      losses, new_state = _reference_losses(obj, q['generator'], q['classifier'],
                                            q['discriminator'], ms, x, mask)
      return losses[index], new_state

    # Jitted: run op by op, the reference compiles every small op of three passes on its own.
    (value, ms_next), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(p[group])
    p = {**p, group: adam_step(p[group], grads)}
    # C's and D's statistics move in their own pass only.
    ms = {k: (ms_next[k] if k == group else v) for k, v in ms.items()}
    logged[group] = value

  for group in p:
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 new.params[group], p[group])
    np.testing.assert_allclose(metrics[f'loss/{group}'], logged[group], rtol=1e-5, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new.model_state, ms)
  # Every group moved, and the generator's gradient reached it through the discriminator and the
  # classifier: without those terms its update differs.
  for group in p:
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, state.params[group], p[group])))


def test_generator_update_depends_on_the_classifier_and_the_discriminator():
  batch = _batch()
  updates = {}
  for name, extra in [('full', {}), ('no_c_no_g', dict(lambda_cls=0.0, lambda_gan=0.0))]:
    obj = get_objective('mixing')(_config(**extra), SHAPE)
    state = create_train_state(obj, jax.random.key(0), batch, {})
    new, _ = jax.jit(make_train_step(obj))(state, batch, jax.random.key(7))
    updates[name] = new.params['generator']
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                       updates['full'], updates['no_c_no_g']))
  assert max(diffs) > 1e-7


# ---------------------------------------------------------------------------------------------
# Known answers and configuration.


def test_all_ones_mask_makes_the_mix_a_reconstruction_of_x1():
  obj = get_objective('mixing')(_config(mask_p_first=1.0), SHAPE)
  batch = _batch()
  params, state = obj.init(jax.random.key(0), batch)
  losses, (_, metrics) = obj.losses(params, state, batch, jax.random.key(3), jnp.int32(0))
  x1 = 2.0 * batch['image'][:4] - 1.0
  recon = 2.0 * obj.reconstruct(params, state, batch['image'][:4]) - 1.0
  twice = 2.0 * obj.reconstruct(params, state, (recon + 1.0) / 2.0) - 1.0
  np.testing.assert_allclose(metrics['mix'], jnp.mean((twice - x1) ** 2), rtol=1e-5)
  np.testing.assert_allclose(metrics['ae_x1'], jnp.mean((recon - x1) ** 2), rtol=1e-5)
  # Every chunk from x1: the classifier's targets are all 0.
  assert set(losses) == {'generator', 'classifier', 'discriminator'}


def test_encode_is_the_chunked_feature_and_decode_is_in_unit_range():
  obj = get_objective('mixing')(_config(), SHAPE)
  batch = _batch()
  params, state = obj.init(jax.random.key(0), batch)
  codes = obj.encode(params, state, batch['image'])
  assert codes.shape == (8, NUM_CHUNKS * CHUNK_SIZE) and obj.latent_dim == 8
  raw = obj.encoder.module.apply({'params': params['generator']['encoder']},
                                 2.0 * batch['image'] - 1.0)
  np.testing.assert_allclose(codes, jax.nn.leaky_relu(raw, 0.2), rtol=1e-6)
  images = obj.decode(params, state, codes * 100.0)
  assert images.shape == (8, *SHAPE)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_each_variant_builds_only_the_groups_its_losses_need(variant):
  obj = get_objective('mixing')(_config(variant), SHAPE)
  flags = VARIANTS[variant]
  expected = ('generator',) + (('classifier',) if flags['cls'] else ()) + (
      ('discriminator',) if flags['gan'] else ())
  assert obj.groups == expected and set(obj.optimizers()) == set(expected)
  batch = _batch()
  params, state = obj.init(jax.random.key(0), batch)
  assert set(params) == set(expected)
  losses, (_, metrics) = obj.losses(params, state, batch, jax.random.key(1), jnp.int32(0))
  assert set(losses) == set(expected)
  assert ('mix' in metrics) == flags['mix'] and ('ae_x2' in metrics) == flags['ae']
  assert ('cls' in metrics) == flags['cls'] and ('gen_adv' in metrics) == flags['gan']


def test_bad_configs_say_what_to_change():
  with pytest.raises(ValueError, match='every loss is off'):
    get_objective('mixing')(_config(**{'mix': False, 'ae': False, 'cls': False, 'gan': False}),
                            SHAPE)
  obj = get_objective('mixing')(_config(), SHAPE)
  params, state = obj.init(jax.random.key(0), _batch())
  with pytest.raises(ValueError, match='at least 2 images'):
    obj.losses(params, state, _batch(1), jax.random.key(0), jnp.int32(0))


def test_config_variants_are_the_table_rows():
  sprites = _load_config('mixing_sprites')
  for variant, flags in VARIANTS.items():
    c = sprites.get_config(f'runlocal,variant={variant}')
    assert {k: c.objective[k] for k in flags} == flags
  c = sprites.get_config()
  assert c.batch_size == 128 and c.objective.num_chunks * c.objective.chunk_size == 512
  # 10 epochs of the train split (80,640 characters-by-poses) at 64 pairs per step.
  assert c.total_steps == 10 * 80_640 // 64
  assert c.optimizer.decay_steps == 20_000 and c.optimizer.staircase
  with pytest.raises(ValueError, match='mix_c_g'):
    sprites.get_config('variant=mix+c')
  celeba = _load_config('mixing_celeba').get_config()
  assert celeba.objective.num_chunks == 64 and celeba.objective.lambda_mix > 10


# ---------------------------------------------------------------------------------------------
# Pictures.


def test_transfer_grid_swaps_exactly_one_chunk():
  # Codes are the pixels and each chunk is one image row, so a swap is visible exactly.
  rng = np.random.default_rng(0)
  images = rng.random((5, 4, 4, 1))
  codes = images.reshape(5, 16)

  def decode(c):
    return np.asarray(c).reshape(-1, 4, 4, 1)

  cells = transfer.transfer_grid(decode, codes[:2], codes[2:5], 1, 4, images[:2], images[2:5])
  assert cells.shape == (3, 4, 4, 4, 1)
  expected = images[3].copy()
  expected[1] = images[0][1]  # row 1 of donor 0 into target 1
  np.testing.assert_array_equal(cells[1, 2], transfer.image_lib.to_uint8(expected))
  steps = transfer.cumulative_steps(64, 10)
  assert steps[0] == 0 and steps[-1] == 64 and len(steps) <= 10
  cumulative, steps = transfer.cumulative_transfer(decode, codes[:1], codes[1:2], 4)
  np.testing.assert_array_equal(cumulative[0, 0], images[1])
  np.testing.assert_array_equal(cumulative[0, -1], images[0])
  mixed = transfer.mixing_grid(decode, codes[:2], codes[2:4], np.array([[1, 0, 1, 0]]), 4)
  np.testing.assert_array_equal(mixed[0, 1, 0], images[1][0])
  np.testing.assert_array_equal(mixed[0, 1, 1], images[3][1])


def test_pictures_have_the_documented_names_and_shapes():
  obj = get_objective('mixing')(
      _config(pictures={'num_pairs': 3, 'max_chunks': 2, 'num_masks': 2}), SHAPE)
  batch = _batch(16)
  params, state = obj.init(jax.random.key(0), batch)
  calls = []
  decode = obj.jitted('decode')
  obj._jitted['decode'] = lambda *a: calls.append(a[2].shape) or decode(*a)
  pictures = obj.pictures(params, state, {'image': np.asarray(batch['image'])},
                          jax.random.key(0))
  chunk_grids = sorted(k for k in pictures if k.startswith('transfer_chunk_'))
  assert len(chunk_grids) == 2  # the two most varying of four chunks
  assert {'reconstructions', 'transfer_cumulative', 'mixing'} <= set(pictures)
  for image in pictures.values():
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 1
  # Capped work, in fixed-size decoder calls.
  assert all(shape[0] == transfer.DECODE_BATCH for shape in calls) and len(calls) == 5  # one per picture


# ---------------------------------------------------------------------------------------------
# End to end.


def _load_config(name):
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(train_util.ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _tiny_run(config, data_dir=None):
  with config.unlocked():
    if data_dir is not None:
      config.data.data_dir = data_dir
    config.total_steps = 2
    config.batch_size = 8
    config.log_every = 1
    config.checkpoint_every = 2
    config.image_every = 2
    config.eval_every = 2
    config.objective.pictures = {'num_pairs': 2, 'max_chunks': 2, 'num_masks': 2}
  return config


def _fc_networks(config):
  with config.unlocked():
    config.model.encoder = 'fc'
    config.model.decoder = 'fc'
    config.model.encoder_kwargs = {'hidden': (16,)}
    config.model.decoder_kwargs = {'hidden': (16,)}
    config.model.discriminator = 'test_flat_head'
    config.model.classifier = 'test_flat_head'
  return config


# Every group set of the table's rows ({G}, {G, C}, {G, D}, {G, C, D}), with and without the
# reconstruction and mixing terms. Not here: 'ae' (groups as 'mix'; trained end to end by the
# table script's test) and 'mix_c_g' (groups as 'ae_c_g' and 'c_g'; trained end to end, with its
# retrieval evaluation and pictures, by the CelebA test).
END_TO_END_VARIANTS = sorted(set(VARIANTS) - {'ae', 'mix_c_g'})


@pytest.mark.slow
@pytest.mark.parametrize('variant', END_TO_END_VARIANTS)
def test_every_variant_trains_end_to_end(variant, tmp_path, tfds_data_dir):
  config = _load_config('mixing_mnist').get_config(f'runlocal,variant={variant}')
  config = _fc_networks(_tiny_run(config, tfds_data_dir))
  config.evaluators = {'retrieval': {'num_train': 64, 'num_test': 64, 'num_validation': 64,
                                     'num_chunks': config.objective.num_chunks}}
  workdir = str(tmp_path / variant)
  train_lib.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  losses = {k for row in rows for k in row if k.startswith('loss/')}
  flags = VARIANTS[variant]
  expected = {'loss/generator'} | ({'loss/classifier'} if flags['cls'] else set()) | (
      {'loss/discriminator'} if flags['gan'] else set())
  assert losses == expected
  assert all(np.isfinite(row[k]) for row in rows for k in losses if k in row)
  evals = [row for row in rows if 'eval/retrieval/map_mean' in row]
  assert evals and 0.0 < evals[-1]['eval/retrieval/map_mean'] <= 1.0
  images = os.listdir(os.path.join(workdir, 'images'))
  for name in ('reconstructions', 'transfer_cumulative', 'mixing'):
    assert f'{name}_00000002.png' in images


@pytest.mark.slow
def test_celeba_config_on_mock_data(tmp_path):
  config = _tiny_run(_load_config('mixing_celeba').get_config('runlocal'),
                     str(tmp_path / 'data'))
  with config.unlocked():
    # The config's own networks, narrowed.
    config.model.encoder_kwargs = {'base_features': 4, 'max_features': 8}
    config.model.decoder_kwargs = {'top_features': 8, 'bottom_features': 4}
    config.model.discriminator_kwargs = {'base_features': 4, 'top_features': 8}
    config.model.classifier_kwargs = {'dense_features': 8}
    # XLA's convs compile in a fraction of the CPU fast path's time (fast == xla is
    # test_fast_conv's, network by network).
    config.model.conv_impl = 'xla'
    config.evaluators = {'retrieval': {'num_train': 16, 'num_test': 16, 'num_validation': 16,
                                       'num_chunks': 64}}
  assert config.data.name == 'celeb_a64' and config.objective.num_chunks == 64
  workdir = str(tmp_path / 'run')
  with data_testing.mock_real_data(num_examples=16):
    train_lib.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert {'loss/generator', 'loss/classifier', 'loss/discriminator'} <= set(rows[-1]) | set(
      rows[0])
  assert any('eval/retrieval/map_mean' in row for row in rows)
  pictures = os.listdir(os.path.join(workdir, 'images'))
  assert sum(p.startswith('transfer_chunk_') for p in pictures) == 2  # capped at max_chunks


def test_celeba_without_the_data_stops_at_once_naming_it(tmp_path):
  config = _load_config('mixing_celeba').get_config('runlocal')
  config.data.data_dir = str(tmp_path / 'empty')
  with pytest.raises(Exception) as error:
    train_lib.train_and_evaluate(config, str(tmp_path / 'run'))
  message = str(error.value)
  assert 'celeb_a64' in message and str(tmp_path / 'empty') in message
  assert 'prepare_celeba.py' in message


@pytest.mark.slow
def test_table_script_runs_a_row_and_prints_the_papers_layout(tmp_path, tfds_data_dir):
  spec = importlib.util.spec_from_file_location(
      'reproduce_mixing_table', os.path.join(train_util.ROOT, 'bench', 'reproduce_mixing_table.py'))
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  # XLA's convs: they compile in a fraction of the CPU fast path's time.
  argv = [f'--workdir_root={tmp_path}', '--variants=ae', '--steps=2', '--narrow',
          '--builder_config=tiny', '--eval_examples=64', f'--data_dir={tfds_data_dir}',
          '--conv_impl=xla']
  random_row, ae_row = script.main(argv)
  assert ae_row['steps'] == 2 and len(ae_row['map']) == 7
  assert random_row['steps'] == 0
  table = (tmp_path / 'table.md').read_text()
  assert '| method | body | skin | vest | hair | arm | leg | pose | average |' in table
  assert '| AE |' in table and '| Random (expected) |' in table and 'Hu et al. (2018)' in table
  # A rerun skips the finished row instead of training it again.
  again = script.main(argv)
  assert again[1]['seconds'] == ae_row['seconds']
  # Diagnostic rows: overrides need a tag, and name a key the config has.
  with pytest.raises(SystemExit):
    script.main(argv + ['--set=objective.lambda_gan=0.1'])
  config = ml_collections.ConfigDict({'objective': {'lambda_gan': 1.0}})
  script.apply_override(config, 'objective.lambda_gan=0.1')
  assert config.objective.lambda_gan == 0.1
  with pytest.raises(KeyError, match='no key'):
    script.apply_override(config, 'objective.lambda_gn=0.1')

"""The streaming evaluation path: the same codes and scores as rendering everything at once,
rendering overlapped with encoding, and the evaluation's progress line.

The encoder is a jitted JAX convolution on real dSprites renders, so that "the same codes" means
bit-identical outputs of an XLA program fed in different pieces.
"""

import io
import json
import os
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax import metrics
from disentangle_jax.data.ground_truth import RenderedGroundTruth
from disentangle_jax.metrics import betavae_score, factorvae_score, sampling
from disentangle_jax.training import evaluation
from disentangle_jax.training.progress import StatusLine

# dSprites on a reduced grid (3 x 3 x 4 x 8 x 8 points), rendered for real.
GT = RenderedGroundTruth('dsprites', strides=(1, 2, 10, 4, 4))


def _conv_encoder(seed=0, dims=4):
  """A jitted conv + dense encoder `[b, 64, 64, 1] -> [b, dims]` with fixed random weights."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  w_conv = jax.random.normal(k1, (4, 4, 1, 8)) * 0.3
  w_dense = jax.random.normal(k2, (8 * 16 * 16, dims)) * 0.05

  @jax.jit
  def encode(images):
    h = jax.lax.conv_general_dilated(images, w_conv, (4, 4), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jnp.tanh(h).reshape(images.shape[0], -1) @ w_dense

  return lambda images: np.asarray(encode(images))


def _one_shot_codes_for_factors(ground_truth, encode_fn, factors, batch_size=16, *,
                                chunk_size=1024):
  """The path before streaming: a chunk rendered at once, then encoded."""
  chunk = max(batch_size, (chunk_size // batch_size) * batch_size)
  out = []
  for start in range(0, factors.shape[0], chunk):
    images = ground_truth.images_for(factors[start:start + chunk])
    out.append(sampling.encode_in_batches(encode_fn, images, batch_size))
  return np.concatenate(out, axis=0)


@pytest.fixture
def small_pieces(monkeypatch):
  """Stream pieces of 3 batches' worth of 64x64 images, so that every call has several."""
  monkeypatch.setattr(sampling, 'STREAM_BYTES', 4 * 64 * 64 * 48)


def test_stream_size_is_whole_batches_within_the_chunk():
  assert sampling.stream_size(GT, 256, 8192) == 512  # 8 MiB of 16 KiB images
  assert sampling.stream_size(GT, 256, 300) == 256  # the chunk, rounded down to batches
  assert sampling.stream_size(GT, 100, 8192) == 500
  class Big:
    image_shape = (512, 512, 3)  # 3 MiB an image: one batch, whatever the byte budget

  assert sampling.stream_size(Big(), 16, 8192) == 16


@pytest.mark.parametrize('batch_size,chunk_size,n', [(16, 1024, 200), (48, 96, 301), (7, 20, 50)])
def test_streamed_codes_equal_one_shot_codes(small_pieces, batch_size, chunk_size, n):
  encode_fn = _conv_encoder()
  factors = GT.sample_factors(np.random.default_rng(n), n)
  streamed = sampling.codes_for_factors(GT, encode_fn, factors, batch_size, chunk_size=chunk_size)
  whole = sampling.encode_in_batches(encode_fn, GT.images_for(factors), batch_size)
  one_shot = _one_shot_codes_for_factors(GT, encode_fn, factors, batch_size, chunk_size=chunk_size)
  np.testing.assert_array_equal(streamed, whole)
  np.testing.assert_array_equal(streamed, one_shot)


def test_sampled_metrics_are_unchanged_by_streaming(small_pieces, monkeypatch):
  """FactorVAE and BetaVAE, same seed: identical results with the streaming path and the old."""
  encode_fn = _conv_encoder(seed=1)
  fv_settings = dict(num_variance_estimate=500, num_train=12, num_eval=6, batch_size=16,
                     encode_batch_size=64)
  bv_settings = dict(num_train=12, num_eval=6, batch_size=8, encode_batch_size=64)

  def run():
    return (factorvae_score.factorvae_score(GT, encode_fn, np.random.default_rng(3), **fv_settings),
            betavae_score.betavae_score(GT, encode_fn, np.random.default_rng(4), **bv_settings))

  streamed = run()
  monkeypatch.setattr(sampling, 'codes_for_factors', _one_shot_codes_for_factors)
  before = run()
  for new, old in zip(streamed, before):
    assert new.keys() == old.keys()
    for key in new:
      np.testing.assert_array_equal(new[key], old[key], err_msg=key)
  assert streamed[0]['num_active_dims'] > 0  # the votes were really cast


def test_rendering_runs_ahead_on_a_worker_thread():
  """Piece i + 1 is rendered (on another thread) while the caller still holds piece i; the
  pieces come in order, and no more than two exist at once."""
  events, threads = [], set()
  alive = []

  def images_fn(factors):
    threads.add(threading.current_thread().name)
    events.append(('render', int(factors[0, 0])))
    alive.append(1)
    return factors.copy()

  factors = np.arange(10)[:, None].repeat(2, axis=1)
  seen = []
  for piece in sampling.stream_images(images_fn, factors, 3):
    time.sleep(0.05)  # encoding: the next render has started meanwhile
    events.append(('encode', int(piece[0, 0])))
    seen.append(piece[:, 0].tolist())
    assert len(alive) - len(seen) <= 1
  assert seen == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
  assert threading.current_thread().name not in threads
  assert events.index(('render', 3)) < events.index(('encode', 0))
  assert events.index(('render', 6)) < events.index(('encode', 3))


class _BreaksAtFour:
  image_shape = (1, 1, 1)

  def images_for(self, factors):
    if factors[0, 0] >= 4:
      raise RuntimeError('renderer broke')
    return factors.astype(np.float32)[:, :, None, None]


def test_a_render_error_reaches_the_caller():
  with pytest.raises(RuntimeError, match='renderer broke'):
    sampling.codes_for_factors(_BreaksAtFour(), lambda x: x.reshape(len(x), -1),
                               np.arange(8)[:, None], 2, chunk_size=2)


def test_report_encoded_counts_every_image_in_the_block_only():
  encode_fn = _conv_encoder()
  counts = []
  factors = GT.sample_factors(np.random.default_rng(0), 70)
  with sampling.report_encoded(counts.append):
    sampling.codes_for_factors(GT, encode_fn, factors, 16, chunk_size=32)
  sampling.codes_for_factors(GT, encode_fn, factors, 16, chunk_size=32)
  assert sum(counts) == 70 and len(counts) == 3  # pieces of 32, 32, 6


# --- evaluation in stages, with its progress line ---------------------------------------------

SETTINGS = {
    'betavae': dict(num_train=10, num_eval=5, batch_size=8, encode_batch_size=64),
    'factorvae': dict(num_variance_estimate=300, num_train=10, num_eval=5, batch_size=8,
                      encode_batch_size=64),
    'mig': dict(num_train=200),
}
NAMES = ['mig', 'factorvae', 'betavae', 'unsupervised']


def _assert_same_results(a, b):
  assert list(a) == list(b)
  for name in a:
    assert a[name].keys() == b[name].keys()
    for key in a[name]:
      np.testing.assert_array_equal(a[name][key], b[name][key], err_msg=f'{name}/{key}')


@pytest.mark.parametrize('tty', [False, True])
def test_evaluation_progress_appears_ends_and_changes_no_value(tty):
  encode_fn = _conv_encoder(seed=2)
  kwargs = dict(ground_truth=GT, encode_fn=encode_fn, rng_seed=7, settings=SETTINGS,
                num_train=300, num_test=100)
  stream = io.StringIO()
  staged = evaluation.evaluate_in_stages(NAMES, line=StatusLine(stream, tty=tty), **kwargs)
  _assert_same_results(staged, metrics.evaluate(NAMES, **kwargs))

  text = stream.getvalue()
  assert text.endswith('\n')
  # Each stage ends with its own line: what ran, the images encoded, the time.
  fv = 300 + 8 * 15
  bv = 2 * 8 * 15
  shared = 300  # mig's 200 are a prefix of the 300 the unsupervised scores take
  assert evaluation.expected_images('factorvae', SETTINGS['factorvae']) == fv
  assert evaluation.expected_images('betavae', SETTINGS['betavae']) == bv
  assert evaluation.shared_sample_images(['mig', 'unsupervised'], SETTINGS, 300, 100) == shared
  # On a terminal a line is its last rewrite (after the last carriage return).
  final = [line.split('\r')[-1].strip() for line in text.split('\n') if ' images in ' in line]
  assert [f.split(':')[0] for f in final] == [
      '[1/3] factorvae', '[2/3] betavae', '[3/3] mig, unsupervised']
  assert [int(f.split(': ')[1].split(' ')[0].replace(',', '')) for f in final] == [fv, bv, shared]
  # Progress while running: the count against the total.
  assert f'/{fv:,} images' in text and f'/{shared:,} images' in text
  if tty:
    assert '\r' in text  # rewritten in place, each stage's last state ended by a newline
    assert text.count('\n') == 3
  else:
    assert '\r' not in text


def test_evaluator_with_and_without_progress_agree(capsys):
  """`Evaluator(progress=True)` (what launch/evaluate.py uses) against the plain path."""

  class Objective:
    is_conditional = False

    def jitted(self, method):
      assert method == 'encode'
      encode = _conv_encoder(seed=3)
      return lambda params, model_state, images: encode(images) * params['scale']

  class Info:
    has_ground_truth, has_labels, has_factors = True, False, True
    factor_names = GT.factor_names

  import ml_collections

  config = ml_collections.ConfigDict({'seed': 0, 'evaluators': {'factorvae': SETTINGS['factorvae'],
                                                                'mig': SETTINGS['mig']}})
  results = []
  for progress in (False, True):
    evaluator = evaluation.Evaluator(Objective(), config, writer=None, info=Info(),
                                     progress=progress)
    evaluator._ground_truth = GT
    results.append(evaluator.evaluate({'scale': np.float32(2)}, {}, num_train=300, num_test=100))
  _assert_same_results(*results)
  err = capsys.readouterr().err
  assert 'factorvae: 420 images in' in err.replace(',', '')
  assert 'mig: 200 images in' in err.replace(',', '')


def test_keep_freed_memory_takes_on_glibc():
  if not sys.platform.startswith('linux'):
    pytest.skip('glibc only')
  code = ('from disentangle_jax.training import host_memory; '
          'print(host_memory.keep_freed_memory())')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.stdout.strip() == 'True'


@pytest.mark.slow
def test_launch_evaluate_shows_progress_and_scores_as_before(tmp_path, tfds_data_dir):
  import train_util
  from disentangle_jax.training import reports

  workdir = str(tmp_path / 'run')
  train_util.run_main('configs/betavae_dsprites.py:runlocal', workdir,
                      train_util.tiny_flags(tfds_data_dir, steps=2))
  result = train_util.run_script('launch/evaluate.py', [
      f'--workdir={workdir}', '--metrics=factorvae,mig', '--num_train=300', '--num_test=100',
      '--num_votes=10'])
  lines = result.stderr.splitlines()
  # Two stages, each ending with a line of its own (stderr is a pipe here: no rewriting).
  assert any(line.startswith('[1/2] factorvae: ') and ' images in ' in line for line in lines)
  assert any(line.startswith('[2/2] mig: 300 images in ') for line in lines)
  assert not any('orbax' in line or line.startswith('I1') for line in lines), result.stderr
  with open(os.path.join(workdir, 'metrics_2.json')) as f:
    scored = json.load(f)['results']
  settings = {'factorvae': {'num_train': 10, 'num_eval': 5}}
  _, plain, _ = reports.evaluate_workdir(workdir, ['factorvae', 'mig'], settings=settings,
                                         num_train=300, num_test=100)
  for name in plain:
    for key, value in plain[name].items():
      np.testing.assert_array_equal(np.asarray(scored[name][key]), np.asarray(value))

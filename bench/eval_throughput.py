"""Images/s of the sampled metrics' encode path against the encoder's forward pass alone.

    python bench/eval_throughput.py --workdir=workdirs/betavae_dsprites_local
    python bench/eval_throughput.py        # an untrained β-VAE of betavae_dsprites:runlocal
    python bench/eval_throughput.py --votes=64 --rounds=3

The sampled metrics (BetaVAE, FactorVAE votes, the shared samples of `metrics.evaluate`) render
images by factors and encode them (`metrics.sampling.codes_for_factors`). On the same `--votes`
FactorVAE votes (64 images each, factors drawn as `factorvae_votes` draws them), in interleaved
rounds:

  forward   the encoder's forward pass alone: the images rendered beforehand (not timed), encoded
            256 at a time as the metrics do (`encode_in_batches`);
  sampled   the sampled metrics' path: render and encode (`codes_for_factors`), the next piece
            rendered on a thread while this one is encoded;
  render    the rendering alone (`images_for`, pieces of the same size), to read the overlap:
            `sampled` near `forward` means rendering hides behind encoding;
  one-shot  the path before streaming: 8,192 images rendered at once, then encoded (no overlap,
            large temporaries mapped and freed per chunk);
  votes     `factorvae_votes` itself, the metric's code path (its own factors).

Each line gives images/s (best round, median too), and the system share of the process's CPU
time over that variant's rounds (`getrusage`) with its minor page faults per image: system time
there is the kernel mapping and zeroing freshly allocated memory. The figure to read is the ratio
forward/sampled (bar: at most 1.5).

The process keeps freed memory as `launch/evaluate.py` does (`training.host_memory`);
`--no-keep_freed_memory` leaves glibc's defaults, under which XLA's per-call temporaries are
mapped afresh (~100 minor faults an image, a third or more of the CPU time in the kernel).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _timing import interleaved_rounds, load_average, report  # noqa: E402 - bench/, this folder

ENCODE_BATCH, VOTE_BATCH, ONE_SHOT = 256, 64, 8 * 1024


def _model(workdir: str | None):
  """(objective, params, model_state, config) of a trained run, or of an untrained β-VAE."""
  import jax

  if workdir:
    from disentangle_jax.training.restore import load_trained_model

    model = load_trained_model(workdir)
    return model.objective, model.params, model.model_state, model.config
  from configs import betavae_dsprites
  from disentangle_jax.data import pipeline
  from disentangle_jax.training import train as train_lib
  from disentangle_jax.training.train_state import create_train_state

  config = betavae_dsprites.get_config('runlocal')
  info = pipeline.dataset_info(config.data)
  objective = train_lib.build_objective(config, info)
  state = create_train_state(objective, jax.random.key(0), train_lib.init_batch(info, 2),
                             objective.load_frozen())
  return objective, state.variables(), state.model_state, config


class _Usage:
  """CPU (user, system) seconds and minor page faults of this process, summed over calls."""

  def __init__(self):
    self.user = self.system = 0.0
    self.faults = 0
    self.images = 0

  def wrap(self, fn, images_per_call):
    def run(n):
      before = resource.getrusage(resource.RUSAGE_SELF)
      for _ in range(n):
        fn()
      after = resource.getrusage(resource.RUSAGE_SELF)
      self.user += after.ru_utime - before.ru_utime
      self.system += after.ru_stime - before.ru_stime
      self.faults += after.ru_minflt - before.ru_minflt
      self.images += n * images_per_call
    return run

  def line(self) -> str:
    cpu = self.user + self.system
    share = self.system / cpu if cpu else float('nan')
    return (f'system {100 * share:4.1f}% of {cpu:6.1f} s CPU, '
            f'{self.faults / max(self.images, 1):6.1f} minor faults/image')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', default=None, help='a trained run (default: untrained model)')
  parser.add_argument('--votes', type=int, default=128, help='FactorVAE votes (64 images each)')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--variants', default='forward,sampled,render,one-shot,votes')
  parser.add_argument('--keep_freed_memory', action=argparse.BooleanOptionalAction, default=True,
                      help="glibc's malloc set as launch/evaluate.py sets it")
  args = parser.parse_args()
  if args.keep_freed_memory:  # before JAX starts its threads
    from disentangle_jax.training import host_memory

    if not host_memory.keep_freed_memory():
      print('(keep_freed_memory: not glibc, malloc left as it is)')

  from disentangle_jax.data import datasets
  from disentangle_jax.metrics import factorvae_score, sampling
  from disentangle_jax.training import evaluation

  objective, params, model_state, config = _model(args.workdir)
  ground_truth = datasets.get_ground_truth(
      config.data, split=config.get('eval_ground_truth_split', None))
  encode_fn = evaluation.make_encode_fn(objective, params, model_state)

  rng = np.random.default_rng(0)
  num_factors = len(ground_truth.factor_sizes)
  factors = ground_truth.sample_factors(rng, args.votes * VOTE_BATCH).reshape(
      args.votes, VOTE_BATCH, num_factors)
  chosen = rng.integers(num_factors, size=args.votes)
  factors[np.arange(args.votes), :, chosen] = factors[np.arange(args.votes), :1, chosen]
  factors = factors.reshape(-1, num_factors)
  n = factors.shape[0]
  images = ground_truth.images_for(factors)
  piece = sampling.stream_size(ground_truth, ENCODE_BATCH, ONE_SHOT)
  variances = np.ones(np.asarray(encode_fn(images[:ENCODE_BATCH])).shape[1])
  active = np.ones(variances.shape, bool)
  print(f'{n} images {ground_truth.image_shape} ({args.votes} votes of {VOTE_BATCH}), encoded '
        f'{ENCODE_BATCH} at a time; stream pieces of {piece} images; keep_freed_memory='
        f'{args.keep_freed_memory}; {load_average()}')

  # The codes of the sampled path are those of the forward pass on the same images.
  np.testing.assert_array_equal(
      sampling.codes_for_factors(ground_truth, encode_fn, factors, ENCODE_BATCH,
                                 chunk_size=ONE_SHOT),
      sampling.encode_in_batches(encode_fn, images, ENCODE_BATCH))

  def one_shot():
    for start in range(0, n, ONE_SHOT):
      sampling.encode_in_batches(
          encode_fn, ground_truth.images_for(factors[start:start + ONE_SHOT]), ENCODE_BATCH)

  def render():
    for start in range(0, n, piece):
      ground_truth.images_for(factors[start:start + piece])

  calls = {
      'forward': ('forward pass alone (pre-rendered)',
                  lambda: sampling.encode_in_batches(encode_fn, images, ENCODE_BATCH)),
      'sampled': ('sampled path (render + encode)',
                  lambda: sampling.codes_for_factors(ground_truth, encode_fn, factors,
                                                     ENCODE_BATCH, chunk_size=ONE_SHOT)),
      'render': ('rendering alone', render),
      'one-shot': ('one 8,192-image chunk at a time', one_shot),
      'votes': ('factorvae_votes (metric path)',
                lambda: factorvae_score.factorvae_votes(
                    ground_truth, encode_fn, args.votes, np.random.default_rng(1), variances,
                    active, batch_size=VOTE_BATCH, encode_batch_size=ENCODE_BATCH)),
  }
  chosen_variants = [v.strip() for v in args.variants.split(',') if v.strip()]
  unknown = sorted(set(chosen_variants) - set(calls))
  if unknown:
    parser.error(f'unknown variants {unknown}; known: {", ".join(calls)}')
  usage = {key: _Usage() for key in chosen_variants}
  variants = {key: (calls[key][0], usage[key].wrap(calls[key][1], n)) for key in chosen_variants}
  times = interleaved_rounds(variants, rounds=args.rounds, steps=1, warmup=1)
  report(variants, times, n, [('forward', 'sampled'), ('one-shot', 'sampled')])
  width = max(len(label) for label, _ in variants.values()) + 2
  for key, (label, _) in variants.items():
    print(f'{label:{width}s} {usage[key].line()}')


if __name__ == '__main__':
  main()

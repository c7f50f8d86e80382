r"""Scores trained runs with a chosen metric set, and compares several runs.

  python launch/evaluate.py --workdir=workdirs/bvae
  python launch/evaluate.py --workdir=workdirs/bvae --workdir=workdirs/fvae \
      --metrics=mig,dci,factorvae --output_dir=workdirs/comparison

Each run gets `<workdir>/metrics_<step>.json` and heatmaps of its metric matrices under
`<workdir>/eval_<step>/`. With several workdirs, `--output_dir` also gets `comparison.csv` and
`comparison.md` (one row per run). Runs are rebuilt from their workdir alone (config.json).

The evaluation shows on stderr as one line that says what runs, how far it is and an ETA,
rewritten in place on a terminal (a line per stage otherwise); library logs below warnings
(JAX, orbax, absl) stay out of it unless `--verbose` (or absl's `--verbosity`) asks for them.
"""

import json
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax import cli  # noqa: E402 - imports no JAX
from disentangle_jax.training import compilation_cache  # noqa: E402 - imports no JAX
from disentangle_jax.training import host_memory  # noqa: E402 - imports no JAX

_WORKDIRS = flags.DEFINE_multi_string('workdir', None, 'Run directories to evaluate.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest of each run).')
_METRICS = flags.DEFINE_list(
    'metrics', 'betavae,factorvae,mig,sap,dci,modularity_explicitness,irs,unsupervised',
    'Metric names (disentangle_jax.metrics.available()).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of every sampling stream.')
_NUM_TRAIN = flags.DEFINE_integer('num_train', 10_000, 'Shared train sample (dlib: 10,000).')
_NUM_TEST = flags.DEFINE_integer('num_test', 5_000, 'Shared test sample (dlib: 5,000).')
_NUM_VOTES = flags.DEFINE_integer(
    'num_votes', 10_000,
    'Training points of the sampled scores (BetaVAE, FactorVAE); evaluation uses half. dlib: '
    '10,000 (each point encodes 64-128 images, so this dominates the time on a CPU).',
)
_SETTINGS = flags.DEFINE_string(
    'settings', None, 'JSON {metric: {keyword: value}} passed to the metrics, e.g. '
    '\'{"dci": {"importance": "lasso"}}\'.',
)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where comparison tables go.')
_DEBUG = flags.DEFINE_bool('debug', False, 'Show the traceback of bad-input errors.')
_VERBOSE = flags.DEFINE_bool(
    'verbose', False, 'Show library logs at INFO (JAX, orbax, absl); by default only warnings, '
    'the progress line and the results.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress line on stderr.')
_COMPILATION_CACHE = compilation_cache.define_flag()
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  # Before JAX starts its threads: the encoder's temporaries are reused, not mapped per call.
  host_memory.keep_freed_memory()
  if _VERBOSE.value:
    absl_logging.set_verbosity(absl_logging.INFO)
  else:
    if not flags.FLAGS['verbosity'].present:
      absl_logging.set_verbosity(absl_logging.WARNING)
    cli.quiet_libraries()
  compilation_cache.enable(_COMPILATION_CACHE.value)
  from disentangle_jax.training import reports  # noqa: PLC0415 - after the cache is set

  cli.run(lambda: reports.evaluate_runs(
      _WORKDIRS.value, _METRICS.value, step=_STEP.value, seed=_SEED.value,
      settings=json.loads(_SETTINGS.value) if _SETTINGS.value else None,
      num_votes=_NUM_VOTES.value, num_train=_NUM_TRAIN.value, num_test=_NUM_TEST.value,
      output_dir=_OUTPUT_DIR.value, progress=_PROGRESS.value,
  ), debug=_DEBUG.value)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)

r"""Scores trained runs with a chosen metric set, and compares several runs.

  python launch/evaluate.py --workdir=workdirs/bvae
  python launch/evaluate.py --workdir=workdirs/bvae --workdir=workdirs/fvae \
      --metrics=mig,dci,factorvae --output_dir=workdirs/comparison

Each run gets `<workdir>/metrics_<step>.json` and heatmaps of its metric matrices under
`<workdir>/eval_<step>/`. With several workdirs, `--output_dir` also gets `comparison.csv` and
`comparison.md` (one row per run). Runs are rebuilt from their workdir alone (config.json).
"""

import json
import logging
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax import metrics as metrics_lib  # noqa: E402
from disentangle_jax import reports  # noqa: E402
from disentangle_jax.training import compilation_cache  # noqa: E402

_WORKDIRS = flags.DEFINE_multi_string('workdir', None, 'Run directories to evaluate.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest of each run).')
_METRICS = flags.DEFINE_list('metrics', list(reports.DEFAULT_METRICS), 'Metric names.')
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
_COMPILATION_CACHE = compilation_cache.define_flag()
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  unknown = sorted(set(_METRICS.value) - set(metrics_lib.available()))
  if unknown:
    raise app.UsageError(f'unknown metrics {unknown}; known: {metrics_lib.available()}')
  compilation_cache.enable(_COMPILATION_CACHE.value)
  settings = json.loads(_SETTINGS.value) if _SETTINGS.value else {}
  for name in _METRICS.value:
    if metrics_lib.get_metric(name).inputs == 'ground_truth':
      settings.setdefault(name, {}).setdefault('num_train', _NUM_VOTES.value)
      settings[name].setdefault('num_eval', max(1, _NUM_VOTES.value // 2))
  rows = {}
  for workdir in _WORKDIRS.value:
    step, results, factor_names = reports.evaluate_workdir(
        workdir, _METRICS.value, step=_STEP.value, seed=_SEED.value, settings=settings,
        num_train=_NUM_TRAIN.value, num_test=_NUM_TEST.value,
    )
    path = reports.write_metrics_json(workdir, step, results)
    reports.write_heatmaps(os.path.join(workdir, f'eval_{step}'), '', results, factor_names)
    scalars = rows[os.path.basename(os.path.normpath(workdir))] = reports.scalars_of(results)
    logging.info('%s step %d -> %s', workdir, step, path)
    for key, value in sorted(scalars.items()):
      print(f'{workdir}\t{key}\t{value:.4f}')
  if len(_WORKDIRS.value) > 1:
    output_dir = _OUTPUT_DIR.value or os.path.dirname(os.path.normpath(_WORKDIRS.value[0]))
    os.makedirs(output_dir, exist_ok=True)
    table_csv, table_md = reports.comparison_tables(rows)
    for name, text in (('comparison.csv', table_csv), ('comparison.md', table_md)):
      with open(os.path.join(output_dir, name), 'w') as f:
        f.write(text)
    print(table_md)


if __name__ == '__main__':
  app.run(main)

r"""Runs a grid of config overrides, one ordinary training run each, then collects them.

  python launch/sweep.py --sweep=configs/sweeps/betavae_findings.py --sweep_dir=sweeps/bvae
  python launch/sweep.py --config=configs/betavae_dsprites.py:runlocal --sweep_dir=sweeps/b \
      --axis=objective.beta=1,4,16 --axis=seed=0,1 --set=total_steps=1000

Each run is `launch/main.py` with its own workdir `<sweep_dir>/runs/<name>` (named from its axis
values), run one after another. Rerun the same command to go on: finished runs are skipped,
interrupted ones resume, failed ones are retried (a failure is reported and the sweep goes on).
At the end the runs' final metrics are collected into `<sweep_dir>/results.{csv,md}`,
`summary.{csv,md}` (mean ± std over seeds), `peaks.md` and `plot.png`.

On a cluster: `--print_commands` prints one command per run for a scheduler; when they are done,
`--collect_only --sweep_dir=DIR` collects them (the definition is read from `DIR/sweep.json`
unless given again). `--status` lists each run's state. Bad input ends with one `error:` line and
exit status 1; a sweep with failed runs ends with exit status 2 after collecting the others
(`--collect_only` lists failed runs and exits 0).
"""

import logging
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax import sweeps  # noqa: E402 - imports no JAX
from disentangle_jax import cli  # noqa: E402
from disentangle_jax.training import host_memory  # noqa: E402 - imports no JAX

_SWEEP = flags.DEFINE_string(
    'sweep', None, 'Sweep definition file[:arg], e.g. configs/sweeps/betavae_findings.py:budget=tiny.')
_CONFIG = flags.DEFINE_string(
    'config', None, 'Base config file[:arg] (replaces the sweep file\'s, or stands alone with --axis).')
_AXIS = flags.DEFINE_multi_string(
    'axis', [], 'An axis of the grid, key=v1,v2,... (a config key; repeat the flag for more axes).')
_SET = flags.DEFINE_multi_string('set', [], 'An override every run gets, key=value (repeatable).')
_SWEEP_DIR = flags.DEFINE_string('sweep_dir', None, 'Directory of the runs, logs, tables and plot.')
_PRINT = flags.DEFINE_bool('print_commands', False, 'Print one launch/main.py command per run, then stop.')
_COLLECT_ONLY = flags.DEFINE_bool('collect_only', False, 'Only collect the runs there are.')
_STATUS = flags.DEFINE_bool('status', False, 'Print each run\'s state, then stop.')
_LOCK_WAIT = flags.DEFINE_float(
    'lock_wait_s', 60.0, 'How long to wait for a run whose workdir another process holds.')
_DEBUG = flags.DEFINE_bool('debug', False, 'Show the traceback of bad-input errors.')
flags.mark_flags_as_required(['sweep_dir'])


def _mode():
  if _PRINT.value:
    return 'print'
  if _STATUS.value:
    return 'status'
  return 'collect' if _COLLECT_ONLY.value else 'run'


def main(argv):
  host_memory.keep_freed_memory()  # before JAX starts: its temporaries reused, not remapped
  cli.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  outcome = cli.run(lambda: sweeps.main(
      _SWEEP_DIR.value, sweep=_SWEEP.value, config=_CONFIG.value, axes=_AXIS.value,
      fixed=_SET.value, mode=_mode(), lock_wait_s=_LOCK_WAIT.value,
  ), debug=_DEBUG.value)
  if _mode() == 'run' and any(status == sweeps.FAILED for status, _ in outcome.values()):
    sys.exit(2)


if __name__ == '__main__':
  logging.getLogger().setLevel(logging.INFO)
  app.run(main)

r"""Trains a model: the same command on one CPU, one GPU, or every host of a TPU pod.

  python launch/main.py --config=configs/betavae_dsprites.py:runlocal --workdir=workdirs/bvae

Overrides: `--config.objective.beta=8 --config.data.name=dsprites`; an unknown key is an error
that names it. Rerunning the same command resumes from the last checkpoint in `--workdir`.

A workdir belongs to one run: a second run on it stops at once (the workdir is locked), and a rerun
whose config differs from the run's `config.json` stops with the differing keys, except the
harmless ones (`total_steps`, `log_every`, `image_every`, `checkpoint_every`, `keep_checkpoints`,
`eval_every`, `evaluators`, `data.data_dir`, ...; see `disentangle_jax.training.workdir`).
`--allow_config_change=key,...` accepts others. Checkpoints are verified by checksums; an
unreadable one is set aside and the previous one used; when none is left the run stops, unless
`--start_fresh_if_unreadable`.

Bad input (a config key, file or dataset, a locked or read-only workdir, a full disk) ends with one
line `error: <problem and fix>` and exit status 1; `--debug` shows the traceback instead.

Multi-host (TPU pod, several GPU hosts): run the same command on every host with `--distributed`
(or DISENTANGLE_JAX_DISTRIBUTED=1). On a TPU pod or under SLURM `jax.distributed.initialize()`
finds its peers itself; elsewhere give `--coordinator_address=host:port --num_processes=N
--process_id=i` (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).
"""

import logging
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax import cli, errors  # noqa: E402 - imports no JAX
from disentangle_jax.training import compilation_cache  # noqa: E402 - imports no JAX
from disentangle_jax.training import host_memory  # noqa: E402 - imports no JAX


def _env_int(name):
  value = os.environ.get(name)
  return int(value) if value else None


_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and pictures.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed',
    os.environ.get('DISENTANGLE_JAX_DISTRIBUTED', '') not in ('', '0', 'false'),
    'Call jax.distributed.initialize() before anything else touches JAX (multi-host runs).',
)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', os.environ.get('JAX_COORDINATOR_ADDRESS'), 'host:port of process 0.'
)
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', _env_int('JAX_NUM_PROCESSES'), 'Number of processes (None: auto-detect).'
)
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', _env_int('JAX_PROCESS_ID'), 'This process (None: auto-detect).'
)
_ALLOW_CONFIG_CHANGE = flags.DEFINE_list(
    'allow_config_change', [],
    'Config keys (dotted; a key covers the keys below it) a rerun may change besides the harmless '
    'ones, e.g. optimizer.learning_rate.',
)
_START_FRESH = flags.DEFINE_bool(
    'start_fresh_if_unreadable', False,
    'When every checkpoint in --workdir is unreadable, train from step 0 instead of stopping.',
)
_DEBUG = flags.DEFINE_bool('debug', False, 'Show the traceback of bad-input errors.')
_COMPILATION_CACHE = compilation_cache.define_flag()
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  host_memory.keep_freed_memory()  # before JAX starts: its temporaries reused, not remapped
  cli.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  import jax  # noqa: PLC0415 - JAX must not start before jax.distributed.initialize().

  if _DISTRIBUTED.value:
    jax.distributed.initialize(
        coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value,
        process_id=_PROCESS_ID.value,
    )
  compilation_cache.enable(_COMPILATION_CACHE.value)
  from disentangle_jax.training import workdir  # noqa: PLC0415
  from disentangle_jax.training.train import train_and_evaluate  # noqa: PLC0415

  logging.info(
      'process %d/%d, %d local / %d global devices (%s)', jax.process_index(), jax.process_count(),
      jax.local_device_count(), jax.device_count(), jax.default_backend(),
  )
  try:
    config = _CONFIG.value
    config.keys()  # a config file that failed to load raises only when first used
  except Exception as e:  # noqa: BLE001
    if _DEBUG.value:
      raise
    cli.fail(errors.config_error_message(e, sys.argv))
  options = workdir.RunOptions(
      allow_config_change=tuple(_ALLOW_CONFIG_CHANGE.value),
      start_fresh_if_unreadable=_START_FRESH.value,
  )
  try:
    train_and_evaluate(config, _WORKDIR.value, options)
  except errors.UserError as e:
    if _DEBUG.value:
      raise
    cli.fail(str(e))
  except OSError as e:  # a full disk or a read-only workdir met outside the checkpointer
    message = workdir.os_error_message(
        e, _WORKDIR.value, intact=workdir.intact_checkpoint_sentence(_WORKDIR.value)
    )
    if message is None or _DEBUG.value:
      raise
    cli.fail(message)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)

r"""Trains a model: the same command on one CPU, one GPU, or every host of a TPU pod.

  python launch/main.py --config=configs/betavae_dsprites.py:runlocal --workdir=workdirs/bvae

Overrides: `--config.objective.beta=8 --config.data.name=dsprites`; an unknown key is an error
that names it. Rerunning the same command resumes from the last checkpoint in `--workdir`.

Multi-host (TPU pod, several GPU hosts): run the same command on every host with `--distributed`
(or DISENTANGLE_JAX_DISTRIBUTED=1); `jax.distributed.initialize()` then finds the coordinator
from the environment (TPU metadata, SLURM, or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
JAX_PROCESS_ID).
"""

import logging
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and pictures.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed',
    os.environ.get('DISENTANGLE_JAX_DISTRIBUTED', '') not in ('', '0', 'false'),
    'Call jax.distributed.initialize() before anything else touches JAX (multi-host runs).',
)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  import jax  # noqa: PLC0415 - JAX must not start before jax.distributed.initialize().

  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  from disentangle_jax.training.train import train_and_evaluate  # noqa: PLC0415

  logging.info(
      'process %d/%d, %d local / %d global devices (%s)', jax.process_index(), jax.process_count(),
      jax.local_device_count(), jax.device_count(), jax.default_backend(),
  )
  train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)

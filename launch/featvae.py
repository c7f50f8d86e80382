r"""Runs the feature-aggregation VAE pipeline: finetune, extract features, train the VAE, table.

  python launch/featvae.py --config=configs/featvae_shapes3d.py:runlocal --workdir=workdirs/fv

Each step lives in `<workdir>/<step>` (finetune, features, featvae); rerunning the same command
resumes where a killed run stopped. Overrides as for launch/main.py, e.g.
`--config.featvae_epochs=50 --config.featvae.objective.latent_dim=10`.
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax import cli  # noqa: E402 - imports no JAX
from disentangle_jax.training import host_memory  # noqa: E402 - imports no JAX

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Pipeline config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the three steps and the table.')
_DEBUG = flags.DEFINE_bool('debug', False, 'Show the traceback of bad-input errors.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  host_memory.keep_freed_memory()  # before JAX starts: its temporaries reused, not remapped
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cli.quiet_libraries()
  from disentangle_jax.pipelines.featvae import run_pipeline  # noqa: PLC0415

  cli.run(lambda: run_pipeline(_CONFIG.value, _WORKDIR.value), debug=_DEBUG.value)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)

r"""Runs the feature-aggregation VAE pipeline: finetune, extract features, train the VAE, table.

  python launch/featvae.py --config=configs/featvae_shapes3d.py:runlocal --workdir=workdirs/fv

Each step lives in `<workdir>/<step>` (finetune, features, featvae); rerunning the same command
resumes where a killed run stopped. Overrides as for launch/main.py, e.g.
`--config.featvae_epochs=50 --config.featvae.objective.latent_dim=10`.
"""

import logging
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Pipeline config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the three steps and the table.')
_DEBUG = flags.DEFINE_bool('debug', False, 'Show the traceback of bad-input errors.')
flags.mark_flags_as_required(['config', 'workdir'])


class _QuietLibraries(logging.Filter):
  """Drops the INFO chatter of orbax and TFDS (every save logs dozens of lines)."""

  def filter(self, record):
    noisy = '/orbax/' in record.pathname or '/tensorflow_datasets/' in record.pathname
    return record.levelno >= logging.WARNING or not noisy


def _parse_flags(argv):
  """absl's parsing, with config errors (unknown key or argument, missing file) as one line."""
  from disentangle_jax import errors  # noqa: PLC0415 - imports no JAX

  try:
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001 - absl and ml_collections raise several kinds
    if '--debug' in argv:
      raise
    message = errors.one_line(e) if isinstance(e, flags.Error) else errors.config_error_message(
        e, argv)
    sys.stderr.write(f'error: {message}\n')
    sys.exit(1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  for handler in logging.getLogger().handlers:
    handler.addFilter(_QuietLibraries())
  from disentangle_jax import errors  # noqa: PLC0415
  from disentangle_jax.pipelines.featvae import run_pipeline  # noqa: PLC0415

  try:
    run_pipeline(_CONFIG.value, _WORKDIR.value)
  except errors.UserError as e:
    if _DEBUG.value:
      raise
    sys.stderr.write(f'error: {e}\n')
    sys.exit(1)


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)

"""What every `launch/` script shares: one-line errors for bad input, quiet library logs.

Imports neither JAX nor the rest of the package, so a script can set up JAX (distributed
initialisation, the compilation cache) after parsing its flags.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, TypeVar

from absl import flags

from disentangle_jax import errors

T = TypeVar('T')


class QuietLibraries(logging.Filter):
  """Drops the INFO chatter of orbax and TFDS (every checkpoint save logs dozens of lines), and
  orbax's warning that a checkpoint directory opened for restoring is read-only (we open it so on
  purpose; the user cannot act on it)."""

  def filter(self, record):
    noisy = '/orbax/' in record.pathname or '/tensorflow_datasets/' in record.pathname
    if noisy and 'is read only' in record.getMessage():
      return False
    return record.levelno >= logging.WARNING or not noisy


def quiet_libraries() -> None:
  """Installs `QuietLibraries` on the root logger's handlers."""
  for handler in logging.getLogger().handlers:
    handler.addFilter(QuietLibraries())


def fail(message: str, status: int = 1):
  """The one line a person reads, `error: <message>`, and the exit status."""
  sys.stderr.write(f'error: {message}\n')
  sys.stderr.flush()
  sys.exit(status)


def parse_flags(argv):
  """absl's flag parsing (pass as `app.run(main, flags_parser=parse_flags)`), with a bad flag or
  config (unknown key or argument, missing file) reported as one line; `--debug` re-raises."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    if '--debug' in argv:
      raise
    fail(f'{errors.one_line(e)} (pass --helpshort for the flags)')
  except Exception as e:  # noqa: BLE001 - ml_collections raises AttributeError, OSError, ...
    if '--debug' in argv:
      raise
    fail(errors.config_error_message(e, argv))


def run(fn: Callable[[], T], *, debug: bool) -> T:
  """`fn()`, with a `UserError` printed as one line (exit status 1) unless `debug`."""
  try:
    return fn()
  except errors.UserError as e:
    if debug:
      raise
    fail(str(e))

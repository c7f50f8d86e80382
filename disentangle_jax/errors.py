"""`UserError`: bad input a person can fix, reported as one line without a traceback.

Raised for an unknown config key, a missing config file or dataset, a rerun whose config does not
match the run in its workdir, a workdir locked by another run, a full disk or a read-only workdir.
`launch/` scripts print `error: <message>` and exit with status 1 (`--debug` shows the traceback);
library callers can catch it like any exception. Anything else is a bug and keeps its traceback.
"""

import os


class UserError(Exception):
  """Bad input: the message names the problem and the fix, on one line."""

  def __init__(self, message: str):
    super().__init__(one_line(message))


def one_line(message: str) -> str:
  """Joins a multi-line message into one line (commands in it stay readable, separated by ';')."""
  lines = [line.strip() for line in str(message).splitlines() if line.strip()]
  if not lines:
    return ''
  text = lines[0]
  for line in lines[1:]:
    text += ' ' + line if text.endswith((':', '.', ';', ',')) else '; ' + line
  return text


def config_error_message(error: BaseException, argv) -> str:
  """One line for a config that fails to load or to take an override (ml_collections' errors).

  Args:
    error: what parsing the flags or reading the config raised.
    argv: the command line, to name the flag at fault.
  """
  config_arg = next((a for a in argv if a.startswith('--config=')), '--config=?')
  path = config_arg.partition('=')[2].partition(':')[0]
  inner = error.args[0] if isinstance(error, AttributeError) and error.args else None
  if isinstance(inner, KeyError):  # an override of a key the config does not have
    text = str(inner.args[0]) if inner.args else ''
    key, _, hint = text.partition('\n')
    key = key.strip('\'"')
    flag = next(
        (a for a in argv if a.startswith('--config.') and
         a.partition('=')[0].split('.')[-1] == key), f'--config.{key}'
    )
    full_key = flag.partition('=')[0][len('--config.'):]
    hint = one_line(hint) if hint else f'the keys are those of {path}'
    return f'unknown config key {full_key!r} (from {flag}): {hint.rstrip(";")} Fix the flag or drop it.'
  text = str(error)
  if 'No such file or directory' in text and not os.path.exists(path):
    return (
        f'config file {path!r} not found ({config_arg}): pass an existing config file, e.g. '
        '--config=configs/betavae_dsprites.py:runlocal'
    )
  message = str(error.args[0]) if isinstance(error, KeyError) and error.args else text
  return f'cannot load the config ({config_arg}): {one_line(message)}'

"""JAX's persistent compilation cache for the launch scripts.

On a CPU most of a short run or of an evaluation is XLA compilation (the metric suite: about 50 s
cold against 7 s warm), and every new process compiles again. With the persistent cache a second
run with the same shapes loads the compiled programs from disk instead (the suite: 28 s -> 11 s
cold in `bench/metrics_speed.py`). Entries are keyed by the program, the JAX version and the
compiler flags, so a stale entry is never used.
"""

from __future__ import annotations

import logging
import os

DEFAULT_DIR = os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.join('~', '.cache'), 'disentangle_jax', 'jax'
)
ENV_VAR = 'DISENTANGLE_JAX_COMPILATION_CACHE'


def default_dir() -> str:
  """The launch scripts' default: $DISENTANGLE_JAX_COMPILATION_CACHE, else ~/.cache/...; '' is off."""
  return os.environ.get(ENV_VAR, DEFAULT_DIR)


def define_flag():
  """The launch scripts' `--compilation_cache` flag."""
  from absl import flags

  return flags.DEFINE_string(
      'compilation_cache', default_dir(),
      "JAX's persistent compilation cache: a later run with the same shapes skips most "
      "compilation. '' turns it off (default: $DISENTANGLE_JAX_COMPILATION_CACHE, else "
      '~/.cache/disentangle_jax/jax).',
  )


def enable(path: str | None) -> str | None:
  """Points JAX's persistent compilation cache at `path` (created if absent); None or '' leaves
  JAX's own setting (e.g. $JAX_COMPILATION_CACHE_DIR). Returns the directory in use, or None."""
  import jax

  if path:
    path = os.path.abspath(os.path.expanduser(path))
    try:
      os.makedirs(path, exist_ok=True)
    except OSError as error:  # a read-only home, say: run without the cache, not fail
      logging.warning('no compilation cache: cannot create %s (%s)', path, error)
      return jax.config.jax_compilation_cache_dir
    jax.config.update('jax_compilation_cache_dir', path)
  return jax.config.jax_compilation_cache_dir

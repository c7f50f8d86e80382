"""Loading the repository's config files from an experiment (they live outside the package)."""

from __future__ import annotations

import importlib.util
import os
import sys


def repo_root() -> str:
  return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(name: str, arg: str | None = None, *, configs_dir: str | None = None):
  """`configs/<name>.py`'s `get_config(arg)` (the repository's configs folder by default)."""
  configs_dir = configs_dir or os.path.join(repo_root(), 'configs')
  parent = os.path.dirname(os.path.abspath(configs_dir))
  if parent not in sys.path:
    sys.path.insert(0, parent)  # the configs import `configs.common`
  path = os.path.join(configs_dir, f'{name}.py')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'no config {path}; pass --configs_dir=<the repository>/configs')
  spec = importlib.util.spec_from_file_location(f'configs_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)

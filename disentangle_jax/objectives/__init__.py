"""Objectives by name: `get_objective(config.objective.name)`.

An objective module registers its classes with `@register('name')`; every module of this package
is imported on the first lookup, so adding an objective is adding a module.
"""

import importlib
import pkgutil

from disentangle_jax.objectives.base import Objective, rng_stream

_REGISTRY: dict[str, type[Objective]] = {}


def register(name: str):
  """Class decorator: makes an `Objective` subclass available to `get_objective(name)`."""

  def wrap(cls):
    if name in _REGISTRY and _REGISTRY[name] is not cls:
      raise ValueError(f'objective {name!r} registered twice')
    _REGISTRY[name] = cls
    return cls

  return wrap


def _import_all():
  for info in pkgutil.iter_modules(__path__):
    if not info.name.startswith('_') and info.name != 'base':
      importlib.import_module(f'{__name__}.{info.name}')


def available() -> list[str]:
  _import_all()
  return sorted(_REGISTRY)


def get_objective(name: str) -> type[Objective]:
  """The objective class registered under `name`; a clear error lists the known names."""
  if name not in _REGISTRY:
    _import_all()
  if name not in _REGISTRY:
    raise ValueError(f'unknown objective {name!r}; known objectives: {", ".join(available())}')
  return _REGISTRY[name]


__all__ = ['Objective', 'available', 'get_objective', 'register', 'rng_stream']

"""disentangle_jax: learning and measuring disentangled image representations in JAX.

Importing the package is cheap: `import disentangle_jax.losses` pulls in JAX alone. The
procedural TFDS builders (`procedural_dsprites`, `procedural_shapes3d`, ...) are registered
with TFDS as soon as `tensorflow_datasets` is imported, before or after this package, so that
`tfds.data_source('<name>')` finds them without importing TFDS here.
"""

import importlib.abc
import importlib.util
import sys

__version__ = '0.1.0'

_TFDS = 'tensorflow_datasets'
_BUILDERS = 'disentangle_jax.data.builders'


def _register_builders():
  importlib.import_module(_BUILDERS)


class _RegisterAfterTfdsImport(importlib.abc.MetaPathFinder):
  """Imports our builder modules right after `tensorflow_datasets` finishes importing."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname != _TFDS:
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(fullname)
    if spec is None or spec.loader is None:
      return spec
    exec_module = spec.loader.exec_module

    def exec_then_register(module):
      exec_module(module)
      _register_builders()

    spec.loader.exec_module = exec_then_register
    return spec


if _TFDS in sys.modules:
  _register_builders()
elif not any(isinstance(f, _RegisterAfterTfdsImport) for f in sys.meta_path):
  sys.meta_path.insert(0, _RegisterAfterTfdsImport())

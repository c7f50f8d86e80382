"""Loads google-research/disentanglement_lib's metric modules without TensorFlow (tests, bench).

disentanglement_lib (`pip install disentanglement-lib==1.5 --no-deps`) decorates its metrics with
`gin.tf.configurable(..., blacklist=...)`; `gin.tf` imports TensorFlow and current gin-config no
longer accepts `blacklist`. A stand-in `gin`/`gin.tf` whose `configurable` is the identity is all
the metric modules need. The stand-in is installed only when no real `gin` is already imported, so
it never hides a working gin-config from the rest of the process.
"""

import ast
import importlib
import sys
import types

import numpy

_MODULES = {
  'dci': 'disentanglement_lib.evaluation.metrics.dci',
  'mig': 'disentanglement_lib.evaluation.metrics.mig',
  'sap': 'disentanglement_lib.evaluation.metrics.sap_score',
  'modularity': 'disentanglement_lib.evaluation.metrics.modularity_explicitness',
  'irs': 'disentanglement_lib.evaluation.metrics.irs',
  'unsupervised': 'disentanglement_lib.evaluation.metrics.unsupervised_metrics',
  'downstream': 'disentanglement_lib.evaluation.metrics.downstream_task',
  'fairness': 'disentanglement_lib.evaluation.metrics.fairness',
  'utils': 'disentanglement_lib.evaluation.metrics.utils',
  'unified': 'disentanglement_lib.evaluation.metrics.unified_scores',
}


def _install_gin_stub():
  if 'gin.tf' in sys.modules:
    return

  def configurable(*args, **kwargs):
    if len(args) == 1 and callable(args[0]) and not kwargs:
      return args[0]
    return lambda fn: fn

  gin = sys.modules.get('gin') or types.ModuleType('gin')
  if not hasattr(gin, 'configurable'):
    gin.configurable = configurable
    gin.REQUIRED = object()
  tf = types.ModuleType('gin.tf')
  tf.configurable = configurable
  tf.REQUIRED = getattr(gin, 'REQUIRED', object())
  gin.tf = tf
  sys.modules.setdefault('gin', gin)
  sys.modules['gin.tf'] = tf


def _install_unified_stubs():
  """unified_scores imports TensorFlow (`utils.results`) and plotting modules (pandas,
  matplotlib) it uses only to write artifacts. Stand-ins: `results.namespaced_dict`, and
  `visualize_scores` holding dlib's own `precision` and `bfs` (its precision curve), taken from
  its source without its plotting imports."""
  try:
    importlib.import_module('disentanglement_lib.utils.results')
    return
  except ImportError:
    pass

  def namespaced_dict(base_dict=None, **named_dicts):
    out = dict(base_dict or {})
    for prefix, values in named_dicts.items():
      out.update({f'{prefix}.{key}': value for key, value in values.items()})
    return out

  results = types.ModuleType('disentanglement_lib.utils.results')
  results.namespaced_dict = namespaced_dict
  sys.modules['disentanglement_lib.utils.results'] = results
  sys.modules.setdefault('disentanglement_lib.visualize.dendrogram',
                         types.ModuleType('disentanglement_lib.visualize.dendrogram'))
  spec = importlib.util.find_spec('disentanglement_lib.visualize')
  path = spec.submodule_search_locations[0] + '/visualize_scores.py'
  with open(path) as f:
    tree = ast.parse(f.read())
  keep = [node for node in tree.body
          if isinstance(node, ast.FunctionDef) and node.name in ('precision', 'bfs')]
  scores = types.ModuleType('disentanglement_lib.visualize.visualize_scores')
  scores.np = numpy
  exec(compile(ast.Module(body=keep, type_ignores=[]), path, 'exec'), scores.__dict__)  # noqa: S102
  sys.modules['disentanglement_lib.visualize.visualize_scores'] = scores


def load(name: str) -> types.ModuleType:
  """Returns the disentanglement_lib metric module `name` (a key of `_MODULES`).

  Raises:
    ImportError: disentanglement_lib is not installed.
  """
  importlib.util.find_spec('disentanglement_lib') or _raise()
  _install_gin_stub()
  if name == 'unified':
    _install_unified_stubs()
  return importlib.import_module(_MODULES[name])


def _raise():
  raise ImportError('disentanglement_lib is not installed: pip install disentanglement-lib==1.5 --no-deps')


def histogram_discretize(target, num_bins=20):
  """dlib's `_histogram_discretize` with its gin argument bound (target: [D, N])."""
  return load('utils')._histogram_discretize(target, num_bins=num_bins)


def bind_discretizer(num_bins=20):
  """Makes dlib's gin-bound `make_discretizer(target)` use the 20-bin histogram, as its study gin."""
  utils = load('utils')
  utils.make_discretizer = lambda target, num_bins=num_bins: utils._histogram_discretize(
    target, num_bins
  )
  return utils

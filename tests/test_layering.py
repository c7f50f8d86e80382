"""The package's layers, read from the source: what may import what."""

import ast
import os
import subprocess
import sys

import pytest

import train_util

PACKAGE = os.path.join(train_util.ROOT, 'disentangle_jax')


def _modules(subpackage):
  root = os.path.join(PACKAGE, subpackage)
  for directory, _, files in os.walk(root):
    for name in files:
      if name.endswith('.py'):
        yield os.path.join(directory, name)


def _imports(path) -> set[str]:
  """Every module name `path` imports (absolute; 'from x import y' gives x and x.y)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
  return names


@pytest.mark.parametrize('lower', ['losses', 'metrics', 'data'])
def test_the_pure_layers_import_neither_the_loop_nor_networks_nor_objectives(lower):
  forbidden = ('disentangle_jax.training', 'disentangle_jax.networks', 'disentangle_jax.objectives')
  for path in _modules(lower):
    bad = sorted(n for n in _imports(path) if n.startswith(forbidden))
    assert not bad, f'{os.path.relpath(path, train_util.ROOT)} imports {bad}'


def test_losses_import_jax_and_numpy_only():
  allowed_roots = {'jax', 'numpy', 'math', 'typing', 'dataclasses', 'functools', 'inspect',
                   'collections', '__future__', 'disentangle_jax', 'zlib', 'enum', 'abc'}
  for path in _modules('losses'):
    roots = {n.split('.')[0] for n in _imports(path)}
    assert roots <= allowed_roots, f'{path} imports {sorted(roots - allowed_roots)}'


def test_objectives_import_no_other_plugin_and_not_the_loop():
  directory = os.path.join(PACKAGE, 'objectives')
  plugins = {name[:-3] for name in os.listdir(directory)
             if name.endswith('.py') and not name.startswith('_') and name != 'base.py'}
  for path in _modules('objectives'):
    own = os.path.basename(path)[:-3]
    imported = _imports(path)
    others = sorted(f'disentangle_jax.objectives.{p}' for p in plugins - {own}
                    if f'disentangle_jax.objectives.{p}' in imported)
    assert not others, f'{path} imports the plugins {others}'
    loop = sorted(n for n in imported if n.startswith('disentangle_jax.training'))
    assert not loop, f'{path} imports {loop}'


def test_no_config_hard_codes_a_dataset_size():
  for name in os.listdir(os.path.join(train_util.ROOT, 'configs')):
    if name.endswith('.py'):
      with open(os.path.join(train_util.ROOT, 'configs', name)) as f:
        text = f.read()
      assert 'dataset_size' not in text and '737_280' not in text, name


def test_importing_the_package_installs_no_import_hook():
  code = ('import sys; import disentangle_jax, disentangle_jax.data.pipeline; '
          'print(sum(type(f).__module__.startswith("disentangle_jax") for f in sys.meta_path))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                       env=train_util.subprocess_env(), cwd=train_util.ROOT, timeout=300)
  assert out.stdout.strip().splitlines()[-1] == '0'

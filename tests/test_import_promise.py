"""The import promise: `disentangle_jax.losses` is JAX and numpy only, usable from any project."""

import json
import os
import subprocess
import sys

HEAVY = ('flax', 'tensorflow_datasets', 'tensorflow', 'ml_collections', 'optax', 'orbax', 'grain')


def _modules_after(statement: str) -> set[str]:
  code = (
      'import json, sys\n'
      f'{statement}\n'
      'print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))\n'
  )
  out = subprocess.run(
      [sys.executable, '-c', code], capture_output=True, text=True, check=True, timeout=300,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
  )
  return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_losses_loads_neither_flax_nor_tfds_nor_ml_collections():
  loaded = _modules_after(
      'import disentangle_jax.losses as L\n'
      'from disentangle_jax.losses import schedules\n'
      'import jax.numpy as jnp\n'
      'L.vae_loss(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 3)), '
      'jnp.zeros((1, 3)))'
  )
  assert 'jax' in loaded
  assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))

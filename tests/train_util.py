"""Runs launch/main.py in subprocesses and reads what the runs leave behind."""

import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, 'launch', 'main.py')
# One compilation cache for every test subprocess, outside the home directory.
CACHE = os.path.join(tempfile.gettempdir(), 'disentangle_jax_test_compilation_cache')


def subprocess_env(extra=None):
  """The environment of the tests' launch/ subprocesses: CPU, quiet TF, the shared cache, and the
  suite's XLA flags (conftest) followed by any in `extra`."""
  extra = dict(extra or {})
  if 'XLA_FLAGS' in extra:
    extra['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} {extra["XLA_FLAGS"]}'.strip()
  return {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3',
          'DISENTANGLE_JAX_COMPILATION_CACHE': CACHE, **extra}


def tiny_flags(data_dir: str, *, steps: int = 8, batch_size: int = 8, evaluate: bool = False) -> list[str]:
  """Shrinks configs/betavae_dsprites.py:runlocal to a run of seconds."""
  return [
      f'--config.data.data_dir={data_dir}',
      '--config.data.builder_config=small',
      f'--config.total_steps={steps}',
      f'--config.batch_size={batch_size}',
      '--config.log_every=2',
      f'--config.checkpoint_every={max(1, steps // 4)}',
      f'--config.image_every={steps}',
      f'--config.eval_every={steps if evaluate else 0}',
      '--config.model.encoder=fc',
      '--config.model.decoder=fc',
  ]


def run_main(config: str, workdir: str, flags=(), *, env=None, timeout=600, check=True):
  """Runs one training process; returns the CompletedProcess (stdout and stderr captured)."""
  cmd = [sys.executable, MAIN, f'--config={config}', f'--workdir={workdir}', *flags]
  result = subprocess.run(
      cmd, env=subprocess_env(env), capture_output=True, text=True, timeout=timeout, cwd=ROOT
  )
  if check and result.returncode != 0:
    raise AssertionError(
        f'{" ".join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n'
        f'{result.stderr[-6000:]}'
    )
  return result


def run_script(script: str, args=(), *, env=None, timeout=600):
  """Runs another launch/ script the same way; raises with its output if it fails."""
  cmd = [sys.executable, os.path.join(ROOT, script), *args]
  result = subprocess.run(cmd, env=subprocess_env(env), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)
  if result.returncode != 0:
    raise AssertionError(f'{" ".join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}')
  return result


def final_params(workdir: str) -> dict[str, np.ndarray]:
  """The parameters of the newest checkpoint, flattened to {path: array}."""
  import jax
  import orbax.checkpoint as ocp

  ckpt_dir = os.path.join(workdir, 'checkpoints')
  step = max(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())
  path = os.path.join(ckpt_dir, str(step), 'state')
  checkpointer = ocp.StandardCheckpointer()
  # Restore onto this process's first device, whatever topology the run had.
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      checkpointer.metadata(path).item_metadata.tree,
  )
  tree = checkpointer.restore(path, target)
  flat = jax.tree_util.tree_flatten_with_path(tree['params'])[0]
  return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}

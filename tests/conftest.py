"""Shared test set-up: CPU only, absl flags parsed (grain reads them), a temporary TFDS dir."""

import os
import sys

# configs/ is a folder of files, not an installed package: make `from configs import common` work.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# The suite compiles without XLA's LLVM optimisation (its own processes and the launch/ scripts it
# runs): the same HLO programs, after the same HLO passes, compile several times faster (the fast
# convolutions' tests 180 -> 83 s), and most tests are compilation, not compute. Users' runs and the
# benches keep the default. `XLA_FLAGS=--xla_backend_optimization_level=2 pytest ...` tests the
# optimised build.
if 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (
      os.environ.get('XLA_FLAGS', '') + ' --xla_backend_optimization_level=0').strip()

from absl import flags  # noqa: E402
import pytest  # noqa: E402

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope='session')
def tfds_data_dir(tmp_path_factory):
  """A TFDS data dir shared by one test session, so procedural builds happen once."""
  return str(tmp_path_factory.mktemp('tensorflow_datasets'))

r"""Builds MPI3D (`mpi3d/<variant>`) from a release's official `.npz`, without TensorFlow.

  python launch/prepare_mpi3d.py --variant=toy --source_dir=~/mpi3d \
      --data_dir=~/tensorflow_datasets
  python launch/prepare_mpi3d.py --variant=real --source_dir=~/mpi3d

`--source_dir` holds mpi3d_toy.npz, mpi3d_realistic.npz, mpi3d_real.npz or
real3d_complicated_shapes_ordered.npz (variant complex). Then train on it with
`--config.data.name=mpi3d --config.data.builder_config=toy`.
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax.data.builders import mpi3d  # noqa: E402

_SOURCE_DIR = flags.DEFINE_string('source_dir', None, 'Directory holding the release .npz.')
_VARIANT = flags.DEFINE_enum('variant', 'toy', list(mpi3d.Mpi3d.builder_configs),
                             'Which release (the file it reads).')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None,
    'TFDS data dir to write to (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).',
)
_FACTOR_SIZES = flags.DEFINE_list(
    'factor_sizes', None,
    'The 7 factor sizes, only for a file that is neither a full release nor stores them.',
)
flags.mark_flags_as_required(['source_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  sizes = [int(s) for s in _FACTOR_SIZES.value] if _FACTOR_SIZES.value else None
  try:
    path = mpi3d.prepare(_SOURCE_DIR.value, variant=_VARIANT.value, data_dir=_DATA_DIR.value,
                         factor_sizes=sizes)
  except mpi3d.Mpi3dSourceError as e:
    sys.exit(f'error: {e}')
  print(f'mpi3d/{_VARIANT.value} prepared in {path}')


if __name__ == '__main__':
  app.run(main)

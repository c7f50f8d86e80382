r"""Builds CelebA at 64×64 (`celeb_a64`) from the official files, without TensorFlow.

  python launch/prepare_celeba.py --source_dir=~/celeba --data_dir=~/tensorflow_datasets
  python launch/prepare_celeba.py --source_dir=~/celeba --config=crop108

`--source_dir` holds img_align_celeba.zip (or the extracted img_align_celeba/), list_attr_celeba.txt
and list_eval_partition.txt from the CelebA site. Then train on it with
`--config.data.name=celeb_a64` (and `--config.data.builder_config=crop108` for another crop).
The crops are described in `disentangle_jax/data/builders/celeba.py`.
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax.data.builders import celeba  # noqa: E402

_SOURCE_DIR = flags.DEFINE_string('source_dir', None, 'Directory holding the official files.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None,
    'TFDS data dir to write to (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).',
)
_CONFIG = flags.DEFINE_enum('config', 'crop178', list(celeba.CelebA64.builder_configs),
                            'The centre crop taken before resizing to 64x64.')
flags.mark_flags_as_required(['source_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    path = celeba.prepare(_SOURCE_DIR.value, data_dir=_DATA_DIR.value, config=_CONFIG.value)
  except celeba.CelebASourceError as e:
    sys.exit(f'error: {e}')
  print(f'celeb_a64/{_CONFIG.value} prepared in {path}')


if __name__ == '__main__':
  app.run(main)

r"""CelebA's attribute study: balance per split and the 40×40 correlation, as tables and pictures.

  python launch/attribute_study.py --source_dir=~/celeba --output_dir=reports/celeba_attributes
  python launch/attribute_study.py --dataset=celeb_a64 --data_dir=~/tensorflow_datasets \
      --output_dir=reports/celeba_attributes

With `--source_dir` it reads list_attr_celeba.txt and list_eval_partition.txt (no images); else
the labels of a prepared dataset (`celeb_a64`, or `celeb_a` prepared by TFDS). Writes
attribute_balance.{csv,md,png} and attribute_correlation.{csv,md,png} to `--output_dir`.
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax.data import attribute_study  # noqa: E402
from disentangle_jax.data import datasets  # noqa: E402
from disentangle_jax.data.builders import celeba  # noqa: E402

_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where the tables and pictures go.')
_SOURCE_DIR = flags.DEFINE_string(
    'source_dir', None, 'Directory holding list_attr_celeba.txt and list_eval_partition.txt.'
)
_DATASET = flags.DEFINE_string('dataset', 'celeb_a64', 'Prepared labelled dataset to read.')
_BUILDER_CONFIG = flags.DEFINE_string('builder_config', None, 'Its builder config.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Its TFDS data dir.')
_CORRELATION_SPLIT = flags.DEFINE_string(
    'correlation_split', 'all', "Images the correlations are measured on: 'all' or a split."
)
flags.mark_flags_as_required(['output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    paths = attribute_study.run_attribute_study(
        _OUTPUT_DIR.value, source_dir=_SOURCE_DIR.value, dataset=_DATASET.value,
        builder_config=_BUILDER_CONFIG.value, data_dir=_DATA_DIR.value,
        correlation_split=_CORRELATION_SPLIT.value,
    )
  except (celeba.CelebASourceError, datasets.DatasetNotFoundError) as e:
    sys.exit(f'error: {e}')
  print('\n'.join(paths.values()))


if __name__ == '__main__':
  app.run(main)

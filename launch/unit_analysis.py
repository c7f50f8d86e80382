r"""Scores the units of a trained digit-pair classifier as digit detectors.

  python launch/unit_analysis.py --workdir=workdirs/digits_baseline
  python launch/unit_analysis.py --workdir=workdirs/digits_distractors --output_dir=/tmp/units

Writes `units.json` (per unit and digit: precision@100/300/500/700, precision at recall
0.25/0.5/0.75, AP; the best digit; the ablation effect), `units.md` (the table), `top_images.png`
(each unit's top-activating validation images with its map), `ap.png` and `precision_at_100.png`
to `--output_dir` (default `<workdir>/units_<step>`).
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained classifier run (configs/digits_classifier.py).')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest).')
_SPLIT = flags.DEFINE_string('split', None, 'Split scored (default: the validation split).')
_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', None, 'First records used (default: all).')
_LAYER = flags.DEFINE_string('layer', None, 'Conv layer (default: the last, conv3).')
_NO_ABLATION = flags.DEFINE_bool('no_ablation', False, 'Skip the ablation effect.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where files go.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from disentangle_jax.analysis import units  # noqa: PLC0415

  units.analyse_workdir(_WORKDIR.value, step=_STEP.value, split=_SPLIT.value,
                        num_examples=_NUM_EXAMPLES.value, layer=_LAYER.value,
                        output_dir=_OUTPUT_DIR.value, ablate=not _NO_ABLATION.value)


if __name__ == '__main__':
  app.run(main)

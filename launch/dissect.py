r"""Network Dissection (Bau et al., CVPR 2017) of a trained model against its dataset's concepts.

  python launch/dissect.py --workdir=workdirs/digits_baseline
  python launch/dissect.py --workdir=workdirs/betavae_dsprites --num_examples=5000
  python launch/dissect.py --workdir=workdirs/mixing_sprites_mix_c_g --num_examples=2000
  python launch/dissect.py --workdir=workdirs/ae_dsprites --layers=Conv_0,Conv_1

Every layer of feature maps of the model's representation (a classifier's conv layers; a VAE's
or autoencoder's encoder convs) is thresholded per unit at its top 0.5 % of activations,
upsampled to the concept masks the dataset's renderer draws from the factors (digits, sprites'
body parts, dSprites' shape, 3D shapes' floor / wall / object), and scored by IoU per (unit,
concept); a unit whose best IoU exceeds 0.04 is a detector. Writes `dissection.json`,
`dissection.md`, `iou_<layer>.png` and `units_<layer>.png` to `--output_dir` (default
`<workdir>/dissection_<step>`).
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run on a procedural dataset.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest).')
_SPLIT = flags.DEFINE_string('split', None, 'Probe split (default: the evaluation split).')
_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', None, 'Probe images (default: the split).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 256, 'Images per forward pass.')
_LAYERS = flags.DEFINE_list('layers', None, 'Layers (default: every layer of feature maps).')
_TOP = flags.DEFINE_float('top', 0.005, 'Fraction of activations above each unit\'s threshold.')
_IOU = flags.DEFINE_float('iou_threshold', 0.04, 'IoU above which a unit is a detector.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where files go.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from disentangle_jax.analysis import dissection  # noqa: PLC0415

  dissection.dissect_workdir(
      _WORKDIR.value, step=_STEP.value, split=_SPLIT.value, num_examples=_NUM_EXAMPLES.value,
      batch_size=_BATCH_SIZE.value, layers=_LAYERS.value, output_dir=_OUTPUT_DIR.value,
      top=_TOP.value, iou_threshold=_IOU.value)


if __name__ == '__main__':
  app.run(main)

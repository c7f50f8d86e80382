r"""Converts torchvision's VGG19-BN ImageNet checkpoint into the weight file this project loads.

  python launch/convert_vgg19_bn.py --input=vgg19_bn-c79401a0.pth --output=weights/vgg19_bn.npz

The input is the `.pth` state dict that torchvision downloads for
`torchvision.models.vgg19_bn(weights='IMAGENET1K_V1')` (usually under
~/.cache/torch/hub/checkpoints/); reading it needs torch, once. The output is a numpy `.npz` of plain arrays (no pickles) in the
Flax layout of `disentangle_jax.networks.vgg.VGG`; `vgg.load_vgg19_bn` reads it with numpy alone
and `vgg.set_backbone` puts it into a `vgg_extractor`'s variables.
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from disentangle_jax.networks import vgg  # noqa: E402

_INPUT = flags.DEFINE_string('input', None, "torchvision's vgg19_bn checkpoint (.pth).")
_OUTPUT = flags.DEFINE_string('output', None, 'Where the .npz goes.')
flags.mark_flags_as_required(['input', 'output'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  print(vgg.convert_vgg19_bn(_INPUT.value, _OUTPUT.value))


if __name__ == '__main__':
  app.run(main)

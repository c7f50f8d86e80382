r"""python launch/main.py --config=configs/digits_classifier.py --workdir=workdirs/digits_baseline
python launch/main.py --config=configs/digits_classifier.py:variant=dropout --workdir=workdirs/digits_dropout
python launch/main.py --config=configs/digits_classifier.py:variant=wider --workdir=workdirs/digits_wider
python launch/main.py --config=configs/digits_classifier.py:variant=wider_dropout --workdir=workdirs/digits_wider_dropout
python launch/main.py --config=configs/digits_classifier.py:distractors --workdir=workdirs/digits_distractors
python launch/main.py --config=configs/digits_classifier.py:runlocal --workdir=workdirs/digits_local
then
python launch/unit_analysis.py --workdir=workdirs/digits_baseline
python launch/dissect.py --workdir=workdirs/digits_baseline

Zhou's Mixture-of-MNIST unit experiment (the sanity check behind Network Dissection, Bau, Zhou,
Khosla, Oliva, Torralba, CVPR 2017): a small convnet (conv 10, 20, 10 units, global average
pooling, linear to the classes) classifies the unordered pair of digits of a 56x56 image, 45
classes; its conv3 units are then scored as digit detectors.

Arguments (after ':', comma-separated): `variant=` baseline | dropout (p = 0.5 on conv3) | wider
(30 conv3 units) | wider_dropout; `distractors` (the usefulness variant: pairs of 0-7, 28 classes,
an 8 or a 9 in every image); `runlocal` (the small 2,000-image mixture, a CPU run of a minute);
`seed=`. The class count comes from the data. Adam 1e-3, batch 128, 20 epochs of the 20,000
training images (3,125 steps) [our choice; the talk gives only the network].
"""

import ml_collections

from configs import common

TRAIN_IMAGES = {'pairs': 20_000, 'distractors': 20_000, 'small': 2_000}


def get_config(arg=None):
  args = common.parse_arg(arg, runlocal=False, seed=0, variant='baseline', distractors=False,
                          epochs=20)
  c = common.base_config(','.join(
      w for w in ('runlocal' if args.runlocal else '', f'seed={args.seed}') if w))

  c.data.name = 'mixture_of_digits'
  if args.distractors:
    c.data.builder_config = 'distractors'
  elif args.runlocal:
    c.data.builder_config = 'small'
  else:
    c.data.builder_config = 'pairs'

  c.objective.name = 'classifier'
  c.objective.head = 'softmax'
  c.objective.num_classes = None  # from the data: 45 pairs, 28 with distractors
  c.objective.pretrained = ml_collections.config_dict.placeholder(str)  # an .npz to start from
  c.model.network = 'digits_convnet'
  c.model.network_kwargs = {'variant': args.variant, 'dropout_rate': 0.5}

  c.batch_size = 128
  c.optimizer.learning_rate = 1e-3
  steps_per_epoch = TRAIN_IMAGES[c.data.builder_config] // c.batch_size
  c.total_steps = args.epochs * steps_per_epoch
  c.log_every = 50
  c.image_every = 500
  c.checkpoint_every = 500
  # Validation accuracy (overall, balanced, per class) at every evaluation: the classifier's own
  # scores (eval/classifier/...); no representation metrics.
  c.eval_every = 500
  c.evaluators = {}
  c.objective_eval_examples = None  # the whole validation split
  if args.runlocal:
    c.batch_size = 64
    c.total_steps = 600
    c.image_every = 300
    c.checkpoint_every = 300
    c.eval_every = 300
  return c

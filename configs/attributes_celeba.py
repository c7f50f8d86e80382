r"""python launch/main.py --config=configs/attributes_celeba.py --workdir=workdirs/attributes_celeba
python launch/main.py --config=configs/attributes_celeba.py:weighted --workdir=workdirs/attributes_celeba_weighted
python launch/main.py --config=configs/attributes_celeba.py:runlocal --workdir=workdirs/attributes_local

The discriminative model of the CelebA study: 40 binary attributes, one sigmoid output each, on
64x64 aligned faces. The seed fine-tuned an ImageNet Inception V3; we train from scratch by default
(AlexNet with batch norm, the mixing autoencoder's classifier) and start from weights a user has
with `--config.objective.pretrained=/path/weights.npz` (keys: '/'-joined parameter paths, as
`objectives.classifier.save_params_npz` writes them; `--config.objective.pretrained_exclude=
"('Dense_2',)"` keeps a new head).

Arguments: `weighted` (positives of each attribute weighted by n_neg / n_pos over the training
split, for the imbalanced attributes); `data=celeb_a` (TFDS's CelebA, centre crop 178 -> 64x64)
instead of `celeb_a64` (built without TensorFlow by `python launch/prepare_celeba.py`);
`runlocal` (a narrow head and a short run); `seed=`.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, runlocal=False, seed=0, weighted=False, data='celeb_a64')
  c = common.base_config(','.join(
      w for w in ('runlocal' if args.runlocal else '', f'seed={args.seed}') if w))

  c.data.name = args.data
  c.data.builder_config = None  # no 'small' CelebA

  c.objective.name = 'classifier'
  c.objective.head = 'sigmoid'
  c.objective.num_classes = None  # the data's 40 attributes
  c.objective.pos_weight = 'auto' if args.weighted else None
  c.objective.pretrained = ml_collections.config_dict.placeholder(str)  # an .npz to start from
  c.objective.pretrained_exclude = ()
  c.objective.representation = 'logits'
  c.model.network = 'alexnet_bn'
  c.model.network_kwargs = {'dense_features': 1024}

  c.batch_size = 128
  c.optimizer.learning_rate = 1e-4
  c.total_steps = 20_000
  c.log_every = 100
  c.image_every = 2_000
  c.checkpoint_every = 2_000
  # Validation accuracy and balanced accuracy, overall and per attribute, at every evaluation
  # (eval/classifier/...), on the first 5,000 validation faces.
  c.eval_every = 2_000
  c.evaluators = {}
  c.objective_eval_examples = 5_000
  if args.runlocal:
    c.model.network_kwargs = {'dense_features': 128}
    c.batch_size = 32
    c.total_steps = 300
    c.log_every = 50
    c.image_every = 300
    c.checkpoint_every = 300
    c.eval_every = 300
    c.objective_eval_examples = 500
  return c

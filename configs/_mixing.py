"""What the mixing-autoencoder configs share (not a config itself).

Hu, Szabó, Portenier, Favaro, Zwicker, "Disentangling Factors of Variation by Mixing Them", CVPR
2018, as released for Sprites: DCGAN encoder, decoder and discriminator, an AlexNet-with-batch-norm
chunk classifier, Adam(2e-4, β1 0.5) decayed ×0.9 every 20,000 steps (staircase) for each of the
three groups, 64 image pairs per step (`batch_size` 128: x1 is the first half of each batch, x2
the second), λ_M 10, λ_AE 10, λ_G 1, λ_C 1.

Config arguments (after ':'): `runlocal`, `seed=N`, `variant=V` with V one of ae, c_g, ae_c_g,
mix, mix_c, mix_g, mix_c_g (the rows AE, C+G, AE+C+G, MIX, MIX+C, MIX+G, MIX+C+G of the paper's
Sprites table; '+' and ',' cannot appear in a config argument, hence '_'), and `epochs=N`.
"""

import ml_collections

from configs import common
from disentangle_jax.data import datasets
from disentangle_jax.objectives.mixing import VARIANTS

PAIRS_PER_STEP = 64  # the released code's batch of x1 (and of x2)


def parse(arg):
  """(the mixing arguments, the argument string for `common.base_config`)."""
  args = common.parse_arg(arg, runlocal=False, seed=0, variant='mix_c_g', epochs=10)
  if args.variant not in VARIANTS:
    raise ValueError(f'unknown variant {args.variant!r}; choose one of {", ".join(VARIANTS)} '
                     '(AE, C+G, AE+C+G, MIX, MIX+C, MIX+G, MIX+C+G)')
  base = f'seed={args.seed}' + (',runlocal' if args.runlocal else '')
  return args, base


def epoch_steps(data_config, pairs_per_step: int) -> int | None:
  """Steps of one pass of x1 over the train split (the released code's epoch), from the data's
  description; None when the split size is not known without the prepared files."""
  description = datasets.describe(data_config.name, builder_config=data_config.builder_config,
                                  data_dir=data_config.data_dir)
  splits = description.splits or {}
  if data_config.split not in splits:
    return None
  return max(1, splits[data_config.split] // pairs_per_step)


def optimizer(runlocal: bool) -> ml_collections.ConfigDict:
  """Adam(2e-4, 0.5, 0.999), ×0.9 every 20,000 steps, staircase (the released code)."""
  return ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3 if runlocal else 2e-4, b1=0.5, b2=0.999, eps=1e-8,
      schedule='exponential', decay_steps=20_000, decay_rate=0.9, staircase=True))


def mixing_config(arg, *, data_name: str, num_chunks: int, chunk_size: int,
                  lambda_mix: float = 10.0) -> tuple[ml_collections.ConfigDict,
                                                     ml_collections.ConfigDict]:
  """The run of one variant; returns (config, parsed arguments)."""
  args, base = parse(arg)
  c = common.base_config(base)
  c.data.name = data_name
  c.batch_size = 2 * PAIRS_PER_STEP

  c.objective.name = 'mixing'
  c.objective.variant = args.variant  # for reading the workdir; the flags below decide
  for flag, on in VARIANTS[args.variant].items():
    c.objective[flag] = on
  c.objective.num_chunks = num_chunks
  c.objective.chunk_size = chunk_size
  c.objective.lambda_mix = lambda_mix
  c.objective.lambda_ae = 10.0
  c.objective.lambda_gan = 1.0
  c.objective.lambda_cls = 1.0
  c.objective.ae_on_x1 = True
  c.objective.mask_per_example = False
  c.objective.feature_activation = 'leaky_relu'
  c.objective.pictures = ml_collections.ConfigDict(dict(num_pairs=6, max_chunks=8, num_masks=6))

  c.optimizer = optimizer(args.runlocal)
  c.objective.classifier_optimizer = optimizer(args.runlocal)
  c.objective.discriminator_optimizer = optimizer(args.runlocal)

  c.model.encoder = 'dcgan'
  c.model.decoder = 'dcgan'
  c.model.discriminator = 'dcgan_discriminator'
  c.model.classifier = 'alexnet_bn'
  if args.runlocal:
    c.batch_size = 32  # 16 pairs
  return c, args

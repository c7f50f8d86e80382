r"""python launch/main.py --config=configs/ae_disks.py --workdir=workdirs/ae_disks
python launch/main.py --config=configs/ae_disks.py:regularizer=encoder_weight_decay --workdir=workdirs/ae_disks_wd
python launch/main.py --config=configs/ae_disks.py:runlocal,regularizer=denoising,bias=False --workdir=/tmp/d

Newson et al.'s 1-D disk autoencoder (JMIV 2020) trained without the radii 11..18 px
(`disks/holdout`), to see whether the code interpolates across the missing band. Networks
'disk_conv' (6 x [3x3 conv + bias + LeakyReLU 0.2 + subsampling], 8 channels; upsampling + conv
back; linear code and output) or, with `bias=False`, 'disk_conv_nobias' (positively homogeneous).
Plain squared L2 reconstruction summed over pixels, Adam(1e-3), batch 64.

Config arguments (after ':', comma-separated):
  regularizer=none|distance|denoising|encoder_weight_decay   the latent regulariser (default none)
  bias=False                                                 the variant without biases
  runlocal, seed=N                                           as every config
The regulariser weights are starting points to sweep (the paper gives none):
--config.objective.reg_weight=... ; the denoising σ is --config.objective.noise_level (0.1).
The full-range curves, Spearman over the band and held-out errors: bench/reproduce_geometry.py.
"""

from configs import common

# λ per regulariser [ours]: each brings its term to the order of the reconstruction at the start.
REG_WEIGHTS = {'none': 0.0, 'distance': 1e-5, 'denoising': 0.0, 'encoder_weight_decay': 1e-1}


def get_config(arg=None):
  args = common.parse_arg(arg, runlocal=False, seed=0, regularizer='none', bias=True)
  if args.regularizer not in REG_WEIGHTS:
    raise ValueError(f'regularizer={args.regularizer!r} is not one of {sorted(REG_WEIGHTS)}')
  c = common.base_config(f'runlocal={args.runlocal},seed={args.seed}')

  c.data.name = 'disks'
  c.data.builder_config = 'holdout'  # the train split lacks radii 11..18 px

  c.objective.name = 'regularized_ae'
  c.objective.latent_dim = 1
  c.objective.regularizer = args.regularizer
  c.objective.reg_weight = REG_WEIGHTS[args.regularizer]
  c.objective.noise_level = 0.1
  c.objective.image_scale = 1.0
  c.objective.output = 'linear'

  c.model.encoder = 'disk_conv' if args.bias else 'disk_conv_nobias'
  c.model.decoder = c.model.encoder
  c.model.encoder_kwargs = {'width': 8}
  c.model.decoder_kwargs = {'width': 8}

  c.batch_size = 64
  c.total_steps = 5_000
  c.optimizer.learning_rate = 1e-3

  c.log_every = 100
  c.image_every = 2_500
  c.checkpoint_every = 1_000
  c.eval_every = 0

  if c.runlocal:
    c.total_steps = 600
    c.log_every = 50
    c.image_every = 600
    c.checkpoint_every = 300
  return c

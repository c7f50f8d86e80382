r"""python launch/main.py --config=configs/pcaae_ellipses.py --workdir=workdirs/pcaae_ellipses
python launch/main.py --config=configs/pcaae_ellipses.py:runlocal --workdir=workdirs/pcaae_ellipses_local

The PCA-like autoencoder on the ellipses (Ladjal, Newson, Pham 2019; Pham et al., JMIV 2022), with
the released notebook's settings: 3 stages of one component each; per stage a new encoder head
('pcaae_conv': six stride-2 4x4 convs, 32c..c channels, LeakyReLU 0.2, then the affine-free
BatchNorm) and a new decoder ('pcaae_conv', 2k..32k channels), Adam(1e-3, 0.5, 0.999), batch 512,
mean binary cross-entropy plus the covariance loss normalised by k - 1 with weight 1; 100 epochs of
the notebook's 20,480 images per stage (4,000 steps at batch 512). The latent should order itself
as area, then the horizontal/vertical axis ratio, then the diagonal ratio.

Variants:
  --config.objective.cov_weight=0                     PCA-AE without the covariance loss
  --config.objective.reconstruction=l2_sum            the slides' summed L2 (re-tune cov_weight)
  --config.objective.normalization=k                  the slides' 1/k
  --config.objective.frozen_batch_norm=batch          the notebook's frozen heads on batch stats
  --config.objective.packet_size=2                    two components per stage
  --config.objective.steps_per_stage=N                total_steps follows (num_stages * N)
`runlocal` trains on the small ellipse grid (6,750 images), batch 64, 300 steps per stage.
"""

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.data.name = 'ellipses'
  c.data.builder_config = 'full'

  c.objective.name = 'pcaae'
  c.objective.num_stages = 3
  c.objective.packet_size = 1
  c.objective.steps_per_stage = 4_000
  c.objective.cov_weight = 1.0
  c.objective.rec_weight = 1.0
  c.objective.reconstruction = 'bce_mean'
  c.objective.normalization = 'k_minus_1'
  c.objective.bn_epsilon = 1e-5
  c.objective.bn_momentum = 0.9
  c.objective.frozen_batch_norm = 'running'

  c.model.encoder = 'pcaae_conv'
  c.model.decoder = 'pcaae_conv'

  c.batch_size = 512
  c.optimizer.learning_rate = 1e-3
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999

  c.log_every = 100
  c.image_every = 2_000
  c.checkpoint_every = 1_000
  c.eval_every = 0  # no ground-truth evaluators by default: see bench/reproduce_geometry.py

  if c.runlocal:
    c.data.builder_config = 'small'
    c.batch_size = 64
    c.objective.steps_per_stage = 300
    c.log_every = 50
    c.image_every = 300
    c.checkpoint_every = 150
  # One place derives the run's length from the stages (a later override of steps_per_stage or
  # num_stages on the command line follows through).
  c.total_steps = c.objective.get_ref('num_stages') * c.objective.get_ref('steps_per_stage')
  return c

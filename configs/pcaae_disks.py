r"""python launch/main.py --config=configs/pcaae_disks.py --workdir=workdirs/pcaae_disks
python launch/main.py --config=configs/pcaae_disks.py:runlocal --workdir=workdirs/pcaae_disks_local

The PCA-like autoencoder on disks whose grey level varies (Ladjal, Newson, Pham 2019): the
documented failure case, where the first component follows the radius but the second does not learn
the grey level well. Two stages of one component each, the ellipse notebook's networks and
optimizer ('pcaae_conv', Adam(1e-3, 0.5, 0.999)), mean binary cross-entropy plus the covariance
loss (k - 1, weight 1). Data: `disks/grey`, radius 128 x grey level 17 = 2,176 images.

Variants:
  --config.data.builder_config=full --config.objective.num_stages=1   the white disks, one component
  --config.objective.cov_weight=0                                     without the covariance loss
`runlocal`: batch 64, 300 steps per stage.
"""

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.data.name = 'disks'
  c.data.builder_config = 'grey'

  c.objective.name = 'pcaae'
  c.objective.num_stages = 2
  c.objective.packet_size = 1
  c.objective.steps_per_stage = 4_000
  c.objective.cov_weight = 1.0
  c.objective.rec_weight = 1.0
  c.objective.reconstruction = 'bce_mean'
  c.objective.normalization = 'k_minus_1'
  c.objective.frozen_batch_norm = 'running'

  c.model.encoder = 'pcaae_conv'
  c.model.decoder = 'pcaae_conv'

  c.batch_size = 256
  c.optimizer.learning_rate = 1e-3
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999

  c.log_every = 100
  c.image_every = 2_000
  c.checkpoint_every = 1_000
  c.eval_every = 0

  if c.runlocal:
    c.batch_size = 64
    c.objective.steps_per_stage = 300
    c.log_every = 50
    c.image_every = 300
    c.checkpoint_every = 150
  c.total_steps = c.objective.get_ref('num_stages') * c.objective.get_ref('steps_per_stage')
  return c

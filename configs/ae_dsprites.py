r"""python launch/main.py --config=configs/ae_dsprites.py --workdir=workdirs/ae_dsprites
python launch/main.py --config=configs/ae_dsprites.py:runlocal --workdir=workdirs/ae_dsprites_local

A deterministic autoencoder on dSprites: the reconstruction-only baseline.

dlib's training defaults (10-d code, batch 64, 300k steps, Adam(1e-4, 0.9, 0.999, 1e-8), conv
encoder 'conv_k2' and deconv decoder 'conv') with a Bernoulli reconstruction loss on logits;
`--config.objective.likelihood=mse` scores sigmoid outputs by squared error instead. The code has no
prior, so there are no prior samples among the pictures. The real data: --config.data.name=dsprites.
"""

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'ae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
  return c

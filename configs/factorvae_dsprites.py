r"""python launch/main.py --config=configs/factorvae_dsprites.py --workdir=workdirs/factorvae_dsprites
python launch/main.py --config=configs/factorvae_dsprites.py:runlocal --workdir=workdirs/factorvae_dsprites_local

FactorVAE on dSprites with the disentanglement_lib defaults (Kim & Mnih, ICML 2018).

dlib `unsupervised_study_v1`: 10 latents, batch 64, 300k steps, Bernoulli likelihood with logits;
VAE Adam(1e-4, 0.9, 0.999); discriminator an MLP of 6 × 1000 LeakyReLU(0.2) units with 2 logits,
Adam(1e-4, 0.5, 0.9); one batch per iteration with both optimizer steps on it
(`two_batches=False`; True gives the paper's second batch for the permuted codes).
γ = 35, the dSprites value of the 1Konny/FactorVAE script (the dlib study sweeps γ ∈ {10, 20, 30,
40, 50, 100}: e.g. --config.objective.gamma=40). The real data: --config.data.name=dsprites.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'factorvae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.gamma = 35.0
  c.objective.two_batches = False
  c.objective.discriminator_optimizer = ml_collections.ConfigDict(
      dict(name='adam', learning_rate=1e-4, b1=0.5, b2=0.9, eps=1e-8)
  )

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'
  c.model.discriminator = 'mlp_discriminator'

  c.evaluators = common.standard_evaluators(c.runlocal)

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
    c.objective.discriminator_optimizer.learning_rate = 1e-3
  return c

r"""python launch/main.py --config=configs/annealedvae_dsprites.py --workdir=workdirs/annealedvae_dsprites
python launch/main.py --config=configs/annealedvae_dsprites.py:runlocal --workdir=workdirs/annealedvae_local

AnnealedVAE on dSprites (Burgess et al. 2018) with disentanglement_lib's defaults.

Loss `NLL + γ·|E_b[KL] − C(t)|`, C(t) = min(C_max, C_max·t/T): γ = 1000, T = 100,000 steps,
C_max = 25 nats (the paper's dSprites value; the dlib study sweeps 5, 10, 25, 50, 75, 100).
Training as dlib: 10 latents, batch 64, 300k steps, Adam(1e-4), conv encoder/decoder.
`runlocal` shortens the capacity ramp to the run's length.
"""

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'annealedvae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.gamma = 1000.0
  c.objective.max_capacity = 25.0
  c.objective.anneal_steps = 100_000

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
    c.objective.anneal_steps = c.total_steps // 2
  return c

r"""python launch/main.py --config=configs/betavae_celeba.py --workdir=workdirs/betavae_celeba
python launch/main.py --config=configs/betavae_celeba.py:runlocal --workdir=workdirs/betavae_celeba_local

β-VAE (Higgins et al., ICLR 2017) on 64×64 CelebA with 64 latents, with the normalised β of
Higgins et al.: β_norm = β·M/N (M latents, N = 64·64·3 input values) and mean reductions (the
reconstruction a mean over pixels, the KL a mean over latents), so that β_norm compares across
latent and image sizes. Default β_norm = 4·64/12,288 ≈ 0.0208, i.e. β = 4 on summed terms.

Variants:
  --config.objective.beta=0.05                  another β_norm (β = β_norm·N/M)
  --config.objective.beta_mode=raw --config.objective.beta=4   β on summed terms (dlib)
  --config.objective.beta_schedule=linear_warmup,warmup_steps=10000   warm β up
Data, networks, training and evaluation as configs/vae_celeba.py (see configs/_celeba.py).
`runlocal` shortens the run (1,000 steps, small evaluation samples) for a CPU check on real data.
"""

import ml_collections

from configs import _celeba

BETA_RAW = 4.0


def get_config(arg=None):
  c = _celeba.base_config(arg, 'betavae')
  c.objective.beta_mode = 'normalized'
  c.objective.beta = BETA_RAW * c.objective.latent_dim / _celeba.NUM_PIXELS
  c.objective.beta_schedule = ml_collections.config_dict.placeholder(str)
  return c

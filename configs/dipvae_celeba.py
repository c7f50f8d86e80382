r"""python launch/main.py --config=configs/dipvae_celeba.py --workdir=workdirs/dipvae_celeba
python launch/main.py --config=configs/dipvae_celeba.py:runlocal --workdir=workdirs/dipvae_celeba_local

DIP-VAE-I (Kumar, Sattigeri, Balakrishnan, ICLR 2018) on 64×64 CelebA with 64 latents: the VAE
loss plus λ_od·Σ_{i≠j} Cov[μ]_ij² + λ_d·Σ_i (Cov[μ]_ii − 1)², with Cov[μ] the batch covariance of
the posterior means; λ_od = 10 and disentanglement_lib's λ_d = 10·λ_od. One of the baselines of
the mixing autoencoder's CelebA linear probe (Hu et al., CVPR 2018).

Variants: --config.objective.dip_type=ii (the covariance adds the mean posterior variance; then
λ_d = λ_od unless --config.objective.lambda_d is set); --config.objective.lambda_od=5.
Data, networks, training and evaluation as configs/vae_celeba.py (see configs/_celeba.py).
`runlocal` shortens the run (1,000 steps, small evaluation samples) for a CPU check on real data.
"""

import ml_collections

from configs import _celeba


def get_config(arg=None):
  c = _celeba.base_config(arg, 'dipvae')
  c.objective.dip_type = 'i'
  c.objective.lambda_od = 10.0
  c.objective.lambda_d = ml_collections.config_dict.placeholder(float)  # None: 10·λ_od (type I)
  return c

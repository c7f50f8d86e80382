r"""python launch/main.py --config=configs/vae_celeba.py --workdir=workdirs/vae_celeba
python launch/main.py --config=configs/vae_celeba.py:runlocal --workdir=workdirs/vae_celeba_local

The VAE (Kingma & Welling, ICLR 2014) on 64×64 CelebA with 64 latents: the unconditional baseline
of the conditional VAE (configs/cvae_celeba.py) and of the linear-probe comparison.

Data, networks, training and evaluation as configs/cvae_celeba.py (see configs/_celeba.py):
celeb_a64 (python launch/prepare_celeba.py), conv encoder 'conv_k2' and deconv decoder 'conv',
Bernoulli likelihood, Adam(1e-4), batch 64, 100k steps; a logistic probe per attribute and
retrieval mAP per latent on encoded samples.
Pictures: reconstructions, prior samples, traversals of the ten most active latents.
`runlocal` shortens the run (1,000 steps, small evaluation samples) for a CPU check on real data.
"""

from configs import _celeba


def get_config(arg=None):
  return _celeba.base_config(arg, 'vae')

r"""python launch/main.py --config=configs/betavae_shapes3d.py --workdir=workdirs/betavae_shapes3d
python launch/main.py --config=configs/betavae_shapes3d.py:runlocal --workdir=workdirs/betavae_shapes3d_local

β-VAE on pixels of the procedural Shapes3D-equivalent (Higgins et al., ICLR 2017), with
disentanglement_lib's defaults (Locatello et al., ICML 2019): 10 latents, batch 64, Adam(1e-4),
Bernoulli likelihood with logits, sums over pixels and latents, β = 4, dlib's conv encoder
('conv_k2') and deconv decoder ('conv'). It is the pixel baseline of the feature-aggregation VAE
(`configs/featvae_shapes3d.py`; `bench/reproduce_featvae_table.py` trains both on one budget).

Variants (after ':', comma-separated): `runlocal` (the small grid, Adam(1e-3), β warmed up
linearly from 0 over the run, small metric samples), `seed=N`.
"""

from configs import betavae_dsprites


def get_config(arg=None):
  c = betavae_dsprites.get_config(arg)
  c.data.name = 'procedural_shapes3d'
  return c

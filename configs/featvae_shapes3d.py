r"""python launch/featvae.py --config=configs/featvae_shapes3d.py --workdir=workdirs/featvae_shapes3d
python launch/featvae.py --config=configs/featvae_shapes3d.py:runlocal --workdir=workdirs/featvae_shapes3d_local

The feature-aggregation VAE (Seitzer, Foltyn, Kemeth, NeurIPS 2019 Disentanglement Challenge
report, arXiv 2002.12356) on the procedural Shapes3D-equivalent, standing in for MPI3D: finetune
the extractor with one head per factor, store its features, train the β-VAE on them, print the
table (FactorVAE, DCI, SAP, IRS, MIG). Rerunning the command resumes where it stopped.

Variants (after ':', comma-separated): `runlocal` (CPU: narrow extractor from scratch, the small
grid, short runs), `widths=released` (the released stage-2 VAE: [4096] / [4096] × 4, 18 latents,
120 epochs), `seed=N`. As published, the extractor starts from ImageNet VGG19-BN weights:
  --config.finetune.objective.pretrained_backbone=vgg19_bn.npz   (launch/convert_vgg19_bn.py)
Without it the full VGG19-BN trains from scratch.
"""

from configs import _featvae


def get_config(arg=None):
  c = _featvae.pipeline_config(arg, 'procedural_shapes3d')
  return c

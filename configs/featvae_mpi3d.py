r"""python launch/featvae.py --config=configs/featvae_mpi3d.py --workdir=workdirs/featvae_mpi3d
python launch/featvae.py --config=configs/featvae_mpi3d.py:runlocal --workdir=workdirs/featvae_mpi3d_local

The feature-aggregation VAE (Seitzer, Foltyn, Kemeth, NeurIPS 2019 Disentanglement Challenge
report, arXiv 2002.12356) on MPI3D (default variant 'toy'; the paper finetuned on toy ∪
realistic and scored on real): finetune the extractor with one head per factor (sizes 4, 4, 2, 3,
3, 40, 40), store its features, train the β-VAE on them, print the table (FactorVAE, DCI, SAP, IRS,
MIG). Rerunning the command resumes where it stopped.

MPI3D must be prepared once from the official .npz file:
  python launch/prepare_mpi3d.py --variant=toy --source_dir=<dir with mpi3d_toy.npz>
Other variants: --config.finetune.data.builder_config=realistic --config.featvae.data.builder_config=realistic.
Variants after ':': `runlocal`, `widths=released`, `seed=N` (see configs/_featvae.py). The
published extractor starts from ImageNet VGG19-BN:
  --config.finetune.objective.pretrained_backbone=vgg19_bn.npz   (launch/convert_vgg19_bn.py)
"""

from configs import _featvae


def get_config(arg=None):
  return _featvae.pipeline_config(arg, 'mpi3d', 'toy')

"""The feature-aggregation VAE against a pixel β-VAE on one budget, with the challenge's table.

    python bench/reproduce_featvae_table.py --output_dir=workdirs/featvae_vs_pixels      # CPU
    python bench/reproduce_featvae_table.py --output_dir=/tmp/fvp --budget=tiny          # smoke

Trains the feature route (`configs/featvae_shapes3d.py:runlocal`, finetuning and the VAE at the
budget's epochs) and the pixel β-VAE (`configs/betavae_shapes3d.py:runlocal`, the budget's steps)
on the small Shapes3D-equivalent grid, scores both with FactorVAE, DCI, SAP, IRS and MIG on the
same samples and prints them next to the paper's MPI3D-real scores, with step 1's per-factor
validation accuracy (`<output_dir>/comparison.md`, `runs.json`). Budgets: tiny (minutes),
cpu (about 35 minutes of a free 2-core machine). A rerun resumes where it stopped.
"""

import argparse
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from disentangle_jax.experiments import featvae_vs_pixels  # noqa: E402
from disentangle_jax.training import host_memory  # noqa: E402


def main(argv=None):
  host_memory.keep_freed_memory()  # as launch/main.py: XLA's temporaries reused
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--budget', default='cpu', choices=sorted(featvae_vs_pixels.BUDGETS))
  parser.add_argument('--data_dir', default=None, help="TFDS data dir (default: TFDS's own)")
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
  featvae_vs_pixels.run(args.output_dir, budget=args.budget, seed=args.seed,
                        data_dir=args.data_dir, configs_dir=os.path.join(ROOT, 'configs'))
  print(open(os.path.join(args.output_dir, 'comparison.md')).read())


if __name__ == '__main__':
  main()

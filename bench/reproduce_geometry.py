"""The geometric-attribute experiments of the PCA-like AE and Newson et al.'s disk autoencoders.

    python bench/reproduce_geometry.py --output_dir=workdirs/geometry                 # small budget
    python bench/reproduce_geometry.py --output_dir=/tmp/geo --budget=tiny            # smoke test
    python bench/reproduce_geometry.py --output_dir=workdirs/geometry_disks --experiments=disks \
        --budget=modest

Disks (Newson et al., JMIV 2020): 1-D autoencoders trained without radii 11..18 px, with no
regulariser, distance preservation, denoising, encoder weight decay, and without biases;
`disks/code_vs_radius.png` (one curve per variant, the band shaded), `error_vs_radius.png`,
`band_reconstructions.png`, `disk_scores.md` (Spearman inside the band, code interpolation error,
held-out/trained reconstruction error). Ellipses (Ladjal, Newson, Pham 2019): a 3-component
PCA-like AE against a plain AE, a β-VAE and the PCA-like AE without covariance loss;
`ellipses/<model>_navigation.png`, `<model>_attributes.png` (|correlation| of each component with
area, axis ratio, diagonal ratio and the true factors), `<model>_components.png`,
`attribute_correlations.md`. Grey-level disks (the PCA-like AE's documented failure case): a
2-component PCA-like AE, with and without the covariance loss, on disks whose radius and grey
level vary; `grey_disks/grey_correlations.md` and `<model>_attributes.png` (|correlation| of
each component with radius and grey level over the whole grid), `<model>_navigation.png`. Each
model trains in `<output_dir>/<experiment>/runs/<name>`; a rerun
resumes unfinished runs and reuses finished ones.

Budgets (steps; the CPU times are rough, on a free 2-core machine): tiny (20 disk steps, 10 per
PCA-AE stage: minutes, mostly compilation), small (1,000; 300), modest (3,000; 1,000), paper
(20,000; 4,000 per stage at batch 512 on the full ellipse grid: a GPU).
"""

import argparse
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from disentangle_jax import cli  # noqa: E402
from disentangle_jax.experiments import geometry  # noqa: E402
from disentangle_jax.training import host_memory  # noqa: E402


class _QuietJax(logging.Filter):
  """Drops JAX's INFO lines (backend discovery, e.g. 'Unable to initialize backend')."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or '/jax/' not in record.pathname


def main(argv=None):
  host_memory.keep_freed_memory()  # as launch/main.py: XLA's temporaries reused
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--budget', default='small', choices=sorted(geometry.BUDGETS))
  parser.add_argument('--experiments', default=','.join(geometry.EXPERIMENTS))
  parser.add_argument('--data_dir', default=None, help='TFDS data dir (default: TFDS\'s own)')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--verbose', action='store_true',
                      help="also show the libraries' INFO logs (JAX, orbax, TFDS)")
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
  if not args.verbose:
    # What trains and the training loop's progress lines stay; checkpoint and backend chatter go.
    cli.quiet_libraries()
    for handler in logging.getLogger().handlers:
      handler.addFilter(_QuietJax())
  results = geometry.run(args.output_dir, budget=args.budget,
                         experiments=[e for e in args.experiments.split(',') if e],
                         data_dir=args.data_dir, seed=args.seed,
                         configs_dir=os.path.join(ROOT, 'configs'))
  tables = {'disks': 'disk_scores.md', 'ellipses': 'attribute_correlations.md',
            'grey_disks': 'grey_correlations.md'}
  for name, table in tables.items():
    table = os.path.join(args.output_dir, name, table)
    if name in results and os.path.isfile(table):
      print(f'\n{name}:\n' + open(table).read())


if __name__ == '__main__':
  main()

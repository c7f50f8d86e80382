"""Reproduces the Sprites table of Hu et al. (CVPR 2018) on the Sprites-equivalent.

    python bench/reproduce_mixing_table.py --workdir_root=workdirs/mixing_table            # CPU budget
    python bench/reproduce_mixing_table.py --workdir_root=workdirs/mixing_table_gpu --budget=gpu
    python bench/reproduce_mixing_table.py --workdir_root=/tmp/mt --steps=20 --narrow \
        --builder_config=small --eval_examples=256                                       # smoke test

Trains every row of the table (AE, C+G, AE+C+G, MIX, MIX+C, MIX+G, MIX+C+G; `--variants` picks
some) with `configs/mixing_sprites.py`, each in its own workdir `<root>/<variant>`. A rerun
resumes an unfinished variant from its checkpoint and skips a finished one (its `table_row.json`
records the steps it was trained for; the Random row is kept in `<root>/random_row.json`). Then,
per variant: the validation and test splits (disjoint characters) are encoded, the chunk of each
attribute is chosen on validation (`argmax_c mAP(a, c)`) and its nearest-neighbour retrieval mAP
reported on test (`metrics.retrieval.retrieval_evaluation`). The table is printed in the paper's
layout (body, skin, vest, hair, arm, leg, pose, average) with the Random row twice: an untrained
encoder of the full model, and the closed-form expectation for random features on the test labels
(`expected_random_map`); the paper's numbers follow for comparison. `<root>/table.md` and
`<root>/table.json` keep the result.

Budgets:
  cpu (default): the configs' `runlocal` model (the images resized to 32×32, the networks at
      half width) on the full grid, 16 pairs per step, lr 1e-3, 900 steps per variant: about
      8 minutes a variant on a free 2-core CPU (0.5 s a step, measured), so the seven rows fit
      an hour. The paper's networks at 64×64 take 2.3 s a step on the same CPU.
  gpu: the paper's run: 64×64, full networks, 64 pairs per step, 10 epochs of the train split
      (12,600 steps).
`--narrow` shrinks every network (for a smoke test of the script only).

Diagnostic rows: `--set=key=value` (repeatable) overrides the config of every variant trained,
and `--tag=NAME` (required with `--set`) keeps those runs apart, in `<root>/<variant>_<NAME>`, as
rows titled `<row> (NAME)` of `<root>/table_<NAME>.md` (with their own Random row); e.g. the full
model with a weaker adversary:
`--variants=mix_c_g --set=objective.lambda_gan=0.1 --tag=lambda_g_0.1`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from disentangle_jax.metrics import retrieval  # noqa: E402
from disentangle_jax.objectives.mixing import VARIANT_TITLES, VARIANTS  # noqa: E402
from disentangle_jax.training import host_memory  # noqa: E402

ATTRIBUTES = ('body', 'skin', 'vest', 'hair', 'arm', 'leg', 'pose')
#: The paper's rows, in its order (Hu et al. 2018, Sprites mAP table, as reviewed).
PAPER = {
    'Random': (0.5, 0.25, 0.33, 0.17, 0.5, 0.5, 0.006, 0.32),
    'C+G': (0.53, 0.31, 0.41, 0.24, 0.51, 0.52, 0.06, 0.37),
    'AE': (0.56, 0.37, 0.40, 0.31, 0.54, 0.56, 0.46, 0.46),
    'AE+C+G': (0.59, 0.50, 0.53, 0.46, 0.56, 0.54, 0.44, 0.52),
    'MIX': (0.57, 0.61, 0.51, 0.62, 0.54, 0.94, 0.53, 0.62),
    'MIX+C': (0.57, 0.65, 0.43, 0.63, 0.55, 0.58, 0.51, 0.56),
    'MIX+G': (0.59, 0.31, 0.44, 0.24, 0.54, 0.96, 0.47, 0.51),
    'MIX+C+G': (0.58, 0.80, 0.94, 0.49, 0.58, 0.96, 0.52, 0.70),
}
ORDER = ('c_g', 'ae', 'ae_c_g', 'mix', 'mix_c', 'mix_g', 'mix_c_g')
CPU_STEPS = 900
NARROW = {
    'encoder_kwargs': {'base_features': 8, 'max_features': 16},
    'decoder_kwargs': {'top_features': 16, 'bottom_features': 8},
    'discriminator_kwargs': {'base_features': 8, 'top_features': 16},
    'classifier_kwargs': {'dense_features': 32},
}


def load_sprites_config(arg: str):
  spec = importlib.util.spec_from_file_location(
      'mixing_sprites', os.path.join(ROOT, 'configs', 'mixing_sprites.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def variant_config(variant: str, args):
  """The config of one row under the chosen budget."""
  cpu = args.budget == 'cpu'
  config = load_sprites_config(('runlocal,' if cpu else '') + f'variant={variant},seed={args.seed}')
  with config.unlocked():
    config.data.builder_config = args.builder_config
    if args.data_dir:
      config.data.data_dir = args.data_dir
    if cpu or args.steps:
      config.total_steps = args.steps or CPU_STEPS
    if args.batch_size:
      config.batch_size = args.batch_size
    config.evaluators = {}  # the table is measured after training, on validation and test
    config.eval_every = config.total_steps
    config.image_every = config.total_steps
    config.checkpoint_every = max(1, min(config.checkpoint_every, config.total_steps))
    if args.narrow:
      for key, value in NARROW.items():
        config.model[key] = value
    if args.conv_impl:
      config.model.conv_impl = args.conv_impl
    for override in args.set:
      apply_override(config, override)
  return config


def apply_override(config, override: str) -> None:
  """'objective.lambda_gan=0.1' → config.objective.lambda_gan = 0.1 (read as the sweeps'
  `--set`)."""
  from disentangle_jax import sweeps  # pylint: disable=g-import-not-at-top

  key, value = sweeps.parse_assignment(override, many=False)
  *parents, name = key.split('.')
  node = config
  for parent in parents:
    node = node[parent]
  if name not in node:
    raise KeyError(f'--set {override!r}: the config has no key {key!r}')
  node[name] = value


def tag_suffix(args) -> str:
  """'_<tag>' for the `--tag` runs' workdirs and files, '' otherwise."""
  return f'_{args.tag}' if args.tag else ''


def row_name(variant: str, args) -> tuple[str, str]:
  """(workdir name, row title) of a variant under `--tag`."""
  title = VARIANT_TITLES[variant] + (f' ({args.tag})' if args.tag else '')
  return variant + tag_suffix(args), title


def encode_splits(objective, params, model_state, data_config, limit: int | None):
  """{'validation': (codes, factors), 'test': (codes, factors)}, each split's first `limit`
  records (all of them by default)."""
  from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from disentangle_jax.training import evaluation  # pylint: disable=g-import-not-at-top

  splits = pipeline.dataset_info(data_config).splits
  out = {}
  for split in ('validation', 'test'):
    n = splits[split] if limit is None else min(limit, splits[split])
    out[split] = evaluation.encode_split(objective, params, model_state, data_config, split, n,
                                         'factors')
  return out


def table_row(objective, params, model_state, data_config, limit) -> dict:
  """Retrieval mAP per attribute: chunk chosen on validation, reported on test."""
  encoded = encode_splits(objective, params, model_state, data_config, limit)
  result = retrieval.retrieval_evaluation(*encoded['validation'], *encoded['test'],
                                          num_chunks=objective.num_chunks)
  return {
      'map': [float(v) for v in result['map']],
      'average': float(result['map_mean']),
      'chunk_for_attribute': [int(c) for c in result['chunk_for_attribute']],
      'map_all_chunks': [float(v) for v in result['map_all_chunks']],
      'expected_random': [float(v) for v in result['random_map']],
      'num_validation': int(len(encoded['validation'][0])),
      'num_test': int(len(encoded['test'][0])),
  }


def train_variant(variant: str, args, progress=None) -> dict:
  """Trains (or resumes, or skips) one row and measures it; returns its table row.

  `progress` (a `TaskProgress` over rows) shows the row being trained and counts it when done.
  """
  from disentangle_jax.training import restore, train  # pylint: disable=g-import-not-at-top

  def say(text):
    if progress is None:
      print(text, flush=True)
    else:
      progress.message(text)

  name, title = row_name(variant, args)
  workdir = os.path.join(args.workdir_root, name)
  row_file = os.path.join(workdir, 'table_row.json')
  config = variant_config(variant, args)
  if os.path.exists(row_file):
    with open(row_file) as f:
      row = json.load(f)
    if row.get('steps') == int(config.total_steps):
      say(f'{title}: done earlier ({row["steps"]} steps), skipped.')
      if progress is not None and progress.total:
        progress.total -= 1  # not work to wait for: the ETA counts the rows left to train
      return row
  if progress is not None:
    progress.set_note(f'training {title} ({int(config.total_steps)} steps)')
  start = time.time()
  train.train_and_evaluate(config, workdir)
  if progress is not None:
    progress.set_note(f'measuring {title}')
  trained = restore.load_trained_model(workdir)
  row = table_row(trained.objective, trained.params, trained.model_state, trained.config.data,
                  args.eval_examples)
  row.update(variant=variant, title=title, steps=int(trained.step),
             seconds=round(time.time() - start, 1))
  os.makedirs(workdir, exist_ok=True)
  with open(row_file, 'w') as f:
    json.dump(row, f, indent=1)
  say(f'{title}: {row["steps"]} steps in {row["seconds"]:.0f} s, '
      f'average mAP {row["average"]:.3f}')
  if progress is not None:
    progress.advance(1)
  return row


def random_row(args) -> dict:
  """The untrained full model's encoder (the Random row), measured like the others."""
  from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from disentangle_jax.training import train  # pylint: disable=g-import-not-at-top

  config = variant_config('mix_c_g', args)
  row_file = os.path.join(args.workdir_root, f'random_row{tag_suffix(args)}.json')
  key = {'builder_config': args.builder_config, 'eval_examples': args.eval_examples,
         'seed': args.seed, 'narrow': args.narrow, 'budget': args.budget, 'set': args.set}
  if os.path.exists(row_file):
    with open(row_file) as f:
      row = json.load(f)
    if row.get('key') == key:
      return row
  info = pipeline.dataset_info(config.data)
  objective = train.build_objective(config, info)
  params, model_state = objective.init(jax.random.key(args.seed), train.init_batch(info, 2))
  row = table_row(objective, params, model_state, config.data, args.eval_examples)
  row.update(variant='random', title='Random (untrained encoder)', steps=0, key=key)
  with open(row_file, 'w') as f:
    json.dump(row, f, indent=1)
  return row


def format_table(rows: list[dict]) -> str:
  """Markdown: ours (with the closed-form Random row), then the paper's."""
  head = '| method | ' + ' | '.join(ATTRIBUTES) + ' | average |'
  rule = '|---' * (len(ATTRIBUTES) + 2) + '|'
  lines = ['Ours (test split; chunk per attribute chosen on validation):', '', head, rule]
  expected = rows[0]['expected_random']
  lines.append('| Random (expected) | ' + ' | '.join(f'{v:.3f}' for v in expected)
               + f' | {np.mean(expected):.3f} |')
  for row in rows:
    lines.append(f'| {row["title"]} | ' + ' | '.join(f'{v:.3f}' for v in row['map'])
                 + f' | {row["average"]:.3f} |')
  lines += ['', 'Chunk chosen per attribute (on validation):', '',
            '| method | ' + ' | '.join(ATTRIBUTES) + ' |', '|---' * (len(ATTRIBUTES) + 1) + '|']
  for row in rows:
    lines.append(f'| {row["title"]} | ' + ' | '.join(str(c) for c in row['chunk_for_attribute'])
                 + ' |')
  lines += ['', 'Hu et al. (2018), Sprites:', '', head, rule]
  for name, values in PAPER.items():
    lines.append(f'| {name} | ' + ' | '.join(f'{v:g}' for v in values) + ' |')
  return '\n'.join(lines)


def main(argv=None):
  host_memory.keep_freed_memory()  # as launch/main.py: XLA's temporaries reused
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir_root', default='workdirs/mixing_table')
  parser.add_argument('--budget', choices=('cpu', 'gpu'), default='cpu')
  parser.add_argument('--steps', type=int, default=None, help='steps per variant (overrides)')
  parser.add_argument('--variants', default=','.join(ORDER),
                      help=f'comma-separated, from {",".join(ORDER)}')
  parser.add_argument('--data_dir', default=None, help='TFDS data dir')
  parser.add_argument('--builder_config', default='full', help="'full' (default) or 'small'")
  parser.add_argument('--batch_size', type=int, default=None, help='images per step (2 x pairs)')
  parser.add_argument('--eval_examples', type=int, default=None,
                      help='encode at most this many validation and test images (default all)')
  parser.add_argument('--narrow', action='store_true', help='tiny networks (smoke test only)')
  parser.add_argument('--conv_impl', choices=('auto', 'fast', 'xla'), default=None,
                      help="the networks' convolutions (default: the config's, 'auto'); 'xla' "
                           'compiles faster on a CPU (smoke tests)')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                      help='a config override for every variant trained (needs --tag)')
  parser.add_argument('--tag', default='', help='names the --set runs and their rows')
  args = parser.parse_args(argv)
  if args.set and not args.tag:
    parser.error('--set changes the runs: name them with --tag')
  variants = [v.strip() for v in args.variants.split(',') if v.strip()]
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    parser.error(f'unknown variants {unknown}; choose from {",".join(ORDER)}')

  from absl import flags  # pylint: disable=g-import-not-at-top  (grain reads absl flags)

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  os.makedirs(args.workdir_root, exist_ok=True)
  from disentangle_jax.training.progress import TaskProgress  # pylint: disable=g-import-not-at-top

  chosen = [v for v in ORDER if v in variants]
  # One line that says which row trains, how many are done and an ETA (rows take minutes each,
  # so the first counts towards the rate); each row's result is a line of its own above it.
  with TaskProgress('mixing table', len(chosen), unit='rows', skip_first=False) as progress:
    progress.set_note('the Random row (untrained encoder)')
    rows = [random_row(args)] + [train_variant(v, args, progress) for v in chosen]
  table = format_table(rows)
  print(table)
  with open(os.path.join(args.workdir_root, f'table{tag_suffix(args)}.md'), 'w') as f:
    f.write(table + '\n')
  with open(os.path.join(args.workdir_root, f'table{tag_suffix(args)}.json'), 'w') as f:
    json.dump(rows, f, indent=1)
  return rows


if __name__ == '__main__':
  main()

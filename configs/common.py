"""Run-level defaults shared by every experiment config.

A config file calls `base_config(arg)` and then sets its objective, model and data. `arg` is the
text after ':' in `--config=configs/x.py:arg`: comma-separated words or `key=value` pairs, e.g.
`runlocal` (shrink everything for a CPU run of minutes) or `runlocal,seed=3`.
"""

import ml_collections

from disentangle_jax.data import pipeline


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses 'runlocal,seed=3' into {'runlocal': True, 'seed': 3} over typed defaults."""
  parsed = ml_collections.ConfigDict(defaults)
  for word in (arg or '').split(','):
    word = word.strip()
    if not word:
      continue
    key, _, value = word.partition('=')
    if key not in parsed:
      raise KeyError(f'unknown config argument {key!r}; known: {", ".join(sorted(parsed))}')
    default = parsed[key]
    if not value:
      parsed[key] = True
    elif isinstance(default, bool):
      parsed[key] = value.lower() in ('1', 'true', 'yes')
    else:
      parsed[key] = type(default)(value)
  return parsed


def standard_evaluators(runlocal: bool) -> ml_collections.ConfigDict:
  """dlib's metric set at its sample sizes; under runlocal, the cheap ones on small samples."""
  if runlocal:
    small = {'num_train': 2_000, 'num_test': 1_000}
    return ml_collections.ConfigDict({
        'mig': small, 'unsupervised': small, 'dci_lasso': small,
        'factorvae': {'num_variance_estimate': 2_000, 'num_train': 200, 'num_eval': 100},
    })
  return ml_collections.ConfigDict({
      name: {} for name in (
          'betavae', 'factorvae', 'mig', 'sap', 'dci', 'modularity_explicitness', 'irs',
          'unsupervised',
      )
  })


def base_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The keys every run has. `runlocal` shrinks steps, intervals and data for a CPU run."""
  args = parse_arg(arg, runlocal=False, seed=0)
  c = ml_collections.ConfigDict()
  c.seed = args.seed
  c.runlocal = args.runlocal

  c.data = pipeline.default_data_config()  # see disentangle_jax.data.pipeline for the keys

  c.batch_size = 64  # global, split over every device of every process
  c.total_steps = 300_000

  c.objective = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.conv_impl = 'auto'  # 'fast' re-formulated convs on CPU, plain XLA convs elsewhere

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-4
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.eps = 1e-8

  c.log_every = 100
  c.image_every = 5_000
  c.checkpoint_every = 5_000
  c.keep_checkpoints = 3
  c.eval_every = 50_000
  c.evaluators = ml_collections.ConfigDict()
  # Examples of the eval split that the objective's own scores (Objective.evaluate) read.
  c.objective_eval_examples = ml_collections.config_dict.placeholder(int)
  # The split whose factors the ground-truth metrics sample (None: the whole factor grid).
  c.eval_ground_truth_split = ml_collections.config_dict.placeholder(str)
  # Labelled evaluation scores codes against 'labels' or 'factors' (None: labels if any).
  c.eval_targets = ml_collections.config_dict.placeholder(str)
  # Early stopping on a validation loss (every=0: off); see training/early_stopping.py.
  c.early_stopping = ml_collections.ConfigDict({
      'every': 0, 'patience': 5, 'min_delta': 0.0,
      'loss': ml_collections.config_dict.placeholder(str), 'num_examples': 1024,
      'split': ml_collections.config_dict.placeholder(str),
  })
  # Wait for every step's outputs: needed for fake multi-device CPU runs, where many steps of
  # collectives in flight can deadlock XLA's CPU runtime on few cores.
  c.block_every_step = False

  if args.runlocal:
    c.data.builder_config = 'small'
    c.total_steps = 600
    c.log_every = 50
    c.image_every = 300
    c.checkpoint_every = 200
    c.eval_every = 600
  return c

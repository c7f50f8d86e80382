"""The feature-aggregation VAE, end to end: finetune, extract, train the VAE, print the table.

Seitzer, Foltyn and Kemeth, "Improved Disentanglement through Learned Aggregation of Convolutional
Feature Maps" (NeurIPS 2019 Disentanglement Challenge report, arXiv 2002.12356):

1. `finetune` (§2.1): the extractor with one linear head per factor ('factor_heads'), trained by
   the one train loop on `config.finetune` (the training split's first 80 %, by default); the
   validation accuracy per factor (on the rest) goes to `finetune/validation.json` and the log;
   the extractor alone to `finetune/extractor.npz`.
2. `features` (§2.2): that extractor, frozen, over the whole training split in batches (sharded
   over the local devices), stored with the factors in `features/` (`feature_store`).
3. `featvae` (§2.2-2.3): the VAE ('featvae') trained by the one train loop on batches of the
   stored features, on `config.featvae`, so `load_trained_model` and `launch/evaluate.py` read
   `featvae/` like any workdir (its `encode` takes images).

Then the challenge's table (FactorVAE, DCI, SAP, IRS, MIG) of the step-3 model, printed and
written to `table.json`. Each step lives in `<workdir>/<step>` and counts as done when its final
output exists (the last checkpoint and `extractor.npz`; `store.json`; the last checkpoint), so a
rerun of the same command continues where a killed run stopped: inside step 1 or 3 from its
newest checkpoint, step 2 from its start.

Epochs are converted to steps here, from the size of the data each step reads.
Multi-host runs are not supported by steps 2-3 (one process; several local devices are used).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from disentangle_jax import errors
from disentangle_jax.data import pipeline
from disentangle_jax.metrics import suite as metrics_suite
from disentangle_jax.networks import vgg
from disentangle_jax.objectives import _features
from disentangle_jax.objectives import factor_heads as factor_heads_lib
from disentangle_jax.pipelines import feature_store
from disentangle_jax.training import evaluation, sharding
from disentangle_jax.training import restore as restore_lib
from disentangle_jax.training import train as train_lib
from disentangle_jax.training import workdir as workdir_lib

STEPS = ('finetune', 'features', 'featvae')
#: (column, metric, result key): the challenge's table (Seitzer et al. 2020, Table 1).
TABLE = (('FactorVAE', 'factorvae', 'eval_accuracy'), ('DCI', 'dci', 'disentanglement'),
         ('SAP', 'sap', 'SAP_score'), ('IRS', 'irs', 'IRS'), ('MIG', 'mig', 'discrete_mig'))
COLUMNS = tuple(column for column, _, _ in TABLE)


def step_dirs(workdir: str) -> dict[str, str]:
  return {step: os.path.join(workdir, step) for step in STEPS}


def _steps_for(epochs: float, num_examples: int, batch_size: int) -> int:
  return max(1, int(round(float(epochs) * num_examples / batch_size)))


def _with(config: ml_collections.ConfigDict, **values) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted keys set (e.g. objective__extractor for objective.extractor)."""
  out = ml_collections.ConfigDict(config.to_dict())
  for dotted, value in values.items():
    node, *path = dotted.split('__')
    parent = out
    for part in [node, *path][:-1]:
      parent = parent[part]
    parent[[node, *path][-1]] = value
  return out


def _final_checkpoint_exists(workdir: str, total_steps: int) -> bool:
  return total_steps in restore_lib.checkpoint_steps(workdir)


# -- step 1 ------------------------------------------------------------------------------------


def finetune_config(config) -> ml_collections.ConfigDict:
  """The step-1 run config, its length in steps from `config.finetune_epochs`."""
  info = pipeline.dataset_info(config.finetune.data)
  steps = _steps_for(config.finetune_epochs, info.num_examples, config.finetune.batch_size)
  return _with(config.finetune, total_steps=steps)


def imagenet_extractor(config, path: str) -> dict:
  """Step 1 of the stage-1 variant (Seitzer et al., arXiv 2002.10003): no finetuning; the
  step-3 extractor (`config.featvae.model.extractor`, e.g. R-MAC over VGG19-BN at 224 px) with
  torchvision's ImageNet weights (`config.imagenet_backbone`, from launch/convert_vgg19_bn.py)
  written as the extractor file."""
  backbone_path = config.get('imagenet_backbone')
  if not backbone_path:
    raise errors.UserError('config.finetune_epochs=0 (no finetuning) needs '
                           'config.imagenet_backbone: the .npz of ImageNet VGG19-BN made by '
                           'launch/convert_vgg19_bn.py')
  run_config = _with(config.featvae, objective__extractor=None)
  info = pipeline.dataset_info(run_config.data)
  objective = train_lib.build_objective(run_config, info)
  template = objective.load_frozen()['extractor']  # initialised; the backbone is replaced
  variables = vgg.set_backbone(template, vgg.load_vgg19_bn(backbone_path))
  _features.save_extractor(path, variables)
  return {'accuracy': {}, 'finetuned': False, 'imagenet_backbone': backbone_path}


def run_finetune(config, directory: str) -> dict:
  """Step 1: trains (or resumes) the extractor with factor heads; writes `extractor.npz` and
  `validation.json`; returns the validation accuracies. With `config.finetune_epochs=0` the
  extractor is ImageNet VGG19-BN unchanged (`imagenet_extractor`)."""
  extractor_path = os.path.join(directory, 'extractor.npz')
  report_path = os.path.join(directory, 'validation.json')
  if float(config.finetune_epochs) == 0:
    if not (os.path.exists(report_path) and os.path.exists(extractor_path)):
      os.makedirs(directory, exist_ok=True)
      report = imagenet_extractor(config, extractor_path)
      workdir_lib.write_text_atomically(report_path, json.dumps(report, indent=1))
    with open(report_path) as f:
      return json.load(f)
  run_config = finetune_config(config)
  if not (_final_checkpoint_exists(directory, run_config.total_steps)
          and os.path.exists(extractor_path)):
    train_lib.train_and_evaluate(run_config, directory)
  if os.path.exists(report_path) and os.path.exists(extractor_path):
    with open(report_path) as f:
      return json.load(f)
  model = restore_lib.load_trained_model(directory)
  objective = model.objective
  batches = pipeline.make_eval_iterator(
      run_config.data, batch_size=int(config.features.batch_size),
      split=config.finetune_validation_split)
  report = factor_heads_lib.validation_accuracy(objective, model.params, model.model_state,
                                                batches)
  report['split'] = config.finetune_validation_split
  report['step'] = model.step
  logging.info('Step 1 validation accuracy per factor (%s): %s', report['split'],
               ', '.join(f'{k} {v:.4f}' for k, v in report['accuracy'].items()))
  _features.save_extractor(extractor_path,
                           objective.extractor_variables(model.params, model.model_state))
  workdir_lib.write_text_atomically(report_path, json.dumps(report, indent=1))
  return report


# -- step 2 ------------------------------------------------------------------------------------


def extractor_config(config, extractor_path: str) -> ml_collections.ConfigDict:
  """The step-3 run config (the VAE reads the extractor file); also what step 2 extracts with."""
  return _with(config.featvae, objective__extractor=os.path.abspath(extractor_path))


def run_features(config, extractor_path: str, directory: str) -> feature_store.FeatureStore:
  """Step 2: the frozen extractor over the training split of `config.featvae.data`, stored."""
  if feature_store.is_complete(directory):
    return feature_store.FeatureStore(directory)
  run_config = extractor_config(config, extractor_path)
  info = pipeline.dataset_info(run_config.data)
  objective = train_lib.build_objective(run_config, info)
  params = objective.load_frozen()
  mesh = sharding.make_mesh()
  devices = mesh.devices.size
  batch_size = int(config.features.batch_size)
  batch_size += -batch_size % devices  # whole rows per device
  extract = jax.jit(objective.extract, in_shardings=(sharding.replicated(mesh),
                                                      sharding.batch_sharded(mesh)))
  params = jax.device_put(params, sharding.replicated(mesh))
  split = run_config.data.get('split', 'train')
  writer = None
  start = 0
  for batch in pipeline.make_eval_iterator(run_config.data, batch_size=batch_size, split=split):
    images = np.asarray(batch['image'])
    n = len(images)
    if n < batch_size:  # the last batch, padded to the compiled shape
      images = np.concatenate([images, np.repeat(images[-1:], batch_size - n, axis=0)])
    features = np.asarray(extract(params, images))[:n]
    if writer is None:
      writer = feature_store.StoreWriter(
          directory, info.num_examples, features.shape[1], factor_names=info.factor_names,
          factor_sizes=info.factor_sizes,
          source={'dataset': info.name, 'split': split, 'extractor': extractor_path})
    writer.write(start, features, np.asarray(batch['factors']))
    start += n
  if writer is None:
    raise ValueError(f'split {split!r} of {info.name} is empty: nothing to extract')
  writer.close()
  logging.info('Step 2: stored %d features of %d dims in %s.', start, writer.meta['feature_dim'],
               directory)
  return feature_store.FeatureStore(directory)


# -- step 3 ------------------------------------------------------------------------------------


def featvae_config(config, extractor_path: str, store) -> ml_collections.ConfigDict:
  """The step-3 run config: total steps and steps per epoch from the store's size."""
  run_config = extractor_config(config, extractor_path)
  per_epoch = max(1, len(store) // int(run_config.batch_size))
  steps = _steps_for(config.featvae_epochs, len(store), run_config.batch_size)
  return _with(run_config, total_steps=steps, objective__steps_per_epoch=per_epoch)


def train_on_features(run_config, directory: str, store_directory: str):
  """Trains the VAE with the one train loop, on batches of the stored features (its checkpoints
  carry the store iterator's position, so a killed run resumes on the batch it would have read)."""
  data = feature_store.make_train_iterator(store_directory, batch_size=run_config.batch_size,
                                           seed=run_config.seed)
  return train_lib.train_and_evaluate(run_config, directory, train_iterator=data)


def run_featvae(config, extractor_path: str, store, directory: str) -> None:
  """Step 3, unless its final checkpoint exists."""
  run_config = featvae_config(config, extractor_path, store)
  if not _final_checkpoint_exists(directory, run_config.total_steps):
    train_on_features(run_config, directory, store.directory)


# -- the table ---------------------------------------------------------------------------------


def challenge_table(directory: str, settings: Any = None, *, seed: int | None = None) -> dict:
  """{column: score} of the model in `directory` (FactorVAE, DCI, SAP, IRS, MIG), sampled from the
  ground-truth factors and encoded from images as every evaluation does."""
  model = restore_lib.load_trained_model(directory)
  names = [metric for _, metric, _ in TABLE]
  settings = {name: dict((settings or {}).get(name, {}) or {}) for name in names}
  evaluator = evaluation.Evaluator(model.objective, model.config, writer=None, info=model.info)
  results = evaluator.evaluate(model.params, model.model_state, names, settings, seed=seed)
  scalars = metrics_suite.scalar_results(results)
  return {column: scalars.get(f'{metric}/{key}', float('nan')) for column, metric, key in TABLE}


def format_rows(rows: dict[str, dict[str, float]]) -> str:
  """The table as Markdown: one header row, then a row of scores per model name."""
  lines = ['| model | ' + ' | '.join(COLUMNS) + ' |', '|---|' + '---|' * len(COLUMNS)]
  for name, row in rows.items():
    lines.append(f'| {name} | ' + ' | '.join(f'{row[c]:.3f}' for c in COLUMNS) + ' |')
  return '\n'.join(lines)


def format_accuracy(accuracy: dict[str, float]) -> str:
  """Step 1's validation accuracy per factor on one line."""
  return ', '.join(f'{k} {v:.3f}' for k, v in accuracy.items()) or 'none (no finetuning)'


def format_table(row: dict, name: str = 'this run') -> str:
  """The table of one model's scores as Markdown."""
  return format_rows({name: row})


def run_pipeline(config: ml_collections.ConfigDict, workdir: str, *, score: bool = True) -> dict:
  """Runs (or resumes) the three steps in `workdir/<step>`, then scores the VAE.

  Returns {'validation': step 1's report, 'table': {column: score}}; the table is also printed
  and written to `<workdir>/table.json`. `score=False` stops after step 3 (no table).
  """
  dirs = step_dirs(workdir)
  os.makedirs(workdir, exist_ok=True)
  logging.info('Step 1/3: finetuning the extractor in %s.', dirs['finetune'])
  validation = run_finetune(config, dirs['finetune'])
  extractor_path = os.path.join(dirs['finetune'], 'extractor.npz')
  logging.info('Step 2/3: extracting features into %s.', dirs['features'])
  store = run_features(config, extractor_path, dirs['features'])
  logging.info('Step 3/3: the VAE on %d stored features in %s.', len(store), dirs['featvae'])
  run_featvae(config, extractor_path, store, dirs['featvae'])
  if not score:
    return {'validation': validation, 'table': None}
  table_settings = config.table.to_dict() if config.get('table') is not None else {}
  table = challenge_table(dirs['featvae'], table_settings, seed=config.seed)
  text = format_table(table, name=os.path.basename(os.path.abspath(workdir)))
  print(f'Step 1 validation accuracy: {format_accuracy(validation["accuracy"])}\n{text}',
        flush=True)
  workdir_lib.write_text_atomically(os.path.join(workdir, 'table.json'),
                                    json.dumps({'validation': validation, 'table': table},
                                               indent=1))
  return {'validation': validation, 'table': table}

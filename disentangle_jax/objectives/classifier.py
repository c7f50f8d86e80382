"""A supervised image classifier: one network from the registry, a softmax or a sigmoid head.

Two uses in this project:
* Zhou's "Mixture of MNIST" unit experiment (the study that motivates Network Dissection, Bau,
  Zhou, Khosla, Oliva, Torralba, CVPR 2017): a small convnet ('digits_convnet') classifies the
  unordered pair of digits in an image with a softmax over the pairs (45 classes; 28 in the
  distractor variant), and its units are then scored as digit detectors;
* the discriminative model of the CelebA study: 40 binary attributes, one sigmoid output each,
  optionally weighted for imbalanced attributes (positives weighted by `n_neg / n_pos`, as
  `pos_weight` of a weighted binary cross-entropy).

Config (`config.objective`):
  name:         'classifier'
  head:         'softmax' (one class per image, `batch['label'][:, 0]`) | 'sigmoid' (one binary
                label per column of `batch['label']`)
  num_classes:  softmax classes; None derives them from the data (`DatasetInfo.label_sizes`, else
                the TFDS label feature's class count, else the largest training label + 1)
  pos_weight:   sigmoid only: None (unweighted) | 'auto' (n_neg / n_pos of each attribute over the
                training split) | a list of one weight per attribute
  pretrained:   None (from scratch) | path of an `.npz` of parameters ('/'-joined paths as keys, as
                `save_params_npz` writes them) that replace the initial values of the same names
  pretrained_exclude: path prefixes not loaded (e.g. ('classifier',) to train a new head)
  representation: what `encode` returns: 'features' (the pooled features the last linear layer
                reads, for networks that return their activations; the default when available) |
                'logits'
Network: `config.model.network` (default 'digits_convnet') with `config.model.network_kwargs`;
it is built with `num_outputs` = the classes or labels.
Optimizer: `config.optimizer`. Group: 'classifier'. The model has no decoder and no prior.

Training metrics: 'accuracy' (softmax: top-1; sigmoid: mean over attributes of the thresholded
outputs). Validation accuracy per class or attribute and balanced accuracy: `Classifier.evaluate`
(scalars) over `evaluate_split` (arrays).
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Iterable, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from disentangle_jax.objectives import register
from disentangle_jax.objectives._common import build_network
from disentangle_jax.objectives.base import Objective, rng_stream
from disentangle_jax.optimizers import make_optimizer

HEADS = ('softmax', 'sigmoid')
REPRESENTATIONS = ('features', 'logits')


# -- parameters in .npz files ------------------------------------------------------------------


def flatten_params(tree) -> dict[str, np.ndarray]:
  """{'a/b/kernel': array} of a nested mapping of arrays."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(tree), sep='/')
  return {k: np.asarray(v) for k, v in flat.items()}


def save_params_npz(path: str, params) -> None:
  """Writes a parameter tree as an `.npz` whose keys are the '/'-joined paths."""
  with open(path, 'wb') as f:
    np.savez(f, **flatten_params(params))


def load_params_npz(path: str, template, *, exclude: Iterable[str] = (), owner: str = ''):
  """`template` (a parameter tree) with the leaves named in the `.npz` at `path` replaced.

  Every leaf of the file must exist in `template` with the same shape (an error names the first
  one that does not); leaves of `template` absent from the file keep their values; paths that
  start with a prefix in `exclude` are neither loaded nor checked.
  """
  who = f' for {owner}' if owner else ''
  if not os.path.exists(path):
    raise FileNotFoundError(f'pretrained weights {path!r}{who} do not exist; give the path of an '
                            '.npz written by save_params_npz, or pretrained=None to train from '
                            'scratch')
  excluded = tuple(p.strip('/') for p in exclude)

  def skip(key):
    return any(key == p or key.startswith(p + '/') for p in excluded)

  flat = flatten_params(template)
  with np.load(path, allow_pickle=False) as data:
    stored = {k: data[k] for k in data.files if not skip(k)}
  for key, value in stored.items():
    if key not in flat:
      raise ValueError(f'pretrained weights {path!r}{who} hold {key!r}, which the network does '
                       f'not have (its parameters: {", ".join(sorted(flat)[:8])}, ...); '
                       'exclude it with pretrained_exclude')
    if tuple(value.shape) != tuple(flat[key].shape):
      raise ValueError(f'pretrained weights {path!r}{who}: {key!r} has shape {value.shape}, the '
                       f'network expects {flat[key].shape}; exclude it with pretrained_exclude')
  merged = {k: stored.get(k, v).astype(v.dtype) for k, v in flat.items()}
  return flax.traverse_util.unflatten_dict(merged, sep='/'), sorted(stored)


# -- data-derived sizes --------------------------------------------------------------------------


def training_labels(data_config) -> np.ndarray:
  """`batch['label']` of every training record, int32 [N, L] (labels only: no image decoded)."""
  from disentangle_jax.data import datasets  # pylint: disable=g-import-not-at-top

  reader = datasets.open_dataset(
      data_config.name, builder_config=data_config.get('builder_config', None),
      data_dir=data_config.get('data_dir', None), split=data_config.get('split', 'train'),
      build_if_missing=data_config.get('build_if_missing', True),
  )
  return reader.table('label')


def num_classes_of(data_config) -> int:
  """Classes of a dataset's single label: its TFDS `ClassLabel`'s count, else the largest
  training label + 1."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    import disentangle_jax.data.builders  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import

    config_name = data_config.get('builder_config', None)
    kwargs = {'config': config_name} if config_name else {}
    builder = tfds.builder(data_config.name, data_dir=data_config.get('data_dir', None), **kwargs)
    return int(builder.info.features['label'].num_classes)
  except Exception:  # pylint: disable=broad-except
    return int(training_labels(data_config).max()) + 1


def positive_weights(labels: np.ndarray) -> np.ndarray:
  """n_neg / n_pos per column of binary labels [N, L] (1 for a column without both values)."""
  labels = np.asarray(labels).astype(bool)
  pos = labels.sum(axis=0).astype(np.float64)
  neg = labels.shape[0] - pos
  return np.where((pos > 0) & (neg > 0), neg / np.maximum(pos, 1), 1.0).astype(np.float32)


def weighted_sigmoid_cross_entropy(logits, labels, *, pos_weight=None, reduction: str = 'mean'):
  """Binary cross-entropy on logits with positives weighted per label.

  Per example: the mean over its L labels of `-(w · y · log σ(x) + (1 - y) · log(1 - σ(x)))`
  (`w = pos_weight`, as the `pos_weight` of PyTorch's `BCEWithLogitsLoss`).

  Args:
    logits: [B, L].
    labels: [B, L] in {0, 1}.
    pos_weight: None (1) or [L] weights of the positive term.
    reduction: 'mean' over the batch | 'sum' | 'none' ([B]).

  Returns:
    A scalar, or [B] with reduction='none'; accumulated in at least float32.
  """
  logits = jnp.asarray(logits, jnp.promote_types(jnp.asarray(logits).dtype, jnp.float32))
  labels = jnp.asarray(labels, logits.dtype)
  log_p, log_not_p = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
  w = 1.0 if pos_weight is None else jnp.asarray(pos_weight, logits.dtype)
  per_example = -jnp.mean(w * labels * log_p + (1 - labels) * log_not_p, axis=-1)
  if reduction == 'none':
    return per_example
  if reduction == 'sum':
    return jnp.sum(per_example)
  if reduction == 'mean':
    return jnp.mean(per_example)
  raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# -- the objective -------------------------------------------------------------------------------


def _accepts(module, keyword: str) -> bool:
  try:
    return keyword in inspect.signature(type(module).__call__).parameters
  except (TypeError, ValueError):
    return False


@register('classifier')
class Classifier(Objective):
  """A classifier with a softmax or a sigmoid head (see the module docstring)."""

  groups = ('classifier',)
  name = 'classifier'

  def __init__(self, config, data):
    super().__init__(config, data)
    self.head = self.hparam('head', 'softmax')
    if self.head not in HEADS:
      raise ValueError(f'config.objective.head must be one of {HEADS}, got {self.head!r}')
    self.num_outputs = self._num_outputs()
    self.pos_weight = self._pos_weight()
    self.network = build_network(config, 'network', 'digits_convnet',
                                 num_outputs=self.num_outputs)
    self.returns_activations = _accepts(self.network.module, 'return_activations')
    default_repr = 'features' if self.returns_activations else 'logits'
    self.representation = self.hparam('representation', default_repr)
    if self.representation not in REPRESENTATIONS:
      raise ValueError(f'config.objective.representation must be one of {REPRESENTATIONS}, got '
                       f'{self.representation!r}')
    if self.representation == 'features' and not self.returns_activations:
      raise ValueError(f'config.objective.representation=features needs a network that returns '
                       f'its activations; {type(self.network.module).__name__} does not: use '
                       "'logits'")
    self.pretrained = self.hparam('pretrained', None) or None
    self.pretrained_exclude = tuple(self.hparam('pretrained_exclude', ()) or ())

  # -- sizes ------------------------------------------------------------------------------------

  def _data_config(self):
    try:
      return self.config.data if self.config.data.get('name') else None
    except (AttributeError, KeyError):
      return None

  def _num_outputs(self) -> int:
    if self.head == 'sigmoid':
      given = self.hparam('num_classes', None)
      if self.data.label_names:
        if given is not None and int(given) != len(self.data.label_names):
          raise ValueError(f'config.objective.num_classes={given} but the data has '
                           f'{len(self.data.label_names)} labels; set it to None')
        return len(self.data.label_names)
      if given is None:
        raise ValueError('the sigmoid head needs labelled data (DatasetInfo.label_names) or '
                         'config.objective.num_classes')
      return int(given)
    if self.data.label_names and len(self.data.label_names) != 1:
      raise ValueError(f'the softmax head reads one class label per image, but the data has '
                       f'{len(self.data.label_names)} labels {self.data.label_names[:4]}...; use '
                       "head='sigmoid' for binary attributes")
    given = self.hparam('num_classes', None)
    if given is not None:
      return int(given)
    sizes = tuple(getattr(self.data, 'label_sizes', ()) or ())
    if sizes:
      return int(sizes[0])
    data_config = self._data_config()
    if data_config is None or not self.data.label_names:
      raise ValueError('config.objective.num_classes is None and there is no labelled dataset to '
                       'count the classes of; set config.objective.num_classes')
    return num_classes_of(data_config)

  def _pos_weight(self):
    value = self.hparam('pos_weight', None)
    if value is None:
      return None
    if self.head != 'sigmoid':
      raise ValueError("config.objective.pos_weight applies to head='sigmoid' only; set it to "
                       'None')
    if isinstance(value, str):
      if value != 'auto':
        raise ValueError(f"config.objective.pos_weight must be None, 'auto' or a list of "
                         f'{self.num_outputs} weights, got {value!r}')
      data_config = self._data_config()
      if data_config is None:
        raise ValueError("config.objective.pos_weight='auto' needs config.data to count "
                         'positives; give the weights as a list instead')
      return positive_weights(training_labels(data_config))
    weights = np.asarray(value, np.float32).reshape(-1)
    if weights.size == 1:
      weights = np.full(self.num_outputs, float(weights[0]), np.float32)
    if weights.size != self.num_outputs or np.any(weights <= 0):
      raise ValueError(f'config.objective.pos_weight must hold {self.num_outputs} positive '
                       f'weights, got {weights.size}')
    return weights

  @property
  def num_classes(self) -> int:
    return self.num_outputs

  @functools.cached_property
  def latent_dim(self) -> int:
    if self.representation == 'logits':
      return self.num_outputs
    images = jnp.zeros((1, *self.image_shape), jnp.float32)

    def features():
      params, state = self.network.init(jax.random.key(0), images)
      return self.encode({'classifier': params}, state, images)

    return int(jax.eval_shape(features).shape[-1])

  # -- training ---------------------------------------------------------------------------------

  def init(self, rng, batch):
    params, state = self.network.init(rng, batch['image'])
    if self.pretrained:
      params, _ = load_params_npz(self.pretrained, params, exclude=self.pretrained_exclude,
                                  owner=f'objective {self.name!r}')
      params = jax.tree.map(jnp.asarray, params)
    return {'classifier': params}, state

  def optimizers(self):
    return {'classifier': make_optimizer(self.config.optimizer)}

  def targets(self, batch) -> jax.Array:
    """Softmax: the class of each image, int [B]; sigmoid: the labels, [B, L] in {0, 1}."""
    label = jnp.asarray(batch['label'])
    if self.head == 'softmax':
      return label.reshape(label.shape[0], -1)[:, 0].astype(jnp.int32)
    return label.reshape(label.shape[0], -1)

  def loss_and_metrics(self, logits, targets):
    """The loss (mean over the batch) and its metrics for logits [B, outputs]."""
    logits = jnp.asarray(logits, jnp.promote_types(logits.dtype, jnp.float32))
    if self.head == 'softmax':
      loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))
      accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == targets)
      return loss, {'cross_entropy': loss, 'accuracy': accuracy}
    loss = weighted_sigmoid_cross_entropy(logits, targets, pos_weight=self.pos_weight)
    accuracy = jnp.mean((logits > 0) == (targets > 0))
    return loss, {'cross_entropy': loss, 'accuracy': accuracy}

  def losses(self, params, model_state, batch, rng, step):
    del step
    logits, new_state = self.network.apply(
        params['classifier'], model_state, batch['image'], train=True,
        rng=rng_stream(rng, 'dropout'),
    )
    loss, metrics = self.loss_and_metrics(logits, self.targets(batch))
    return {'classifier': loss}, (new_state, metrics)

  # -- inference --------------------------------------------------------------------------------

  def logits(self, params, model_state, images, ablate: Mapping[str, Any] | None = None):
    """Class logits [B, outputs] in evaluation mode; `ablate` ({layer: [units] mask}) for
    networks that take it."""
    variables = {'params': params['classifier'], **model_state}
    if ablate:
      return self.network.module.apply(variables, images, train=False, ablate=ablate)
    return self.network.module.apply(variables, images, train=False)

  def activations(self, params, model_state, images) -> dict[str, jax.Array]:
    """The network's own activations ({'conv1': [B, h, w, U], ..., 'pooled': [B, U]}) for
    networks that return them; see `disentangle_jax.analysis.activations` for any other."""
    if not self.returns_activations:
      raise ValueError(f'{type(self.network.module).__name__} does not return its activations')
    variables = {'params': params['classifier'], **model_state}
    _, acts = self.network.module.apply(variables, images, train=False, return_activations=True)
    return acts

  def encode(self, params, model_state, images, cond=None):
    del cond
    if self.representation == 'logits':
      return self.logits(params, model_state, images)
    return self.activations(params, model_state, images)['pooled']

  def predict(self, params, model_state, images) -> jax.Array:
    """Softmax: the class [B]; sigmoid: the 0/1 labels [B, L]."""
    logits = self.logits(params, model_state, images)
    if self.head == 'softmax':
      return jnp.argmax(logits, axis=-1)
    return (logits > 0).astype(jnp.int32)

  def latent_activity(self, params, model_state, images, cond=None):
    codes = np.asarray(self.jitted('encode')(params, model_state, images, cond))
    return codes.var(axis=0)

  def evaluate(self, params, model_state, data_config, *, split: str | None = None,
               num_examples: int | None = None, batch_size: int = 256) -> dict[str, float]:
    """Validation scalars of `evaluate_split` over `data_config`'s eval split (default) as
    {'accuracy', 'balanced_accuracy', 'accuracy/<class or attribute>', ...}: what a train loop
    writes as `eval/classifier/<key>`."""
    from disentangle_jax.data import pipeline  # pylint: disable=g-import-not-at-top

    batches = pipeline.make_eval_iterator(data_config, batch_size=batch_size, split=split,
                                          num_examples=num_examples)
    return scalar_scores(evaluate_split(self, params, model_state, batches),
                         self.data.label_names if self.head == 'sigmoid' else ())

  def pictures(self, params, model_state, batch, rng):
    """The inputs with their true and predicted classes, and (for networks that return them)
    each input beside its last conv layer's unit maps."""
    del rng
    from disentangle_jax.analysis import pictures as pictures_lib  # pylint: disable=g-import-not-at-top

    return pictures_lib.classifier_pictures(self, params, model_state, batch)


def evaluate_split(objective: Classifier, params, model_state, batches) -> dict[str, Any]:
  """Accuracy of a classifier over batches of labelled images.

  Args:
    objective: a `Classifier`.
    params, model_state: its variables.
    batches: an iterable of batches with 'image' and 'label' (e.g. `pipeline.make_eval_iterator`).

  Returns:
    softmax: 'accuracy', 'per_class_accuracy' [C] (NaN for a class without examples),
    'balanced_accuracy' (the mean over the classes present), 'num_examples';
    sigmoid: 'accuracy' (mean over attributes), 'per_attribute_accuracy' [L],
    'per_attribute_balanced_accuracy' [L] (mean of the true-positive and true-negative rates),
    'balanced_accuracy' (their mean), 'num_examples'.
  """
  predict = objective.jitted('predict')
  preds, targets = [], []
  for batch in batches:
    preds.append(np.asarray(predict(params, model_state, jnp.asarray(batch['image']))))
    targets.append(np.asarray(objective.targets(batch)))
  if not preds:
    raise ValueError('evaluate_split got no batches')
  pred, target = np.concatenate(preds), np.concatenate(targets)
  return classification_scores(pred, target, objective.head, objective.num_outputs)


def scalar_scores(scores: Mapping[str, Any], label_names: tuple[str, ...] = ()
                  ) -> dict[str, float]:
  """The scores of `evaluate_split` as flat scalars: 'accuracy', 'balanced_accuracy',
  'accuracy/<class index>' or, for attributes, 'accuracy/<name>' and 'balanced_accuracy/<name>'
  (classes without validation examples are left out)."""
  out = {'accuracy': float(scores['accuracy']),
         'balanced_accuracy': float(scores['balanced_accuracy'])}
  if 'per_class_accuracy' in scores:
    for c, value in enumerate(scores['per_class_accuracy']):
      if np.isfinite(value):
        out[f'accuracy/{c}'] = float(value)
    return out
  names = list(label_names) or [str(i) for i in range(len(scores['per_attribute_accuracy']))]
  for name, acc, bal in zip(names, scores['per_attribute_accuracy'],
                            scores['per_attribute_balanced_accuracy']):
    out[f'accuracy/{name}'] = float(acc)
    if np.isfinite(bal):
      out[f'balanced_accuracy/{name}'] = float(bal)
  return out


def classification_scores(pred: np.ndarray, target: np.ndarray, head: str,
                          num_outputs: int) -> dict[str, Any]:
  """The scores of `evaluate_split` from predictions and targets (softmax: [N] classes;
  sigmoid: [N, L] 0/1)."""
  pred, target = np.asarray(pred), np.asarray(target)
  if head == 'softmax':
    correct = pred == target
    counts = np.bincount(target, minlength=num_outputs)
    hits = np.bincount(target, weights=correct, minlength=num_outputs)
    with np.errstate(invalid='ignore', divide='ignore'):
      per_class = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return {'accuracy': float(correct.mean()), 'per_class_accuracy': per_class,
            'balanced_accuracy': float(np.nanmean(per_class)), 'num_examples': int(len(pred))}
  pred, target = pred.astype(bool), target.astype(bool)
  pos, neg = target.sum(0), (~target).sum(0)
  tpr = np.where(pos > 0, (pred & target).sum(0) / np.maximum(pos, 1), np.nan)
  tnr = np.where(neg > 0, (~pred & ~target).sum(0) / np.maximum(neg, 1), np.nan)
  balanced = np.nanmean(np.stack([tpr, tnr]), axis=0)
  per_attribute = (pred == target).mean(0)
  return {'accuracy': float(per_attribute.mean()), 'per_attribute_accuracy': per_attribute,
          'per_attribute_balanced_accuracy': balanced,
          'balanced_accuracy': float(np.nanmean(balanced)), 'num_examples': int(len(pred))}


__all__ = ['Classifier', 'classification_scores', 'evaluate_split', 'load_params_npz',
           'positive_weights', 'save_params_npz', 'scalar_scores', 'weighted_sigmoid_cross_entropy']

"""Optimizers from config: `make_optimizer(config.optimizer) -> optax.GradientTransformation`.

Keys (only `name` and `learning_rate` are required; the rest fall back to optax's defaults):
  name: 'adam' | 'adamw' | 'sgd' | 'adagrad' | 'radam' | 'rmsprop'
  learning_rate: the peak (or constant) learning rate
  b1, b2, eps: Adam-family moments and epsilon
  weight_decay: decoupled weight decay ('adamw': default 1e-4 as in optax; 'radam': default 0,
    applied as Liu et al.'s released RAdam does, p <- p - lr * wd * p, beside the RAdam step)
  momentum, nesterov: 'sgd' (and `momentum` for 'rmsprop')
  initial_accumulator_value: 'adagrad' (default 0.1 as in optax)
  grad_clip_norm: clip gradients to this global norm first (None: no clipping)
  schedule: None / 'constant' | 'warmup_cosine' | 'cosine' | 'exponential' | 'warmup_constant'
    warmup_steps:  linear warm-up from 0 ('warmup_cosine', 'warmup_constant')
    decay_steps:   'cosine'/'warmup_cosine': length of the decay (default: the whole run must be
                   given); 'exponential': the decay period
    decay_rate:    'exponential': the factor per `decay_steps`
    staircase:     'exponential': decay in steps (the mixing autoencoder: ×0.9 every 20k, staircase)
    end_learning_rate / alpha: the final value ('alpha' is a fraction of learning_rate)

An unknown key is an error that names it, so a typo in a config never trains silently.
This module sits below both the train loop and the objectives, which build their optimizers here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optax

_COMMON = {'name', 'learning_rate', 'grad_clip_norm', 'schedule', 'warmup_steps', 'decay_steps',
           'decay_rate', 'staircase', 'end_learning_rate', 'alpha'}
_PER_OPTIMIZER = {
    'adam': {'b1', 'b2', 'eps'},
    'adamw': {'b1', 'b2', 'eps', 'weight_decay'},
    'radam': {'b1', 'b2', 'eps', 'weight_decay'},
    'sgd': {'momentum', 'nesterov'},
    'adagrad': {'initial_accumulator_value', 'eps'},
    'rmsprop': {'decay', 'eps', 'momentum'},
}
# Keys that configs/common.py sets for every optimizer; harmless for the ones that ignore them.
_SHARED_DEFAULT_KEYS = {'b1', 'b2', 'eps'}


def _as_dict(opt_config: Any) -> dict[str, Any]:
  if hasattr(opt_config, 'to_dict'):
    opt_config = opt_config.to_dict()
  if not isinstance(opt_config, Mapping):
    raise TypeError(f'optimizer config must be a mapping or ConfigDict, got {type(opt_config)}')
  return {k: v for k, v in opt_config.items() if v is not None}


def _require(cfg: Mapping[str, Any], key: str, context: str) -> Any:
  if key not in cfg:
    raise KeyError(f'optimizer config: {context} needs the key {key!r}')
  return cfg[key]


def make_learning_rate(opt_config: Any) -> optax.Schedule | float:
  """The learning rate (a float, or an optax schedule of the step) described by `opt_config`."""
  cfg = _as_dict(opt_config)
  lr = float(_require(cfg, 'learning_rate', 'every optimizer'))
  kind = cfg.get('schedule', 'constant') or 'constant'
  if kind == 'constant':
    return lr
  if kind == 'warmup_constant':
    warmup = int(_require(cfg, 'warmup_steps', "schedule 'warmup_constant'"))
    return optax.linear_schedule(0.0, lr, warmup)
  end_lr = cfg.get('end_learning_rate', lr * float(cfg.get('alpha', 0.0)))
  if kind == 'cosine':
    decay = int(_require(cfg, 'decay_steps', "schedule 'cosine'"))
    return optax.cosine_decay_schedule(lr, decay, alpha=end_lr / lr if lr else 0.0)
  if kind == 'warmup_cosine':
    warmup = int(_require(cfg, 'warmup_steps', "schedule 'warmup_cosine'"))
    decay = int(_require(cfg, 'decay_steps', "schedule 'warmup_cosine'"))
    # optax's decay_steps counts the warm-up too; ours is the decay alone.
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, warmup + decay, end_value=end_lr)
  if kind == 'exponential':
    return optax.exponential_decay(
        lr,
        transition_steps=int(_require(cfg, 'decay_steps', "schedule 'exponential'")),
        decay_rate=float(_require(cfg, 'decay_rate', "schedule 'exponential'")),
        staircase=bool(cfg.get('staircase', False)),
        end_value=cfg.get('end_learning_rate'),
    )
  raise ValueError(
      f'optimizer config: unknown schedule {kind!r}; known: constant, warmup_constant, cosine, '
      'warmup_cosine, exponential'
  )


def make_optimizer(opt_config: Any) -> optax.GradientTransformation:
  """An optax optimizer (with its learning-rate schedule and optional clipping) from config.

  Args:
    opt_config: an `ml_collections.ConfigDict` or a mapping with the keys of the module docstring.

  Returns:
    An `optax.GradientTransformation`.
  """
  cfg = _as_dict(opt_config)
  name = _require(cfg, 'name', 'every optimizer')
  if name not in _PER_OPTIMIZER:
    raise ValueError(
        f'optimizer config: unknown name {name!r}; known: {", ".join(sorted(_PER_OPTIMIZER))}'
    )
  unknown = set(cfg) - _COMMON - _PER_OPTIMIZER[name] - _SHARED_DEFAULT_KEYS
  if unknown:
    raise ValueError(f'optimizer config: unknown key(s) {sorted(unknown)} for {name!r}')
  lr = make_learning_rate(cfg)
  kw = {k: cfg[k] for k in _PER_OPTIMIZER[name] if k in cfg}
  if name == 'adam':
    tx = optax.adam(lr, **kw)
  elif name == 'adamw':
    tx = optax.adamw(lr, **kw)
  elif name == 'radam':
    weight_decay = float(kw.pop('weight_decay', 0.0))
    tx = optax.chain(
        optax.scale_by_radam(**kw),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(lr),
    )
  elif name == 'sgd':
    tx = optax.sgd(lr, **kw)
  elif name == 'adagrad':
    tx = optax.adagrad(lr, **kw)
  else:
    tx = optax.rmsprop(lr, **kw)
  clip = cfg.get('grad_clip_norm')
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(float(clip)), tx)
  return tx

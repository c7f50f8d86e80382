"""Per-layer activation maps of a trained objective, for unit analysis and dissection.

An objective's representation is computed by Flax modules inside `objective.encode`. Networks
that return their own activations (the digits convnet: `return_activations=True`, each conv's
ReLU output) are read directly through `objective.activations`; for any other objective every
submodule call inside `encode` is intercepted (`flax.linen.intercept_methods`) and the outputs
that are feature maps `[B, h, w, U]` are kept under the module's path ('Conv_0', ...). Those are
the layers' outputs as the module returns them (a conv's pre-activation when the ReLU is applied
outside it): thresholding at a top quantile selects the same positions either way whenever the
threshold is positive, since ReLU is monotone.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import numpy as np


def _module_name(module: nn.Module) -> str:
  path = getattr(module, 'path', None)
  if path:
    return '/'.join(str(p) for p in path)
  return module.name or type(module).__name__


def capture_maps(fn: Callable, *args, **kwargs) -> tuple[object, dict[str, jax.Array]]:
  """Runs `fn(*args, **kwargs)` and returns (its output, {module path: [B, h, w, U] output}) for
  every Flax `__call__` inside it whose output is a rank-4 array (first call wins per path)."""
  captured: dict[str, jax.Array] = {}

  def interceptor(next_fun, call_args, call_kwargs, context):
    out = next_fun(*call_args, **call_kwargs)
    if context.method_name == '__call__' and hasattr(out, 'ndim') and out.ndim == 4:
      name = _module_name(context.module)
      captured.setdefault(name, out)
    return out

  with nn.intercept_methods(interceptor):
    out = fn(*args, **kwargs)
  return out, captured


def layer_names(objective, params, model_state, images) -> list[str]:
  """The layers `layer_maps` returns for this objective (in network order)."""
  return list(make_layer_fn(objective)(params, model_state, images[:1]).keys())


def make_layer_fn(objective, layers=None) -> Callable:
  """A jitted `(params, model_state, images) -> {layer: maps [B, h, w, U] float32}`.

  Args:
    objective: a trained objective.
    layers: names to keep (None: every conv-like layer).
  """

  def maps(params, model_state, images):
    if getattr(objective, 'returns_activations', False):
      acts = objective.activations(params, model_state, images)
    else:
      _, acts = capture_maps(objective.encode, params, model_state, images)
    acts = {k: v for k, v in acts.items() if v.ndim == 4}
    if layers is not None:
      missing = [name for name in layers if name not in acts]
      if missing:
        raise ValueError(f'layers {missing} are not among the feature maps of '
                         f'{type(objective).__name__}: {list(acts)}')
      acts = {k: acts[k] for k in layers}
    return {k: v.astype(np.float32) for k, v in acts.items()}

  return jax.jit(maps)

"""The pictures every objective gets unless it draws its own: reconstructions, prior samples and
traversals of the most active latents (traversals as a PNG grid and an animated GIF).

`draw(objective, params, model_state, batch, rng)` takes any object with the objective protocol's
`condition`, `can_decode`, `latent_activity`, `sample_prior`, `jitted('encode' | 'decode' |
'reconstruct' | 'sample_prior')`, so conditional models are drawn with their batch's condition.
"""

from __future__ import annotations

import numpy as np

from disentangle_jax.visualization import images as image_lib
from disentangle_jax.visualization import traversals

MAX_TRAVERSED_LATENTS = 10


def most_active(activity, k: int = MAX_TRAVERSED_LATENTS) -> np.ndarray:
  """Indices of the `k` largest entries of `activity` [D], largest first (ties: lower index)."""
  activity = np.asarray(activity, np.float64).reshape(-1)
  order = np.argsort(-activity, kind='stable')
  return order[:k]


def _rows(cond, num: int):
  """`cond`'s first row repeated `num` times (None stays None)."""
  if cond is None:
    return None
  return np.repeat(np.asarray(cond)[:1], num, axis=0)


def draw(objective, params, model_state, batch, rng, *,
         max_latents: int = MAX_TRAVERSED_LATENTS) -> dict[str, np.ndarray]:
  """{'reconstructions', 'samples', 'traversal' (PNG grids), 'traversal_animation' (GIF frames)}.

  Models without a decoder get no pictures here ({}); `samples` needs a prior.
  """
  if not objective.can_decode:
    return {}
  inputs = np.asarray(batch['image'])
  cond = objective.condition(batch)
  cond = None if cond is None else np.asarray(cond)
  pictures = {}
  recon = objective.jitted('reconstruct')(params, model_state, inputs, cond)
  pictures['reconstructions'] = image_lib.reconstruction_grid(inputs, np.asarray(recon))

  num = inputs.shape[0]
  prior_codes = objective.jitted('sample_prior')(rng, num, cond)
  if prior_codes is not None:
    samples = np.asarray(objective.jitted('decode')(params, model_state, prior_codes, cond))
    pictures['samples'] = image_lib.image_grid(samples, ncols=int(np.ceil(np.sqrt(num))))

  activity = objective.latent_activity(params, model_state, inputs, cond)
  dims = most_active(activity, max_latents)
  code = np.asarray(objective.jitted('encode')(params, model_state, inputs[:1], _rows(cond, 1)))

  def decode_fn(codes):
    return objective.jitted('decode')(params, model_state, codes, _rows(cond, len(codes)))

  traversal = traversals.latent_traversal(decode_fn, code, dims=dims)
  kl = activity if getattr(objective, 'activity_is_kl', False) else None
  pictures['traversal'] = traversals.traversal_grid(traversal, dims=dims, kl=kl)
  pictures['traversal_animation'] = np.stack(
      traversals.traversal_gif_frames(traversal, dims=dims)
  )
  return pictures

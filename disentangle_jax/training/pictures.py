"""The objective's pictures of the current model (`Objective.pictures`), as PNGs and GIFs."""

import jax
import numpy as np

from disentangle_jax.data import pipeline

NUM_IMAGES = 16


class PictureMaker:
  """Draws the pictures of one step; only process 0 computes and writes them.

  The objective returns {name: image [H, W, C]} (written as `images/<name>_<step>.png`) and
  {name: frames [T, H, W, C]} (written as `images/<name>_<step>.gif`).
  """

  def __init__(self, objective, config, writer, *, num_images: int = NUM_IMAGES):
    self.objective = objective
    self.config = config
    self.writer = writer
    self.num_images = num_images
    self._inputs = None

  def inputs(self) -> dict[str, np.ndarray]:
    """The same first examples of the eval data at every call (read once, on this process
    only): the images and whatever else the batch holds (factors, labels: conditions)."""
    if self._inputs is None:
      it = pipeline.make_eval_iterator(
          self.config.data, batch_size=self.num_images, num_examples=self.num_images
      )
      self._inputs = {k: np.asarray(v) for k, v in next(iter(it)).items()}
    return self._inputs

  def __call__(self, step: int, state) -> dict[str, np.ndarray]:
    if jax.process_index() != 0:
      return {}
    params, model_state = jax.device_get((state.variables(), state.model_state))
    rng = jax.random.fold_in(jax.random.key(self.config.seed), step)
    pictures = self.objective.pictures(params, model_state, self.inputs(), rng)
    stills = {k: v for k, v in pictures.items() if np.ndim(v) == 3}
    self.writer.write_images(step, stills)
    for name, frames in pictures.items():
      if np.ndim(frames) == 4:
        self.writer.write_gif(step, name, list(frames))
      elif np.ndim(frames) != 3:
        raise ValueError(f'picture {name!r} must be [H, W, C] or [T, H, W, C], got shape '
                         f'{np.shape(frames)}')
    return pictures

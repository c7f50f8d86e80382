"""Reconstructions, prior samples and latent traversals of the current model, as PNGs and a GIF."""

import functools

import jax
import numpy as np

from disentangle_jax.data import pipeline
from disentangle_jax.visualization import images as image_lib
from disentangle_jax.visualization import traversals

NUM_IMAGES = 16


class PictureMaker:
  """Draws the pictures of one step; only process 0 computes and writes them."""

  def __init__(self, objective, config, writer, *, num_images: int = NUM_IMAGES):
    self.objective = objective
    self.config = config
    self.writer = writer
    self.num_images = num_images
    self._inputs = None
    self._reconstruct = jax.jit(objective.reconstruct)
    self._decode = jax.jit(objective.decode)
    self._encode = jax.jit(objective.encode)
    self._sample = jax.jit(objective.sample_prior, static_argnums=1)

  def inputs(self) -> np.ndarray:
    """The same first images of the data at every call (read once, on this process only)."""
    if self._inputs is None:
      it = pipeline.make_eval_iterator(
          self.config.data, batch_size=self.num_images, num_examples=self.num_images
      )
      self._inputs = np.asarray(next(iter(it))['image'])
    return self._inputs

  def __call__(self, step: int, state) -> None:
    if jax.process_index() != 0:
      return
    params, model_state = jax.device_get((state.params, state.model_state))
    images = {}
    inputs = self.inputs()
    recon = np.asarray(self._reconstruct(params, model_state, inputs))
    images['reconstructions'] = image_lib.reconstruction_grid(inputs, recon)

    rng = jax.random.fold_in(jax.random.key(self.config.seed), step)
    prior_codes = self._sample(rng, self.num_images)
    if prior_codes is not None:
      samples = np.asarray(self._decode(params, model_state, prior_codes))
      images['samples'] = image_lib.image_grid(samples, ncols=int(np.sqrt(self.num_images)))

    code = np.asarray(self._encode(params, model_state, inputs[:1]))[0]
    decode_fn = functools.partial(self._decode, params, model_state)
    traversal = traversals.latent_traversal(decode_fn, code)
    images['traversal'] = traversals.traversal_grid(traversal)
    self.writer.write_images(step, images)
    self.writer.write_gif(step, 'traversal', traversals.traversal_gif_frames(traversal))

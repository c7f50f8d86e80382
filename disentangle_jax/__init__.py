"""disentangle_jax: learning and measuring disentangled image representations in JAX.

Importing the package is cheap: `import disentangle_jax.losses` pulls in JAX alone. The
procedural TFDS builders (`procedural_dsprites`, `procedural_shapes3d`, ...) are registered with
TFDS by importing `disentangle_jax.data.builders`, which the data pipeline does before it opens a
dataset; code that calls `tfds.data_source('procedural_dsprites')` itself imports it first.
"""

__version__ = '0.1.0'

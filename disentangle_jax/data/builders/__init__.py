"""TFDS builders of this package; importing this registers them with TFDS.

`disentangle_jax/__init__.py` imports this right after `tensorflow_datasets`, so keep it light:
TFDS and numpy only, the renderers are imported when a builder is used.
"""

from disentangle_jax.data.builders import celeba  # noqa: F401
from disentangle_jax.data.builders import mpi3d  # noqa: F401
from disentangle_jax.data.builders import procedural  # noqa: F401

"""Data parallelism over every device of every process: one mesh axis, 'data'."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = 'data'


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over all devices (of all processes), in `jax.devices()` order."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over the 'data' axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  if global_batch_size % mesh.size:
    raise ValueError(
        f'batch_size {global_batch_size} must be divisible by the number of devices {mesh.size} '
        f'({jax.process_count()} process(es) x {jax.local_device_count()} local devices)'
    )


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """Assembles each process's slice of the batch into global arrays sharded over 'data'."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
  )

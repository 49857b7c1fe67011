"""The one place that knows about devices: mesh, shardings, jit and pmap adapters.

Default path: `jax.jit` over a 1-D `Mesh(('data',))`, the batch sharded along
'data', the train state replicated; XLA inserts the gradient all-reduce. The
same step functions also run under `jax.pmap` with `axis_name` set, where they
reduce explicitly; tests check both equal the single-device step.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = 'data'


def make_mesh(devices=None) -> Mesh:
  """All devices of all processes along one 'data' axis."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, *, stacked: bool = False) -> NamedSharding:
  """Examples on 'data': axis 0 of a batch, axis 1 of stacked batches [k, B, ...]."""
  return NamedSharding(mesh, P(None, DATA) if stacked else P(DATA))


def check_divisible(batch_size: int, mesh: Mesh, what: str = 'config.batch_size') -> None:
  """Global batches are split evenly over the data axis; say so at start-up."""
  if batch_size % mesh.size:
    raise ValueError(f'{what}={batch_size} does not divide across the {mesh.size} devices; '
                     f'use a multiple of {mesh.size} (e.g. {what}={mesh.size * max(1, batch_size // mesh.size)}).')


def to_global(batch: dict, mesh: Mesh, *, stacked: bool = False) -> dict:
  """This process's numpy batch (or stacked batches [k, B, ...]) -> global jax.Arrays
  sharded on 'data'.

  With one process this is a device_put; on a pod each process contributes its
  own rows (`jax.make_array_from_process_local_data`)."""
  sharding = batch_sharding(mesh, stacked=stacked)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def jit_step(step_fn: Callable, mesh: Mesh, *, config, donate: bool = True,
             stacked: bool = False) -> Callable:
  """`step_fn(state, batch, rng, *, config)` jitted with explicit shardings:
  state and rng replicated, batch (`stacked`: [k, B, ...]) on 'data'; the state buffer
  is donated."""
  repl, data = replicated(mesh), batch_sharding(mesh, stacked=stacked)
  return jax.jit(functools.partial(step_fn, config=config),
                 in_shardings=(repl, data, repl), out_shardings=repl,
                 donate_argnums=(0,) if donate else ())


def pmap_step(step_fn: Callable, *, config, axis_name: str = 'batch') -> Callable:
  """The same step under `jax.pmap`: state replicated (leading device axis),
  batch split on its leading axis, rng shared; reductions use `axis_name`."""
  return jax.pmap(functools.partial(step_fn, config=config, axis_name=axis_name),
                  axis_name=axis_name, in_axes=(0, 0, None))


def shard_for_pmap(batch: dict, n: int, *, stacked: bool = False) -> dict:
  """[global_batch, ...] -> [n, global_batch // n, ...]; `stacked`:
  [k, global_batch, ...] -> [n, k, global_batch // n, ...]."""
  def split(x):
    if stacked:
      return np.moveaxis(np.asarray(x).reshape((x.shape[0], n, x.shape[1] // n) + x.shape[2:]),
                         1, 0)
    return x.reshape((n, x.shape[0] // n) + x.shape[1:])
  return jax.tree.map(split, batch)


def to_host(x) -> np.ndarray:
  """A (possibly multi-host, sharded) array as one numpy array on every process."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))

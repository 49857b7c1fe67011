"""Orbax checkpoints of the train state, with errors a user can act on.

Each checkpoint's arrays have a SHA-256 digest in WORKDIR/checkpoints.sha256.json, written
with it and checked when it is restored, so bytes that changed on disk (a flipped bit, a
partial copy that kept the file sizes) are an error instead of a silently different state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be restored (corrupt, or of another config)."""


class Checkpointer:
  """Keeps the last `keep` checkpoints of a run under WORKDIR/checkpoints/<step>.

  Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so a run killed mid-save leaves the previous checkpoints intact.
  """

  def __init__(self, workdir: str, keep: int = 2, *, is_chief: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.digests_path = self.directory + '.sha256.json'
    self.is_chief = is_chief
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    digest = tree_digest(state)
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    if self.is_chief:  # the steps orbax keeps (rotation included), plus this one
      kept = {str(s) for s in self.manager.all_steps()} | {str(step)}
      digests = {k: v for k, v in self._digests().items() if k in kept}
      digests[str(step)] = digest
      tmp = self.digests_path + '.tmp'
      with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(digests, f, indent=1, sort_keys=True)
      os.replace(tmp, self.digests_path)

  def _digests(self) -> dict:
    try:
      with open(self.digests_path, encoding='utf-8') as f:
        return json.load(f)
    except (FileNotFoundError, ValueError):
      return {}

  def restore(self, template, step: int | None = None):
    """State saved at `step` (default: latest), laid out like `template`."""
    step = self.latest_step() if step is None else step
    path = os.path.join(self.directory, str(step))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    fix = (f'Move it aside (mv {path} {path}.bad) to resume from the previous checkpoint'
           f'{self._previous(step)}, or train in a new --workdir.')
    try:
      state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax raises many types; all mean the same to a user
      raise CheckpointError(
          f'could not restore the checkpoint {path}: {type(e).__name__}: {e}\n'
          f'It is corrupt or was written by a different config (model sizes, algorithm). {fix}'
      ) from e
    want = self._digests().get(str(step))
    if want is None:
      logging.warning('no checksum for %s in %s (written by an older version?); not verified',
                      path, self.digests_path)
    elif tree_digest(state) != want:
      raise CheckpointError(f'the checkpoint {path} does not match the checksum written with it '
                            f'({self.digests_path}): its arrays changed on disk. {fix}')
    return state

  def _previous(self, step: int) -> str:
    earlier = [s for s in self.manager.all_steps() if s < step]
    return f' (step {max(earlier)})' if earlier else ''

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
    logging.info('checkpoints in %s', self.directory)


def tree_digest(tree) -> str:
  """SHA-256 of every leaf's shape, dtype and bytes, in tree order (PRNG keys by their
  key data)."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(tree):
    if hasattr(leaf, 'dtype') and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    a = np.ascontiguousarray(jax.device_get(leaf))
    h.update(f'{a.shape}{a.dtype}'.encode())
    h.update(a.tobytes())
  return h.hexdigest()

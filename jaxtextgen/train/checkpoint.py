"""Orbax checkpoints of the train state, with errors a user can act on."""

from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be restored (corrupt, or of another config)."""


class Checkpointer:
  """Keeps the last `keep` checkpoints of a run under WORKDIR/checkpoints/<step>.

  Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so a run killed mid-save leaves the previous checkpoints intact.
  """

  def __init__(self, workdir: str, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, template, step: int | None = None):
    """State saved at `step` (default: latest), laid out like `template`."""
    step = self.latest_step() if step is None else step
    path = os.path.join(self.directory, str(step))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    try:
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax raises many types; all mean the same to a user
      raise CheckpointError(
          f'could not restore the checkpoint {path}: {type(e).__name__}: {e}\n'
          'It is corrupt or was written by a different config (model sizes, algorithm). '
          f'Move it aside (mv {path} {path}.bad) to resume from the previous checkpoint, '
          'or train in a new --workdir.') from e

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
    logging.info('checkpoints in %s', self.directory)

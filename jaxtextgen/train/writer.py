"""Metrics to WORKDIR/metrics.jsonl and TensorBoard event files (no TensorFlow).

Only process 0 writes. On resume from step s, entries after s (from the part
of the killed run that was not checkpointed; all of them when no checkpoint was
written, s = 0) are dropped from both, so the logs of an interrupted-and-resumed
run equal those of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np


def _plain(v):
  v = np.asarray(v)
  return v.item() if v.ndim == 0 else v.tolist()


class MetricWriter:

  def __init__(self, workdir: str, *, resume_step: int = 0, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if not enabled:
      return
    if os.path.exists(self.path):  # a fresh start (resume_step 0) redoes every row
      keep = []
      if resume_step:
        with open(self.path, encoding='utf-8') as f:
          keep = [l for l in f if l.strip() and json.loads(l)['step'] <= resume_step]
      tmp = self.path + '.tmp'
      with open(tmp, 'w', encoding='utf-8') as f:
        f.writelines(keep)
      os.replace(tmp, self.path)
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'),
                               purge_step=resume_step + 1 if resume_step else 0)
    except ImportError:
      self._tb = None

  def write(self, step: int, metrics: dict, prefix: str = '') -> None:
    if not self.enabled:
      return
    row = {'step': int(step)}
    row.update({prefix + k: _plain(v) for k, v in metrics.items()})
    with open(self.path, 'a', encoding='utf-8') as f:
      f.write(json.dumps(row) + '\n')
    if self._tb is not None:
      for k, v in row.items():
        if k != 'step' and isinstance(v, (int, float)) and math.isfinite(v):
          self._tb.add_scalar(k, v, step)

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """The rows of WORKDIR/metrics.jsonl."""
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    return [json.loads(l) for l in f if l.strip()]

"""Metrics to WORKDIR/metrics.jsonl and TensorBoard event files (no TensorFlow).

Only process 0 writes. On resume from step s, entries after s (from the part
of the killed run that was not checkpointed; all of them when no checkpoint was
written, s = 0) are dropped from both, so the logs of an interrupted-and-resumed
run equal those of an uninterrupted one. A fresh start moves an old metrics.jsonl
aside (metrics.jsonl.1, .2, ...) instead of truncating it.
"""

from __future__ import annotations

import json
import logging
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
    if os.path.exists(self.path):
      rows = _read_rows(self.path)
      if not resume_step and rows:  # a fresh start redoes every row: keep the old ones aside
        n = 1
        while os.path.exists(f'{self.path}.{n}'):
          n += 1
        os.replace(self.path, f'{self.path}.{n}')
        logging.warning('%s: a fresh start (no checkpoint) in a workdir with metrics; the '
                        'old rows are kept in %s.%d', self.path, self.path, n)
      keep = [json.dumps(r) + '\n' for r in rows if resume_step and r['step'] <= resume_step]
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
  return _read_rows(os.path.join(workdir, 'metrics.jsonl'))


def _read_rows(path: str) -> list[dict]:
  """The JSON rows of `path`. A last line cut short (a run killed while writing it) is
  dropped with a warning; a bad line elsewhere is an error that names the file and line."""
  with open(path, encoding='utf-8') as f:
    lines = [(i + 1, l) for i, l in enumerate(f) if l.strip()]
  rows = []
  for k, (number, line) in enumerate(lines):
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError as e:
      if k == len(lines) - 1:
        logging.warning('%s: dropped its last line %d, cut short (%s)', path, number, e)
        break
      raise ValueError(f'{path}, line {number}: not a JSON row ({e}); fix or delete the '
                       'line, then run again') from e
  return rows

"""A picture of a latent space: posterior means projected to 2-D, coloured by label."""

from __future__ import annotations

import numpy as np


def pca_2d(points: np.ndarray) -> np.ndarray:
  """[n, Z] -> [n, 2]: coordinates on the two principal axes (largest variance first).

  The sign of each axis is fixed (largest |loading| positive), so the same
  codes always give the same picture."""
  x = np.asarray(points, np.float64)
  x = x - x.mean(axis=0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  axes = vt[:2]
  axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
  out = x @ axes.T
  return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))  # Z = 1: a flat second axis


def write_latent_png(points: np.ndarray, labels: np.ndarray | None, path: str, *,
                     title: str = '') -> str:
  """Scatter of `pca_2d(points)` written to `path` (PNG), one colour per label
  (labels [n] int, -1 or None: no label). Returns the path."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  xy = pca_2d(points)
  labels = np.full(len(xy), -1) if labels is None else np.asarray(labels)
  fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
  for label in np.unique(labels):
    sel = labels == label
    ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.6,
               label=None if label < 0 else str(label))
  if (labels >= 0).any():
    ax.legend(title='label', markerscale=3)
  ax.set_xlabel('PC 1')
  ax.set_ylabel('PC 2')
  ax.set_title(title or 'posterior means (PCA)')
  fig.savefig(path, bbox_inches='tight')
  plt.close(fig)
  return path

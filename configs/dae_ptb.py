"""Denoising LSTM autoencoder on Penn Treebank (algorithm 'dae').

configs/ae_ptb.py with input noise (Lample et al. 2018's word drop 0.1 and local
shuffle k = 3, plus <mask> with probability 0.1); the target is the clean
sentence. Reports reconstruction of clean valid sentences and, prefixed
'noisy_', of valid sentences corrupted the same way.

    python launch.py --config=configs/dae_ptb.py --workdir=/tmp/dae_ptb
    python launch.py --config=configs/dae_ptb.py --workdir=/tmp/dae_ptb --mode=eval
    python launch.py --config=configs/dae_ptb.py:smoke --workdir=/tmp/dae_ptb_smoke

Presets: 'smoke' (seconds).
"""

import os
import runpy

_AE_PTB = runpy.run_path(os.path.join(os.path.dirname(__file__), 'ae_ptb.py'))


def get_config(preset: str = ''):
  c = _AE_PTB['autoencoder_config']('dae', preset)
  c.ae.drop_prob = 0.1
  c.ae.mask_prob = 0.1
  c.ae.shuffle_k = 3
  return c

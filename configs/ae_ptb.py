"""Deterministic LSTM autoencoder on Penn Treebank (algorithm 'ae').

The PTB data, model sizes (emb 256, LSTM 256, decoder dropout 0.5) and
optimizer of configs/lm_ptb.py, plus a latent code of 32 dims (texar's vae_text
and Li et al. 2019's PTB setting). Reports valid reconstruction NLL, its
per-token perplexity and the BLEU of greedy reconstructions. Its checkpoint can
initialise a VAE's encoder: configs/vae_ptb.py:pretrain_fb.

    python launch.py --config=configs/ae_ptb.py --workdir=/tmp/ae_ptb
    python launch.py --config=configs/ae_ptb.py --workdir=/tmp/ae_ptb --mode=eval
    python launch.py --config=configs/ae_ptb.py:smoke --workdir=/tmp/ae_ptb_smoke

Presets: 'smoke' (seconds).
"""

import os
import runpy

from jaxtextgen.config import smoke

_LM_PTB = runpy.run_path(os.path.join(os.path.dirname(__file__), 'lm_ptb.py'))


def autoencoder_config(algorithm: str, preset: str = ''):
  """lm_ptb's data / model / optimizer with an encoder and a 32-dim code; preset
  '' or 'smoke'."""
  c = _LM_PTB['get_config']('')
  c.algorithm = algorithm
  c.ae.latent_dim = 32
  c.ae.bidirectional = False
  c.num_epochs = 15
  if preset == 'smoke':
    smoke(c)
  elif preset:
    raise ValueError(f"unknown preset {preset!r}: use '' or 'smoke'")
  return c


def get_config(preset: str = ''):
  return autoencoder_config('ae', preset)

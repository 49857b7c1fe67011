"""Denoising LSTM autoencoder on Penn Treebank (algorithm 'dae'), and self-critical
training of it on sentence BLEU (preset 'scst').

configs/ae_ptb.py with input noise (Lample et al. 2018's word drop 0.1 and local
shuffle k = 3, plus <mask> with probability 0.1); the target is the clean
sentence. Reports reconstruction of clean valid sentences and, prefixed
'noisy_', of valid sentences corrupted the same way.

    python launch.py --config=configs/dae_ptb.py --workdir=/tmp/dae_ptb
    python launch.py --config=configs/dae_ptb.py --workdir=/tmp/dae_ptb --mode=eval
    # self-critical training from it, in its own workdir (reward: sentence BLEU of a sampled
    # reconstruction of the corrupted sentence against the clean one):
    python launch.py --config=configs/dae_ptb.py:scst --workdir=/tmp/dae_ptb_scst \
      --config.scst.init=/tmp/dae_ptb
    python launch.py --config=configs/dae_ptb.py:smoke --workdir=/tmp/dae_ptb_smoke

Presets (comma-separated): 'scst' (scst.steps=1,000 self-critical steps at Adam 5e-5,
MLE mixed in at 0.1, decoder dropout off, from scst.init, eval every 250 and at the
start), 'smoke' (seconds).
"""

import os
import runpy

from jaxtextgen.config import parse_presets

_AE_PTB = runpy.run_path(os.path.join(os.path.dirname(__file__), 'ae_ptb.py'))


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('scst', 'smoke'))
  c = _AE_PTB['autoencoder_config']('dae', 'smoke' if 'smoke' in presets else '')
  c.ae.drop_prob = 0.1
  c.ae.mask_prob = 0.1
  c.ae.shuffle_k = 3
  if 'scst' in presets:
    s = c.scst
    s.mle_steps, s.steps = 0, 1_000
    s.learning_rate = 5e-5
    s.mle_mix = 0.1
    c.model.dropout = 0.0  # the sampled policy is the one that reconstructs
    c.eval_every = 250
    c.eval.at_start = True
    if 'smoke' in presets:
      s.mle_steps, s.steps = 3, 3
      c.eval_every = 3
  return c

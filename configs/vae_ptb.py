"""LSTM VAE on Penn Treebank (algorithm 'vae'): emb 256, LSTM 256, z 32, the PTB
setting of texar's vae_text, Fu et al. 2019 (cyclical annealing) and Li et al. 2019.

Data, decoder and optimizer as configs/lm_ptb.py (so the IW-NLL is comparable
with that LM's NLL); z feeds the decoder's initial state and every input step.
Reports valid rec_nll, kl, neg_elbo, iw_nll (500 samples), ppl, mi (whole split),
active_units and reconstruction bleu.

    python launch.py --config=configs/vae_ptb.py --workdir=/tmp/vae_ptb
    python launch.py --config=configs/vae_ptb.py --workdir=/tmp/vae_ptb --mode=eval
    python launch.py --config=configs/vae_ptb.py:vanilla --workdir=/tmp/vae_ptb_vanilla
    python launch.py --config=configs/vae_ptb.py:cyclical --workdir=/tmp/vae_ptb_cyclical
    python launch.py --config=configs/ae_ptb.py --workdir=/tmp/ae_ptb && \
      python launch.py --config=configs/vae_ptb.py:pretrain_fb --workdir=/tmp/vae_ptb_fb \
        --config.vae.encoder_init=/tmp/ae_ptb
    python launch.py --config=configs/vae_ptb.py:smoke --workdir=/tmp/vae_ptb_smoke

Presets (combine with commas, e.g. 'cyclical,smoke'):
  ''           = 'anneal'
  anneal       linear KL warm-up from 0.1 over 10 epochs (texar, He et al. 2019)
               and word dropout 0.25 (Bowman et al. 2016)
  vanilla      the plain ELBO: KL weight 1 from the start, no word dropout
  logistic     Bowman et al.'s logistic schedule and word dropout 0.25
  cyclical     Fu et al.: 4 cycles, rising over the first half of each
  pretrain_fb  Li et al.: encoder from an ae run (vae.encoder_init, default
               /tmp/ae_ptb), free bits 0.25 nats per dimension, KL weight 1
  aggressive   He et al. 2019: KL weight 1, aggressive encoder updates (10 encoder
               steps per decoder step) for the first 5 epochs
  smoke        seconds: tiny model, 6 steps, 4 importance samples
"""

import os
import runpy

from jaxtextgen.config import smoke

_AE_PTB = runpy.run_path(os.path.join(os.path.dirname(__file__), 'ae_ptb.py'))
_STEPS_PER_EPOCH = 42_068 // 32  # PTB train sentences / batch size


def get_config(preset: str = ''):
  c = _AE_PTB['autoencoder_config']('vae')
  c.num_epochs = 30
  # Each eval decodes every valid sentence iw_samples times: only every 10 epochs.
  c.eval_every = 10 * _STEPS_PER_EPOCH
  c.checkpoint_every = _STEPS_PER_EPOCH
  # Memory of the IW-NLL: eval batch x iw_chunk decoded sentences at once.
  c.eval_batch_size = 32
  c.vae.iw_samples = 500
  c.vae.iw_chunk = 25
  presets = [p for p in preset.split(',') if p]
  if not set(presets) & {'anneal', 'vanilla', 'logistic', 'cyclical', 'pretrain_fb',
                         'aggressive'}:
    presets.insert(0, 'anneal')
  for p in sorted(presets, key=lambda p: p == 'smoke'):  # smoke shrinks last
    if p == 'anneal':
      c.vae.kl_schedule = 'linear'
      c.vae.kl_start = 0.1
      c.vae.kl_warmup_steps = 10 * _STEPS_PER_EPOCH
      c.vae.word_dropout = 0.25
    elif p == 'vanilla':
      c.vae.kl_schedule = 'constant'
    elif p == 'logistic':
      c.vae.kl_schedule = 'logistic'
      c.vae.word_dropout = 0.25
    elif p == 'cyclical':
      c.vae.kl_schedule = 'cyclical'
      c.vae.num_cycles = 4
      c.vae.cycle_ratio = 0.5
    elif p == 'pretrain_fb':
      c.vae.kl_schedule = 'constant'
      c.vae.encoder_init = '/tmp/ae_ptb'
      c.vae.free_bits = 0.25
    elif p == 'aggressive':
      c.vae.kl_schedule = 'constant'
      c.vae.aggressive_steps = 5 * _STEPS_PER_EPOCH
      c.vae.aggressive_encoder_updates = 10
    elif p == 'smoke':
      smoke(c)
      c.vae.iw_samples = 4
      c.vae.iw_chunk = 2
      c.vae.kl_warmup_steps = 4
      c.vae.aggressive_steps = min(c.vae.aggressive_steps, 3)  # 1 round of 2 + 1, 3 plain
      c.vae.aggressive_encoder_updates = 2
    else:
      raise ValueError(f"unknown preset {p!r}: use anneal, vanilla, logistic, cyclical, "
                       "pretrain_fb, aggressive and/or smoke, comma-separated")
  return c

"""MLE (teacher forcing) on the SeqGAN synthetic oracle — SeqGAN's pre-training protocol.

Oracle: SeqGAN's fixed LSTM (vocab 5000, length 20, emb = hidden = 32), its 10,000
samples as training set. Generator: the same sizes, batch 64, Adam 1e-2, gradient
clipping 5, 120 epochs (SeqGAN's `PRE_EPOCH_NUM`). Reported metric: NLL-oracle
(mean per-token oracle NLL of 9,984 generator samples; SeqGAN paper 9.038); also NLL on
1,000 held-out oracle samples and BLEU / self-BLEU of one sample per held-out sentence.

    python launch.py --config=configs/mle_oracle.py --workdir=/tmp/mle_oracle
    python launch.py --config=configs/mle_oracle.py:smoke --workdir=/tmp/mle_oracle_smoke

Presets: '' (the SeqGAN weights in ../shared/data/seqgan_oracle when present,
else a seeded random N(0,1) oracle), 'random' (always the seeded oracle),
'smoke' (seconds, tiny random oracle).
"""

import os

from jaxtextgen.config import base_config, smoke

_WEIGHTS = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                        'seqgan_oracle', 'target_params.npz')


def get_config(preset: str = ''):
  c = base_config()
  c.algorithm = 'lm'
  c.data.corpus = 'oracle'
  c.data.max_len = 20
  c.data.oracle_path = os.path.abspath(_WEIGHTS) if os.path.exists(_WEIGHTS) else ''
  c.batch_size = 64
  c.eval_batch_size = 500
  c.num_epochs = 120
  c.model.emb_dim = 32
  c.model.hidden_size = 32
  c.optimizer.learning_rate = 1e-2
  c.optimizer.grad_clip = 5.0
  c.log_every = 500
  c.eval_every = 1560            # every 10 epochs (156 batches each)
  c.checkpoint_every = 1560
  c.eval.num_samples = 9984      # int(10000 / 64) * 64, as SeqGAN
  c.eval.bleu = True             # and BLEU / self-BLEU against the held-out oracle samples
  if preset == 'random':
    c.data.oracle_path = ''
  elif preset == 'smoke':
    smoke(c)
  elif preset:
    raise ValueError(f"unknown preset {preset!r}: use '', 'random' or 'smoke'")
  return c

"""LSTM language model on Penn Treebank (Mikolov split).

1 layer, emb 256, hidden 256 (the PTB models of texar's vae_text and Li et al. 2019),
dropout 0.5, Adam 1e-3, batch 32. Reports valid NLL per sentence and
PPL = exp(total NLL / (tokens + one EOS per sentence)).

    python launch.py --config=configs/lm_ptb.py --workdir=/tmp/lm_ptb
    python launch.py --config=configs/lm_ptb.py --workdir=/tmp/lm_ptb --mode=eval

Presets: 'smoke' (seconds). The corpus directory defaults to ../shared/data/ptb
beside the repository; set --config.data.corpus_dir=... (or data.download=True).
"""

import os

from jaxtextgen.config import base_config, smoke

_PTB = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'ptb')


def get_config(preset: str = ''):
  c = base_config()
  c.algorithm = 'lm'
  c.data.corpus = 'ptb'
  c.data.corpus_dir = os.path.abspath(_PTB)
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.max_len = 60            # 89 train sentences (0.2%) are longer; eval never truncates
  c.data.sort_chunk = 20         # batches of similar lengths: fewer padded positions (not measured)
  c.data.trim_multiple = 8
  c.batch_size = 32
  c.eval_batch_size = 128
  c.num_epochs = 10
  c.model.emb_dim = 256
  c.model.hidden_size = 256
  c.model.dropout = 0.5
  c.optimizer.learning_rate = 1e-3
  c.log_every = 200
  c.eval_every = 2000
  c.checkpoint_every = 2000
  c.sample.num = 10
  if preset == 'smoke':
    smoke(c)
  elif preset:
    raise ValueError(f"unknown preset {preset!r}: use '' or 'smoke'")
  return c

"""Class-conditional Transformer LM with Conditional Layer Normalization on Yelp
(algorithm 'cln_lm'; Su Jianlin's CLN, bert4keras' task_conditional_language_model.py):
the sentiment label's embedding shifts gamma and beta of every LayerNorm.

Word level, Shen et al.'s vocabulary rule (words seen >= 5 times in train), sentences of
at most 15 words + EOS (max_len 16), 2 classes (0 negative, 1 positive). Pre-LN
Transformer decoder: width 192, 2 blocks, 4 heads, feed-forward 768, learned positions,
dropout 0.1, label embedding 128 (sized to train on 2 CPU cores within a session); Adam
1e-3 with 200 warm-up steps and cosine decay, batch 64, 4,000 steps (1.4 epochs).
Eval on the 3,999 dev sentences: NLL / PPL given the true and the flipped label, and on
500 temperature-1 samples per label: judge_acc (the classifier of
configs/classifier_yelp.py), distinct-1/2, self-BLEU-2..4.

    python launch.py --config=configs/classifier_yelp.py --workdir=/tmp/runs/classifier_yelp
    python launch.py --config=configs/cln_yelp.py --workdir=/tmp/runs/cln_yelp \
      --config.eval.judge=/tmp/runs/classifier_yelp
    python launch.py --config=configs/cln_yelp.py --workdir=/tmp/runs/cln_yelp --mode=sample \
      --config.sample.label=1 --config.sample.top_p=0.9

Presets: 'lstm' (the same model with the LSTM decoder, the label conditioning its initial
state and every input), 'smoke' (seconds). The corpus directory defaults to
../shared/data/yelp_sentiment beside the repository (--config.data.corpus_dir=...).
"""

import os

from jaxtextgen.config import base_config, parse_presets, smoke

_YELP = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'yelp_sentiment')


def cln_transformer(c):
  """The shared model and optimizer of configs/cln_*.py."""
  c.algorithm = 'cln_lm'
  c.data.num_classes = 2
  m = c.model
  m.decoder = 'transformer'
  m.hidden_size = 192
  m.num_layers = 2
  m.num_heads = 4
  m.mlp_dim = 768
  m.dropout = 0.1
  m.positions = 'learned'
  m.label_dim = 128
  o = c.optimizer
  o.learning_rate = 1e-3
  o.schedule = 'cosine'
  o.warmup_steps = 200
  o.grad_clip = 1.0
  c.batch_size = 64
  c.eval_batch_size = 256
  c.log_every = 100
  c.checkpoint_every = 500
  c.eval.judge_samples = 500
  c.sample.num = 10
  return c


def smoke_cln(c):
  smoke(c)
  c.model.mlp_dim = 32
  c.model.num_heads = 2
  c.model.num_layers = 1
  c.model.label_dim = 8
  c.optimizer.warmup_steps = 2
  c.eval.judge_samples = 4
  return c


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('lstm', 'smoke'))
  c = cln_transformer(base_config())
  c.data.corpus = 'yelp_sentiment'
  c.data.corpus_dir = os.path.abspath(_YELP)
  c.data.min_count = 5
  c.data.max_len = 16
  c.data.sort_chunk = 20
  c.data.trim_multiple = 4
  c.num_train_steps = 4_000
  c.eval_every = 2_000
  if 'lstm' in presets:
    c.model.decoder = 'lstm'
    c.model.emb_dim = 256
    c.model.hidden_size = 512
    c.model.num_layers = 1
  if 'smoke' in presets:
    smoke_cln(c)
  return c

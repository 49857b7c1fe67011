"""LSTM language model on Yelp sentiment (both classes): the fluency LM of the
style-transfer evaluations (config.eval.fluency_lm: the PPL of transferred sentences).

Word level with Shen et al.'s vocabulary rule (words seen >= 5 times in train), sentences
of at most 15 words + EOS (max_len 16), the vocabulary and tokenisation of
configs/classifier_yelp.py, ctrl_gen_yelp.py and cross_align_yelp.py. 1 layer, emb 256,
hidden 512, dropout 0.3, Adam 1e-3, batch 64, 2 epochs of the 181k train sentences. Eval
on the 3,999 dev sentences: NLL per sentence and PPL = exp(total NLL / (tokens + one EOS
per sentence)).

    python launch.py --config=configs/lm_yelp.py --workdir=/tmp/runs/lm_yelp
    python launch.py --config=configs/cross_align_yelp.py --workdir=/tmp/runs/cross_align_yelp \\
      --config.eval.judge=/tmp/runs/classifier_yelp --config.eval.fluency_lm=/tmp/runs/lm_yelp

Presets: 'captions' (Li et al. 2018's humorous / romantic image captions,
../shared/data/captions_li2018, words seen >= 2 times, max_len 24), 'smoke' (seconds).
The corpus directory defaults to ../shared/data/yelp_sentiment beside the repository
(--config.data.corpus_dir=...).
"""

import os

from jaxtextgen.config import base_config, parse_presets, smoke

_DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')


def style_corpus(c, captions: bool):
  """The corpus settings every Yelp / captions style config shares (same vocabulary)."""
  name = 'captions_li2018' if captions else 'yelp_sentiment'
  c.data.corpus = name
  c.data.corpus_dir = os.path.abspath(os.path.join(_DATA, name))
  c.data.min_count = 2 if captions else 5
  c.data.max_len = 24 if captions else 16
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.sort_chunk = 20
  c.data.trim_multiple = 4
  return c


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('captions', 'smoke'))
  c = style_corpus(base_config(), 'captions' in presets)
  c.algorithm = 'lm'
  c.batch_size = 64
  c.eval_batch_size = 256
  c.num_epochs = 2
  c.model.emb_dim = 256
  c.model.hidden_size = 512
  c.model.dropout = 0.3
  c.optimizer.learning_rate = 1e-3
  c.log_every = 200
  c.eval_every = 0
  c.checkpoint_every = 1000
  if 'captions' in presets:
    c.num_epochs = 10
  if 'smoke' in presets:
    smoke(c)
  return c

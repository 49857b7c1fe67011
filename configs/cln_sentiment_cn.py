"""Class-conditional Transformer LM with Conditional Layer Normalization on the Chinese
sentiment corpus of bert4keras' CLN example (algorithm 'cln_lm', character level).

Every character is a token (characters seen >= 2 times in train), sentences cut to 63
characters + EOS in train and eval (max_len = max_eval_len = 64), 2 classes (0 negative, 1
positive). The model and optimizer of configs/cln_yelp.py (width 192, 2 blocks, 4 heads,
feed-forward 768, dropout 0.1, label embedding 128; Adam 1e-3 with warm-up and cosine
decay), batch 32, 3,000 steps (5.7 epochs). bert4keras starts from a pretrained BERT and
trains on train + valid + test together; this model starts from scratch on train only, so
its samples are a character LM's. Eval on sentiment.valid.data: NLL / PPL per character
given the true and the flipped label, and on 500 samples per label drawn as bert4keras'
example draws them (`random_sample(..., topk=5)`: config.sample.top_k = 5 and
config.eval.judge_decode = 'sample'; --config.eval.judge_decode=model measures
temperature-1 samples instead): judge_acc (the classifier of
configs/classifier_sentiment_cn.py), distinct-1/2, self-BLEU-2..4 (over characters).

    python launch.py --config=configs/classifier_sentiment_cn.py --workdir=/tmp/runs/classifier_cn
    python launch.py --config=configs/cln_sentiment_cn.py --workdir=/tmp/runs/cln_cn \
      --config.eval.judge=/tmp/runs/classifier_cn
    python launch.py --config=configs/cln_sentiment_cn.py --workdir=/tmp/runs/cln_cn \
      --mode=sample --config.sample.label=0

Presets: 'smoke' (seconds). The corpus directory defaults to
../shared/data/cn_sentiment_bert4keras beside the repository (--config.data.corpus_dir=...).
"""

import os
import runpy

from jaxtextgen.config import base_config, parse_presets

_CN = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                   'cn_sentiment_bert4keras')
_YELP = runpy.run_path(os.path.join(os.path.dirname(__file__), 'cln_yelp.py'))


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('smoke',))
  c = _YELP['cln_transformer'](base_config())
  c.data.corpus = 'cn_sentiment'
  c.data.corpus_dir = os.path.abspath(_CN)
  c.data.tokenizer = 'char'
  c.data.min_count = 2
  c.data.max_len = 64
  c.data.max_eval_len = 64
  c.data.sort_chunk = 20
  c.data.trim_multiple = 16
  c.batch_size = 32
  c.num_train_steps = 3_000
  c.eval_every = 1_000
  c.sample.top_k = 5             # bert4keras' RandomSentiment.generate(label, n, topk=5)
  c.eval.judge_decode = 'sample'   # judge_acc of samples drawn like that
  if 'smoke' in presets:
    _YELP['smoke_cln'](c)
  return c

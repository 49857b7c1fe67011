"""Chinese sentence sentiment classifier (bert4keras' CLN example corpus), character
level: the judge of the class-conditional Chinese generators (their judge_acc).

Every character is a token (a run of spaces is one token), characters seen >= 2 times in
train (4,133 + specials); sentences cut to 127 characters + EOS in train and eval
(max_len = max_eval_len = 128; 30% of the 2,111 valid sentences are longer, and the
warning counts them), 2 classes (0 negative, 1 positive). The CNN and the
optimizer of configs/classifier_yelp.py: widths 3/4/5 x 100, embeddings 128, dropout 0.5,
Adam 1e-3, batch 64, but with the learning rate decayed to 0 along a cosine; 2,000 steps
(7.6 epochs of the 16,883 training sentences), batches
of similar lengths (the CNN's logits do not depend on padding, so this only saves time).
Eval every 500 steps: accuracy, nll and accuracy_class{0,1} on sentiment.valid.data.

    python launch.py --config=configs/classifier_sentiment_cn.py --workdir=/tmp/runs/classifier_cn
    python launch.py --config=configs/classifier_sentiment_cn.py --workdir=/tmp/runs/classifier_cn --mode=eval
    python launch.py --config=configs/classifier_sentiment_cn.py:smoke --workdir=/tmp/cls_cn_smoke

Other runs use it as their judge: --config.eval.judge=/tmp/runs/classifier_cn.
Presets: 'smoke' (seconds). The corpus directory defaults to
../shared/data/cn_sentiment_bert4keras beside the repository; set
--config.data.corpus_dir=... to use another copy.
"""

import os
import runpy

from jaxtextgen.config import base_config, parse_presets

_CN = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data',
                   'cn_sentiment_bert4keras')
_YELP = runpy.run_path(os.path.join(os.path.dirname(__file__), 'classifier_yelp.py'))


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('smoke',))
  c = _YELP['classifier'](base_config(), tokenizer='char', max_len=128, max_eval_len=128,
                          steps=2_000)
  c.data.corpus = 'cn_sentiment'
  c.data.corpus_dir = os.path.abspath(_CN)
  c.data.min_count = 2
  c.data.sort_chunk = 20         # batches of similar lengths, cut to their longest rounded
  c.data.trim_multiple = 32      # up to 32 (4 shapes): fewer padded windows, same logits
  # At a constant 1e-3 the judge overfits from step 1,000 on (dev NLL 0.242 -> 0.358 at
  # 2,000) and its per-class accuracies swing (class 0 0.950 -> 0.872): a cosine decay
  # ends on 0.923 (0.921 / 0.925 per class), dev NLL 0.249.
  c.optimizer.schedule = 'cosine'
  if 'smoke' in presets:
    _YELP['smoke_classifier'](c)
  return c

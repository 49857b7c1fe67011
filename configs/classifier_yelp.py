"""Sentiment classifier on Yelp (Shen et al. 2017's corpus): the judge of the Yelp
class-conditional generators and style-transfer models (their judge_acc).

Word level with Shen et al.'s vocabulary rule (words seen >= 5 times in train: 7,552 +
specials), sentences of at most 15 words + EOS (max_len 16: nothing is cut), 2 classes
(0 negative, 1 positive). Kim (2014)'s CNN as SeqGAN's discriminator body: filter
widths 3/4/5 x 100, embeddings 128, highway, dropout 0.5; Adam 1e-3, batch 64, 3,000
steps (about one epoch of the 181k training sentences). Eval every 500 steps: accuracy,
nll and accuracy_class{0,1} on the 3,999 dev sentences.

    python launch.py --config=configs/classifier_yelp.py --workdir=/tmp/runs/classifier_yelp
    python launch.py --config=configs/classifier_yelp.py --workdir=/tmp/runs/classifier_yelp --mode=eval
    python launch.py --config=configs/classifier_yelp.py:smoke --workdir=/tmp/cls_smoke

Other runs use it as their judge: --config.eval.judge=/tmp/runs/classifier_yelp.
Presets: 'captions' (Li et al. 2018's humorous / romantic captions, ../shared/data/
captions_li2018: words seen >= 2 times, max_len 24, 1,500 steps), 'smoke' (seconds). The
corpus directory defaults to ../shared/data/yelp_sentiment beside the repository; set --config.data.corpus_dir=... to use another copy.
"""

import os

from jaxtextgen.config import base_config, parse_presets, smoke

_YELP = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'yelp_sentiment')


def classifier(c, *, tokenizer: str, max_len: int, max_eval_len: int = 0, steps: int):
  """The shared classifier settings of configs/classifier_*.py: the CNN, Adam 1e-3,
  batch 64, `steps` steps, an eval every 500, 2 classes."""
  c.algorithm = 'classifier'
  c.data.tokenizer = tokenizer
  c.data.max_len = max_len
  c.data.max_eval_len = max_eval_len
  c.data.num_classes = 2
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  k = c.classifier
  k.encoder = 'cnn'
  k.emb_dim = 128
  k.filter_sizes = (3, 4, 5)
  k.num_filters = (100, 100, 100)
  k.dropout = 0.5
  c.optimizer.learning_rate = 1e-3
  c.batch_size = 64
  c.eval_batch_size = 256
  c.num_train_steps = steps
  c.log_every = 100
  c.eval_every = 500
  c.checkpoint_every = 1_000
  return c


def smoke_classifier(c):
  """`smoke` plus a tiny classifier."""
  smoke(c)
  c.classifier.emb_dim = 16
  c.classifier.num_filters = (4, 4, 4)
  c.classifier.hidden_size = 16
  return c


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('captions', 'smoke'))
  c = classifier(base_config(), tokenizer='word', max_len=16, steps=3_000)
  c.data.corpus = 'yelp_sentiment'
  c.data.corpus_dir = os.path.abspath(_YELP)
  c.data.min_count = 5
  if 'captions' in presets:  # the judge of configs/ctrl_gen_yelp.py / cross_align_yelp.py:captions
    c.data.corpus = 'captions_li2018'
    c.data.corpus_dir = os.path.abspath(os.path.join(_YELP, '..', 'captions_li2018'))
    c.data.min_count, c.data.max_len, c.num_train_steps = 2, 24, 1_500
  if 'smoke' in presets:
    smoke_classifier(c)
    # Dev lists negatives first: 16 of each class in the smoke eval's 32 sentences.
    c.data.eval_split = 'validation[:16]+validation[-16:]'
  return c

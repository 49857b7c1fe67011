"""Style transfer by cross-alignment (Shen et al. 2017, algorithm 'cross_align') on Yelp
sentiment: an LSTM autoencoder whose encoder starts from the style and whose decoder reads
[style, z], aligned by two discriminators over its hidden states (professor forcing).

Data: the Yelp corpus of configs/classifier_yelp.py (words seen >= 5 times, at most 15
words + EOS). Model (smaller than Shen et al.'s dim_y 200 / dim_z 500 GRUs, to train on 2
CPU cores within a session): embeddings 128, encoder and decoder LSTM 256, z of 256
(ae.latent_dim), style embedding 64; no dropout, so that real and free-running states
differ only in what D should see. Discriminators: CNNs over the hidden states, widths 1-5
x 128 filters, dropout 0.5. Shen et al.'s training: rho 1, gate 1.2 on both D losses,
Gumbel temperature 0.1, Adam 5e-4 with betas (0.5, 0.999) for every player. Batch 64,
3,000 steps (1.06 epochs of the 181k train sentences). Eval every 1,500 steps on the 3,999
dev sentences: reconstruction NLL, the discriminators' accuracy, and every dev sentence
transferred to the other sentiment (transfer_acc by the judge, bleu_to_source,
sentence_bleu_to_source, transfer_ppl by the fluency LM).

The whole sequence, judge and fluency LM first:

    python launch.py --config=configs/classifier_yelp.py --workdir=/tmp/runs/classifier_yelp
    python launch.py --config=configs/lm_yelp.py --workdir=/tmp/runs/lm_yelp
    python launch.py --config=configs/cross_align_yelp.py --workdir=/tmp/runs/cross_align_yelp \\
      --config.eval.judge=/tmp/runs/classifier_yelp --config.eval.fluency_lm=/tmp/runs/lm_yelp
    echo "the food was cold and the service slow ." | python launch.py \\
      --config=configs/cross_align_yelp.py --workdir=/tmp/runs/cross_align_yelp \\
      --mode=transfer --input=- --to_label=1

Presets: 'captions' (Li et al. 2018's humorous (0) / romantic (1) image captions,
../shared/data/captions_li2018; judge and LM from configs/classifier_yelp.py and
configs/lm_yelp.py with their 'captions' preset), 'smoke' (seconds).
"""

import os
import runpy

from jaxtextgen.config import base_config, parse_presets, smoke

style_corpus = runpy.run_path(os.path.join(os.path.dirname(__file__), 'lm_yelp.py'))['style_corpus']


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('captions', 'smoke'))
  c = style_corpus(base_config(), 'captions' in presets)
  c.algorithm = 'cross_align'
  c.data.num_classes = 2
  c.batch_size = 64
  c.eval_batch_size = 256
  c.num_train_steps = 3_000
  m = c.model
  m.emb_dim = 128
  m.hidden_size = 256
  m.dropout = 0.0
  c.ae.latent_dim = 256
  ca = c.cross_align
  ca.style_dim = 64
  ca.rho = 1.0
  ca.gate = 1.2
  ca.gumbel_temperature = 0.1
  o = c.optimizer
  o.learning_rate = 5e-4
  o.b1, o.b2 = 0.5, 0.999
  g = c.gan
  g.d_kind = 'cnn'
  g.d_filter_sizes = (1, 2, 3, 4, 5)
  g.d_num_filters = (128,) * 5
  g.d_dropout = 0.5
  g.d_two_class = False
  g.d_optimizer = 'adam'
  g.d_learning_rate = 5e-4
  c.log_every = 100
  c.eval_every = 1_500
  c.checkpoint_every = 500
  if 'smoke' in presets:
    smoke(c)
    c.ae.latent_dim = 16
    ca.style_dim = 8
    g.d_num_filters = (4,) * 5
  return c

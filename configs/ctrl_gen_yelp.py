"""Controlled generation (Hu et al. 2017, algorithm 'ctrl_gen') on Yelp sentiment: a VAE
whose LSTM decoder reads [z, one-hot sentiment], a CNN classifier q_D(c|x), wake-sleep.

Data: the Yelp corpus of configs/classifier_yelp.py (words seen >= 5 times, at most 15
words + EOS), all train labels kept (--config.data.label_fraction=0.1 for the
semi-supervised setting). Model: encoder LSTM 256 -> z of 32, decoder LSTM (emb 256,
hidden 256) reading [z, c], KL weight rising linearly to 1 over the VAE phase, word
dropout 0.3; classifier: Kim's CNN (widths 3/4/5 x 100, emb 128). Schedule: 3,000 VAE
steps with c ~ p(c), 500 classifier steps on labelled data, then 1,000 rounds of one
generator and one classifier update; Gumbel-softmax inverse temperature 1 -> 100 over the
rounds; lambda_c = lambda_z = lambda_u = beta = 0.1 (Hu et al.). Batch 64, Adam 1e-3.
Eval on the 3,999 dev sentences: the VAE's metrics (no IW bound), the judge's accuracy on
200 prior sentences per class, and transfer accuracy / BLEU to source / PPL of every dev
sentence moved to the other sentiment.

The whole sequence, judge and fluency LM first:

    python launch.py --config=configs/classifier_yelp.py --workdir=/tmp/runs/classifier_yelp
    python launch.py --config=configs/lm_yelp.py --workdir=/tmp/runs/lm_yelp
    python launch.py --config=configs/ctrl_gen_yelp.py --workdir=/tmp/runs/ctrl_gen_yelp \\
      --config.eval.judge=/tmp/runs/classifier_yelp --config.eval.fluency_lm=/tmp/runs/lm_yelp
    python launch.py --config=configs/ctrl_gen_yelp.py --workdir=/tmp/runs/ctrl_gen_yelp \\
      --mode=sample --config.sample.label=1
    echo "the food was cold and the service slow ." | python launch.py \\
      --config=configs/ctrl_gen_yelp.py --workdir=/tmp/runs/ctrl_gen_yelp --mode=transfer \\
      --input=- --to_label=1

Presets: 'captions' (Li et al. 2018's humorous (0) / romantic (1) image captions,
../shared/data/captions_li2018; its judge and LM are configs/classifier_yelp.py and
configs/lm_yelp.py with their 'captions' preset), 'transformer' (the decoder a Transformer
reading [z, c] in every Conditional LayerNorm), 'texar' (texar's simplified variant,
ctrl_gen.codes='transfer': an attentional autoencoder (config.ae.attention: the decoder
attends over the encoder's states), KL weight 0 and no word dropout, z of 128, trained
with each sentence's own code, the attribute losses on real sentences' z moved to the
other sentiment, lambda_c = 2, lambda_z = 0, and a classifier trained on real sentences
only (lambda_u = 0); 1,500 AE steps, 500 classifier steps and 1,500 rounds with the
Gumbel-softmax inverse temperature 1 -> 4; it has no prior, so no prior-sample judge
accuracy and no --mode=sample), 'smoke' (seconds). The texar row of stop 24, without
attention: ':texar --config.ae.attention=False --config.ctrl_gen.lambda_u=0.1
--config.ctrl_gen.lambda_c=1.0 --config.gan.gumbel_beta_max=100 --config.gan.mle_steps=3000'.
"""

import os
import runpy

from jaxtextgen.config import base_config, parse_presets, smoke

style_corpus = runpy.run_path(os.path.join(os.path.dirname(__file__), 'lm_yelp.py'))['style_corpus']


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('captions', 'transformer', 'texar', 'smoke'))
  c = style_corpus(base_config(), 'captions' in presets)
  c.algorithm = 'ctrl_gen'
  c.data.num_classes = 2
  c.batch_size = 64
  c.eval_batch_size = 256
  m = c.model
  m.emb_dim = 256
  m.hidden_size = 256
  m.dropout = 0.2
  c.ae.latent_dim = 32
  v = c.vae
  v.kl_schedule = 'linear'
  v.kl_warmup_steps = 3_000
  v.word_dropout = 0.3
  v.iw_samples = 0               # the IW bound is the VAE configs' business; skipped here
  k = c.classifier
  k.emb_dim = 128
  k.filter_sizes = (3, 4, 5)
  k.num_filters = (100, 100, 100)
  k.dropout = 0.5
  g = c.gan
  g.mle_steps = 3_000            # phase 'vae'
  g.d_pretrain_steps = 500       # phase 'classifier'
  g.rounds = 1_000
  g.g_steps = 1
  g.d_steps = 1
  g.d_learning_rate = 1e-3
  g.gumbel_beta_max = 100.0
  c.optimizer.learning_rate = 1e-3
  c.log_every = 100
  c.eval_every = 1_500
  c.checkpoint_every = 500
  c.eval.judge_samples = 200
  c.sample.num = 10
  if 'transformer' in presets:
    m.decoder = 'transformer'
    m.num_layers = 2
    m.num_heads = 4
    m.mlp_dim = 1024
    m.dropout = 0.1
  if 'texar' in presets:
    c.ctrl_gen.codes = 'transfer'
    c.ae.attention = True        # texar's AttentionRNNDecoder over the encoder's outputs
    c.ctrl_gen.lambda_u = 0.0    # texar's classifier sees real sentences only
    c.ae.latent_dim = 128
    v.beta = 0.0
    v.word_dropout = 0.0
    # texar's lambda_g 0.1 on a per-token reconstruction loss is 1.0 here (per sentence,
    # ~10 tokens); 2.0 moved more sentences at BLEU-to-source ~50 (README)
    c.ctrl_gen.lambda_c = 2.0
    c.ctrl_gen.lambda_z = 0.0    # texar has no L_attr,z
    g.gumbel_beta_max = 4.0      # tau 1 -> 0.25, texar's Gumbel temperature in its last epoch
    g.mle_steps = 1_500          # the attentional AE copies after 1,500 steps (BLEU 91.7)
    g.rounds = 1_500
  if 'smoke' in presets:
    smoke(c)
    g.mle_steps, g.d_pretrain_steps, g.rounds = 2, 2, 1
    c.num_train_steps = -1
    c.classifier.emb_dim = 16
    c.classifier.num_filters = (4, 4, 4)
    c.eval.judge_samples = 4
    m.mlp_dim = 32
    m.num_heads = 2
  return c

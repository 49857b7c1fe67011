"""VAE-GAN on Penn Treebank (algorithm 'vae_gan', Larsen et al. 2016): the VAE of
configs/vae_ptb.py (emb 256, LSTM 256, z 32, linear KL warm-up from 0.1, word dropout 0.25)
whose decoder is also the generator of a GAN: its Gumbel-softmax sentences (RelGAN's
inverse temperature, 1 -> 100 over the rounds) from prior codes and from the posterior
codes of real sentences are read by a CNN discriminator (widths 2-5, 100 filters each,
emb 64, the nonsaturating loss, Adam 1e-4). The encoder gets the VAE's gradient only;
the decoder gets gamma = 1 times the reconstruction NLL plus the adversarial loss.

Schedule: 10 epochs of plain VAE steps (phase 'vae', gan.mle_steps), 500 discriminator
steps (phase 'd_pretrain'), then 20 epochs of rounds of 1 VAE-GAN step + 1
discriminator step: the encoder and decoder get 30 epochs of updates, as in
configs/vae_ptb.py. Eval: the VAE's (IW-NLL with 500 samples, KL, MI, active units,
reconstruction BLEU) plus BLEU-2..5 / self-BLEU-2..5 of one prior sample per valid
sentence.

    python launch.py --config=configs/vae_gan_ptb.py --workdir=/tmp/vae_gan_ptb
    python launch.py --config=configs/vae_gan_ptb.py:short --workdir=/tmp/vae_gan_short
    python launch.py --config=configs/vae_gan_ptb.py:smoke --workdir=/tmp/vae_gan_smoke

Presets: 'short' (for a CPU: 1,000 VAE steps, 100 discriminator steps, 1,000 rounds: 2,000
encoder / decoder updates, to compare with configs/vae_ptb.py at
--config.num_train_steps=2000), 'features' (Larsen's learned similarity:
vae_gan.feature_weight 1), 'smoke' (seconds). Combine with commas. The corpus directory
defaults to ../shared/data/ptb beside the repository (--config.data.corpus_dir=...).
"""

import os
import runpy

from jaxtextgen.config import parse_presets

_VAE_PTB = runpy.run_path(os.path.join(os.path.dirname(__file__), 'vae_ptb.py'))
_EPOCH = 42_068 // 32  # PTB train sentences / batch size


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('short', 'features', 'smoke'))
  c = _VAE_PTB['get_config']('smoke' if 'smoke' in presets else '')
  c.algorithm = 'vae_gan'
  c.num_train_steps = -1  # the schedule gives it
  g = c.gan
  g.mle_steps, g.d_pretrain_steps, g.rounds, g.g_steps, g.d_steps = (
      10 * _EPOCH, 500, 20 * _EPOCH, 1, 1)
  g.loss = 'nonsaturating'
  g.gumbel_beta_max, g.gumbel_schedule = 100.0, 'exp'
  g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 64, (2, 3, 4, 5), (100, 100, 100, 100)
  g.d_two_class, g.d_l2, g.d_dropout = False, 0.0, 0.25
  g.d_optimizer, g.d_learning_rate = 'adam', 1e-4
  c.vae_gan.gamma = 1.0
  if 'features' in presets:
    c.vae_gan.feature_weight = 1.0
  c.eval.bleu = True
  if 'short' in presets:
    g.mle_steps, g.d_pretrain_steps, g.rounds = 1000, 100, 1000
    c.eval_every = 0
    c.checkpoint_every = 500
  if 'smoke' in presets:  # vae_ptb's smoke sizes; 2 VAE steps, 1 D step, 2 rounds of G, D
    g.mle_steps, g.d_pretrain_steps, g.rounds = 2, 1, 2
    c.num_train_steps = -1
    g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 8, (1, 2, 3), (4, 4, 4)
  return c

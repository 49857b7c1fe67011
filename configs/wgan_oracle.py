"""wgan (WGAN on the generator's softmax outputs) on the synthetic oracle.

Oracle, generator and MLE pretraining as configs/mle_oracle.py (vocab 5000, length 20,
emb = hidden = 32, batch 64, Adam 1e-2, 120 epochs = 18,720 steps). Then 3,000
adversarial rounds of 1 generator step and n_critic = 5 critic steps (each on 64 real
one-hot sentences and 64 fresh fakes). The generator free-runs from a N(0, 1) initial
LSTM state, emits softmax distributions and reads their expected embedding; the critic
(the shared CNN, emb 64, widths 2-5 with 300 filters, one raw score, no dropout) has
every weight clipped into [-0.01, 0.01] after each update; RMSProp 5e-5 for both
adversarial players (Arjovsky et al. 2017; MLE keeps Adam 1e-2).

Reported metric: NLL-oracle of 9,984 samples; also NLL-gen on 1,000 held-out oracle
samples, BLEU / self-BLEU against them and d_gap, the critic's W_1 estimate.

    python launch.py --config=configs/wgan_oracle.py --workdir=/tmp/wgan_oracle
    python launch.py --config=configs/wgan_oracle.py:pretrained,short \
        --workdir=/tmp/wgan_oracle_short
    python launch.py --config=configs/wgan_oracle.py:smoke --workdir=/tmp/wgan_oracle_smoke

Presets (comma-separated) as configs/gumbel_oracle.py: 'random', 'pretrained' (generator
of /tmp/runs/mle_oracle, no MLE phase; --config.gan.generator_init=WORKDIR for another),
'short' (300 rounds), 'smoke'.
"""

import os
import runpy

_GUMBEL = runpy.run_path(os.path.join(os.path.dirname(__file__), 'gumbel_oracle.py'))


def wgan(c):
  """The WGAN recipe on top of gumbel_oracle's schedule and discriminator sizes."""
  c.algorithm = 'wgan'
  g = c.gan
  g.loss, g.clip, g.latent_std = 'wgan', 0.01, 1.0
  g.g_optimizer, g.g_learning_rate = 'rmsprop', 5e-5
  g.d_optimizer, g.d_learning_rate, g.d_dropout = 'rmsprop', 5e-5, 0.0
  return c


def get_config(preset: str = ''):
  return wgan(_GUMBEL['get_config'](preset))

"""gumbel_gan (RelGAN-style Gumbel-softmax GAN) on the synthetic oracle.

Oracle, generator and MLE pretraining as configs/mle_oracle.py (vocab 5000, length 20,
emb = hidden = 32, batch 64, Adam 1e-2, 120 epochs = 18,720 steps). Then 3,000
adversarial rounds of 1 generator step and 5 discriminator steps (each on 64 real
sentences and 64 fresh fakes). The generator emits y_t = softmax(beta * (logits + g)) and
reads y_t's expected embedding; beta rises from 1 to 100 over the 3,000 generator
updates (RelGAN's 'exp' schedule); RSGAN loss; adversarial generator Adam 1e-4 (MLE keeps
Adam 1e-2). Discriminator: the shared CNN with RelGAN's sizes (emb 64, widths 2-5 with
300 filters each, one logit, dropout 0.25), Adam 1e-4. No discriminator pretraining.

Reported metric: NLL-oracle of 9,984 samples; also NLL-gen on 1,000 held-out oracle
samples and BLEU / self-BLEU against them.

    python launch.py --config=configs/gumbel_oracle.py --workdir=/tmp/gumbel_oracle
    python launch.py --config=configs/gumbel_oracle.py:pretrained,short \
        --workdir=/tmp/gumbel_oracle_short
    python launch.py --config=configs/gumbel_oracle.py:smoke --workdir=/tmp/gumbel_oracle_smoke

Presets (comma-separated): 'random' (always the seeded random oracle), 'pretrained' (no MLE
phase: the generator of the configs/mle_oracle.py run in /tmp/runs/mle_oracle; another
run with --config.gan.generator_init=WORKDIR), 'short' (300 rounds, for a CPU), 'smoke'
(seconds: tiny oracle and models, every phase visited).
"""

import os
import runpy

from jaxtextgen.config import parse_presets, smoke

_MLE_ORACLE = runpy.run_path(os.path.join(os.path.dirname(__file__), 'mle_oracle.py'))
_EPOCH = 10_000 // 64  # 156 batches
PRETRAINED = '/tmp/runs/mle_oracle'
PRESETS = ('random', 'pretrained', 'short', 'smoke')


def relgan(c, rounds: int):
  """RelGAN's adversarial settings on top of an MLE config (also configs/gumbel_coco.py)."""
  c.algorithm = 'gumbel_gan'
  g = c.gan
  g.d_pretrain_steps, g.g_steps, g.d_steps = 0, 1, 5
  g.loss = 'rsgan'
  g.gumbel_beta_max, g.gumbel_schedule, g.gumbel_anneal_steps = 100.0, 'exp', 0
  g.g_optimizer, g.g_learning_rate = 'adam', 1e-4
  g.d_optimizer, g.d_learning_rate = 'adam', 1e-4
  g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 64, (2, 3, 4, 5), (300, 300, 300, 300)
  g.d_two_class, g.d_l2, g.d_dropout = False, 0.0, 0.25
  set_rounds(c, rounds)
  return c


def set_rounds(c, rounds: int):
  """`rounds` adversarial rounds (the run's length follows from config.gan at start-up),
  and an eval and checkpoint cadence of about 10 per run."""
  g = c.gan
  round_steps = g.g_steps + g.d_steps
  g.rounds = rounds
  c.num_train_steps = -1  # not the MLE config's: the schedule gives it
  c.eval_every = max(1, rounds // 10) * round_steps
  c.checkpoint_every = c.eval_every
  c.log_every = min(c.log_every, c.eval_every)


def get_config(preset: str = ''):
  presets = parse_presets(preset, PRESETS)
  c = _MLE_ORACLE['get_config']('random' if 'random' in presets else '')
  c.gan.mle_steps = 120 * _EPOCH
  relgan(c, rounds=3000)
  if 'pretrained' in presets:
    c.gan.generator_init, c.gan.mle_steps = PRETRAINED, 0
  set_rounds(c, 300 if 'short' in presets else 3000)  # after mle_steps is final
  if 'smoke' in presets:
    smoke(c)
    g = c.gan
    g.generator_init = ''
    g.mle_steps, g.g_steps, g.d_steps, g.mle_every, g.rounds = 2, 1, 1, 2, 2
    c.num_train_steps = -1         # 6 steps: MLE, MLE, then 2 rounds of G, D
    g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 8, (1, 2, 3), (4, 4, 4)
  return c

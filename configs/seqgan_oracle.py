"""SeqGAN on the synthetic oracle — the protocol of SeqGAN's sequence_gan.py.

Oracle and generator as configs/mle_oracle.py (vocab 5000, length 20, emb = hidden = 32,
batch 64, Adam 1e-2, clipping 5). Discriminator: SeqGAN's CNN (emb 64, widths 1-10, 15, 20
with 100-200 filters, highway, dropout 0.25, L2 0.2 on the output layer, Adam 1e-4).
One step is one batch of 64 consumed by one player's update (jaxtextgen/steps/adversarial.py):

  1. MLE: 120 epochs of the 10,000 oracle samples = 120 x 156 = 18,720 steps.
  2. D pretraining: SeqGAN's 50 x (10,000 fresh samples, 3 epochs) = 50 x 3 x 156 = 23,400
     steps, each on 64 real sentences and 64 fresh samples.
  3. 800 adversarial rounds (SeqGAN's TOTAL_BATCH, config.gan.rounds), each one fused
     update: 1 generator step (64 samples, 16 rollouts per prefix, no baseline), then
     SeqGAN's 5 x 3 epochs of D = 2,340 D steps.

Reported metric: NLL-oracle of 9,984 samples (SeqGAN paper: 8.736 after adversarial
training, 9.038 for MLE).

    python launch.py --config=configs/seqgan_oracle.py --workdir=/tmp/seqgan_oracle
    python launch.py --config=configs/seqgan_oracle.py --workdir=/tmp/seqgan_oracle --mode=eval
    python launch.py --config=configs/seqgan_oracle.py:smoke --workdir=/tmp/seqgan_oracle_smoke

Presets: '' (SeqGAN's weights in ../shared/data/seqgan_oracle when present, else a seeded
random oracle), 'random' (always the seeded oracle), 'pretrained' (no MLE phase: the
generator of the configs/mle_oracle.py run in /tmp/runs/mle_oracle, or
--config.gan.generator_init=WORKDIR), 'short' (for a CPU: 3 epochs of discriminator
pretraining, then 30 rounds of 1 generator step + 1 epoch of discriminator steps), 'smoke'
(seconds: tiny oracle, tiny discriminator, 4 rollouts, every phase visited). Presets
combine with commas, e.g. 'pretrained,short'.
"""

import os
import runpy

from jaxtextgen.config import parse_presets, smoke

_MLE_ORACLE = runpy.run_path(os.path.join(os.path.dirname(__file__), 'mle_oracle.py'))
_EPOCH = 10_000 // 64  # 156 batches, as SeqGAN's data loader
_ROUNDS = 800


PRESETS = ('random', 'pretrained', 'short', 'smoke')


def get_config(preset: str = ''):
  presets = parse_presets(preset, PRESETS)
  # Oracle, generator and optimizer exactly as the MLE baseline.
  c = _MLE_ORACLE['get_config']('random' if 'random' in presets else '')
  c.algorithm = 'seqgan'
  c.num_train_steps = -1  # not the MLE baseline's: the schedule gives it
  g = c.gan
  g.mle_steps = 120 * _EPOCH
  g.d_pretrain_steps = 50 * 3 * _EPOCH
  g.g_steps = 1
  g.d_steps = 5 * 3 * _EPOCH
  g.num_rollouts = 16
  g.rollout_update_rate = 0.8
  g.baseline = 'none'
  rounds = _ROUNDS
  c.log_every = 500
  c.eval_every = 5 * (g.g_steps + g.d_steps)  # every 5 rounds, as SeqGAN's test
  c.checkpoint_every = 2 * _EPOCH * 10
  c.eval.num_samples = 9984      # int(10000 / 64) * 64, as SeqGAN
  if 'pretrained' in presets:
    g.generator_init = '/tmp/runs/mle_oracle'
    g.mle_steps = 0
  if 'short' in presets:  # for a CPU: 3 epochs of D pretraining, 30 rounds of 1 G + 1 epoch of D
    g.d_pretrain_steps, g.d_steps, rounds = 3 * _EPOCH, _EPOCH, 30
    c.eval_every = c.checkpoint_every = 10 * (g.g_steps + g.d_steps)
    c.log_every = 50
  g.rounds = rounds  # the run: mle + d_pretrain + rounds * (g + d) steps, at start-up
  if 'smoke' in presets:
    smoke(c)
    g.generator_init = ''
    g.mle_steps, g.d_pretrain_steps, g.g_steps, g.d_steps, g.rounds = 2, 1, 1, 1, 2
    c.num_train_steps = -1         # 7 steps: MLE, MLE, D, then 2 rounds of G, D
    g.num_rollouts = 4
    g.d_emb_dim = 8
    g.d_filter_sizes, g.d_num_filters = (1, 2, 3, 5), (4, 4, 4, 4)
  return c

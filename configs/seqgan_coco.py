"""SeqGAN on COCO image captions (Texygen's 10,000-caption train file).

Data: ../shared/data/image_coco/train.txt (lowercased, whitespace tokens, vocabulary of
the training slice); train on its first 9,000 lines, evaluate on the last 1,000
('train[9000:]', since Texygen's test file is not shipped): they are the BLEU references
and the NLL-gen split. max_len 36 keeps every caption whole (35 words + EOS).
Generator emb = hidden = 32, batch 64, Adam 1e-2; SeqGAN's schedule in epochs of
9,000 / 64 = 140 batches: 120 epochs MLE, 50 x 3 epochs of D pretraining, then 200
rounds of 1 generator step (16 rollouts, in 4 chunks for memory) + 5 x 3 epochs of D.

Reported at every eval: NLL-gen (nll_per_token on the held-out 1,000), BLEU-2..5 of one
sample per held-out caption against all 1,000, self-BLEU-2..5 of those samples.

    python launch.py --config=configs/seqgan_coco.py --workdir=/tmp/seqgan_coco
    python launch.py --config=configs/seqgan_coco.py:smoke --workdir=/tmp/seqgan_coco_smoke

Presets (comma-separated): 'pretrained' (no MLE phase: the generator of the
configs/mle_coco.py run in /tmp/runs/mle_coco, or --config.gan.generator_init=WORKDIR;
also evaluates at step 0), 'short' (10 epochs MLE, 1 epoch D, 50 rounds of 1 G + 20 D
steps), 'smoke' (seconds; held-out = the last 20% of the file, so a tiny corpus_dir
works: --config.data.corpus_dir=DIR holding train.txt).
"""

import os

from jaxtextgen.config import base_config, parse_presets, smoke

_COCO = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'image_coco')
_EPOCH = 9_000 // 64  # 140 batches
PRETRAINED = '/tmp/runs/mle_coco'
PRESETS = ('pretrained', 'short', 'smoke')


def coco(c):
  """COCO captions data, generator and eval, shared with configs/gumbel_coco.py."""
  d = c.data
  d.corpus, d.corpus_dir = 'coco_captions', os.path.abspath(_COCO)
  d.train_split, d.eval_split = 'train[:9000]', 'train[9000:]'
  d.max_len = 36
  c.batch_size, c.eval_batch_size = 64, 500
  c.model.emb_dim = c.model.hidden_size = 32
  c.optimizer.learning_rate, c.optimizer.grad_clip = 1e-2, 5.0
  c.eval.bleu = True
  c.eval.num_samples = 0         # no oracle: BLEU and NLL-gen instead
  c.log_every = 100
  return c


def smoke_coco(c):
  """The :smoke shrink for COCO configs: splits that any small train.txt has."""
  smoke(c)
  c.data.train_split, c.data.eval_split = 'train[:80%]', 'train[80%:]'
  c.data.max_len = 16
  c.gan.generator_init = ''
  return c


def pretrained(c, presets):
  """The 'pretrained' preset; before the run length is computed from gan.mle_steps. The
  step-0 eval (eval.at_start) scores the starting generator: the MLE row of the table."""
  if 'pretrained' in presets:
    c.gan.generator_init, c.gan.mle_steps = PRETRAINED, 0
    c.eval.at_start = True
  return c


def check_presets(preset: str):
  return parse_presets(preset, PRESETS)


def get_config(preset: str = ''):
  presets = check_presets(preset)
  c = coco(base_config())
  c.algorithm = 'seqgan'
  g = c.gan
  g.mle_steps, g.d_pretrain_steps = 120 * _EPOCH, 50 * 3 * _EPOCH
  g.g_steps, g.d_steps, rounds = 1, 5 * 3 * _EPOCH, 200
  g.num_rollouts, g.rollout_chunks = 16, 4
  if 'short' in presets:
    g.mle_steps, g.d_pretrain_steps, g.d_steps, rounds = 10 * _EPOCH, _EPOCH, 20, 50
  pretrained(c, presets)
  g.rounds = rounds  # the run: mle + d_pretrain + rounds * (g + d) steps, at start-up
  c.eval_every = c.checkpoint_every = 10 * (g.g_steps + g.d_steps)
  if 'smoke' in presets:
    smoke_coco(c)
    g.mle_steps, g.d_pretrain_steps, g.g_steps, g.d_steps, g.rounds = 2, 1, 1, 1, 2
    c.num_train_steps = -1         # 7 steps: MLE, MLE, D, then 2 rounds of G, D
    g.num_rollouts, g.rollout_chunks = 2, 1
    g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 8, (1, 2, 3), (4, 4, 4)
  return c

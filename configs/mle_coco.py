"""MLE (teacher forcing) on COCO image captions: the MLE row of the COCO GAN table and
the generator that configs/seqgan_coco.py and gumbel_coco.py start from ('pretrained').

Data, generator and optimizer as configs/seqgan_coco.py (train on the first 9,000 lines
of Texygen's train.txt, held-out = the last 1,000; emb = hidden = 32, batch 64, Adam
1e-2, gradient clipping 5), 120 epochs of 140 batches = 16,800 steps, the MLE phase of
seqgan_coco as a plain `lm` run (no discriminator state to carry through each step).
Its eval reports, as the COCO GANs' does, NLL-gen (nll_per_token on the held-out
1,000), BLEU-2..5 of one sample per held-out caption against all 1,000, and self-BLEU:

    python launch.py --config=configs/mle_coco.py --workdir=/tmp/runs/mle_coco
    python launch.py --config=configs/mle_coco.py:smoke --workdir=/tmp/mle_coco_smoke

Presets: 'smoke' (seconds; works on a tiny --config.data.corpus_dir holding train.txt).
"""

import os
import runpy

from jaxtextgen.config import base_config

_COCO = runpy.run_path(os.path.join(os.path.dirname(__file__), 'seqgan_coco.py'))
_EPOCH = 9_000 // 64  # 140 batches


def get_config(preset: str = ''):
  if preset not in ('', 'smoke'):
    raise ValueError(f"unknown preset {preset!r}: use '' or 'smoke'")
  c = _COCO['coco'](base_config())
  c.algorithm = 'lm'
  c.num_train_steps = 120 * _EPOCH
  c.eval_every = c.checkpoint_every = 10 * _EPOCH
  if preset == 'smoke':
    _COCO['smoke_coco'](c)
  return c

"""gumbel_gan (RelGAN-style Gumbel-softmax GAN) on COCO image captions.

Data, generator and eval as configs/seqgan_coco.py (train on the first 9,000 captions,
held-out = the last 1,000: BLEU references and NLL-gen; max_len 36, emb = hidden = 32,
batch 64, MLE Adam 1e-2 for 120 epochs = 16,800 steps). Adversarial settings as
configs/gumbel_oracle.py: 3,000 rounds of 1 generator + 5 discriminator steps, RSGAN
loss, beta 1 -> 100 ('exp'), adversarial generator Adam 1e-4, RelGAN-sized CNN.

Reported at every eval: NLL-gen, BLEU-2..5 of one sample per held-out caption against
all 1,000, self-BLEU-2..5.

    python launch.py --config=configs/gumbel_coco.py --workdir=/tmp/gumbel_coco
    python launch.py --config=configs/gumbel_coco.py:smoke --workdir=/tmp/gumbel_coco_smoke

Presets (comma-separated): 'pretrained' (no MLE phase: the generator of the
configs/mle_coco.py run in /tmp/runs/mle_coco, or --config.gan.generator_init=WORKDIR),
'short' (10 epochs MLE, 300 rounds), 'smoke' (seconds; works on
a tiny --config.data.corpus_dir, see configs/seqgan_coco.py).
"""

import os
import runpy

from jaxtextgen.config import base_config

_HERE = os.path.dirname(__file__)
_COCO = runpy.run_path(os.path.join(_HERE, 'seqgan_coco.py'))
_GUMBEL = runpy.run_path(os.path.join(_HERE, 'gumbel_oracle.py'))
_EPOCH = 9_000 // 64  # 140 batches


def get_config(preset: str = ''):
  presets = _COCO['check_presets'](preset)
  c = _COCO['coco'](base_config())
  c.gan.mle_steps = (10 if 'short' in presets else 120) * _EPOCH
  _COCO['pretrained'](c, presets)
  _GUMBEL['relgan'](c, rounds=300 if 'short' in presets else 3000)
  if 'smoke' in presets:
    _COCO['smoke_coco'](c)
    g = c.gan
    g.mle_steps, g.g_steps, g.d_steps, g.mle_every, g.rounds = 2, 1, 1, 2, 2
    c.num_train_steps = -1         # 6 steps: MLE, MLE, then 2 rounds of G, D
    g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 8, (1, 2, 3), (4, 4, 4)
  return c

"""Every algorithm runs on the Transformer decoder (config.model.decoder='transformer'):
each config's :smoke preset trains and evaluates through the generic trainer (their
evals sample from the decoder too)."""

import os
import runpy

import numpy as np
import pytest

from jaxtextgen.train import trainer

pytestmark = pytest.mark.usefixtures('quick_compile')
CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
# config file -> its algorithm (cln_lm and classifier: tests/steps/test_cln_lm.py)
SMOKES = {'mle_oracle': 'lm', 'seqgan_oracle': 'seqgan', 'gumbel_oracle': 'gumbel_gan',
          'wgan_oracle': 'wgan', 'ae_ptb': 'ae', 'dae_ptb': 'dae', 'vae_ptb': 'vae'}


def _ptb(tmp_path):
  d = tmp_path / 'ptb'
  d.mkdir()
  words = 'the cat sat on a mat and dog ran far away'.split()
  rs = np.random.RandomState(0)
  for split, n in (('train', 40), ('valid', 16)):
    lines = [' '.join(rs.choice(words, rs.randint(2, 9))) for _ in range(n)]
    (d / f'ptb.{split}.txt').write_text(''.join(f' {l} \n' for l in lines))
  return d


@pytest.mark.parametrize('name', sorted(SMOKES))
def test_smoke_config_on_the_transformer_decoder(tmp_path, name):
  c = runpy.run_path(os.path.join(CONFIGS, f'{name}.py'))['get_config']('smoke')
  assert c.algorithm == SMOKES[name]
  c.model.decoder, c.model.num_heads, c.model.mlp_dim = 'transformer', 2, 32
  if c.data.corpus == 'ptb':
    c.data.corpus_dir, c.data.cache_dir = str(_ptb(tmp_path)), str(tmp_path / 'cache')
    c.data.max_len = 10
  c.eval_every, c.eval.max_batches = 0, 1
  final = trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert final and all(np.isfinite(v) for v in final.values()), final

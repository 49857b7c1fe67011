"""ae, dae and vae end to end through the generic trainer (the configs' :smoke presets
on a tiny corpus): train, eval and sample modes, and a vae whose encoder comes from
the ae run (Li et al. 2019)."""

import json
import os
import runpy

import jax
import numpy as np
import pytest

from jaxtextgen.steps import autoencoding
from jaxtextgen.train import trainer

pytestmark = pytest.mark.usefixtures('quick_compile')
CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')


def _config(tmp_path, name, preset='smoke'):
  """configs/<name>.py:<preset> on a tiny PTB-format corpus in tmp_path."""
  d = tmp_path / 'ptb'
  if not d.exists():
    d.mkdir()
    words = 'the cat sat on a mat and dog ran far away'.split()
    rs = np.random.RandomState(0)
    for split, n in (('train', 80), ('valid', 20)):
      lines = [' '.join(rs.choice(words, rs.randint(2, 9))) for _ in range(n)]
      (d / f'ptb.{split}.txt').write_text(''.join(f' {l} \n' for l in lines))
  c = runpy.run_path(os.path.join(CONFIGS, f'{name}.py'))['get_config'](preset)
  c.data.corpus_dir = str(d)
  c.data.cache_dir = str(tmp_path / 'cache')
  c.data.max_len = 10
  return c


def _run_all_modes(config, workdir):
  """train -> eval -> sample; returns the final eval metrics."""
  final = trainer.train_and_evaluate(config, workdir)
  assert all(np.isfinite(v) for v in final.values()), final
  assert trainer.evaluate_checkpoint(config, workdir) == {'step': 6, **final}
  texts = trainer.sample_checkpoint(config, workdir, num=3)
  vocab = set(json.load(open(os.path.join(workdir, 'vocab.json')))['tokens'])
  assert len(texts) == 3 and all(w in vocab for t in texts for w in t.split())
  return final


def test_ae_then_vae_with_its_encoder(tmp_path):
  ae_dir = str(tmp_path / 'ae')
  final = _run_all_modes(_config(tmp_path, 'ae_ptb'), ae_dir)
  assert {'rec_nll', 'rec_ppl', 'bleu'} <= set(final) and 0 <= final['bleu'] <= 1

  config = _config(tmp_path, 'vae_ptb', 'pretrain_fb,smoke')
  config.vae.encoder_init = ae_dir
  vae_dir = str(tmp_path / 'vae')
  start = trainer.Run(config, vae_dir).initial_state()
  pretrained = autoencoding.load_encoder(ae_dir)
  jax.tree.map(np.testing.assert_array_equal,
               {k: start.params['encoder'][k] for k in ('lstm', 'mean')}, pretrained)
  final = _run_all_modes(config, vae_dir)
  expected = {'rec_nll', 'kl', 'neg_elbo', 'iw_nll', 'ppl', 'ppl_elbo', 'mi', 'active_units',
              'bleu', 'nll_per_token'}
  assert expected <= set(final)
  # He et al.'s MI estimate (one z per sentence) is noisy on 32 sentences, even
  # negative; that the trainer hands over every row is tested in test_trainer.py.
  assert np.isfinite(final['mi'])
  assert final['neg_elbo'] == pytest.approx(final['rec_nll'] + final['kl'])
  assert final['ppl'] == pytest.approx(np.exp(final['nll_per_token']))

  config.vae.encoder_init = str(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match='train an ae there first'):
    trainer.train_and_evaluate(config, str(tmp_path / 'vae2'))


def test_dae_all_modes(tmp_path):
  final = _run_all_modes(_config(tmp_path, 'dae_ptb'), str(tmp_path / 'dae'))
  assert {'rec_nll', 'bleu', 'noisy_rec_nll', 'noisy_bleu'} <= set(final)


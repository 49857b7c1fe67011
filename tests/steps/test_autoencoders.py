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


def _run_all_modes(config, workdir, steps=6):
  """train -> eval -> sample; returns the final eval metrics."""
  final = trainer.train_and_evaluate(config, workdir)
  assert all(np.isfinite(v) for v in final.values()), final
  assert trainer.evaluate_checkpoint(config, workdir) == {'step': steps, **final}
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


def test_dae_all_modes_then_self_critical_training_from_it(tmp_path):
  dae_dir = str(tmp_path / 'dae')
  final = _run_all_modes(_config(tmp_path, 'dae_ptb'), dae_dir)
  assert {'rec_nll', 'bleu', 'noisy_rec_nll', 'noisy_bleu'} <= set(final)

  # configs/dae_ptb.py:scst from that run: 3 reconstruction steps, then 3 'scst' steps
  config = _config(tmp_path, 'dae_ptb', 'scst,smoke')
  config.scst.init = dae_dir
  scst_dir = str(tmp_path / 'scst')
  start = trainer.Run(config, scst_dir).initial_state()
  trained = trainer.Run(_config(tmp_path, 'dae_ptb'), dae_dir).restore_or_init()[0]
  jax.tree.map(np.testing.assert_array_equal, start.params, trained.params)
  assert set(start.opt_state) == {'encoder', 'decoder', 'rl'}
  trainer.train_and_evaluate(config, scst_dir)
  rows = [json.loads(l) for l in open(os.path.join(scst_dir, 'metrics.jsonl'))]
  first_eval = next(r for r in rows if r['step'] == 0 and 'eval/rec_nll' in r)
  assert first_eval['eval/rec_nll'] == pytest.approx(final['rec_nll'], rel=1e-6)
  rewards = [r[k] for r in rows for k in ('scst/reward', 'scst/reward_greedy') if k in r]
  assert rewards and all(0.0 <= x <= 1.0 for x in rewards)

  other = _config(tmp_path, 'dae_ptb', 'scst,smoke')
  other.scst.init, other.model.hidden_size = dae_dir, 24
  with pytest.raises(ValueError, match='config.scst.init=.*other players or sizes'):
    trainer.Run(other, str(tmp_path / 'other')).initial_state()



def test_sample_mode_reconstructs_interpolates_and_draws_the_latent_space(tmp_path, monkeypatch):
  import io  # pylint: disable=g-import-not-at-top
  config = _config(tmp_path, 'ae_ptb')
  workdir = str(tmp_path / 'ae')
  trainer.train_and_evaluate(config, workdir)
  sentences = ['the cat sat on a mat', 'a dog ran far away', 'the dog sat', 'cat and dog',
               'on a mat', 'far away ran the cat']
  (tmp_path / 'in.txt').write_text('\n'.join(sentences[:5]) + '\n\n')
  config.sample.num = 0
  config.sample.reconstruct_file = str(tmp_path / 'in.txt')
  config.sample.homotopy = f'{sentences[0]} ||| {sentences[1]}'
  config.sample.homotopy_steps = 5
  config.sample.latent_png = True
  config.eval_batch_size = 4  # two chunks for five sentences: padding must not matter
  lines = trainer.sample_checkpoint(config, workdir)

  # What each sentence reconstructs to on its own, without chunks or padding.
  run = trainer.Run(config, workdir)
  state, step = run.restore_or_init(require=True)
  split = trainer.pipeline.tokenize(sentences, None, run.data.vocab, config.data.max_len)
  alone = [run.data.vocab.decode(autoencoding.reconstruct(
      state, split.tokens[i:i + 1], split.mask[i:i + 1], config=run.config)[0])
           for i in range(len(sentences))]
  rows = open(os.path.join(workdir, f'reconstructions_{step}.txt')).read().splitlines()
  assert rows == [f'{s}\t{r}' for s, r in zip(sentences[:5], alone)]
  path = open(os.path.join(workdir, f'homotopy_{step}.txt')).read().splitlines()
  assert len(path) == 5 and path[0] == alone[0] and path[-1] == alone[1]
  with open(os.path.join(workdir, f'latent_{step}.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert lines[1:6] == rows and lines[7:12] == path and 'latent' in lines[-1]

  # stdin, and bad input: one error naming the fix.
  config.sample.homotopy, config.sample.latent_png = '', False
  config.sample.reconstruct_file = '-'
  monkeypatch.setattr('sys.stdin', io.TextIOWrapper(io.BytesIO(sentences[5].encode())))
  assert trainer.sample_checkpoint(config, workdir)[1:] == [f'{sentences[5]}\t{alone[5]}']
  (tmp_path / 'bad.txt').write_bytes(b'the cat\nthe \xff dog\n')
  config.sample.reconstruct_file = str(tmp_path / 'bad.txt')
  with pytest.raises(ValueError, match='line 2 is not UTF-8'):
    trainer.sample_checkpoint(config, workdir)
  config.sample.reconstruct_file = ''
  config.sample.homotopy = 'only one sentence'
  with pytest.raises(ValueError, match="separated by '|||'"):
    trainer.sample_checkpoint(config, workdir)
  config.sample.homotopy, config.algorithm = '', 'lm'
  config.sample.latent_png = True
  with pytest.raises(ValueError, match='need an autoencoder'):
    trainer.sample_checkpoint(config, str(tmp_path / 'lm'))


def test_vae_gan_trains_evaluates_and_samples(tmp_path):
  """configs/vae_gan_ptb.py:smoke: 2 VAE steps, 1 discriminator step, 2 rounds of G + D;
  the VAE's eval plus BLEU of prior samples, and the VAE's sample outputs."""
  config = _config(tmp_path, 'vae_gan_ptb')
  final = _run_all_modes(config, str(tmp_path / 'vae_gan'), steps=7)
  config.sample.homotopy = 'the cat sat ||| a dog ran'
  assert {'iw_nll', 'kl', 'active_units', 'bleu2', 'self_bleu2'} <= set(final)
  assert final['kl'] >= 0 and 0 <= final['bleu2'] <= 1
  lines = trainer.sample_checkpoint(config, str(tmp_path / 'vae_gan'), num=0)
  assert lines[0].startswith('# homotopy') and len(lines) == 1 + config.sample.homotopy_steps

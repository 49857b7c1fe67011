"""End to end through the generic trainer: smoke runs, exact resume, SIGTERM, bad input."""

import json
import os
import signal

import jax
import numpy as np
import pytest

from jaxtextgen.config import base_config, smoke
from jaxtextgen.train import trainer
from jaxtextgen.train.writer import read_metrics


def _oracle_config():
  c = smoke(base_config())
  c.eval.num_samples = 16
  return c


def _ptb_config(tmp_path):
  d = tmp_path / 'ptb'
  d.mkdir(exist_ok=True)
  words = 'the cat sat on a mat and dog ran far away'.split()
  rs = np.random.RandomState(0)
  for name, n in (('train', 80), ('valid', 20)):
    lines = [' '.join(rs.choice(words, rs.randint(2, 12))) for _ in range(n)]
    (d / f'ptb.{name}.txt').write_text(''.join(f' {l} \n' for l in lines))
  c = smoke(base_config())
  c.data.corpus, c.data.corpus_dir = 'ptb', str(d)
  c.data.cache_dir = str(tmp_path / 'cache')
  c.data.max_len = 10
  return c


class _Interrupt(Exception):
  pass


def _without_rates(rows):
  """Throughput columns depend on wall time; everything else must match exactly."""
  return [{k: v for k, v in r.items() if k not in ('steps_per_s', 'tokens_per_s')} for r in rows]


@pytest.mark.parametrize('make_config', ['oracle', 'ptb'])
def test_killed_run_resumes_to_the_same_metrics(tmp_path, monkeypatch, make_config):
  config = _oracle_config() if make_config == 'oracle' else _ptb_config(tmp_path)
  full = trainer.train_and_evaluate(config, str(tmp_path / 'full'))
  assert np.isfinite(full['nll_per_token']) and full['ppl'] > 1
  if make_config == 'oracle':
    assert 0 < full['nll_oracle'] < 2 * np.log(50)

  # Crash during step 5 (after the checkpoint at step 3, after step 4 was logged).
  workdir = str(tmp_path / 'killed')
  with monkeypatch.context() as m:
    seen = {'train': 0}
    original = trainer.pipeline.train_iterator

    def crashing_iterator(*args, **kwargs):
      for batch in original(*args, **kwargs):
        seen['train'] += 1
        if seen['train'] == 5:
          raise _Interrupt()
        yield batch
    m.setattr(trainer.pipeline, 'train_iterator', crashing_iterator)
    with pytest.raises(_Interrupt):
      trainer.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3']
  assert max(r['step'] for r in read_metrics(workdir)) == 4  # logged, not checkpointed
  resumed = trainer.train_and_evaluate(config, workdir)
  assert resumed == full
  assert _without_rates(read_metrics(workdir)) == _without_rates(read_metrics(str(tmp_path / 'full')))
  with open(os.path.join(workdir, 'eval_6.json')) as f:
    assert json.load(f) == {'step': 6, **full}


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_sigterm_checkpoints_and_resumes(tmp_path, monkeypatch, signum):
  """SIGTERM and a first Ctrl-C finish the step, checkpoint it and raise Stopped (launch.py
  exits EXIT_STOPPED); the resumed run ends where an uninterrupted one does."""
  config = _oracle_config()
  full = trainer.train_and_evaluate(config, str(tmp_path / 'full'))
  workdir = str(tmp_path / 'term')
  # What was there before (Python's Ctrl-C handler, or SIG_IGN when the suite runs in a
  # shell's background job) must be there again afterwards.
  before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  with monkeypatch.context() as m:
    original = trainer.pipeline.train_iterator

    def terminated_iterator(*args, **kwargs):
      for i, batch in enumerate(original(*args, **kwargs)):
        if i == 1:
          os.kill(os.getpid(), signum)
        yield batch
    m.setattr(trainer.pipeline, 'train_iterator', terminated_iterator)
    with pytest.raises(trainer.Stopped, match='stopped at step 2'):
      trainer.train_and_evaluate(config, workdir)
  assert {s: signal.getsignal(s) for s in before} == before  # handlers restored
  # The step in flight finished and was checkpointed: step 2 (not a multiple of 3).
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
  assert trainer.train_and_evaluate(config, workdir) == full


@pytest.mark.parametrize('eval_index', [0, 1])  # the eval at step 4, the final one at 6
def test_a_stop_during_eval_abandons_it_and_the_resumed_run_makes_it_up(tmp_path, monkeypatch,
                                                                         eval_index):
  config = _oracle_config()
  full = trainer.train_and_evaluate(config, str(tmp_path / 'full'))
  workdir = str(tmp_path / 'stopped')
  with monkeypatch.context() as m:
    original, calls = trainer.pipeline.eval_batches, []

    def eval_batches(*args, **kwargs):
      calls.append(1)
      for batch in original(*args, **kwargs):
        if len(calls) == eval_index + 1:
          os.kill(os.getpid(), signal.SIGTERM)
        yield batch
    m.setattr(trainer.pipeline, 'eval_batches', eval_batches)
    step = (4, 6)[eval_index]
    with pytest.raises(trainer.Stopped, match=f'stopped at step {step}'):
      trainer.train_and_evaluate(config, workdir)
  assert str(step) in os.listdir(os.path.join(workdir, 'checkpoints'))
  assert not os.path.exists(os.path.join(workdir, f'eval_{step}.json'))
  assert trainer.train_and_evaluate(config, workdir) == full
  rows = lambda d: [{k: v for k, v in r.items() if k not in ('steps_per_s', 'tokens_per_s')}
                    for r in read_metrics(d)]
  assert rows(workdir) == rows(str(tmp_path / 'full'))


def test_train_rows_hold_the_window_mean_of_each_metric(tmp_path, monkeypatch):
  """A fake update that reports its step number: every train row holds the mean over its
  log window (steps 0-1, 2-3, 4-5 with log_every 2), not the window's last value; NaNs
  (not measured this time) are skipped, and a metric NaN in the whole window is left out."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxtextgen.steps import lm  # pylint: disable=g-import-not-at-top

  def fake_step(state, batch, rng, *, config, axis_name=None):
    del batch, rng, config, axis_name
    n = state.step.astype(jnp.float32)
    return state.replace(step=state.step + 1), {
        'n': n, 'even': jnp.where(state.step % 2 == 0, n, jnp.nan), 'never': jnp.nan * n}
  monkeypatch.setattr(lm, 'train_step', fake_step)
  trainer.train_and_evaluate(_oracle_config(), str(tmp_path / 'run'))
  rows = [r for r in read_metrics(str(tmp_path / 'run')) if 'n' in r]
  assert [(r['step'], r['n'], r['even']) for r in rows] == [(2, 0.5, 0.0), (4, 2.5, 2.0),
                                                            (6, 4.5, 4.0)]
  assert not any('never' in r for r in rows)


def test_eval_at_start_records_the_initial_state_and_changes_nothing_else(tmp_path, monkeypatch):
  """eval.at_start: one eval row at step 0, of the initial state (near-uniform: NLL close to
  log V), and otherwise the same logs; a restart with no checkpoint redoes it, once."""
  config = _oracle_config()
  plain = trainer.train_and_evaluate(config, str(tmp_path / 'plain'))
  config.eval.at_start = True
  workdir = str(tmp_path / 'start')
  with monkeypatch.context() as m:  # crash at step 2: before the first checkpoint (step 3)
    original = trainer.pipeline.train_iterator

    def crashing_iterator(*args, **kwargs):
      for i, batch in enumerate(original(*args, **kwargs)):
        if i == 1:
          raise _Interrupt()
        yield batch
    m.setattr(trainer.pipeline, 'train_iterator', crashing_iterator)
    with pytest.raises(_Interrupt):
      trainer.train_and_evaluate(config, workdir)
  assert [r['step'] for r in read_metrics(workdir)] == [0]
  assert trainer.train_and_evaluate(config, workdir) == plain
  rows = read_metrics(workdir)
  assert [r['step'] for r in rows].count(0) == 1
  first = rows[0]
  assert first['step'] == 0 and set(first) == {'step'} | {f'eval/{k}' for k in plain}
  with open(os.path.join(workdir, 'config.json')) as f:
    vocab_size = json.load(f)['vocab']['size']
  assert abs(first['eval/nll_per_token'] - np.log(vocab_size)) < 0.2
  assert _without_rates(rows[1:]) == _without_rates(read_metrics(str(tmp_path / 'plain')))


def test_eval_and_sample_modes(tmp_path):
  config = _ptb_config(tmp_path)
  workdir = str(tmp_path / 'run')
  with pytest.raises(FileNotFoundError, match='train first'):
    trainer.evaluate_checkpoint(config, workdir)
  final = trainer.train_and_evaluate(config, workdir)
  assert trainer.evaluate_checkpoint(config, workdir) == {'step': 6, **final}
  texts = trainer.sample_checkpoint(config, workdir, num=4)
  assert len(texts) == 4
  vocab = set(json.load(open(os.path.join(workdir, 'vocab.json')))['tokens'])
  assert all(w in vocab for t in texts for w in t.split())
  assert open(os.path.join(workdir, 'samples_6.txt')).read().splitlines() == texts


def test_bad_input_fails_at_start_up_with_the_fix(tmp_path):
  c = _ptb_config(tmp_path)
  c.batch_size = 6  # 4 forced devices
  with pytest.raises(ValueError, match='multiple of 4'):
    trainer.train_and_evaluate(c, str(tmp_path / 'a'))
  c = _ptb_config(tmp_path)
  c.data.corpus_dir = str(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match='corpus_dir'):
    trainer.train_and_evaluate(c, str(tmp_path / 'b'))
  (tmp_path / 'ptb' / 'ptb.train.txt').write_text('\n\n')
  with pytest.raises(ValueError, match='empty'):
    trainer.train_and_evaluate(_ptb_config_existing(tmp_path), str(tmp_path / 'c'))
  c = _oracle_config()
  c.algorithm = 'nope'
  with pytest.raises(ValueError, match="'lm'"):
    trainer.train_and_evaluate(c, str(tmp_path / 'd'))


def _ptb_config_existing(tmp_path):
  c = smoke(base_config())
  c.data.corpus, c.data.corpus_dir = 'ptb', str(tmp_path / 'ptb')
  c.data.cache_dir = str(tmp_path / 'cache')
  return c


def test_corrupt_checkpoint_names_the_fix_and_keeps_files(tmp_path):
  config = _oracle_config()
  workdir = tmp_path / 'run'
  trainer.train_and_evaluate(config, str(workdir))
  ckpt = workdir / 'checkpoints' / '6'
  data_files = [f for f in ckpt.rglob('*') if f.is_file() and f.parent.name == 'd']
  assert data_files
  for f in data_files:  # the tensor data, as a disk error or partial copy would leave it
    f.write_bytes(b'garbage')
  before = sorted(str(p) for p in workdir.rglob('*'))
  with pytest.raises(RuntimeError, match='Move it aside'):
    trainer.evaluate_checkpoint(config, str(workdir))
  assert sorted(str(p) for p in workdir.rglob('*')) == before


def test_resuming_with_other_model_or_data_settings_lists_them(tmp_path):
  config = _oracle_config()
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(config, workdir)
  other = _oracle_config()
  other.model.hidden_size, other.data.oracle_seed = 24, 5
  with pytest.raises(ValueError, match=r"data.oracle_seed: 0 -> 5; data.provenance: 'oracle: "
                     r"seeded random, seed 0.*' -> 'oracle: seeded random, seed 5.*'; "
                     r'model.hidden_size: 16 -> 24\. Set them back'):
    trainer.evaluate_checkpoint(other, workdir)
  later = _oracle_config()
  later.num_train_steps, later.log_every = 8, 1  # a longer run, other logging: fine
  assert trainer.train_and_evaluate(later, workdir)['nll_per_token'] > 0
  assert trainer.resume_conflicts({'eval': {'judge': ''}}, {'eval': {'judge': 'x'}}) == []
  assert trainer.resume_conflicts({'model': {}}, {'model': {'cln_hidden': 0}}) == []  # older


def test_config_json_records_the_data_and_a_workdir_of_other_data_is_refused(tmp_path):
  c = _ptb_config(tmp_path)
  workdir = tmp_path / 'run'
  trainer.train_and_evaluate(c, str(workdir))
  saved = json.loads((workdir / 'config.json').read_text())['data']['provenance']
  assert saved.startswith('ptb: ptb.train.txt, ptb.valid.txt') and ' sha256 ' in saved
  # The same workdir without its checkpoints, on an edited corpus: its vocab.json is stale.
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(workdir / 'checkpoints')
  with open(os.path.join(c.data.corpus_dir, 'ptb.train.txt'), 'a') as f:
    f.write(' zebra quagga okapi \n')
  with pytest.raises(ValueError, match=r'vocab.json in this workdir belong to other data.*'
                     r'data.provenance.*new --workdir'):
    trainer.train_and_evaluate(c, str(workdir))


def test_a_checkpoint_whose_bytes_changed_fails_its_checksum(tmp_path):
  config = _oracle_config()
  workdir = tmp_path / 'run'
  trainer.train_and_evaluate(config, str(workdir))
  digests_path = workdir / 'checkpoints.sha256.json'
  digests = json.loads(digests_path.read_text())
  assert sorted(digests) == sorted(os.listdir(workdir / 'checkpoints')) == ['3', '6']
  # Same size, other bytes: a flipped bit in the middle of every tensor data file (ocdbt's
  # d/ folders; with several devices not every file is read back).
  data = [f for f in (workdir / 'checkpoints' / '6').rglob('*')
          if f.is_file() and f.parent.name == 'd']
  assert data
  originals = {f: f.read_bytes() for f in data}
  for f, raw in originals.items():
    raw = bytearray(raw)
    raw[len(raw) // 2] ^= 0x01
    f.write_bytes(bytes(raw))
  with pytest.raises(RuntimeError, match=r'checkpoints/6.*previous checkpoint \(step 3\)'):
    trainer.evaluate_checkpoint(config, str(workdir))
  for f, raw in originals.items():
    f.write_bytes(raw)
  assert trainer.evaluate_checkpoint(config, str(workdir))['step'] == 6
  # The digest itself: a state that differs from what was saved is named as such.
  digest_path_text = json.dumps({**digests, '6': '0' * 64})
  digests_path.write_text(digest_path_text)
  with pytest.raises(RuntimeError, match=r'does not match the checksum written with it.*'
                     r'previous checkpoint \(step 3\)'):
    trainer.evaluate_checkpoint(config, str(workdir))


def test_per_example_eval_rows_cover_the_split_in_order(tmp_path, monkeypatch):
  import types
  from jaxtextgen.steps import lm
  received = {}

  def eval_step(state, batch, rng, *, config):
    return {**lm.eval_step(state, batch, rng, config=config),
            'per_example': {'length': batch['mask'].sum(1)}}

  def finalize_eval(sums):
    received.update(sums)
    return lm.finalize_eval({k: v for k, v in sums.items() if k != 'per_example'})

  algo = types.SimpleNamespace(init=lm.init, train_step=lm.train_step, sample=lm.sample,
                               eval_step=eval_step, finalize_eval=finalize_eval)
  monkeypatch.setattr(trainer.steps, 'get', lambda name: algo)
  config = _ptb_config(tmp_path)
  config.eval.max_batches = 0  # the whole split: 20 sentences in batches of 16 (4 padding rows)
  run = trainer.Run(config, str(tmp_path / 'run'))
  state, _ = run.restore_or_init()
  run.evaluate(state, 0)
  np.testing.assert_array_equal(received['per_example']['length'], run.data.eval.mask.sum(1))
  assert received['sentences'] == 20


def test_non_finite_parameters_are_never_checkpointed(tmp_path):
  """A learning rate that blows the parameters up stops the run with an error that names
  the last good checkpoint, which survives (it is not rotated out by NaN checkpoints)."""
  c = _oracle_config()
  c.num_train_steps, c.checkpoint_every, c.keep_checkpoints, c.eval_every = 6, 1, 2, 0
  c.optimizer.learning_rate, c.optimizer.grad_clip = 1e38, 0.0
  workdir = str(tmp_path / 'nan')
  with pytest.raises(trainer.NonFiniteError, match=r'non-finite parameters at step 2 .*'
                     r'the last good checkpoint, step 1'):
    trainer.train_and_evaluate(c, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1']


def test_nan_policy_skip_drops_the_non_finite_updates_and_counts_them(tmp_path):
  """Step 1 blows the parameters up to finite values, every later update to NaN: with
  nan_policy='skip' the run finishes, every later update is skipped and logged as such,
  and the final parameters are those after step 1."""
  c = _oracle_config()
  c.num_train_steps, c.checkpoint_every, c.eval_every, c.log_every = 4, 1, 0, 1
  c.keep_checkpoints = 5
  c.optimizer.learning_rate, c.optimizer.grad_clip, c.nan_policy = 1e38, 0.0, 'skip'
  workdir = str(tmp_path / 'skip')
  trainer.train_and_evaluate(c, workdir)
  rows = [r for r in read_metrics(workdir) if 'nan_skipped' in r]
  assert [(r['step'], r['nan_skipped']) for r in rows] == [(1, 0.0), (2, 1.0), (3, 1.0),
                                                           (4, 1.0)]
  c.keep_checkpoints = 5
  run = trainer.Run(c, workdir)
  like = run.initial_state()
  after_one, final = run.checkpointer.restore(like, 1), run.checkpointer.restore(like, 4)
  run.checkpointer.close()
  jax.tree.map(np.testing.assert_array_equal, final.params, after_one.params)
  assert int(final.step) == 4
  c.nan_policy = 'sometimes'
  with pytest.raises(ValueError, match=r"nan_policy='sometimes' must be one of \('stop', 'skip'\)"):
    trainer.check_values(c)


@pytest.mark.parametrize('key, value, message', [
    ('optimizer.learning_rate', -1e-3, 'learning_rate=-0.001 must be > 0'),
    ('batch_size', 0, 'batch_size=0 must be a positive'),
    ('data.max_len', 1, 'max_len=1 must be >= 2')])
def test_certainly_wrong_values_are_rejected_before_anything_is_written(tmp_path, key, value,
                                                                         message):
  c = _oracle_config()
  *parents, leaf = key.split('.')
  node = c
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(ValueError, match=message):
    trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('mode', ['eval', 'sample'])
def test_eval_and_sample_on_a_missing_workdir_create_nothing(tmp_path, mode):
  fn = trainer.evaluate_checkpoint if mode == 'eval' else trainer.sample_checkpoint
  workdir = tmp_path / 'mispelt'
  with pytest.raises(FileNotFoundError, match='no checkpoint in .*mispelt/checkpoints; train '
                     'first'):
    fn(_oracle_config(), str(workdir))
  assert not workdir.exists()


def test_eval_on_a_read_only_workdir_still_returns_its_metrics(tmp_path, monkeypatch):
  c = _oracle_config()
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, workdir)
  real_open = open

  def read_only(path, mode='r', *args, **kwargs):
    if 'w' in mode and str(path).endswith('.json') and 'eval_' in str(path):
      raise PermissionError(13, 'Permission denied', str(path))
    return real_open(path, mode, *args, **kwargs)
  monkeypatch.setattr('builtins.open', read_only)
  for f in os.listdir(workdir):
    if f.startswith('eval_'):
      os.remove(os.path.join(workdir, f))
  metrics = trainer.evaluate_checkpoint(c, workdir)
  assert metrics['step'] == c.num_train_steps and np.isfinite(metrics['nll_per_token'])
  assert not any(f.startswith('eval_') for f in os.listdir(workdir))


def test_a_second_trainer_on_the_same_workdir_fails_at_once(tmp_path):
  workdir = str(tmp_path / 'run')
  held = trainer._WorkdirLock(workdir)  # pylint: disable=protected-access  (another trainer)
  try:
    with pytest.raises(trainer.WorkdirInUse, match=rf'is in use: pid {os.getpid()} on .* is '
                       'training there'):
      trainer.train_and_evaluate(_oracle_config(), workdir)
    assert sorted(os.listdir(workdir)) == ['train.lock']  # nothing else written
  finally:
    held.release()


def test_bfloat16_compute_trains_end_to_end_with_float32_params(tmp_path):
  """model.dtype='bfloat16' through the trainer (train, checkpoint, eval, sample): the
  params and the checkpoint stay float32, and the eval NLL is the float32 run's to within
  bf16 rounding (same data, same init)."""
  f32 = _ptb_config(tmp_path)
  bf16 = _ptb_config(tmp_path)
  bf16.model.dtype = 'bfloat16'
  ref = trainer.train_and_evaluate(f32, str(tmp_path / 'f32'))
  got = trainer.train_and_evaluate(bf16, str(tmp_path / 'bf16'))
  assert got['nll_per_token'] == pytest.approx(ref['nll_per_token'], rel=2e-2)
  assert got['nll_per_token'] != ref['nll_per_token']  # the bf16 path really ran
  state, step = trainer.Run(bf16, str(tmp_path / 'bf16')).restore_or_init(require=True)
  assert step == 6
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {np.dtype('float32')}
  assert len(trainer.sample_checkpoint(bf16, str(tmp_path / 'bf16'), num=2)) == 2

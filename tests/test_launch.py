"""launch.py as a user runs it: subprocesses, flags, exit codes, printed output."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch(*args, **env):
  return subprocess.run([sys.executable, 'launch.py', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600, env={**os.environ, **env})


def test_unknown_config_field_is_one_clear_error(tmp_path):
  r = _launch('--config=configs/mle_oracle.py:smoke', f'--workdir={tmp_path}',
              '--config.modle.hidden_size=8')
  assert r.returncode != 0
  assert "unknown config field 'modle'" in r.stderr
  assert 'Traceback' not in r.stderr
  assert not os.listdir(tmp_path)  # nothing written


def test_a_user_error_is_one_line_and_exit_code_2(tmp_path):
  """A missing corpus: `error: <message>` as the last line, exit code 2, no traceback;
  --traceback shows it."""
  args = ['--config=configs/lm_ptb.py:smoke', f'--workdir={tmp_path / "run"}',
          f'--config.data.corpus_dir={tmp_path / "missing"}']
  r = _launch(*args)
  assert r.returncode == 2, r.stderr[-3000:]
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and 'missing' in last
  assert 'Traceback' not in r.stderr
  r = _launch(*args, '--traceback')
  assert r.returncode == 1 and 'Traceback' in r.stderr


def test_train_then_eval_prints_the_eval_json_last(tmp_path):
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/mle_oracle.py:smoke', f'--workdir={workdir}',
            '--config.num_train_steps=4', '--config.eval_every=0']
  r = _launch(*common)
  assert r.returncode == 0, r.stderr[-3000:]
  r = _launch(*common, '--mode=eval')
  assert r.returncode == 0, r.stderr[-3000:]
  last = json.loads(r.stdout.strip().splitlines()[-1])
  with open(os.path.join(workdir, 'eval_4.json')) as f:
    assert json.load(f) == last
  assert last['step'] == 4 and last['nll_oracle'] > 0
  r = _launch(*common, '--mode=sample', '--config.sample.num=3')
  assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 3
  # --mode=transfer on a model without an attribute code: one line, exit code 2.
  r = _launch(*common, '--mode=transfer', '--to_label=1', '--input=-')
  assert r.returncode == 2, r.stderr[-3000:]
  assert r.stderr.strip().splitlines()[-1] == (
      "error: config.algorithm='lm' has no attribute code to set: --mode=transfer needs a "
      'model with one (ctrl_gen, cross_align).')


def test_sigterm_during_training_checkpoints_and_exits_75(tmp_path):
  """A run told to stop (SIGTERM) while it trains writes a checkpoint of the step it is at
  and exits with code 75 (resuming is tested in tests/train/test_trainer.py)."""
  import signal  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  args = [sys.executable, 'launch.py', '--config=configs/mle_oracle.py:smoke',
          f'--workdir={workdir}', '--config.num_train_steps=1000000', '--config.log_every=1',
          '--config.eval_every=0', '--config.checkpoint_every=1000000']
  proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True)
  try:
    for line in proc.stderr:  # training has begun once a step is logged
      if 'step 2/' in line:
        break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
  finally:
    proc.kill()
  assert proc.returncode == 75, err[-3000:]
  steps = [int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit()]
  assert len(steps) == 1 and 2 <= steps[0] < 1000000


@pytest.mark.parametrize('name', ['gumbel_oracle', 'wgan_oracle', 'seqgan_coco', 'gumbel_coco',
                                  'mle_coco'])
def test_gan_smoke_configs_train_eval_and_sample(tmp_path, name):
  """Each GAN config's (and mle_coco's) :smoke preset through launch.py; the COCO ones on a
  tiny train.txt."""
  workdir = str(tmp_path / 'run')
  common = [f'--config=configs/{name}.py:smoke', f'--workdir={workdir}']
  if 'coco' in name:
    d = tmp_path / 'coco'
    d.mkdir()
    words = 'a man cat dog on the table with red sits near two'.split()
    rs = np.random.RandomState(0)
    d.joinpath('train.txt').write_text(
        ''.join(' '.join(rs.choice(words, rs.randint(3, 12))) + '\n' for _ in range(60)))
    common += [f'--config.data.corpus_dir={d}', f'--config.data.cache_dir={tmp_path / "cache"}']
  # Tiny models: compile time dominates; cache programs across the three processes.
  env = dict(JAX_DISABLE_MOST_OPTIMIZATIONS='true',
             JAX_COMPILATION_CACHE_DIR=str(tmp_path / 'jax_cache'),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  r = _launch(*common, **env)
  assert r.returncode == 0, r.stderr[-3000:]
  r = _launch(*common, '--mode=eval', **env)
  assert r.returncode == 0, r.stderr[-3000:]
  last = json.loads(r.stdout.strip().splitlines()[-1])
  assert last['step'] == (7 if name == 'seqgan_coco' else 6)  # seqgan: + 1 D-pretraining step
  assert np.isfinite(last['nll_per_token'])
  if name != 'mle_coco':
    assert all(0 <= last[f'{k}{n}'] <= 1 for k in ('bleu', 'self_bleu') for n in (2, 3, 4, 5))
  if 'oracle' in name:
    assert last['nll_oracle'] > 0
  r = _launch(*common, '--mode=sample', '--config.sample.num=3', **env)
  assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 3


@pytest.mark.parametrize('name,short', [('gumbel_oracle', 300), ('wgan_oracle', 300),
                                        ('seqgan_oracle', 30), ('gumbel_coco', 300),
                                        ('seqgan_coco', 50)])
def test_oracle_gan_presets_run_the_stated_number_of_rounds(name, short):
  """'pretrained' drops the MLE phase, 'short' sets its round count, the presets combine
  in any order, and the run's length comes from the schedule (mle + d_pretrain + rounds x
  (g + d) steps), also after a command-line override of a phase."""
  import runpy  # pylint: disable=g-import-not-at-top
  from jaxtextgen import steps  # pylint: disable=g-import-not-at-top
  get_config = runpy.run_path(os.path.join(ROOT, 'configs', f'{name}.py'))['get_config']
  rounds = {}
  for preset in ('', 'pretrained', 'short', 'pretrained,short', 'short,pretrained'):
    c = get_config(preset)
    g = c.gan
    assert (g.mle_steps == 0) == ('pretrained' in preset), preset
    assert c.num_train_steps == -1, preset  # never precomputed in the config file
    sched = steps.get(c.algorithm).schedule(c)
    assert sched.total_steps == g.mle_steps + g.d_pretrain_steps + g.rounds * (
        g.g_steps + g.d_steps)
    rounds[preset] = sched.phases[-1].updates
    g.d_steps += 7  # --config.gan.d_steps=...: the same rounds, each 7 steps longer
    assert steps.get(c.algorithm).schedule(c).total_steps == sched.total_steps + 7 * g.rounds
  assert rounds['pretrained'] == rounds[''] > short
  assert rounds['short'] == rounds['pretrained,short'] == rounds['short,pretrained'] == short


def test_a_20000_token_eval_line_costs_what_its_tokens_cost(tmp_path):
  """An LM eval whose dev split holds one 20,000-word line peaks within a small multiple
  of the same eval without it (the peak RSS of each subprocess; loose, not timed). Cut to
  the normal lines' width for all 256 rows of a batch, it would hold 256 x 20,001 x 300
  float32 logits (6 GB)."""
  import resource
  rng = np.random.default_rng(0)
  words = lambda n: ' '.join(f'w{i}' for i in rng.integers(0, 300, n))
  peaks = []
  for name, extra in (('normal', []), ('long', [words(20_000)])):
    d = tmp_path / name
    d.mkdir()
    (d / 'train.txt').write_text(''.join(words(12) + '\n' for _ in range(400)))
    (d / 'valid.txt').write_text(''.join(words(12) + '\n' for _ in range(300)) +
                                 ''.join(l + '\n' for l in extra))
    r = _launch('--config=configs/lm_ptb.py:smoke', f'--workdir={d / "run"}',
                '--config.data.corpus=text_lines', f'--config.data.corpus_dir={d}',
                '--config.data.train_split=train', '--config.data.eval_split=valid',
                '--config.data.max_len=16', '--config.data.min_count=1',
                '--config.num_train_steps=2', '--config.eval_every=0', '--config.batch_size=8',
                '--config.eval_batch_size=256')
    assert r.returncode == 0, r.stderr[-3000:]
    with open(d / 'run' / 'eval_2.json') as f:
      assert json.load(f)['eval_sentences'] == 300 + len(extra)
    peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
  assert peaks[1] < 2 * peaks[0], peaks  # a max over children: the long run's own peak


def _free_port() -> int:
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_train_to_the_loss_of_one(tmp_path):
  """--coordinator_address / --num_processes / --process_id: two CPU processes on localhost
  (gloo collectives), each holding half of every global batch, log the rows of one."""
  from jaxtextgen.train.writer import read_metrics  # pylint: disable=g-import-not-at-top
  common = ['--config=configs/mle_oracle.py:smoke', '--config.eval_every=0',
            '--config.num_train_steps=4']
  one = _launch(*common, f'--workdir={tmp_path / "one"}')
  assert one.returncode == 0, one.stderr[-3000:]
  port, workdir = _free_port(), tmp_path / 'two'
  procs = [subprocess.Popen(
      [sys.executable, 'launch.py', *common, f'--workdir={workdir}',
       f'--coordinator_address=localhost:{port}', '--num_processes=2', f'--process_id={i}'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], [o[1][-3000:] for o in outs]
  assert '2 process(es)' in outs[0][1]
  rows = lambda d: [{k: v for k, v in r.items() if k not in ('steps_per_s', 'tokens_per_s')}
                    for r in read_metrics(str(d))]
  a, b = rows(tmp_path / 'one'), rows(workdir)
  assert [r['step'] for r in a] == [r['step'] for r in b] and len(a) >= 3
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    np.testing.assert_allclose([y[k] for k in sorted(y)], [x[k] for k in sorted(x)], rtol=1e-4)
  r = _launch(*common, f'--workdir={tmp_path / "bad"}', '--coordinator_address=localhost:1')
  assert r.returncode != 0 and 'needs all of --coordinator_address' in r.stderr

"""launch.py as a user runs it: subprocesses, flags, exit codes, printed output."""

import json
import os
import subprocess
import sys

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

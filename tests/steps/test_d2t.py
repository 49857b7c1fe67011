"""d2t end to end on a tiny WebNLG fixture: training, the eval JSON keys, resume,
--mode=generate with plans and its bad input; the self-critical objective."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.objectives.sequence import self_critical_loss
from jaxtextgen.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'data'))
from test_d2t_data import write_webnlg  # pylint: disable=g-import-not-at-top,wrong-import-position


def _config(corpus_dir, cache, preset='smoke', **overrides):
  import runpy  # pylint: disable=g-import-not-at-top
  c = runpy.run_path(os.path.join(ROOT, 'configs', 'd2t_webnlg.py'))['get_config'](preset)
  c.data.corpus_dir = corpus_dir
  c.data.cache_dir = cache
  c.batch_size = 4
  c.eval_batch_size = 4
  c.data.sort_chunk = 0
  c.data.trim_multiple = 0
  c.data.max_len = 24
  for k, v in overrides.items():
    node = c
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return c


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp('webnlg')
  return write_webnlg(root / 'webnlg'), str(root / 'cache')


@pytest.fixture(scope='module')
def trained(corpus, tmp_path_factory, quick_compile):
  """The planner model of configs/d2t_webnlg.py:smoke trained 6 steps: (workdir, metrics)."""
  del quick_compile
  workdir = str(tmp_path_factory.mktemp('d2t'))
  return workdir, trainer.train_and_evaluate(_config(*corpus), workdir)


def test_eval_json_keys(trained):
  metrics = trained[1]
  assert {'bleu', 'entity_coverage', 'entity_hallucination', 'nll_per_token', 'ppl',
          'plan_exact', 'plan_kendall_tau', 'plan_nll', 'plan_step_acc'} <= set(metrics)
  assert 0 <= metrics['bleu'] <= 100 and 0 <= metrics['entity_coverage'] <= 1
  assert metrics['generated_entries'] == 3  # one text per dev entry, not per reference


def test_coverage_reranking_picks_a_beam_that_covers_at_least_as_much(corpus, trained):
  """d2t.rerank_coverage: a huge weight picks, in each row, a hypothesis of the beam with
  the most source coverage (so never less than the plain pick's); a tiny one changes
  nothing."""
  import copy  # pylint: disable=g-import-not-at-top
  from jaxtextgen.steps import d2t  # pylint: disable=g-import-not-at-top
  with trainer.Run(_config(*corpus, **{'d2t.beam_size': 3}), trained[0]) as run:
    state, _ = run.restore_or_init(require=True)
  src = {k: jnp.asarray(run.data.eval.extra[k]) for k in d2t.SRC_FIELDS}
  params = state.params['model']

  def texts(weight):
    config = copy.deepcopy(run.config)
    config.d2t.rerank_coverage = weight
    return d2t.generate(params, src, config=config)[0]

  plain, huge = texts(0.0), texts(1e6)
  np.testing.assert_array_equal(texts(1e-9), plain)
  cover = lambda t: np.asarray(d2t.source_coverage(t, src, 'webnlg'))
  assert np.all(cover(huge) >= cover(plain))
  assert np.any(cover(huge) > cover(plain))  # on this fixture: row 2, 0.2 -> 0.4


def test_the_ablation_trains_without_plan_metrics(corpus, tmp_path, quick_compile):
  del quick_compile
  metrics = trainer.train_and_evaluate(_config(*corpus, **{'d2t.planner': False}), str(tmp_path))
  assert 'bleu' in metrics and 'plan_exact' not in metrics and 'plan_nll' not in metrics


def test_generate_writes_texts_and_plans(corpus, trained, tmp_path):
  workdir = trained[0]
  inputs = tmp_path / 'in.txt'
  inputs.write_text('Zurich | leaderName | Corine_Mauch ;; Aarhus_Airport | cityServed | Aarhus\n'
                    '[{"subject": "Aarhus", "predicate": "leaderName", "object": "Jacob"}]\n')
  lines = trainer.generate_checkpoint(_config(*corpus), workdir, str(inputs), show_plan=True)
  assert len(lines) == 2
  _, plan = lines[0].split('\t')
  chosen = plan.split(' >> ') if plan else []  # input records, each at most once
  assert len(set(chosen)) == len(chosen)
  assert set(chosen) <= {'Zurich | leaderName | Corine_Mauch',
                         'Aarhus_Airport | cityServed | Aarhus'}
  assert open(os.path.join(workdir, 'generate_6.txt')).read().splitlines() == lines


def test_resume_reproduces_an_uninterrupted_run(corpus, tmp_path, quick_compile):
  """mle 3 + scst 3 steps (with the coverage bonus) in one go, or stopped after 4 (inside
  'scst') and resumed."""
  del quick_compile
  config = _config(*corpus, preset='scst,smoke', **{'d2t.coverage_reward': 0.5})
  whole = trainer.train_and_evaluate(config, str(tmp_path / 'whole'))
  part = tmp_path / 'part'
  cut = _config(*corpus, preset='scst,smoke', **{'d2t.coverage_reward': 0.5})
  cut.scst.steps = 1  # 4 steps, checkpointed; then the full schedule resumes from step 4
  trainer.train_and_evaluate(cut, str(part))
  resumed = trainer.train_and_evaluate(config, str(part))
  assert whole['bleu'] == resumed['bleu']
  np.testing.assert_allclose(whole['nll_per_token'], resumed['nll_per_token'], rtol=1e-6)
  rows = lambda d: [json.loads(l) for l in open(d / 'metrics.jsonl')]
  scst = lambda d: [r['scst/reward'] for r in rows(d) if 'scst/reward' in r]
  assert scst(tmp_path / 'whole')[-1] == pytest.approx(scst(part)[-1], rel=1e-6)


def test_malformed_generate_line_is_one_error_exit_2(corpus, trained):
  args = ['--config=configs/d2t_webnlg.py:smoke', f'--workdir={trained[0]}',
          f'--config.data.corpus_dir={corpus[0]}', f'--config.data.cache_dir={corpus[1]}',
          '--config.batch_size=4', '--config.eval_batch_size=4', '--config.data.sort_chunk=0',
          '--config.data.trim_multiple=0', '--config.data.max_len=24', '--mode=generate',
          '--input=-']
  out = subprocess.run([sys.executable, 'launch.py', *args], cwd=ROOT, capture_output=True,
                       text=True, input='a | b | c\nAarhus | leaderName\n')
  assert out.returncode == 2, out.stderr[-2000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and '--input line 2' in errors[0] and 'not a record of 3' in errors[0]


def test_rotowire_smoke_config_runs_on_its_fixture(tmp_path, quick_compile):
  """configs/d2t_rotowire.py:smoke trains, evaluates and generates from box-score JSON."""
  del quick_compile
  import runpy  # pylint: disable=g-import-not-at-top
  c = runpy.run_path(os.path.join(ROOT, 'configs', 'd2t_rotowire.py'))['get_config']('smoke')
  c.data.cache_dir = str(tmp_path / 'cache')
  metrics = trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert {'bleu', 'plan_exact', 'entity_coverage'} <= set(metrics)
  inputs = tmp_path / 'in.txt'
  inputs.write_text('[["Al Horford", "PTS", "20", "H"], ["Goran Dragic", "AST", "7", "A"]]\n')
  lines = trainer.generate_checkpoint(c, str(tmp_path / 'run'), str(inputs), show_plan=True)
  assert len(lines) == 1 and '\t' in lines[0]


def test_self_critical_gradient_is_zero_at_equal_rewards_and_points_the_right_way():
  logits = jnp.asarray([0.3, -0.2, 0.1])
  actions = jnp.asarray([0, 1, 2, 2, 1, 0])

  def loss(l, reward, baseline):
    logp = jax.nn.log_softmax(l)[actions]
    return self_critical_loss(logp, reward, baseline) / actions.shape[0]

  r = jnp.asarray([0.2, 0.5, 0.9, 0.9, 0.5, 0.2])
  np.testing.assert_array_equal(jax.grad(loss)(logits, r, r), 0.0)
  # reward 1 for action 2 only, baseline the greedy action's (0): gradient descent must
  # raise p(action 2) and lower the others
  reward = (actions == 2).astype(jnp.float32)
  greedy = jnp.zeros_like(reward)
  g = jax.grad(loss)(logits, reward, greedy)
  new = jax.nn.softmax(logits - 0.5 * g)
  old = jax.nn.softmax(logits)
  assert new[2] > old[2] and new[0] < old[0] and new[1] < old[1]
  # the value: -(sum of advantage * log p)
  np.testing.assert_allclose(
      self_critical_loss(jnp.log(jnp.asarray([0.5, 0.25])), jnp.asarray([1.0, 0.0]),
                         jnp.asarray([0.5, 0.5])),
      -(0.5 * np.log(0.5) - 0.5 * np.log(0.25)), rtol=1e-6)


def test_source_coverage_counts_the_entity_field_tokens_a_text_contains():
  from jaxtextgen.steps.d2t import source_coverage  # pylint: disable=g-import-not-at-top
  src = {'src_ext': jnp.asarray([[5, 6, 7, 8, 0], [5, 6, 0, 0, 0]]),
         'src_field': jnp.asarray([[0, 1, 2, 0, 3], [1, 1, 3, 3, 3]]),  # 3: padding
         'src_mask': jnp.asarray([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], jnp.float32)}
  tokens = jnp.asarray([[5, 9, 8, 6, 0, 0], [5, 6, 0, 0, 0, 0]])
  # row 0: entity tokens 5 (subject), 7 (object), 8 (subject); 6 is a predicate token;
  # the text holds 5 and 8. Row 1 has no entity token.
  np.testing.assert_allclose(source_coverage(tokens, src, 'webnlg'), [2 / 3, 0.0])

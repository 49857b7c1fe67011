"""The `classifier` algorithm: learning, eval sums, padding invariance, errors, the judge."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.config import base_config, smoke
from jaxtextgen.data import pipeline
from jaxtextgen.data.vocab import Vocab
from jaxtextgen.steps import classifier
from jaxtextgen.train import parallel, trainer

pytestmark = pytest.mark.usefixtures('quick_compile')

FILLER = ('x', 'y', 'z', 'w')


def _toy_texts(n, seed=0, sep=' '):
  """Class c sentences hold the signal word 'a' (c = 0) or 'b' (c = 1) among 1-5 fillers."""
  rs = np.random.RandomState(seed)
  texts, labels = [], []
  for i in range(n):
    words = list(rs.choice(FILLER, rs.randint(1, 6)))
    words.insert(rs.randint(len(words) + 1), 'ab'[i % 2])
    texts.append(sep.join(words))
    labels.append(i % 2)
  return texts, np.asarray(labels)


def _config(encoder='cnn', *, vocab_size=10, dropout=0.0):
  c = base_config()
  c.algorithm = 'classifier'
  c.data.num_classes = 2
  c.data.max_len = 8
  c.num_train_steps = 100
  c.optimizer.learning_rate = 1e-2
  k = c.classifier
  k.encoder, k.emb_dim, k.hidden_size, k.dropout = encoder, 8, 8, dropout
  k.filter_sizes, k.num_filters = (1, 2, 3), (4, 4, 4)
  c.model.num_layers, c.model.num_heads, c.model.mlp_dim, c.model.max_positions = 1, 2, 16, 16
  with c.unlocked():
    c.vocab.update(dict(size=vocab_size, bos_id=1, eos_id=2, pad_id=0, unk_id=3, mask_id=4))
  return c


def _init(c, batch):
  """classifier.init, jitted: one compilation instead of one per primitive (eager)."""
  return jax.jit(lambda r: classifier.init(r, c, batch))(jax.random.key(0))


def _eval(state, batch, c):
  return jax.jit(lambda s, b: classifier.eval_step(s, b, None, config=c))(state, batch)


def _toy_split(n=32, seed=0):
  texts, labels = _toy_texts(n, seed)
  vocab = Vocab.build(_toy_texts(64)[0])
  return pipeline.tokenize(texts, labels, vocab, 8), vocab


@pytest.mark.parametrize('encoder', ['cnn', 'lstm', 'transformer'])
def test_learns_a_separable_corpus(encoder):
  split, vocab = _toy_split(n=128)  # (32 are few enough for the Transformer to memorise)
  c = _config(encoder, vocab_size=len(vocab))
  batch = split.gather(np.arange(len(split)))
  state = _init(c, batch)
  step = jax.jit(lambda s, b, r: classifier.train_step(s, b, r, config=c))
  for _ in range(40):
    state, metrics = step(state, batch, jax.random.key(1))
  assert int(state.step) == 40 and float(metrics['examples']) == 128
  held_out, _ = _toy_split(seed=1)
  sums = _eval(state, held_out.gather(np.arange(32)), c)
  out = classifier.finalize_eval(jax.tree.map(np.asarray, sums))
  assert out['accuracy'] == 1.0 and out['accuracy_class0'] == out['accuracy_class1'] == 1.0
  assert out['nll'] < 0.2 and out['eval_examples'] == 32


def test_train_loss_is_the_weighted_global_mean_and_eval_sums_match_numpy():
  split, vocab = _toy_split(n=8)
  c = _config(vocab_size=len(vocab))
  batch = split.gather(np.arange(8), np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32))
  batch['label'] = np.array([0, 1, 0, 1, 1, 1, 0, 0], np.int32)
  state = _init(c, batch)
  logits = jax.jit(lambda p, t: classifier.predict_logits(p, t, config=c))(
      state.params['classifier'], batch['tokens'])
  assert logits.shape == (8, 2) and logits.dtype == jnp.float32
  logits = np.asarray(logits, np.float64)
  nll = -(logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(8), batch['label']]
  right = logits.argmax(1) == batch['label']
  w = batch['weight']
  _, metrics = jax.jit(lambda s, b: classifier.train_step(s, b, jax.random.key(0), config=c))(
      state, batch)
  np.testing.assert_allclose(metrics['loss'], (nll * w).sum() / 6, rtol=1e-5)
  np.testing.assert_allclose(metrics['accuracy'], (right * w).sum() / 6, rtol=1e-6)
  sums = _eval(state, batch, c)
  np.testing.assert_allclose(sums['nll_sum'], (nll * w).sum(), rtol=1e-5)
  assert float(sums['examples']) == 6 and float(sums['correct']) == (right * w).sum()
  np.testing.assert_array_equal(sums['class_count'], [2, 4])
  np.testing.assert_array_equal(sums['class_correct'], [(right * w)[[0, 2]].sum(),
                                                        (right * w)[[1, 3, 4, 5]].sum()])
  out = classifier.finalize_eval({'correct': 3.0, 'examples': 4.0, 'nll_sum': 2.0,
                                  'class_correct': np.array([1.0, 2.0, 0.0]),
                                  'class_count': np.array([2.0, 2.0, 0.0])})
  assert {k: v for k, v in out.items() if k != 'accuracy_class2'} == {
      'accuracy': 0.75, 'nll': 0.5, 'eval_examples': 4.0, 'accuracy_class0': 0.5,
      'accuracy_class1': 1.0}
  assert np.isnan(out['accuracy_class2'])


@pytest.mark.parametrize('encoder', ['cnn', 'lstm', 'transformer'])
def test_logits_do_not_depend_on_the_batch_padding(encoder):
  split, vocab = _toy_split(n=4)
  c = _config(encoder, vocab_size=len(vocab))
  params = _init(c, split.gather(np.arange(4))).params['classifier']
  f = jax.jit(lambda t: classifier.predict_logits(params, t, config=c))
  logits = f(split.tokens)
  np.testing.assert_allclose(f(np.pad(split.tokens, ((0, 0), (0, 8)))), logits, atol=1e-5)
  longest = int(split.mask.sum(1).max())
  np.testing.assert_allclose(f(split.tokens[:, :longest]), logits, atol=1e-5)


def test_pmap_step_equals_single_device():
  split, vocab = _toy_split(n=8)
  c = _config(vocab_size=len(vocab))
  batch = split.gather(np.arange(8), np.array([1, 1, 1, 1, 1, 0, 1, 0], np.float32))
  init = lambda: _init(c, batch)
  s1, m1 = jax.jit(lambda s, b: classifier.train_step(s, b, jax.random.key(2), config=c))(
      init(), batch)
  pstep = parallel.pmap_step(classifier.train_step, config=c)
  replicated = jax.tree.map(lambda x: jnp.broadcast_to(x, (4,) + x.shape), init())
  sp, mp = pstep(replicated, parallel.shard_for_pmap(batch, 4), jax.random.key(2))
  for k in ('loss', 'accuracy', 'examples'):
    np.testing.assert_allclose(mp[k][0], m1[k], rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=2e-5, atol=1e-6),
               sp.params, s1.params)


def test_errors_say_how_to_fix_them():
  split, vocab = _toy_split(n=4)
  batch = split.gather(np.arange(4))
  c = _config(vocab_size=len(vocab))
  c.data.num_classes = 0
  with pytest.raises(ValueError, match=r'num_classes=0: the classifier needs the number of '
                     r'classes.*--config\.data\.num_classes=2'):
    classifier.init(jax.random.key(0), c, batch)
  c = _config('rnn', vocab_size=len(vocab))
  with pytest.raises(ValueError, match=r"encoder='rnn': use one of \('cnn', 'lstm', "):
    classifier.init(jax.random.key(0), c, batch)
  c = _config(vocab_size=len(vocab))
  state = _init(c, batch)
  with pytest.raises(ValueError, match=r'does not generate.*--mode=eval.*load_judge'):
    classifier.sample(state, jax.random.key(0), 3, config=c)


# --- the judge ------------------------------------------------------------------------------------

def _char_corpus(tmp_path):
  d = tmp_path / 'corpus'
  d.mkdir()
  for name, n, seed in (('train', 64, 0), ('valid', 16, 1)):
    texts, labels = _toy_texts(n, seed, sep='')
    (d / f'{name}.txt').write_text(''.join(f'{t}\t{l}\n' for t, l in zip(texts, labels)))
  return str(d)


@pytest.fixture(scope='module')
def judge_workdir(tmp_path_factory):
  """A char-level classifier trained through the trainer on the toy corpus."""
  tmp_path = tmp_path_factory.mktemp('judge')
  c = smoke(base_config())
  c.algorithm = 'classifier'
  c.data.corpus, c.data.corpus_dir = 'text_lines', _char_corpus(tmp_path)
  c.data.cache_dir, c.data.eval_split = str(tmp_path / 'cache'), 'valid'
  c.data.tokenizer, c.data.num_classes, c.data.max_len = 'char', 2, 8
  c.num_train_steps, c.eval_every, c.checkpoint_every = 60, 0, 60
  c.optimizer.learning_rate = 1e-2
  k = c.classifier
  k.emb_dim, k.filter_sizes, k.num_filters, k.dropout = 8, (1, 2), (4, 4), 0.0
  workdir = str(tmp_path / 'run')
  final = trainer.train_and_evaluate(c, workdir)
  assert final['accuracy'] == 1.0
  return workdir


def test_judge_predicts_with_its_own_vocabulary(judge_workdir):
  judge = classifier.load_judge(judge_workdir)
  assert judge.vocab.tokenizer == 'char' and judge.num_classes == 2 and judge.max_len == 8
  assert judge.dev_accuracy == 1.0  # the run's eval_60.json
  judge.batch_size = 4  # 6 sentences: two calls of one shape, the second padded
  texts = ['xay', 'ybzz', 'a', 'wwbx', 'zzzzza', 'azzzzzzzzzb']  # the last one is cut to 7
  np.testing.assert_array_equal(judge.predict(texts), [0, 1, 0, 1, 0, 0])
  assert judge.logits(texts).shape == (6, 2)
  assert judge.predict([]).shape == (0,)
  # Judged as generated for classes [0, 1, 1, 1, 0, 1]: right, right, wrong, right, right, wrong.
  out = classifier.judge_accuracy(judge, texts, [0, 1, 1, 1, 0, 1])
  assert out == {'judge_acc': 4 / 6, 'judge_acc_class0': 1.0, 'judge_acc_class1': 2 / 4}
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), the judge's classes"):
    classifier.judge_accuracy(judge, texts[:1], [2])


def test_judge_loader_errors(tmp_path, judge_workdir):
  with pytest.raises(FileNotFoundError, match=r"config\.eval\.judge='.*nope': no such directory"):
    classifier.load_judge(str(tmp_path / 'nope'))
  with pytest.raises(FileNotFoundError, match=r'holds no config\.json'):
    classifier.load_judge(str(tmp_path))
  lm_run = tmp_path / 'lm_run'
  lm_run.mkdir()
  with open(os.path.join(judge_workdir, 'config.json')) as f:
    config = json.load(f)
  (lm_run / 'config.json').write_text(json.dumps({**config, 'algorithm': 'lm'}))
  with pytest.raises(ValueError, match=r"a run of algorithm 'lm', not 'classifier'"):
    classifier.load_judge(str(lm_run), field='--judge')

"""cln_lm end to end on a toy two-class corpus: the classifier judge first, then the
class-conditional Transformer LM, through the generic trainer (configs' :smoke presets)."""

import os
import runpy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fake_batches import padded_batch
from jaxtextgen.config import base_config
from jaxtextgen.steps import cln_lm
from jaxtextgen.train import trainer

pytestmark = pytest.mark.usefixtures('quick_compile')
CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
WORDS = ({'red', 'green', 'blue'}, {'cat', 'dog', 'cow'})  # class 0, class 1


def _corpus(tmp_path):
  d = tmp_path / 'toy'
  if not d.exists():
    d.mkdir()
    rs = np.random.RandomState(0)
    for split, n in (('train', 200), ('validation', 40)):
      lines = []
      for i in range(n):
        label = i % 2
        words = rs.choice(sorted(WORDS[label]), rs.randint(2, 6))
        lines.append(f'{" ".join(words)}\t{label}\n')
      (d / f'{split}.txt').write_text(''.join(lines))
  return d


def _config(tmp_path, name, steps):
  c = runpy.run_path(os.path.join(CONFIGS, f'{name}.py'))['get_config']('smoke')
  c.data.corpus, c.data.corpus_dir = 'text_lines', str(_corpus(tmp_path))
  c.data.cache_dir = str(tmp_path / 'cache')
  c.data.tokenizer, c.data.min_count, c.data.max_len = 'word', 1, 8
  c.data.max_eval_len, c.data.sort_chunk, c.data.trim_multiple = 0, 0, 0
  c.eval_every, c.num_train_steps = 0, steps
  return c


def test_cln_lm_generates_the_asked_class_and_the_judge_confirms_it(tmp_path):
  judge_dir = str(tmp_path / 'judge')
  judge = trainer.train_and_evaluate(_config(tmp_path, 'classifier_yelp', 60),
                                     judge_dir)
  assert judge['accuracy'] == 1.0

  c = _config(tmp_path, 'cln_yelp', 150)
  c.optimizer.learning_rate = 1e-2
  c.eval.judge, c.eval.judge_samples = judge_dir, 32
  workdir = str(tmp_path / 'cln')
  final = trainer.train_and_evaluate(c, workdir)
  assert final['judge_acc'] >= 0.9 and final['judge_dev_accuracy'] == 1.0
  assert final['judge_acc_class0'] >= 0.9 and final['judge_acc_class1'] >= 0.9
  # Given the wrong class every word is unlikely: the model uses its condition.
  assert final['label_nll_gap'] > 1.0
  assert final['nll_per_token_flipped'] > final['nll_per_token']
  assert 0 < final['distinct1'] <= 1 and 0 <= final['self_bleu2'] <= 1

  for label in (0, 1):
    c.sample.label = label
    texts = trainer.sample_checkpoint(c, workdir, num=12)
    words = [w for t in texts for w in t.split()]
    assert sum(w in WORDS[label] for w in words) >= 0.9 * len(words), texts

  c.sample.label = 2
  with pytest.raises(ValueError, match=r'config.sample.label=2 is not a class .* 0..1'):
    trainer.sample_checkpoint(c, workdir, num=2)


@pytest.mark.parametrize('decoder', ['lstm', 'transformer'])
def test_the_condition_changes_the_model_only_after_training(decoder):
  """CLN starts as the unconditional model (zero-initialised modulation): both labels give
  the same NLL at init; the LSTM reads the label from the start."""
  c = base_config()
  c.algorithm = 'cln_lm'
  c.data.num_classes, c.data.max_len = 2, 7
  c.model.decoder, c.model.hidden_size, c.model.emb_dim = decoder, 8, 8
  c.model.num_heads, c.model.mlp_dim, c.model.label_dim = 2, 16, 4
  c.num_train_steps = 10
  with c.unlocked():
    c.vocab.update(dict(size=13, bos_id=1, eos_id=2, pad_id=0))
  batch = jax.tree.map(jnp.asarray, padded_batch(0, 4, 7, 13, first_word=3, eos=2))
  state = cln_lm.init(jax.random.key(0), c, batch)
  sums = cln_lm.eval_step(state, batch, jax.random.key(1), config=c)
  gap = abs(float(sums['nll_sum_flipped'] - sums['nll_sum']))
  if decoder == 'transformer':
    assert gap == 0.0
  else:
    assert gap > 1e-4
  state, metrics = cln_lm.train_step(state, batch, jax.random.key(2), config=c)
  sums = cln_lm.eval_step(state, batch, jax.random.key(1), config=c)
  assert abs(float(sums['nll_sum_flipped'] - sums['nll_sum'])) > 1e-5
  assert np.isfinite(float(metrics['loss']))


def test_unlabelled_config_is_one_clear_error():
  c = base_config()
  c.algorithm = 'cln_lm'
  with pytest.raises(ValueError, match='config.data.num_classes=0'):
    cln_lm.init(jax.random.key(0), c, padded_batch(0, 2, 5, 9, first_word=3, eos=2))


def test_judge_decode_draws_the_metric_samples_as_mode_sample_does():
  """eval.judge_decode='sample' draws the metric samples with config.sample's knobs:
  greedy samples of a class are all one sentence (self-BLEU 1); 'model' draws at
  temperature 1 (an untrained model's samples differ). An unknown value: one error."""
  c = base_config()
  c.algorithm = 'cln_lm'
  c.data.num_classes, c.data.max_len = 2, 7
  c.model.decoder, c.model.hidden_size, c.model.emb_dim = 'lstm', 8, 8
  c.model.label_dim = 4
  c.eval.judge_samples = 6
  c.sample.greedy = True
  with c.unlocked():
    c.vocab.update(dict(size=13, bos_id=1, eos_id=2, pad_id=0))
  batch = jax.tree.map(jnp.asarray, padded_batch(0, 4, 7, 13, first_word=3, eos=2))
  state = cln_lm.init(jax.random.key(0), c, batch)
  model = cln_lm.evaluate_samples(state, jax.random.key(1), config=c, data=None)
  c.eval.judge_decode = 'sample'
  greedy = cln_lm.evaluate_samples(state, jax.random.key(1), config=c, data=None)
  assert greedy['self_bleu2'] == pytest.approx(1.0)
  assert model['self_bleu2'] < 0.9 and model['distinct2'] > greedy['distinct2']
  c.eval.judge_decode = 'top_p'
  with pytest.raises(ValueError, match=r"config.eval.judge_decode='top_p': use one of"):
    cln_lm.init(jax.random.key(0), c, batch)

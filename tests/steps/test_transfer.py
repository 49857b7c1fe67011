"""`steps.transfer`: the transfer metrics against their definitions, the fluency LM against
the LM's own eval, semi-supervised labels."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sacrebleu

from jaxtextgen.data import pipeline
from jaxtextgen.steps import transfer
from jaxtextgen.train import trainer
from test_ctrl_gen import toy_config

pytestmark = pytest.mark.usefixtures('quick_compile')


def test_bleu_to_source_is_sacrebleus(tmp_path):
  c = toy_config(tmp_path, 'ctrl_gen_yelp')
  c.eval.judge = c.eval.fluency_lm = ''
  sources = ['the food was good .', 'staff were rude to us', 'great view']
  same = transfer.transfer_metrics(sources, sources, [0, 1, 0], config=c)
  assert same == pytest.approx({'bleu_to_source': 100.0, 'sentence_bleu_to_source': 100.0})
  outputs = ['the food was bad .', 'staff were kind to us', 'awful view']
  got = transfer.transfer_metrics(sources, outputs, [0, 1, 0], config=c)
  assert got['bleu_to_source'] == pytest.approx(
      sacrebleu.corpus_bleu(outputs, [sources]).score)
  assert got['sentence_bleu_to_source'] == pytest.approx(np.mean(
      [sacrebleu.sentence_bleu(o, [s]).score for o, s in zip(outputs, sources)]))
  assert 0 < got['bleu_to_source'] < 100


def test_own_classifier_scores_the_outputs_against_their_targets(tmp_path):
  """classifier_transfer_acc: the model's own classifier on the transferred tokens (in
  chunks of eval_batch_size, the last one padded), against the target classes."""
  c = toy_config(tmp_path, 'ctrl_gen_yelp', **{'eval_batch_size': 4, 'eval.max_batches': 0})
  c.eval.judge = c.eval.fluency_lm = ''
  tokens = np.random.RandomState(0).randint(5, 9, (10, c.data.max_len)).astype(np.int32)
  labels = np.arange(10, dtype=np.int32) % 2
  data = types.SimpleNamespace(eval=_Split(tokens, labels),
                               vocab=types.SimpleNamespace(decode=lambda t: ' '.join(map(str, t))))
  moved = lambda state, t, m, to, fr, *, config: t + state  # the "transfer": ids + 1
  parity = lambda state, t, *, config: jax.nn.one_hot(t[:, 0] % 2, 2)  # "classifier"
  got = transfer.evaluate_transfer(moved, jnp.int32(1), config=c, data=data,
                                   own_classifier=parity)
  to = transfer.target_labels(labels, 2)
  assert got['classifier_transfer_acc'] == pytest.approx(np.mean((tokens[:, 0] + 1) % 2 == to))
  assert 0 < got['classifier_transfer_acc'] < 1
  assert 'classifier_transfer_acc' not in transfer.evaluate_transfer(moved, jnp.int32(1),
                                                                     config=c, data=data)


class _Split:
  """An eval split: token rows, their mask and labels, as `pipeline` builds it."""

  def __init__(self, tokens, labels):
    self.tokens, self.labels = tokens, labels
    self.mask = np.ones_like(tokens, np.float32)

  def __len__(self):
    return len(self.tokens)


def test_fluency_ppl_is_the_lm_runs_own_eval_ppl(tmp_path):
  c = toy_config(tmp_path, 'lm_yelp', **{'num_train_steps': 6, 'eval_every': 0,
                                         'eval.max_batches': 0})
  workdir = str(tmp_path / 'lm')
  final = trainer.train_and_evaluate(c, workdir)
  texts = [line.split('\t')[0] for line in
           (tmp_path / 'styles' / 'validation.txt').read_text().splitlines()]
  ppl = transfer.fluency_lm(workdir).perplexity(texts)
  assert ppl == pytest.approx(final['ppl'], rel=1e-5)
  with pytest.raises(FileNotFoundError, match=r'no such directory.*configs/lm_yelp.py'):
    transfer.fluency_lm(str(tmp_path / 'nothing'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match=r'holds no config.json.*a trained lm run'):
    transfer.fluency_lm(str(tmp_path / 'empty'))


def test_label_fraction_keeps_a_seeded_share_of_the_labels():
  labels = np.arange(1000) % 2
  kept = pipeline.keep_labels(labels, 0.1, seed=3)
  assert (kept >= 0).sum() == 100 and np.all(kept[kept >= 0] == labels[kept >= 0])
  np.testing.assert_array_equal(kept, pipeline.keep_labels(labels, 0.1, seed=3))
  assert not np.array_equal(kept, pipeline.keep_labels(labels, 0.1, seed=4))
  np.testing.assert_array_equal(pipeline.keep_labels(labels, 1.0, seed=3), labels)


def test_transfer_targets_are_the_next_class():
  np.testing.assert_array_equal(transfer.target_labels(np.array([0, 1, 1, 0]), 2), [1, 0, 0, 1])
  np.testing.assert_array_equal(transfer.target_labels(np.array([0, 1, 2]), 3), [1, 2, 0])

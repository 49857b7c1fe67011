"""`classifier`: a text classifier trained by softmax cross-entropy, and the judge of
class-conditional samples.

The encoder is config.classifier.encoder, one of the discriminators' bodies of
`models.discriminator` with a `num_classes`-way output: 'cnn' (Kim 2014 / SeqGAN's text
CNN: filter_sizes x num_filters, max-over-time over each sentence's own windows, a
highway layer), 'lstm' (its state at the last real token) or 'transformer' (causal
pre-LN blocks, the state at the last real token; width classifier.hidden_size, blocks /
heads / feed-forward width / positions from config.model, which a classifier run has no
other use for). Classes: config.data.num_classes; labels: batch['label']. The model reads
int token ids and finds the real tokens as those != PAD, so a sentence's logits never
depend on how much padding its batch has.

    from jaxtextgen.steps import classifier
    state = classifier.init(rng, config, batch)
    state, metrics = classifier.train_step(state, batch, rng, config=config)
    judge = classifier.load_judge('/tmp/cls_yelp')      # a trained run's workdir
    judge.predict(['the food was great .'])             # -> array([1])

Metrics (eval): accuracy = correct / examples, nll = mean -log p(label | sentence) in
nats, accuracy_class{c} = accuracy over the examples of class c.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxtextgen.models.discriminator import (CNNDiscriminator, LSTMDiscriminator,
                                             TransformerDiscriminator)
from jaxtextgen.steps.common import (TrainState, compute_dtype, global_sum, load_run,
                                     make_optimizer)

ENCODERS = ('cnn', 'lstm', 'transformer')


def check_config(config) -> None:
  """Errors a user can cause, raised at start-up (init) with the fix."""
  n, k = config.data.num_classes, config.classifier
  if n < 2:
    raise ValueError(f'config.data.num_classes={n}: the classifier needs the number of classes '
                     '(at least 2) of a labelled corpus, e.g. --config.data.num_classes=2 for '
                     'yelp_sentiment or cn_sentiment')
  if k.encoder not in ENCODERS:
    raise ValueError(f'config.classifier.encoder={k.encoder!r}: use one of {ENCODERS}')
  if k.encoder == 'cnn' and len(k.filter_sizes) != len(k.num_filters):
    raise ValueError(f'config.classifier.filter_sizes {tuple(k.filter_sizes)} and num_filters '
                     f'{tuple(k.num_filters)} must have the same length')


def make_encoder(config):
  """The classifier as configured: config.classifier, config.data.num_classes classes,
  the vocabulary of config.vocab."""
  k, m = config.classifier, config.model
  common = dict(vocab_size=config.vocab.size, dropout=k.dropout,
                num_classes=config.data.num_classes, dtype=compute_dtype(config))
  if k.encoder == 'cnn':
    return CNNDiscriminator(emb_dim=k.emb_dim, filter_sizes=tuple(k.filter_sizes),
                            num_filters=tuple(k.num_filters), masked_pooling=True, **common)
  if k.encoder == 'lstm':
    return LSTMDiscriminator(emb_dim=k.emb_dim, hidden_size=k.hidden_size, **common)
  if k.encoder == 'transformer':
    return TransformerDiscriminator(hidden_size=k.hidden_size, num_layers=m.num_layers,
                                    num_heads=m.num_heads, mlp_dim=m.mlp_dim,
                                    positions=m.positions, max_positions=m.max_positions,
                                    **common)
  raise ValueError(f'config.classifier.encoder={k.encoder!r}: use one of {ENCODERS}')


def predict_logits(params, tokens: jax.Array, *, config, rng: jax.Array | None = None,
                   mask: jax.Array | None = None):
  """Class logits float32 [batch, num_classes] of int token ids [batch, time] (PAD after
  each sentence), or of token distributions [batch, time, V] (soft sentences) with their
  `mask` [batch, time]; dropout on when an rng is given. Pure and jittable."""
  tokens = jnp.asarray(tokens)
  if mask is None:
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError('predict_logits: token distributions need their mask [batch, time]')
    mask = (tokens != config.vocab.pad_id).astype(jnp.float32)
  rngs = {'dropout': rng} if rng is not None else {}
  return make_encoder(config).apply({'params': params}, tokens, mask=mask,
                                    train=rng is not None, rngs=rngs)


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Classifier params and their optimizer (config.optimizer); `sample_batch` fixes
  the input shapes."""
  check_config(config)
  tokens = jnp.asarray(sample_batch['tokens'])
  mask = (tokens != config.vocab.pad_id).astype(jnp.float32)
  params = make_encoder(config).init(rng, tokens, mask=mask)['params']
  tx = make_optimizer(config.optimizer, config.num_train_steps)
  return TrainState.create({'classifier': params}, {'classifier': tx})


def _nll_and_correct(logits, labels):
  """Per-example -log p(label) and 1.0 where argmax == label, both [batch]."""
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return nll, (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One optimizer step on the mean cross-entropy over the GLOBAL batch, each
  example weighted by batch['weight']. Returns (state, {'loss', 'accuracy',
  'examples'}), accuracy of this (training-mode) batch."""
  rng = jax.random.fold_in(rng, state.step)
  if axis_name is not None:  # different dropout masks on different shards
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  # Unlabelled sentences (label -1, config.data.label_fraction < 1) do not count.
  weight = batch['weight'] * (batch['label'] >= 0)
  labels = jnp.maximum(batch['label'], 0)
  count = jnp.maximum(global_sum(weight.sum(), axis_name), 1.0)

  def loss_fn(params):
    logits = predict_logits(params, batch['tokens'], config=config, rng=rng)
    nll, correct = _nll_and_correct(logits, labels)
    return (nll * weight).sum() / count, (correct * weight).sum()

  (loss, correct), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params['classifier'])
  grads, loss, correct = global_sum((grads, loss, correct), axis_name)
  state = state.apply_gradients('classifier', grads).replace(step=state.step + 1)
  return state, {'loss': loss, 'accuracy': correct / count, 'examples': count}


def eval_step(state: TrainState, batch, rng: jax.Array, *, config):
  """Sums over the batch's real rows (weight 1; the trainer adds them up over the split,
  then calls `finalize_eval`): correct, examples, nll_sum, and per class
  class_correct / class_count, float32 [num_classes]."""
  del rng  # deterministic
  logits = predict_logits(state.params['classifier'], batch['tokens'], config=config)
  weight, labels = batch['weight'], batch['label']
  nll, correct = _nll_and_correct(logits, labels)
  onehot = jax.nn.one_hot(labels, config.data.num_classes) * weight[:, None]
  return {'correct': (correct * weight).sum(), 'examples': weight.sum(),
          'nll_sum': (nll * weight).sum(), 'class_correct': correct @ onehot,
          'class_count': onehot.sum(axis=0)}


def finalize_eval(sums: dict) -> dict:
  """accuracy, nll (nats per sentence), eval_examples and accuracy_class{c} for every
  class c (NaN for a class with no eval example)."""
  n = sums['examples']
  out = {'accuracy': sums['correct'] / n, 'nll': sums['nll_sum'] / n, 'eval_examples': n}
  for c, (right, total) in enumerate(zip(np.asarray(sums['class_correct']),
                                         np.asarray(sums['class_count']))):
    out[f'accuracy_class{c}'] = right / total if total else float('nan')
  return out


def sample(state: TrainState, rng: jax.Array, num: int, *, config, **conditions):
  """A classifier does not generate: always an error."""
  del state, rng, num, conditions
  raise ValueError(
      "config.algorithm='classifier' labels sentences and does not generate any: "
      '--mode=sample needs a generative algorithm (lm, vae, a GAN, ...). Use --mode=eval for '
      "its accuracy, or jaxtextgen.steps.classifier.load_judge(workdir).predict(sentences) "
      'to label your own sentences.')


# --- the judge: a trained classifier that labels other algorithms' samples ------------------

@dataclasses.dataclass
class Judge:
  """A trained classifier run, ready to label raw sentences.

  Attributes:
    config: the run's config (config.json), vocabulary spec and num_classes included.
    vocab: the run's vocabulary (vocab.json): its tokenizer reads the sentences.
    params: the classifier's params of the run's latest checkpoint.
    dev_accuracy: 'accuracy' of the run's latest eval_<step>.json, None without one.
    batch_size: sentences per jitted call (one fixed shape: one compilation).
  """
  config: ml_collections.ConfigDict
  vocab: object
  params: dict
  dev_accuracy: float | None = None
  batch_size: int = 256

  def __post_init__(self):
    self.params = jax.device_put(self.params)
    self._logits_fn = jax.jit(functools.partial(predict_logits, config=self.config))

  @property
  def num_classes(self) -> int:
    return int(self.config.data.num_classes)

  @property
  def max_len(self) -> int:
    """Tokens read per sentence, EOS included: the run's max_len, or its
    max_eval_len when larger (what its dev accuracy was measured on)."""
    d = self.config.data
    return max(int(d.max_len), int(d.get('max_eval_len', 0) or 0))

  def logits(self, texts: list[str]) -> np.ndarray:
    """Class logits float32 [len(texts), num_classes] of raw sentences, tokenised by the
    judge's own vocabulary and tokenizer (longer ones cut to max_len, with a warning)."""
    from jaxtextgen.data import pipeline  # pylint: disable=g-import-not-at-top
    split = pipeline.tokenize(list(texts), None, self.vocab, self.max_len, name='judge inputs',
                              fix='the judge reads the first max_len tokens, as it was trained')
    out = [np.zeros((0, self.num_classes), np.float32)]
    for i in range(0, len(split), self.batch_size):
      chunk = split.tokens[i:i + self.batch_size]
      n = len(chunk)
      chunk = np.pad(chunk, ((0, self.batch_size - n), (0, 0)),
                     constant_values=self.config.vocab.pad_id)
      out.append(np.asarray(self._logits_fn(self.params, chunk))[:n])
    return np.concatenate(out)

  def predict(self, texts: list[str]) -> np.ndarray:
    """int labels [len(texts)]: the judge's most likely class of each sentence."""
    return self.logits(texts).argmax(axis=-1).astype(np.int64)


def load_judge(workdir: str, *, field: str = 'config.eval.judge', batch_size: int = 256) -> Judge:
  """The classifier trained in `workdir` (its config.json, vocab.json, latest
  checkpoint and latest eval_<step>.json); `field` names the setting in errors."""
  config, vocab, params = load_run(workdir, field=field, algorithm='classifier',
                                   config_file='configs/classifier_yelp.py')
  params = params['classifier']
  return Judge(config, vocab, params, _latest_eval_accuracy(workdir), batch_size)


_JUDGES: dict = {}


def cached_judge(workdir: str) -> Judge:
  """`load_judge(workdir)`, loaded once per process (eval hooks call it at every eval)."""
  if workdir not in _JUDGES:
    _JUDGES[workdir] = load_judge(workdir)
  return _JUDGES[workdir]


def _latest_eval_accuracy(workdir: str) -> float | None:
  evals = []
  for path in glob.glob(os.path.join(workdir, 'eval_*.json')):
    if m := re.fullmatch(r'eval_(\d+)\.json', os.path.basename(path)):
      evals.append((int(m.group(1)), path))
  if not evals:
    return None
  with open(max(evals)[1], encoding='utf-8') as f:
    accuracy = json.load(f).get('accuracy')
  return None if accuracy is None else float(accuracy)


def judge_accuracy(judge: Judge, texts: list[str], labels) -> dict:
  """How often the judge assigns generated sentences to the class they were generated
  for: judge_acc = mean over all sentences of [judge(text) == label], and
  judge_acc_class{c} the same over the sentences generated for class c (only classes
  that occur in `labels`). texts: sentences; labels: int [len(texts)] in [0, C)."""
  labels = np.asarray(labels, np.int64)
  if labels.shape != (len(texts),):
    raise ValueError(f'judge_accuracy: {len(texts)} texts but labels of shape {labels.shape}; '
                     'give one label per text')
  if len(labels) and (labels.min() < 0 or labels.max() >= judge.num_classes):
    raise ValueError(f'judge_accuracy: labels must lie in [0, {judge.num_classes}), the judge\'s '
                     f'classes; got {sorted(set(labels.tolist()))}')
  if not len(labels):
    return {'judge_acc': float('nan')}
  right = judge.predict(texts) == labels
  out = {'judge_acc': float(right.mean())}
  for c in np.unique(labels):
    out[f'judge_acc_class{c}'] = float(right[labels == c].mean())
  return out

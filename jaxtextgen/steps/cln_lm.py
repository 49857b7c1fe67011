"""`cln_lm`: a class-conditional language model (Su Jianlin's Conditional Layer
Normalization, bert4keras' `task_conditional_language_model.py`).

One decoder generates text of a chosen class: the label's embedding is the condition
vector of every LayerNorm of the Transformer decoder (`models.transformer.
ConditionalLayerNorm`: gamma and beta shifted by zero-initialised dense layers of the
condition, so the model starts out exactly as the unconditional one). With
config.model.decoder='lstm' the same vector conditions the LSTM's initial state and
every input step instead. Trained by maximum likelihood on (sentence, label) pairs of a
labelled corpus; classes are config.data.num_classes.

Player 'generator' holds {'decoder': the decoder's params, 'labels': {'embedding':
[num_classes, label_dim]}}, one optimizer over both.

Eval (config.eval, on the eval split and on fresh samples):
  nll_per_token, ppl                      given each sentence's true label
  nll_per_token_flipped, ppl_flipped      given the label (c + 1) mod num_classes
  label_nll_gap                           flipped minus true NLL per token: > 0 when
                                          the model uses its condition
  judge_acc, judge_acc_class{c}           the fraction of samples generated for class c
                                          that the classifier in config.eval.judge assigns
                                          to c (`classifier.judge_accuracy`), beside the
                                          judge's own dev accuracy (judge_dev_accuracy)
  distinct1, distinct2, self_bleu2..4     diversity of all samples (`metrics.diversity`,
                                          `metrics.bleu.self_bleu`)
Metric samples are config.eval.judge_samples per class, drawn at temperature 1 from the
model (config.eval.judge_decode='model', the default) or, with judge_decode='sample', as
--mode=sample draws them: config.sample's temperature / top-k / top-p / greedy.
--mode=sample uses config.sample and config.sample.label.

    from jaxtextgen.steps import cln_lm
    state = cln_lm.init(rng, config, batch)
    state, metrics = cln_lm.train_step(state, batch, rng, config=config)
    tokens = cln_lm.sample(state, rng, 8, config=config, label=1)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.metrics import bleu, diversity
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.objectives.sequence import nll_sum_and_count
from jaxtextgen.steps import lm
from jaxtextgen.steps.common import (TrainState, make_decoder, make_optimizer, sample_labels,
                                     shift_right)

SELF_BLEU_ORDERS = (2, 3, 4)
JUDGE_DECODES = ('model', 'sample')


def _num_classes(config) -> int:
  c = config.data.num_classes
  if config.data.label_fraction < 1:
    raise ValueError(f'config.data.label_fraction={config.data.label_fraction}: cln_lm learns '
                     'from labelled sentences only; set it to 1 (ctrl_gen uses unlabelled ones)')
  if c < 2:
    raise ValueError(f'config.data.num_classes={c}: cln_lm generates text of a class; set it to '
                     'the number of classes of the labelled corpus (e.g. 2 for sentiment).')
  return c


def _label_table(config) -> nn.Embed:
  return nn.Embed(_num_classes(config), config.model.label_dim,
                  embedding_init=nn.initializers.normal(1.0))


def condition(params, labels: jax.Array, *, config) -> jax.Array:
  """The decoder's condition vectors float32 [batch, label_dim] for int labels [batch]."""
  return _label_table(config).apply({'params': params['labels']}, labels)


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Decoder and label embedding, one optimizer; `sample_batch` fixes the shapes. (The
  judge of config.eval.judge is loaded at the first eval: init runs under jit.)"""
  if config.eval.judge_decode not in JUDGE_DECODES:
    raise ValueError(f'config.eval.judge_decode={config.eval.judge_decode!r}: use one of '
                     f"{JUDGE_DECODES} ('sample' draws with config.sample's knobs)")
  k_dec, k_lab = jax.random.split(rng)
  tokens = jnp.asarray(sample_batch['tokens'])
  labels = jnp.zeros((tokens.shape[0],), jnp.int32)
  table = _label_table(config).init(k_lab, labels)['params']
  cond = _label_table(config).apply({'params': table}, labels)
  dec = make_decoder(config, conditional=True).init(
      k_dec, shift_right(tokens, config.vocab.bos_id), cond)['params']
  tx = make_optimizer(config.optimizer, config.num_train_steps)
  return TrainState.create({'generator': {'decoder': dec, 'labels': table}}, {'generator': tx})


def nll(params, batch, labels: jax.Array, *, config, train: bool = False, rng=None):
  """(sum of token NLLs, number of target tokens) of a batch given `labels` [batch]."""
  inputs = shift_right(batch['tokens'], config.vocab.bos_id)
  rngs = {'dropout': rng} if train else {}
  out = make_decoder(config, conditional=True).apply(
      {'params': params['decoder']}, inputs, batch['tokens'],
      condition(params, labels, config=config), train=train, rngs=rngs, method='token_nll')
  return nll_sum_and_count(out, batch['mask'])


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One step on the mean per-token NLL given the true labels (`lm.likelihood_step`).
  Returns (state, {'loss', 'tokens'})."""
  labels = jnp.maximum(batch['label'], 0)
  return lm.likelihood_step(
      state, batch, rng, lambda p, b, k: nll(p, b, labels, config=config, train=True, rng=k),
      axis_name=axis_name)


def eval_step(state: TrainState, batch, rng: jax.Array, *, config):
  """Sums over the batch: NLL given the true and the flipped label, target tokens,
  sentences."""
  del rng
  params, c = state.params['generator'], _num_classes(config)
  labels = jnp.maximum(batch['label'], 0)
  nll_true, count = nll(params, batch, labels, config=config)
  nll_flip, _ = nll(params, batch, (labels + 1) % c, config=config)
  return {'nll_sum': nll_true, 'nll_sum_flipped': nll_flip, 'tokens': count,
          'sentences': batch['weight'].sum()}


def finalize_eval(sums: dict) -> dict:
  """Per-token NLL and PPL given the true / flipped label, and their gap (nats)."""
  true, flip = sums['nll_sum'] / sums['tokens'], sums['nll_sum_flipped'] / sums['tokens']
  return {'nll_per_token': true, 'ppl': float(np.exp(true)), 'nll_per_token_flipped': flip,
          'ppl_flipped': float(np.exp(flip)), 'label_nll_gap': flip - true,
          'nll_per_sentence': sums['nll_sum'] / sums['sentences'],
          'eval_sentences': sums['sentences']}


def draw(params, rng: jax.Array, labels: jax.Array, *, config,
         model_distribution: bool = False):
  """Sentences of the given classes (`models.sampler.Samples`, [len(labels), max_len]):
  at temperature 1 from the model with `model_distribution` (what metrics use), else
  with config.sample's temperature / top_k / top_p / greedy."""
  v, s = config.vocab, config.sample
  knobs = {} if model_distribution else dict(temperature=s.temperature, top_k=s.top_k,
                                             top_p=s.top_p, greedy=s.greedy)
  return sample_tokens(make_decoder(config, conditional=True), {'params': params['decoder']},
                       rng, batch=labels.shape[0], length=config.data.max_len,
                       bos_id=v.bos_id, eos_id=v.eos_id, pad_id=v.pad_id,
                       cond=condition(params, labels, config=config), **knobs)


def sample(state: TrainState, rng: jax.Array, num: int, *, config, label: int | None = None,
           **conditions) -> jax.Array:
  """`num` sentences of class `label` (default config.sample.label; -1: classes in
  turn), int32 [num, config.data.max_len] with config.sample's temperature / top_k /
  top_p / greedy; PAD after EOS."""
  del conditions
  label = config.sample.label if label is None else label
  labels = sample_labels(label, num, _num_classes(config))
  return draw(state.params['generator'], rng, labels, config=config).tokens


def evaluate_samples(state: TrainState, rng: jax.Array, *, config, data) -> dict:
  """Metrics of config.eval.judge_samples fresh samples per class, drawn as
  config.eval.judge_decode says: judge_acc (with config.eval.judge), distinct-1/2 and
  self-BLEU-2..4 over all samples."""
  n, c = config.eval.judge_samples, _num_classes(config)
  if n <= 0:
    return {}
  labels = np.repeat(np.arange(c, dtype=np.int32), n)
  out = draw(state.params['generator'], rng, jnp.asarray(labels), config=config,
             model_distribution=config.eval.judge_decode == 'model')
  tokens, mask = np.asarray(out.tokens), np.asarray(out.mask)
  # Words of each sample: the emitted tokens before EOS.
  ids = [tuple(int(t) for t, m in zip(row, mrow) if m > 0 and t != config.vocab.eos_id)
         for row, mrow in zip(tokens, mask)]
  out = {f'distinct{k}': diversity.distinct_n(ids, k) for k in (1, 2)}
  for k in SELF_BLEU_ORDERS:
    out[f'self_bleu{k}'] = bleu.self_bleu(ids, k)
  if config.eval.judge:
    from jaxtextgen.steps import classifier  # pylint: disable=g-import-not-at-top
    judge = classifier.cached_judge(config.eval.judge)
    texts = [data.vocab.decode(row) for row in tokens]
    out.update(classifier.judge_accuracy(judge, texts, labels))
    if judge.dev_accuracy is not None:
      out['judge_dev_accuracy'] = judge.dev_accuracy
  return out

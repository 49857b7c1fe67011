"""What the models with an attribute code share (`ctrl_gen`, `cross_align`): moving a
sentence to another class, and the evaluation of such transfers. Not an algorithm itself.

An algorithm with an attribute code exposes

    transfer(state, tokens, mask, to_labels, from_labels, *, config) -> int32 [n, max_len]

(pure, jittable): each sentence (tokens / mask [n, T]) rewritten with the code of
`to_labels` [n] (its own class is `from_labels` [n]: a model that encodes with the style,
like Shen et al.'s, reads it), decoded as config.transfer.decode says (`decode`: greedy,
beam search, or sampling). `--mode=transfer` and the eval below call it.

Eval of transfers (`evaluate_transfer`: every eval sentence is transferred to the class
(c + 1) mod C, i.e. to the other one of two, decoded as config.transfer says):
  transfer_acc, transfer_acc_class{c}  the fraction of outputs that the classifier of
                          config.eval.judge assigns to the target class (overall, and
                          per target class c), beside judge_dev_accuracy
  bleu_to_source          sacrebleu corpus BLEU (0-100) of the outputs against their
                          sources (one reference each), sacrebleu's default 13a tokenizer
  sentence_bleu_to_source the mean of sacrebleu's sentence BLEU of each output against its
                          source (0-100)
  transfer_ppl            exp(total NLL / tokens) of the outputs under the LM of
                          config.eval.fluency_lm (tokens count one EOS per sentence)
  classifier_transfer_acc (a model with its own classifier, e.g. ctrl_gen's q_D) the
                          fraction of outputs that the model's classifier assigns to the
                          target class: what texar reports ("accu_g_gdy"), not a judge
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxtextgen.models.sampler import beam_search, rows, sample as sample_tokens
from jaxtextgen.steps import classifier
from jaxtextgen.steps.common import in_chunks, load_run

DECODES = ('greedy', 'beam', 'sample')


def check_config(config, *, reranks: bool = False) -> None:
  """Errors a user can cause in config.transfer, raised at init; `reranks`: the model
  has a classifier of its own to rerank the beam with (transfer.rerank_classifier)."""
  t = config.transfer
  w = t.rerank_classifier
  if w < 0 or (w and (t.decode != 'beam' or not reranks)):
    raise ValueError(f"config.transfer.rerank_classifier={w} reranks the beam's hypotheses "
                     "by the model's own classifier: it needs a weight >= 0, "
                     f"transfer.decode='beam' (got {t.decode!r}) and a model with a "
                     f'classifier (ctrl_gen; got {config.algorithm!r})')
  if t.decode not in DECODES:
    raise ValueError(f'config.transfer.decode={t.decode!r}: use one of {DECODES} '
                     "('sample' draws with config.sample's temperature / top_k / top_p)")
  if t.decode == 'beam' and t.beam_size < 1:
    raise ValueError(f'config.transfer.beam_size={t.beam_size}: need >= 1')


def decode(decoder, decoder_params, cond: jax.Array, rng: jax.Array | None = None, *,
           config, rerank=None) -> jax.Array:
  """Sentences int32 [n, max_len] of `decoder` from conditions [n, C], as
  config.transfer.decode says: argmax decoding, beam search (`sampler.beam_search` with
  transfer.beam_size and length_penalty), or config.sample's sampling (key `rng`).
  `rerank(hypotheses int32 [n, beam, max_len]) -> [n, beam]`: with
  transfer.rerank_classifier = w > 0, beam search returns each row's hypothesis of the
  highest (length-normalised) score + w * rerank."""
  v, s, t = config.vocab, config.sample, config.transfer
  if t.decode == 'beam':
    w = t.rerank_classifier
    out = beam_search(decoder, {'params': decoder_params}, batch=rows(cond),
                      beam=t.beam_size, length=config.data.max_len, bos_id=v.bos_id,
                      eos_id=v.eos_id, pad_id=v.pad_id, cond=cond,
                      length_penalty=t.length_penalty, n_best=bool(w))
    if not w:
      return out[0]
    hyps, scores = out
    pick = jnp.argmax(scores + w * rerank(hyps), axis=-1)
    return jnp.take_along_axis(hyps, pick[:, None, None], axis=1)[:, 0]
  knobs = dict(greedy=True)
  if config.transfer.decode == 'sample':
    knobs = dict(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, greedy=s.greedy)
  rng = jax.random.key(0) if rng is None else rng
  return sample_tokens(decoder, {'params': decoder_params}, rng, batch=rows(cond),
                       length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                       pad_id=v.pad_id, cond=cond, **knobs).tokens


def target_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """The class each eval sentence is transferred to: (c + 1) mod C."""
  return ((np.asarray(labels) + 1) % num_classes).astype(np.int32)


def check_label(label: int, config, what: str = '--to_label') -> None:
  c = config.data.num_classes
  if not 0 <= label < c:
    raise ValueError(f'{what}={label} is not a class of this model: use 0..{c - 1} '
                     f'(config.data.num_classes={c}).')


_JITTED: dict = {}


def _jitted(fn, config):
  """jax.jit(fn with config bound), one compilation per function and config, not one
  per eval."""
  key = (fn, config.to_json_best_effort(sort_keys=True))
  if key not in _JITTED:
    _JITTED[key] = jax.jit(functools.partial(fn, config=config))
  return _JITTED[key]


def run_transfer(transfer_fn, state, tokens: np.ndarray, mask: np.ndarray,
                 to_labels: np.ndarray, from_labels: np.ndarray, *, config) -> np.ndarray:
  """An algorithm's `transfer` over rows in chunks of config.eval_batch_size (one compiled
  shape): int32 [n, max_len]."""
  fn = functools.partial(_jitted(transfer_fn, config), state)
  length = config.data.max_len
  tokens = np.pad(tokens, ((0, 0), (0, max(length - tokens.shape[1], 0))))[:, :length]
  mask = np.pad(mask, ((0, 0), (0, max(length - mask.shape[1], 0))))[:, :length]
  return in_chunks(lambda t, m, to, fr: fn(t, m, to, fr),
                   (tokens, mask, np.asarray(to_labels, np.int32),
                    np.asarray(from_labels, np.int32)), config.eval_batch_size)


# --- the fluency LM -----------------------------------------------------------------------------

@dataclasses.dataclass
class FluencyLM:
  """A trained `lm` run that scores sentences (its config, vocabulary and params)."""
  config: ml_collections.ConfigDict
  vocab: object
  params: dict
  batch_size: int = 256

  def __post_init__(self):
    from jaxtextgen.steps import lm  # pylint: disable=g-import-not-at-top
    self.params = jax.device_put(self.params)

    def nll(params, tokens, mask):
      total, count = lm.nll(params, {'tokens': tokens, 'mask': mask}, config=self.config)
      return jnp.stack([total, count])
    self._nll = jax.jit(nll)

  def perplexity(self, texts: list[str]) -> float:
    """exp(total NLL / tokens) of raw sentences, tokenised by the LM's own vocabulary
    (tokens count one EOS per sentence; longer sentences cut to its max_len)."""
    from jaxtextgen.data import pipeline  # pylint: disable=g-import-not-at-top
    split = pipeline.tokenize(list(texts), None, self.vocab, int(self.config.data.max_len),
                              name='fluency LM inputs', fix='the LM reads its max_len')
    parts = in_chunks(lambda t, m: self._nll(self.params, t, m)[None],
                      (split.tokens, split.mask), self.batch_size)
    total, count = parts.sum(0)
    return float(np.exp(total / max(count, 1.0)))


_LOADED: dict = {}


def fluency_lm(workdir: str, field: str = 'config.eval.fluency_lm') -> FluencyLM:
  """The `lm` run of `workdir` (loaded once per process)."""
  if workdir not in _LOADED:
    config, vocab, params = load_run(workdir, field=field, algorithm='lm',
                                     config_file='configs/lm_yelp.py')
    _LOADED[workdir] = FluencyLM(config, vocab, params['generator'])
  return _LOADED[workdir]


# --- eval -----------------------------------------------------------------------------------------

def transfer_metrics(sources: list[str], outputs: list[str], to_labels, *, config) -> dict:
  """The metrics of the module docstring for outputs [n] of sources [n] (raw texts)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  out = {'bleu_to_source': float(sacrebleu.corpus_bleu(outputs, [sources]).score),
         'sentence_bleu_to_source': float(np.mean(
             [sacrebleu.sentence_bleu(o, [s]).score for o, s in zip(outputs, sources)]))}
  if config.eval.judge:
    judge = classifier.cached_judge(config.eval.judge)
    acc = classifier.judge_accuracy(judge, outputs, to_labels)
    out.update({k.replace('judge_acc', 'transfer_acc'): v for k, v in acc.items()})
    if judge.dev_accuracy is not None:
      out['judge_dev_accuracy'] = judge.dev_accuracy
  if config.eval.fluency_lm:
    out['transfer_ppl'] = fluency_lm(config.eval.fluency_lm).perplexity(outputs)
  return out


def evaluate_transfer(transfer_fn, state, *, config, data, own_classifier=None) -> dict:
  """Every eval sentence moved to the class (c + 1) mod C: `transfer_metrics`. With
  eval.max_batches, n = max_batches * eval_batch_size sentences evenly spaced over the split
  (corpora list their classes one after the other, so the first n could be one class).
  `own_classifier(state, tokens int32 [n, T], *, config) -> logits [n, C]`, the model's
  own classifier (pure, jittable), adds classifier_transfer_acc."""
  split = data.eval
  if split is None or not len(split):
    return {}
  idx = np.arange(len(split))
  if config.eval.max_batches:
    n = min(len(split), config.eval.max_batches * config.eval_batch_size)
    idx = np.linspace(0, len(split) - 1, n).round().astype(np.int64)
  labels = split.labels[idx]
  to = target_labels(labels, config.data.num_classes)
  out = run_transfer(transfer_fn, state, split.tokens[idx], split.mask[idx], to, labels,
                     config=config)
  decode_ = data.vocab.decode
  sources = [decode_(t) for t in split.tokens[idx]]
  metrics = transfer_metrics(sources, [decode_(t) for t in out], to, config=config)
  if own_classifier is not None:
    logits = in_chunks(functools.partial(_jitted(own_classifier, config), state), (out,),
                       config.eval_batch_size)
    metrics['classifier_transfer_acc'] = float(np.mean(np.argmax(logits, -1) == to))
  return metrics

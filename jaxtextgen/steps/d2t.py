"""`d2t`: data-to-text with content selection and planning (Puduppully et al. 2019), or
the attention + copy ablation (config.d2t.planner=False), then self-critical training on
BLEU (Rennie et al. 2017), on WebNLG 2017 or RotoWire (`data.d2t`, `models.d2t`).

Phases (`schedule`):
  mle   teacher-forced text NLL (copy distribution, per target token) +
        d2t.plan_weight x the pointer network's NLL of the oracle plan (per plan step);
        the whole run when scst.steps == 0, else scst.mle_steps steps;
  scst  scst.steps self-critical steps (`steps.self_critical`): a text sampled from the
        predicted plan is rewarded with its sentence BLEU against the entry's references
        (+ d2t.coverage_reward x `source_coverage`), minus the reward of the greedy
        decode; scst.mle_mix x the MLE loss is mixed in. Start it from a converged MLE
        run: scst.init=WORKDIR.

Eval (`eval_step` on every (entry, reference) pair of the eval split; `evaluate_samples`
generates once per entry, as d2t.decode says, with the predicted plan):
  nll_per_token, ppl        text NLL (oracle plan), EOS included
  plan_nll, plan_step_acc   the planner's teacher-forced NLL per step and argmax accuracy
  bleu                      `metrics.d2t` (sacrebleu, multi-reference, lowercased tokens)
  plan_exact, plan_kendall_tau, entity_coverage, entity_hallucination   `metrics.d2t`

    from jaxtextgen.steps import d2t
    state = d2t.init(rng, config, batch)
    state, metrics = d2t.train_step(state, batch, rng, config=config)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtextgen.data import d2t as d2t_data
from jaxtextgen.metrics import d2t as d2t_metrics
from jaxtextgen.models.d2t import D2TModel
from jaxtextgen.models.sampler import beam_search, sample as sample_tokens
from jaxtextgen.steps import schedule as schedule_lib
from jaxtextgen.steps import self_critical
from jaxtextgen.steps.common import (TrainState, compute_dtype, global_sum, in_chunks,
                                     make_optimizer, shift_right)

SRC_FIELDS = ('src_tokens', 'src_ext', 'src_field', 'src_record', 'src_mask', 'rec_mask')
DECODES = ('greedy', 'beam')


def check_config(config) -> None:
  d = config.d2t
  if config.data.corpus not in d2t_data.FIELDS:
    raise ValueError(f'config.data.corpus={config.data.corpus!r}: d2t reads a data-to-text '
                     f'corpus, one of {tuple(d2t_data.FIELDS)}')
  if config.model.decoder != 'lstm':
    raise ValueError(f'config.model.decoder={config.model.decoder!r}: d2t\'s text decoder is its '
                     'own LSTM with attention over the records and copy (models.d2t); leave '
                     "config.model.decoder='lstm'")
  if d.decode not in DECODES:
    raise ValueError(f'config.d2t.decode={d.decode!r}: use one of {DECODES}')
  self_critical.check_config(config)


def make_model(config) -> D2TModel:
  """The model of config.d2t / config.model over the vocabulary of config.vocab."""
  m, d = config.model, config.d2t
  return D2TModel(vocab_size=config.vocab.size + d.max_oov, base_vocab=config.vocab.size,
                  unk_id=config.vocab.unk_id, num_fields=len(d2t_data.FIELDS[config.data.corpus]),
                  max_records=d.max_records, emb_dim=m.emb_dim, hidden_size=m.hidden_size,
                  dropout=m.dropout, planner=d.planner, copy=d.copy, dtype=compute_dtype(config))


def _apply(params, fn, *args, config, rng=None):
  rngs = {'dropout': rng} if rng is not None else {}
  return make_model(config).apply({'params': params}, *args, method=fn, rngs=rngs)


def _source(batch) -> dict:
  return {k: batch[k] for k in SRC_FIELDS}


def _mle_terms(model: D2TModel, batch, bos_id: int, train: bool):
  """(text NLL sum, plan NLL sum, plan steps, correct plan steps) of a batch."""
  src = _source(batch)
  plan = batch['plan'] if model.planner else None
  rcs = model.records(src, train=train) if model.planner else None  # one pass for both uses
  cond = model.encode(src, plan, train=train, rcs=rcs)
  nll = model.token_nll(shift_right(batch['tokens'], bos_id), batch['tokens'], cond, train=train)
  text = (nll * batch['mask']).sum()
  if not model.planner:
    zero = jnp.zeros((), jnp.float32)
    return text, zero, zero, zero
  logits = model.plan_logits(rcs, batch['rec_mask'], plan)
  steps = batch['plan_mask'] * batch['weight'][:, None]
  plan_nll = optax.softmax_cross_entropy_with_integer_labels(logits, plan)
  correct = (jnp.argmax(logits, -1) == plan).astype(jnp.float32)
  return text, (plan_nll * steps).sum(), steps.sum(), (correct * steps).sum()


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """The model's params (or those of config.scst.init's latest checkpoint), its MLE
  optimizer, and with scst.steps the self-critical one."""
  check_config(config)
  batch = jax.tree.map(jnp.asarray, sample_batch)
  bos = config.vocab.bos_id
  params = make_model(config).init(rng, batch, bos, False,
                                   method=lambda m, b, i, t: _mle_terms(m, b, i, t))['params']
  params = self_critical.init_params({'model': params}, config)
  tx = {'model': make_optimizer(config.optimizer, config.num_train_steps)}
  return self_critical.add_optimizer(TrainState.create(params, tx), config, ('model',))


def _keys(rng, state, axis_name):
  rng = jax.random.fold_in(rng, state.step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  return rng


def mle_loss(params, batch, rng, *, config, axis_name=None):
  """(text NLL per target token + plan_weight x plan NLL per plan step, metrics)."""
  bos = config.vocab.bos_id
  text, plan, steps, correct = _apply(params, lambda m, b: _mle_terms(m, b, bos, True), batch,
                                      config=config, rng=rng)
  tokens = global_sum(batch['mask'].sum(), axis_name)
  steps = jnp.maximum(global_sum(steps, axis_name), 1.0)
  loss = text / tokens + config.d2t.plan_weight * plan / steps
  return loss, {'text_nll': text / tokens, 'plan_nll': plan / steps,
                'plan_step_acc': correct / steps}


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One MLE step (phase 'mle'). Returns (state, {'loss', 'text_nll', 'plan_nll', ...})."""
  rng = _keys(rng, state, axis_name)
  (loss, metrics), grads = jax.value_and_grad(
      lambda p: mle_loss(p, batch, rng, config=config, axis_name=axis_name), has_aux=True)(
          state.params['model'])
  grads, loss, metrics = global_sum((grads, loss, metrics), axis_name)
  state = state.apply_gradients('model', grads).replace(step=state.step + 1)
  return state, {'loss': loss, **metrics}


def _plan_and_condition(model: D2TModel, src, train=False):
  """(the decoder's condition from the predicted plan, the plan [batch, R + 1] or None)."""
  if not model.planner:
    return model.encode(src, train=train), None
  rcs = model.records(src)
  plan, _ = model.decode_plan(rcs, src['rec_mask'])
  return model.encode(src, plan, train=train, rcs=rcs), plan


def self_critical_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """Phase 'scst' (`steps.self_critical`): the text sampled from the predicted plan,
  rewarded against the entry's references. Returns (state, {'loss', 'reward', ...})."""
  v = config.vocab
  model, params = make_model(config), state.params['model']
  src = _source(batch)
  cond, plan = _apply(params, lambda m, s: _plan_and_condition(m, s), src, config=config)

  def log_prob(p, tokens, mask, key):
    def fn(m, s, pl, toks):
      c = m.encode(s, pl, train=True)
      return -(m.token_nll(shift_right(toks, v.bos_id), toks, c, train=True) * mask).sum(1)
    return _apply(p['model'], fn, src, plan, tokens, config=config, rng=key)

  weight = config.d2t.coverage_reward
  policy = self_critical.Policy(
      players=('model',), condition=lambda p: (model, {'params': p['model']}, cond),
      log_prob=log_prob, refs=batch['refs'], ref_len=batch['ref_len'],
      mle_loss=lambda p, key: mle_loss(p['model'], batch, key, config=config,
                                       axis_name=axis_name)[0],
      bonus=(lambda t: weight * source_coverage(t, src, config.data.corpus)) if weight else None)
  return self_critical.step(state, batch, jax.random.fold_in(rng, state.step), policy,
                            config=config, axis_name=axis_name)


def source_coverage(tokens: jax.Array, src: dict, kind: str) -> jax.Array:
  """Share of each row's entity-field source tokens (`data.d2t.ENTITY_FIELDS`: WebNLG
  subjects and objects, RotoWire entities; with d2t.delex one placeholder per entity)
  that its text contains: tokens int [n, T] in extended ids -> float [n] in [0, 1]
  (rows without entity tokens: 0). The on-device proxy of `metrics.d2t`'s entity coverage
  that d2t.coverage_reward adds to the self-critical reward."""
  fields = jnp.asarray(d2t_data.ENTITY_FIELDS[kind])
  entity = (src['src_mask'] > 0) & jnp.isin(src['src_field'], fields)
  present = jnp.any(src['src_ext'][:, :, None] == tokens[:, None, :], axis=-1)
  return jnp.sum(entity & present, 1) / jnp.maximum(jnp.sum(entity, 1), 1)


def schedule(config) -> schedule_lib.Schedule:
  """'mle' for the whole run, or scst.mle_steps of 'mle' then scst.steps of 'scst'."""
  return self_critical.schedule(config, train_step, self_critical_step)


def eval_step(state: TrainState, batch, rng: jax.Array, *, config):
  """Sums over the batch: text NLL and tokens (oracle plans), plan NLL, plan steps and
  their argmax hits (teacher-forced)."""
  del rng
  bos = config.vocab.bos_id
  text, plan, steps, correct = _apply(state.params['model'],
                                      lambda m, b: _mle_terms(m, b, bos, False), batch,
                                      config=config)
  return {'nll_sum': text, 'tokens': batch['mask'].sum(), 'plan_nll_sum': plan,
          'plan_steps': steps, 'plan_correct': correct}


def finalize_eval(sums: dict) -> dict:
  per_token = sums['nll_sum'] / sums['tokens']
  out = {'nll_per_token': float(per_token), 'ppl': float(np.exp(per_token))}
  if sums['plan_steps'] > 0:
    out['plan_nll'] = float(sums['plan_nll_sum'] / sums['plan_steps'])
    out['plan_step_acc'] = float(sums['plan_correct'] / sums['plan_steps'])
  return out


# --- generation -------------------------------------------------------------------------------

def generate(params, src: dict, *, config):
  """Texts int32 [n, max_len] (extended ids, PAD after EOS) and plans int32 [n, R + 1]
  (R: stop; all R without the planner) of source fields [n, ...], decoded as
  config.d2t.decode says (greedy, or beam search with beam_size and length_penalty; with
  d2t.rerank_coverage=w the beam's final pick adds w x `source_coverage` to each
  hypothesis's length-normalised log-probability, a reranker in the manner of TGen's).
  Pure and jittable."""
  d, v = config.d2t, config.vocab
  model = make_model(config)
  cond, plan = _apply(params, lambda m, s: _plan_and_condition(m, s), src, config=config)
  n = src['src_tokens'].shape[0]
  kw = dict(batch=n, length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
            pad_id=v.pad_id, cond=cond)
  if d.decode == 'beam':
    tokens, ranked = beam_search(model, {'params': params}, beam=d.beam_size,
                                 length_penalty=d.length_penalty, n_best=True, **kw)
    if d.rerank_coverage:
      k, length = d.beam_size, tokens.shape[-1]
      each = {f: jnp.repeat(src[f], k, axis=0) for f in ('src_ext', 'src_field', 'src_mask')}
      cover = source_coverage(tokens.reshape(n * k, length), each, config.data.corpus)
      ranked = ranked + d.rerank_coverage * cover.reshape(n, k)
    tokens = jnp.take_along_axis(tokens, jnp.argmax(ranked, 1)[:, None, None], axis=1)[:, 0]
  else:
    tokens = sample_tokens(model, {'params': params}, jax.random.key(0), greedy=True, **kw).tokens
  if plan is None:
    plan = jnp.full((n, d.max_records + 1), d.max_records, jnp.int32)
  return tokens, plan


_JITTED: dict = {}


def generate_all(params, arrays: dict, *, config) -> tuple[np.ndarray, np.ndarray]:
  """`generate` over rows of numpy source fields in chunks of config.eval_batch_size."""
  key = config.to_json_best_effort(sort_keys=True)
  if key not in _JITTED:
    _JITTED[key] = jax.jit(lambda p, *a: jnp.concatenate(
        generate(p, dict(zip(SRC_FIELDS, a)), config=config), 1))
  fn = _JITTED[key]
  out = in_chunks(lambda *a: fn(params, *a), tuple(arrays[k] for k in SRC_FIELDS),
                  config.eval_batch_size)
  return out[:, :config.data.max_len], out[:, config.data.max_len:]


def _decode_rows(tokens, plans, source, vocab, big_r):
  texts = [d2t_data.decode_text(t, vocab, source.oov[i], source.names[i])
           for i, t in enumerate(tokens)]
  plan_lists = [[int(r) for r in p[:int(np.argmax(p == big_r)) if (p == big_r).any() else None]]
                for p in plans]
  return texts, plan_lists


def evaluate_samples(state: TrainState, rng: jax.Array, *, config, data) -> dict:
  """Generation metrics on the eval split's entries (module docstring)."""
  del rng
  split, source = data.eval, data.source
  if split is None or source is None:
    return {}
  first = np.unique(split.extra['entry'], return_index=True)[1]
  if 0 < config.d2t.eval_entries < len(first):  # evenly spaced: corpora list entries by size
    first = first[np.linspace(0, len(first) - 1, config.d2t.eval_entries).round().astype(int)]
  arrays = {k: split.extra[k][first] for k in SRC_FIELDS}
  tokens, plans = generate_all(state.params['model'], arrays, config=config)
  sub = d2t_metrics.subset(source, split.extra['entry'][first])
  texts, plan_lists = _decode_rows(tokens, plans, sub, data.vocab, config.d2t.max_records)
  return d2t_metrics.generation_metrics(texts, sub, plan_lists if config.d2t.planner else None)


def generate_outputs(state: TrainState, lines: list[str], *, config, data,
                     show_plan: bool = False) -> list[str]:
  """--mode=generate: one text per input line (`data.d2t.parse_input_line`), detokenised
  (`data.d2t.detokenize`); with `show_plan`, a TAB and the plan's records ('s | p | o'
  joined by ' >> ')."""
  kind = config.data.corpus
  entries = [{'id': f'input:{i + 1}', 'records': d2t_data.parse_input_line(l, kind, i + 1),
              'references': ['']} for i, l in enumerate(lines)]
  arrays, source = d2t_data.encode(entries, data.vocab, **d2t_data.sizes(config))
  tokens, plans = generate_all(state.params['model'], arrays, config=config)
  texts, plan_lists = _decode_rows(tokens, plans, source, data.vocab, config.d2t.max_records)
  out = []
  for i, (text, plan) in enumerate(zip(texts, plan_lists)):
    line = d2t_data.detokenize(text)
    if show_plan:
      records = entries[i]['records']
      order = plan if config.d2t.planner else range(len(records[:config.d2t.max_records]))
      line += '\t' + ' >> '.join(' | '.join(records[r]) for r in order)
    out.append(line)
  return out


def sample(state: TrainState, rng: jax.Array, num: int, *, config, **conditions):
  raise ValueError('d2t generates text from records, not unconditionally: use '
                   '--mode=generate --input=FILE (one "s | p | o ;; ..." line per input)')

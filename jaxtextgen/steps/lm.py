"""`lm`: a language model trained by maximum likelihood (teacher forcing); its decoder
is config.model.decoder ('lstm' or 'transformer').

The MLE baseline of every text-GAN paper and the decoder of every text VAE.
Padding is masked out of the loss, and the loss is the global per-token mean
(sum over devices / global token count), so any data-parallel layout gives the
single-device gradient.

    from jaxtextgen.steps import lm
    state = lm.init(rng, config, batch)
    state, metrics = lm.train_step(state, batch, rng, config=config)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtextgen.metrics import bleu
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.objectives.sequence import nll_sum_and_count
from jaxtextgen.steps.common import (TrainState, global_sum, make_decoder, make_optimizer,
                                     pad_time, shift_right)

BLEU_ORDERS = (2, 3, 4, 5)


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Generator params and its optimizer; `sample_batch` fixes the input shapes."""
  model = make_decoder(config)
  tokens = jnp.asarray(sample_batch['tokens'])
  params = model.init(rng, shift_right(tokens, config.vocab.bos_id))['params']
  tx = make_optimizer(config.optimizer, config.num_train_steps)
  return TrainState.create({'generator': params}, {'generator': tx})


def nll(params, batch, *, config, train: bool = False, rng=None):
  """(sum of token NLLs, number of target tokens) of a batch under the generator."""
  model = make_decoder(config)
  inputs = shift_right(batch['tokens'], config.vocab.bos_id)
  rngs = {'dropout': rng} if train else {}
  nll = model.apply({'params': params}, inputs, batch['tokens'], train=train, rngs=rngs,
                    method='token_nll')
  return nll_sum_and_count(nll, batch['mask'])


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One Adam step on the mean per-token NLL. Returns (state, {'loss', 'tokens'})."""
  return likelihood_step(state, batch, rng, lambda p, b, k: nll(p, b, config=config, train=True,
                                                               rng=k), axis_name=axis_name)


def likelihood_step(state: TrainState, batch, rng: jax.Array, nll_fn, *, axis_name=None):
  """One step of the 'generator' player on the global mean per-token NLL, where
  `nll_fn(params, batch, dropout_rng) -> (NLL sum, tokens)` (the loss of `lm` and of
  `cln_lm`). Returns (state, {'loss', 'tokens'})."""
  rng = jax.random.fold_in(rng, state.step)
  if axis_name is not None:  # different dropout masks on different shards
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  count = global_sum(batch['mask'].sum(), axis_name)

  def loss_fn(params):
    nll_sum, _ = nll_fn(params, batch, rng)
    return nll_sum / count

  loss, grads = jax.value_and_grad(loss_fn)(state.params['generator'])
  grads, loss = global_sum((grads, loss), axis_name)
  state = state.apply_gradients('generator', grads).replace(step=state.step + 1)
  return state, {'loss': loss, 'tokens': count}


def eval_step(state: TrainState, batch, rng: jax.Array, *, config):
  """Sums over the batch (the trainer adds them up over the split, then calls
  `finalize_eval`): NLL, target tokens (EOS included) and sentences; with
  config.eval.bleu, 'per_example' rows of the real ids and of one temperature-1 sample
  per sentence (`draw` with the first key of `rng`'s split), padded to the same width,
  with their word counts (EOS excluded) for BLEU."""
  gen = state.params['generator']
  nll_sum, count = nll(gen, batch, config=config)
  sums = {'nll_sum': nll_sum, 'tokens': count, 'sentences': batch['weight'].sum()}
  if config.eval.bleu:
    samples = draw(gen, jax.random.split(rng)[0], batch['tokens'].shape[0], config=config)
    sums['per_example'] = bleu_rows(batch, samples, config=config)
  return sums


def bleu_rows(batch, samples, *, config) -> dict:
  """'per_example' rows for BLEU of samples (`sampler.Samples`, one per sentence) against
  the eval batch: real and sampled ids padded to one width, and their word counts (EOS
  excluded); `bleu_metrics` scores the rows of the whole split."""
  v, real = config.vocab, batch['tokens']
  width = max(real.shape[1], config.data.max_len)
  pad = lambda t: pad_time(t, width, v.pad_id)
  words = lambda t, m: jnp.sum((m > 0) & (t != v.eos_id), axis=1).astype(jnp.int32)
  return {'real': pad(real), 'real_len': words(real, batch['mask']),
          'fake': pad(samples.tokens), 'fake_len': words(samples.tokens, samples.mask)}


def bleu_metrics(rows: dict) -> dict:
  """bleu{n} of the samples of `bleu_rows` against the eval split and self_bleu{n}
  among them, n = 2..5 (`metrics.bleu`: nltk's sentence BLEU, smoothing method1)."""
  words = lambda ids, lens: [tuple(map(int, r[:n])) for r, n in zip(ids, lens)]
  refs, hyps = words(rows['real'], rows['real_len']), words(rows['fake'], rows['fake_len'])
  table = bleu.BleuReference(refs, max_n=max(BLEU_ORDERS))
  out = {}
  for n in BLEU_ORDERS:
    out[f'bleu{n}'] = table.bleu(hyps, n)
    out[f'self_bleu{n}'] = bleu.self_bleu(hyps, n) if len(hyps) > 1 else float('nan')
  return out


def finalize_eval(sums: dict) -> dict:
  """NLL per token and per sentence (nats) and PPL = exp(total NLL / tokens),
  where tokens count one EOS per sentence; with config.eval.bleu
  (sums['per_example'], which this pops), bleu{n} of the samples against the eval
  split and self_bleu{n} among them, n = 2..5 (`metrics.bleu`: nltk's sentence BLEU,
  smoothing method1)."""
  rows = sums.pop('per_example', None)
  per_token = sums['nll_sum'] / sums['tokens']
  out = {'nll_per_token': per_token, 'nll_per_sentence': sums['nll_sum'] / sums['sentences'],
         'ppl': float(jnp.exp(per_token)), 'eval_sentences': sums['sentences']}
  if rows is not None:
    out.update(bleu_metrics(rows))
  return out


def draw(params, rng: jax.Array, num: int, *, config):
  """`num` fresh sentences (`models.sampler.Samples`) at temperature 1: the model's own
  distribution, which eval's BLEU and the GANs' fakes use (config.sample's temperature /
  top-k are for --mode=sample only)."""
  v = config.vocab
  return sample_tokens(make_decoder(config), {'params': params}, rng, batch=num,
                       length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                       pad_id=v.pad_id)


def oracle_metrics(params, rng: jax.Array, *, config, data) -> dict:
  """{'nll_oracle': NLL-oracle (`data.oracle.nll_oracle`)} of config.eval.num_samples fresh
  samples of the generator `params`, drawn at temperature 1 (`draw`) whatever
  config.sample says; {} without a synthetic oracle or samples."""
  if data.oracle_params is None or not config.eval.num_samples:
    return {}
  from jaxtextgen.data import oracle  # pylint: disable=g-import-not-at-top
  from jaxtextgen.train.parallel import to_host  # pylint: disable=g-import-not-at-top
  samples = draw(params, rng, config.eval.num_samples, config=config).tokens
  return {'nll_oracle': oracle.nll_oracle(data.oracle_params, to_host(samples))}


def evaluate_samples(state: TrainState, rng: jax.Array, *, config, data) -> dict:
  """The trainer's eval hook: NLL-oracle of the generator on the synthetic oracle."""
  return oracle_metrics(state.params['generator'], rng, config=config, data=data)


def sample(state: TrainState, rng: jax.Array, num: int, *, config, **conditions) -> jax.Array:
  """`num` sentences, int32 [num, config.data.max_len], with config.sample's
  temperature / top_k / top_p / greedy; PAD after EOS."""
  del conditions  # an unconditional model
  s = config.sample
  out = sample_tokens(make_decoder(config), {'params': state.params['generator']}, rng,
                      batch=num, length=config.data.max_len, bos_id=config.vocab.bos_id,
                      eos_id=config.vocab.eos_id, pad_id=config.vocab.pad_id,
                      temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, greedy=s.greedy)
  return out.tokens

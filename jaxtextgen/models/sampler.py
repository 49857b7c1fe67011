"""The one sampler: ancestral / top-k / nucleus / greedy decoding of any decoder of
the decoder protocol (`models.decoder`: LSTM or Transformer), and its differentiable
twin for GANs on relaxed tokens.

Everything happens inside one `lax.scan` over time, for the whole batch at
once, on device: 10k samples for NLL-oracle or BLEU are one jitted call.
Forced positions (`forced_mask`) let Monte-Carlo rollouts continue given
prefixes inside the same scan; `continuation_cache` and `tile_cache` let them start
from the state after a teacher-forced prefix instead of re-running it. `relaxed_sample` runs the same scan (`_unroll`)
but emits Gumbel-softmax or softmax vectors and feeds their expected embedding
back, so gradients flow from a discriminator into the decoder (gumbel_gan, wgan).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxtextgen.objectives.discrete import gumbel_softmax


class Samples(NamedTuple):
  """tokens int32 [batch, time] (pad after EOS); mask float32 [batch, time]
  (1 up to and including EOS); log_probs float32 [batch, time] of each emitted
  token under the (temperature-scaled) sampling distribution, 0 where masked."""
  tokens: jax.Array
  mask: jax.Array
  log_probs: jax.Array


def categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
  """Exact draw from softmax(logits) over the last axis: int32 [...] for logits [..., V].

  The same distribution as `jax.random.categorical`, which draws one Gumbel
  variate per vocabulary entry; generating those random bits dominates sampling
  on CPU (10k oracle samples: ~60 s). Here one uniform per row inverts a
  two-level CDF instead: pick a block of ~sqrt(V) tokens by the block masses,
  then a token inside it. Full-vocabulary work is one exp and one sum (~9x
  faster at V=5000 on CPU). Tokens of zero probability (-inf logits, top-k) are
  never drawn, even when float rounding puts u at the very top of the CDF.
  """
  v = logits.shape[-1]
  k = max(1, math.isqrt(v))
  nb = -(-v // k)
  p = jnp.exp(logits - jnp.max(logits, -1, keepdims=True))
  p = jnp.pad(p, [(0, 0)] * (p.ndim - 1) + [(0, nb * k - v)]).reshape(p.shape[:-1] + (nb, k))
  block_mass = p.sum(-1)
  cdf = jnp.cumsum(block_mass, -1)
  u = jax.random.uniform(key, logits.shape[:-1]) * cdf[..., -1]
  b = jnp.minimum(jnp.sum(cdf <= u[..., None], -1), _last_nonzero(block_mass))
  before = jnp.take_along_axis(cdf - block_mass, b[..., None], -1)[..., 0]
  within = jnp.take_along_axis(p, b[..., None, None], -2)[..., 0, :]
  j = jnp.sum(jnp.cumsum(within, -1) <= (u - before)[..., None], -1)
  return (b * k + jnp.minimum(j, _last_nonzero(within))).astype(jnp.int32)


def rows(cond) -> int:
  """The batch size of a decoder condition: an array [n, C] or a pytree of arrays with a
  leading batch axis (`models.decoder`)."""
  return jax.tree.leaves(cond)[0].shape[0]


def _last_nonzero(x: jax.Array) -> jax.Array:
  """Index of the last positive entry along the last axis."""
  return x.shape[-1] - 1 - jnp.argmax((x > 0)[..., ::-1], -1)


def _top_k_mask(logits: jax.Array, k: int) -> jax.Array:
  kth = jax.lax.top_k(logits, k)[0][..., -1:]
  return jnp.where(logits < kth, -jnp.inf, logits)


def top_p_mask(logits: jax.Array, p: float | jax.Array) -> jax.Array:
  """Nucleus filtering (Holtzman et al. 2020): logits [..., V] with -inf outside the
  smallest set of most likely tokens whose probability mass reaches p (the most
  likely token always stays). Ties at the boundary are kept together."""
  probs = jax.nn.softmax(logits, axis=-1)
  sorted_probs = jnp.sort(probs, axis=-1)[..., ::-1]
  # Mass strictly before each sorted position: a token stays while that is < p.
  before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
  keep = before < p
  threshold = jnp.min(jnp.where(keep, sorted_probs, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(probs < threshold, -jnp.inf, logits)


@functools.partial(jax.jit, static_argnames=(
    'decoder', 'batch', 'length', 'bos_id', 'eos_id', 'pad_id', 'top_k', 'top_p', 'greedy'))
def sample(decoder, params: Any, rng: jax.Array, *, batch: int, length: int,
           bos_id: int, eos_id: int = -1, pad_id: int = 0, temperature: float | jax.Array = 1.0,
           top_k: int = 0, top_p: float = 0.0, greedy: bool = False,
           cond: jax.Array | None = None, forced_tokens: jax.Array | None = None,
           forced_mask: jax.Array | None = None, cache=None,
           first_input: jax.Array | None = None,
           stopped: jax.Array | None = None) -> Samples:
  """Draws `batch` sequences of at most `length` tokens.

  Args:
    decoder, params: a decoder of the decoder protocol and its variables ({'params': ...}).
    rng: key; step t uses fold_in(rng, t), so no key is reused.
    batch, length: output shape (static). The length comes from data/config.
    bos_id: first input token. eos_id: stops a row (-1: no EOS, fixed length,
      as in the SeqGAN oracle). pad_id: emitted after EOS.
    temperature: logits are divided by it. top_k: keep the k best (0: all).
    top_p: then keep the nucleus of mass top_p (`top_p_mask`; 0 or >= 1: all).
    greedy: argmax instead of sampling.
    cond: optional conditioning [batch, C].
    forced_tokens, forced_mask: int32 / bool [batch, length]; where the mask is
      set, the token is taken from forced_tokens instead of being drawn.
    cache: overrides the decoder's `init_cache(batch, cond, length)`.
    first_input: int32 [batch] overrides BOS as the first input; with `cache`, decoding
      continues a prefix the cache has consumed (`continuation_cache`).
    stopped: bool [batch], rows already past EOS (they emit PAD only).

  Returns:
    `Samples`.
  """
  if forced_tokens is None:
    forced_tokens = jnp.zeros((batch, length), jnp.int32)
    forced_mask = jnp.zeros((batch, length), bool)

  def choose(logits, key, xs):
    forced_tok, forced = xs
    logits = logits / temperature
    if top_k:
      logits = _top_k_mask(logits, top_k)
    if 0 < top_p < 1:
      logits = top_p_mask(logits, top_p)
    tok = jnp.argmax(logits, axis=-1) if greedy else categorical(key, logits)
    tok = jnp.where(forced, forced_tok, tok).astype(jnp.int32)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), tok[:, None], axis=-1)[:, 0]
    return tok, logp

  first = jnp.full((batch,), bos_id, jnp.int32) if first_input is None else first_input
  toks, mask, logp = _unroll(decoder, params, rng, choose, first, (forced_tokens.T, forced_mask.T),
                             batch=batch, length=length, eos_id=eos_id, pad_id=pad_id, cond=cond,
                             cache=cache, stopped=stopped)
  return Samples(toks, mask, jnp.where(mask > 0, logp, 0.0))


class RelaxedSamples(NamedTuple):
  """probs float32 [batch, time, vocab]: the relaxed one-hot vectors, differentiable
  with respect to the decoder's params (one-hot PAD after EOS, no gradient);
  tokens int32 [batch, time]: their argmax (PAD after EOS); mask float32
  [batch, time]: 1 up to and including EOS."""
  probs: jax.Array
  tokens: jax.Array
  mask: jax.Array


def relaxed_sample(decoder, params: Any, rng: jax.Array, *, batch: int, length: int,
                   bos_id: int, eos_id: int = -1, pad_id: int = 0, gumbel: bool = True,
                   inverse_temperature: float | jax.Array = 1.0, hard: bool = False,
                   cond: jax.Array | None = None, cache=None,
                   first_input: jax.Array | None = None) -> RelaxedSamples:
  """A free-running decoder whose every step emits a differentiable token vector.

  Step t computes logits from the previous vector's expected embedding
  (the decoder's `embed_soft`; BOS's embedding first) and emits
      gumbel=True:  y_t = softmax(beta * (logits + g)),  g ~ Gumbel(0, 1)
                    (RelGAN / GSGAN; argmax y_t is an exact sample of softmax(logits));
                    with `hard`, the straight-through one-hot of that argmax, whose
                    gradient is the soft vector's (`objectives.discrete.gumbel_softmax`);
      gumbel=False: y_t = softmax(logits), the distribution itself (WGAN on softmax outputs).
  A row stops after the step whose argmax is EOS, as `sample` stops it; later vectors are
  one-hot PAD. Not jitted: it runs inside the jitted, differentiated GAN steps.

  Args:
    decoder, params, rng, batch, length, bos_id, eos_id, pad_id, cond, cache: as
      `sample` (step t draws its noise with fold_in(rng, t)).
    inverse_temperature: beta > 0 (may be traced), RelGAN's schedule value.
    first_input: [batch, E] overrides BOS's embedding as the first input (e.g. with
      latent noise added).

  Returns:
    `RelaxedSamples`.
  """
  pad = jax.nn.one_hot(pad_id, decoder.vocab_size, dtype=jnp.float32)

  def choose(logits, key, xs):
    del xs
    if gumbel:
      y = gumbel_softmax(key, logits, 1.0 / inverse_temperature, hard=hard)
    else:
      y = jax.nn.softmax(logits, axis=-1)
    return jnp.argmax(y, axis=-1).astype(jnp.int32), y

  first = first_input
  if first is None:
    first = decoder.apply(params, jnp.full((batch,), bos_id, jnp.int32), method='embed')
  embed = lambda y: decoder.apply(params, y, method='embed_soft')
  toks, mask, probs = _unroll(decoder, params, rng, choose, first, None, batch=batch,
                              length=length, eos_id=eos_id, pad_id=pad_id, cond=cond,
                              cache=cache, next_input=embed)
  probs = jnp.where(mask[..., None] > 0, probs, pad)
  chex.assert_shape(probs, (batch, length, decoder.vocab_size))
  return RelaxedSamples(probs, toks, mask)


def continuation_cache(decoder, params, tokens: jax.Array, *, bos_id: int, length: int,
                       starts, cond: jax.Array | None = None) -> list:
  """Decoding states after teacher-forced prefixes: for each position a in `starts`
  (ascending, static), the cache after consuming BOS, tokens[:, :a - 1], so that
  `sample(..., cache=c, first_input=tokens[:, a - 1], length=length - a)` continues the
  prefix tokens[:, :a] (a = 0: the initial cache, first input BOS). One pass of `step`
  over the longest prefix, in segments; the cache has room for `length` positions."""
  batch = tokens.shape[0]
  cache = decoder.apply(params, batch, cond, length, method='init_cache')
  inputs = jnp.concatenate([jnp.full((batch, 1), bos_id, jnp.int32), tokens], axis=1).T

  def body(c, x):
    return decoder.apply(params, x, c, cond, method='step')[1], None

  out, done = [], 0
  for a in starts:  # inputs 0..a-1 consumed (BOS, y_0..y_{a-2}); y_{a-1} is the next input
    if a > done:
      cache, _ = jax.lax.scan(body, cache, inputs[done:a])
      done = a
    out.append(cache)
  return out


def _batch_axes(decoder, params, batch: int, length: int = 0):
  """The batch axis of each leaf of the decoder's cache (None for a leaf without one):
  the axis that changes with the batch in `init_cache`, whatever the cache layout."""
  shape = lambda n: jax.eval_shape(
      lambda: decoder.apply(params, n, None, length, method='init_cache'))
  axis = lambda one, two: next((i for i, (m, n) in enumerate(zip(one.shape, two.shape))
                                if m != n), None)
  return jax.tree.map(axis, shape(batch), shape(2 * batch))


def tile_cache(decoder, params, cache, batch: int, times: int, length: int = 0):
  """`cache` of `batch` rows with every row repeated `times` times (row i -> rows
  i * times ... i * times + times - 1), whatever the decoder's cache layout."""
  return jax.tree.map(lambda x, a: x if a is None else jnp.repeat(x, times, axis=a), cache,
                      _batch_axes(decoder, params, batch, length))


@functools.partial(jax.jit, static_argnames=(
    'decoder', 'batch', 'beam', 'length', 'bos_id', 'eos_id', 'pad_id', 'n_best'))
def beam_search(decoder, params: Any, *, batch: int, beam: int, length: int, bos_id: int,
                eos_id: int = -1, pad_id: int = 0, cond: jax.Array | None = None,
                length_penalty: float = 0.0, n_best: bool = False):
  """The `beam` most likely continuations of BOS kept at every step (one scan over time,
  the decoder's cache reordered by beam on device); returns the best of each row.

  A beam that has emitted EOS only continues with PAD at no cost, so finished and open
  hypotheses compete on their log-probabilities; the final pick divides each score by
  (number of tokens up to EOS) ** length_penalty (0: the plain log-probability).

  Returns:
    (tokens int32 [batch, length], PAD after EOS; log_prob float32 [batch]: the sum of the
    chosen sentence's token log-probabilities). With `n_best`, every final hypothesis
    instead, for a caller's own pick (a reranker): (tokens [batch, beam, length], the
    length-normalised scores float32 [batch, beam]).
  """
  k, vocab = beam, decoder.vocab_size
  if cond is not None:  # an array, or a pytree of arrays with a leading batch axis
    cond = jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), cond)
  cache = decoder.apply(params, batch * k, cond, length, method='init_cache')
  axes = _batch_axes(decoder, params, batch * k, length)
  pad_step = jnp.where(jnp.arange(vocab) == pad_id, 0.0, -jnp.inf)
  offsets = (jnp.arange(batch) * k)[:, None]

  def body(carry, t):
    cache, prev, score, done, tokens, lengths = carry
    logits, cache = decoder.apply(params, prev, cache, cond, method='step')
    logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, vocab)
    logp = jnp.where(done[..., None], pad_step, logp)
    flat = (score[..., None] + logp).reshape(batch, k * vocab)
    score, index = jax.lax.top_k(flat, k)                       # [batch, k]
    source, tok = index // vocab, (index % vocab).astype(jnp.int32)
    gather = lambda x: jnp.take_along_axis(x, source, axis=1)
    done, lengths = gather(done), gather(lengths)
    tokens = jnp.take_along_axis(tokens, source[..., None], axis=1).at[:, :, t].set(tok)
    lengths = lengths + (~done)
    done = done | (tok == eos_id)
    rows = (offsets + source).reshape(-1)
    cache = jax.tree.map(lambda x, a: x if a is None else jnp.take(x, rows, axis=a), cache,
                         axes)
    return (cache, tok.reshape(-1), score, done, tokens, lengths), None

  score = jnp.tile(jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf), (batch, 1))
  init = (cache, jnp.full((batch * k,), bos_id, jnp.int32), score,
          jnp.zeros((batch, k), bool), jnp.full((batch, k, length), pad_id, jnp.int32),
          jnp.zeros((batch, k), jnp.int32))
  (_, _, score, _, tokens, lengths), _ = jax.lax.scan(body, init, jnp.arange(length))
  ranked = score / jnp.maximum(lengths, 1).astype(jnp.float32) ** length_penalty
  if n_best:
    return tokens, ranked
  best = jnp.argmax(ranked, axis=1)
  pick = lambda x: jnp.take_along_axis(x, best.reshape((batch, 1) + (1,) * (x.ndim - 2)),
                                       axis=1)[:, 0]
  return pick(tokens), pick(score)


def _unroll(decoder, params, rng, choose, first_input, xs, *, batch, length, eos_id, pad_id,
            cond, cache, next_input=None, stopped=None):
  """The scan both samplers share. Step t runs the decoder on the previous input and
  `choose(logits, fold_in(rng, t), xs[t]) -> (token, emitted)`; the next input is
  `next_input(emitted)`, or the token (PAD after EOS) by default. Rows emit PAD after EOS.
  Returns tokens int32 [batch, length], mask float32 (1 up to EOS) and the stacked
  `emitted` values, batch-major."""
  state = cache
  if state is None:
    state = decoder.apply(params, batch, cond, length, method='init_cache')

  def body(carry, step_xs):
    state, prev, done = carry
    t, x = step_xs
    logits, state = decoder.apply(params, prev, state, cond, method='step')
    tok, emitted = choose(logits, jax.random.fold_in(rng, t), x)
    alive = ~done
    tok = jnp.where(alive, tok, pad_id)
    done = done | (tok == eos_id)
    nxt = tok if next_input is None else next_input(emitted)
    return (state, nxt, done), (tok, alive, emitted)

  init = (state, first_input, jnp.zeros((batch,), bool) if stopped is None else stopped)
  _, (toks, alive, emitted) = jax.lax.scan(body, init, (jnp.arange(length), xs))
  swap = lambda x: jnp.swapaxes(x, 0, 1)
  return swap(toks), swap(alive).astype(jnp.float32), swap(emitted)

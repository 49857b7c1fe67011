"""Token-level likelihood losses for padded sequence batches.

The reductions return *sums and counts* rather than means: a mean of per-device
means is wrong when devices hold different numbers of real tokens, whereas
``psum(nll_sum) / psum(token_count)`` is the exact global mean.
"""

import math
from typing import Tuple

import jax
import jax.numpy as jnp


def token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Negative log-likelihood of each target token.

  ``nll[b, t] = -log softmax(logits[b, t])[targets[b, t]]``, computed with
  ``log_softmax`` and a gather, so no ``[batch, time, vocab]`` one-hot is
  materialised. Targets outside ``[0, vocab)`` (e.g. a ``-1`` padding id)
  give an unspecified value; mask them out with ``masked_sum``.

  Args:
      logits: ``[batch, time, vocab]`` (any leading shape) model logits.
      targets: ``[batch, time]`` integer token ids.

  Returns:
      ``[batch, time]`` per-token negative log-likelihoods (in nats).

  References:
      Standard maximum-likelihood ("teacher forcing") training; e.g.
      Williams & Zipser, Neural Computation 1(2), 1989.
  """
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  picked = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)
  return -picked[..., 0]


@jax.custom_vjp
def linear_token_nll(h: jax.Array, kernel: jax.Array, bias: jax.Array,
                     targets: jax.Array) -> jax.Array:
  """``token_nll(h @ kernel + bias, targets)``: the vocabulary projection and the
  softmax cross-entropy as one function with a hand-written gradient.

  Same value as projecting to logits and calling `token_nll`, but the gradient is
  computed in the fewest passes over the ``[tokens, vocab]`` array that dominates
  these models (DESIGN.md, performance notes): the forward keeps ``exp(logits - max)``
  so the backward needs no second exponential, builds
  ``dlogits = g * (softmax - onehot(target))`` in one elementwise pass, and does the two
  gradient matmuls on 2-D ``[tokens, vocab]`` operands. Letting autodiff differentiate
  the 3-D projection plus ``log_softmax`` instead costs about 1.6x the time on XLA:CPU
  (transposed copies, a broadcast one-hot, matmuls fused with elementwise work).

  The logits are float32 whatever the dtype of ``h`` and ``kernel`` (bfloat16 matmuls
  accumulate into float32 logits).

  Args:
      h: ``[..., hidden]`` inputs of the output layer.
      kernel: ``[hidden, vocab]``; bias: ``[vocab]``.
      targets: ``[...]`` integer token ids (out-of-range ids: unspecified value, zero
        gradient; mask them out).

  Returns:
      ``[...]`` per-token negative log-likelihoods (nats), float32.

  Undifferentiated (eval), more than ``PROJECTION_CHUNK`` tokens are projected that many at
  a time (`lax.map`), so a long eval line never holds all its ``[tokens, vocab]`` logits.
  """
  n = math.prod(targets.shape)
  if n <= PROJECTION_CHUNK:
    return _linear_token_nll_fwd(h, kernel, bias, targets)[0]
  pad = -n % PROJECTION_CHUNK
  h2 = jnp.pad(h.reshape(n, h.shape[-1]), ((0, pad), (0, 0)))
  t2 = jnp.pad(targets.reshape(n), (0, pad))
  nll = jax.lax.map(lambda ht: _linear_token_nll_fwd(ht[0], kernel, bias, ht[1])[0],
                    (h2.reshape(-1, PROJECTION_CHUNK, h.shape[-1]),
                     t2.reshape(-1, PROJECTION_CHUNK)))
  return nll.reshape(-1)[:n].reshape(targets.shape)


PROJECTION_CHUNK = 8192  # tokens per vocabulary projection of an undifferentiated call


def _linear_token_nll_fwd(h, kernel, bias, targets):
  logits = jnp.dot(h, kernel, preferred_element_type=jnp.float32) + bias.astype(jnp.float32)
  top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
  e = jnp.exp(logits - top)
  total = jnp.sum(e, axis=-1, keepdims=True)
  picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)
  nll = (jnp.log(total) + top - picked)[..., 0]
  return nll, (h, kernel, bias, targets, e, 1.0 / total)


def _linear_token_nll_bwd(res, g):
  h, kernel, bias, targets, e, inv_total = res
  vocab = kernel.shape[-1]
  g = g[..., None].astype(jnp.float32)
  onehot = jax.nn.one_hot(targets, vocab, dtype=jnp.float32)
  dlogits = (e * (inv_total * g) - onehot * g).reshape(-1, vocab)
  h2 = h.reshape(-1, h.shape[-1])
  d = dlogits.astype(h.dtype)
  dh = (d @ kernel.T).reshape(h.shape)
  dkernel = jnp.dot(h2.T, d, preferred_element_type=jnp.float32)
  return (dh.astype(h.dtype), dkernel.astype(kernel.dtype),
          dlogits.sum(axis=0).astype(bias.dtype), None)


linear_token_nll.defvjp(_linear_token_nll_fwd, _linear_token_nll_bwd)


def masked_sum(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Sum of ``x * mask`` over all elements, with masked entries fully inert.

  ``sum_i mask_i * x_i`` where entries with ``mask_i == 0`` are *selected
  away* rather than multiplied by zero, so a ``nan`` or ``inf`` there (an
  out-of-range padding target, say) neither leaks into the value nor yields
  a ``nan`` gradient. A boolean mask counts each valid entry once; a float
  mask also acts as a per-entry weight.

  Args:
      x: ``[batch, time]`` (any shape) values.
      mask: same shape as ``x`` (or broadcastable), bool or float.

  Returns:
      Scalar sum.
  """
  mask = jnp.broadcast_to(mask, x.shape)
  return jnp.sum(jnp.where(mask != 0, x, 0) * mask)


def sequence_cross_entropy(logits: jax.Array, targets: jax.Array,
                           mask: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """Summed token NLL and number of counted tokens for a padded batch.

  ``nll_sum = sum_{b,t} mask[b,t] * token_nll(logits, targets)[b,t]`` and
  ``token_count = sum_{b,t} mask[b,t]``. The per-token mean is
  ``nll_sum / token_count``; across devices use
  ``psum(nll_sum) / psum(token_count)``, which weights every real token
  equally regardless of how padding is spread over devices. Positions with
  ``mask == 0`` contribute neither value nor gradient.

  Args:
      logits: ``[batch, time, vocab]`` model logits.
      targets: ``[batch, time]`` integer token ids (any value where masked).
      mask: ``[batch, time]`` 1/True for real tokens, 0/False for padding.

  Returns:
      ``(nll_sum, token_count)``, two float scalars.
  """
  nll = token_nll(logits, targets)
  return nll_sum_and_count(nll, mask)


def nll_sum_and_count(nll: jax.Array, mask: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """``(masked_sum(nll, mask), number of counted tokens)`` of per-token NLLs, e.g. from
  `linear_token_nll` or `LSTMDecoder.token_nll` (see `sequence_cross_entropy`)."""
  return masked_sum(nll, mask), jnp.sum(jnp.asarray(mask, nll.dtype))


def self_critical_loss(log_prob: jax.Array, sample_reward: jax.Array, greedy_reward: jax.Array,
                       weight: jax.Array | None = None) -> jax.Array:
  """Self-critical sequence training (Rennie et al. 2017): the sum over sentences of
  -(r(sample) - r(greedy)) * log p(sample), whose gradient is REINFORCE with the greedy
  decode's reward as the baseline. Rewards carry no gradient; a sentence whose sample
  scores what the greedy decode scores contributes nothing.

  Args:
    log_prob: float [batch], log p of each sampled sentence (differentiable).
    sample_reward, greedy_reward: float [batch].
    weight: optional float [batch] (0 for padding rows).

  Returns:
    scalar sum (divide by the global number of sentences for the mean).
  """
  advantage = jax.lax.stop_gradient(sample_reward - greedy_reward)
  terms = -advantage * log_prob
  return jnp.sum(terms if weight is None else terms * weight)

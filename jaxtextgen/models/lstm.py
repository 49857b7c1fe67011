"""The one LSTM decoder (and encoder) that every algorithm of the library shares.

Layout of the computation, chosen for speed (DESIGN.md, performance notes):
the input-to-gate projection of all time steps is one matmul before the
`lax.scan`, the scan carries only the recurrent matmul `h @ W_h`, and the
projection to the vocabulary is one matmul after it. A conditioning vector
(a VAE latent, an attribute code) concatenated to every input step is, by
linearity, a per-sequence bias on the gates: it costs one small matmul, not
one per step.

Backpropagation through time is written by hand (`_lstm_scan_bwd`): the reverse
scan does one small matmul per step and the recurrent weight gradient is one large
matmul after it. Teacher-forced likelihood training goes through `token_nll`, whose
output layer and softmax cross-entropy share a hand-written gradient
(`objectives.linear_token_nll`). Together they make the LM and VAE steps faster than
PyTorch's on CPU (README, benchmark).

The decoder implements the decoder protocol (`models.decoder`): the same parameters
serve teacher forcing (`__call__`, `token_nll`) and step-by-step decoding (`init_cache`,
`step`), so a sampler, a Gumbel-softmax generator or Monte-Carlo rollouts all run the
very model that was trained.

With `attention`, the decoder also reads a memory (an encoder's states, texar's
attentional autoencoder of `ctrl_gen_yelp:texar`): its condition is then a dict
{'vector': [batch, C], 'memory': [batch, M, D], 'memory_mask': [batch, M]} (a plain
array is a condition without memory). The attention is Luong's "general" read-out
without input feeding, as texar's `cell_input_fn=lambda inputs, attention: inputs`:
the LSTM runs as before, and each top state h_t becomes o_t = tanh(W [h_t; c_t]), c_t
the softmax(h_t W_a m^T)-weighted memory, before the output layer. The recurrence is
untouched, so teacher forcing keeps its hand-written gradients.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtextgen.objectives.sequence import linear_token_nll

# Carry of a multi-layer LSTM: per layer (c, h), each [batch, hidden].
LSTMState = tuple[tuple[jax.Array, jax.Array], ...]


def _lstm_cell(gates_x: jax.Array, c: jax.Array, h: jax.Array, w_h: jax.Array):
  """One LSTM update. gates_x: [batch, 4H] (input part, bias included) ->
  (c, h, the gate activations [batch, 4H]: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o),
  which the hand-written backward pass reuses)."""
  gates = gates_x + h @ w_h.astype(gates_x.dtype)
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
  # The +1 forget-gate bias is folded into the parameter init, not here.
  c = f * c + i * g
  h = o * jnp.tanh(c)
  return c, h, jnp.concatenate([i, f, g, o], axis=-1)


def _scan_layer(gates_x: jax.Array, c0, h0, w_h, reverse=False, unroll=1):
  """Runs one layer over time. gates_x: [batch, time, 4H] -> c, h: [batch, time, H]."""
  gx = jnp.swapaxes(gates_x, 0, 1)
  if reverse:
    gx = gx[::-1]
  cs, hs = _lstm_scan(gx, c0, h0, w_h, unroll)
  if reverse:
    cs, hs = cs[::-1], hs[::-1]
  return jnp.swapaxes(cs, 0, 1), jnp.swapaxes(hs, 0, 1)


def _lstm_forward(gx, c0, h0, w_h, unroll):
  """Time-major scan: gx [time, batch, 4H] -> (cs, hs [time, batch, H], gate activations
  [time, batch, 4H] in the order i, f, g, o)."""
  def body(carry, g):
    c, h, acts = _lstm_cell(g, *carry, w_h)
    return (c, h), (c, h, acts)

  _, (cs, hs, acts) = jax.lax.scan(body, (c0, h0), gx, unroll=unroll)
  return cs, hs, acts


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _lstm_scan(gx, c0, h0, w_h, unroll):
  cs, hs, _ = _lstm_forward(gx, c0, h0, w_h, unroll)
  return cs, hs


def _lstm_scan_fwd(gx, c0, h0, w_h, unroll):
  cs, hs, acts = _lstm_forward(gx, c0, h0, w_h, unroll)
  return (cs, hs), (cs, hs, acts, c0, h0, w_h)


def _lstm_scan_bwd(unroll, res, cotangents):
  """Backpropagation through time by hand: the reverse scan carries (dc, dh) and does one
  small matmul per step (dh_prev = dgates @ W_h^T); the recurrent weight gradient is then
  ONE [H, time*batch] @ [time*batch, 4H] matmul after the scan, instead of the per-step
  outer products that autodiff of the scan accumulates in its carry."""
  cs, hs, acts, c0, h0, w_h = res
  dcs, dhs = cotangents
  c_prev = jnp.concatenate([c0[None], cs[:-1]], axis=0)
  h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
  w_t = w_h.astype(acts.dtype).T

  def body(carry, xs):
    dc, dh = carry
    a, c, cp, dc_out, dh_out = xs
    i, f, g, o = jnp.split(a, 4, axis=-1)
    dh = dh + dh_out
    tc = jnp.tanh(c)
    dc = dc + dc_out + dh * o * (1 - tc * tc)
    dgates = jnp.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f),
                              dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
    return (dc * f, dgates @ w_t), dgates

  zeros = (jnp.zeros_like(c0), jnp.zeros_like(h0))
  (dc0, dh0), dgx = jax.lax.scan(body, zeros, (acts, cs, c_prev, dcs, dhs), reverse=True,
                                 unroll=unroll)
  hidden = h_prev.shape[-1]
  dw = jnp.dot(h_prev.reshape(-1, hidden).T, dgx.reshape(-1, 4 * hidden),
               preferred_element_type=jnp.float32)
  return dgx, dc0.astype(c0.dtype), dh0.astype(h0.dtype), dw.astype(w_h.dtype)


_lstm_scan.defvjp(_lstm_scan_fwd, _lstm_scan_bwd)


def _forget_bias_init(hidden: int):
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.zeros(shape, dtype).at[hidden:2 * hidden].set(1.0)
  return init


class LSTMLayers(nn.Module):
  """Stacked LSTM layers with hoisted input projections.

  Attributes:
    hidden_size: H, the state size of every layer.
    num_layers: stacked layers; dropout is applied between them.
    dropout: rate on the inputs of layers 2.. (the embedding dropout is the caller's).
    dtype: compute dtype (params stay float32), e.g. bfloat16 on GPU/TPU.
  """
  hidden_size: int
  num_layers: int = 1
  dropout: float = 0.0
  dtype: Any = jnp.float32
  unroll: int = 1

  def setup(self):
    h = self.hidden_size
    self.w_x = [nn.Dense(4 * h, dtype=self.dtype, bias_init=_forget_bias_init(h),
                         name=f'layer{l}_x') for l in range(self.num_layers)]
    self.w_h = [self.param(f'layer{l}_h', nn.initializers.orthogonal(),
                           (h, 4 * h)) for l in range(self.num_layers)]
    self.drop = nn.Dropout(self.dropout)

  def zero_state(self, batch: int) -> LSTMState:
    z = jnp.zeros((batch, self.hidden_size), self.dtype)
    return tuple((z, z) for _ in range(self.num_layers))

  def __call__(self, x: jax.Array, state: LSTMState, gate_bias: Sequence[jax.Array] | None,
               *, train: bool, reverse: bool = False):
    """Teacher-forced pass.

    Args:
      x: [batch, time, features] inputs of the first layer.
      state: initial carry, one (c, h) per layer.
      gate_bias: optional per-layer [batch, 4H] added to every step's gates
        (the conditioning vector's contribution).
      train: enables dropout between layers.
      reverse: run right-to-left (the backward half of a bi-LSTM encoder).

    Returns:
      (top-layer h [batch, time, H], per-layer (c, h) each [batch, time, H]).
    """
    states = []
    for l in range(self.num_layers):
      if l > 0:
        x = self.drop(x, deterministic=not train)
      gx = self.w_x[l](x)
      if gate_bias is not None:
        gx = gx + gate_bias[l][:, None, :].astype(gx.dtype)
      cs, hs = _scan_layer(gx, *state[l], self.w_h[l], reverse=reverse, unroll=self.unroll)
      states.append((cs, hs))
      x = hs
    return x, tuple(states)

  def step(self, x: jax.Array, state: LSTMState, gate_bias, *, train: bool = False):
    """One time step. x: [batch, features] -> (h [batch, H], new state)."""
    new = []
    for l in range(self.num_layers):
      if l > 0:
        x = self.drop(x, deterministic=not train)
      gx = self.w_x[l](x)
      if gate_bias is not None:
        gx = gx + gate_bias[l].astype(gx.dtype)
      c, h, _ = _lstm_cell(gx, *state[l], self.w_h[l])
      new.append((c, h))
      x = h
    return x, tuple(new)


class VocabProjection(nn.Module):
  """The output layer: float32 logits ``h @ kernel + bias``, or, given targets, the
  per-token NLL through `objectives.linear_token_nll` (the same value, a faster
  gradient). Parameters are those of an `nn.Dense` (kernel lecun-normal, bias zeros)."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, targets: jax.Array | None = None) -> jax.Array:
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (h.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    h, kernel, bias = (x.astype(self.dtype) for x in (h, kernel, bias))
    if targets is not None:
      return linear_token_nll(h, kernel, bias, targets)
    return (jnp.dot(h, kernel) + bias).astype(jnp.float32)


class LSTMDecoder(nn.Module):
  """Token-level LSTM decoder / language model, optionally conditioned; implements
  the decoder protocol (`models.decoder`).

  Attributes:
    vocab_size: V, output classes (and input embedding rows).
    emb_dim: E, token embedding size.
    hidden_size: H, LSTM state size.
    num_layers: stacked LSTM layers.
    dropout: rate on embeddings, between layers and before the output layer.
    cond_to_state: a conditioning vector initialises every layer's (c, h) via a Dense.
    cond_to_input: a conditioning vector is concatenated to every input step
      (implemented as a per-sequence gate bias, see module docstring).
    attention: the top states attend over the condition's memory (module docstring).
    dtype: compute dtype.
  """
  vocab_size: int
  emb_dim: int = 256
  hidden_size: int = 256
  num_layers: int = 1
  dropout: float = 0.0
  cond_to_state: bool = False
  cond_to_input: bool = False
  attention: bool = False
  dtype: Any = jnp.float32
  unroll: int = 1

  def setup(self):
    self.embedding = nn.Embed(self.vocab_size, self.emb_dim,
                              embedding_init=nn.initializers.normal(0.1))
    self.lstm = LSTMLayers(self.hidden_size, self.num_layers, self.dropout, self.dtype,
                           self.unroll)
    self.drop = nn.Dropout(self.dropout)
    self.out = VocabProjection(self.vocab_size, dtype=self.dtype)
    h = self.hidden_size
    if self.cond_to_state:
      self.cond_state = nn.Dense(2 * h * self.num_layers, dtype=self.dtype)
    if self.cond_to_input:
      # Only the first layer sees the input; deeper layers get no bias.
      self.cond_gates = nn.Dense(4 * h, use_bias=False, dtype=self.dtype)
    if self.attention:
      # o_t = tanh(W [h_t; c_t] + b), W split into its h and c halves
      self.attn_key = nn.Dense(h, use_bias=False, dtype=self.dtype)
      self.attn_state = nn.Dense(h, dtype=self.dtype)
      self.attn_context = nn.Dense(h, use_bias=False, dtype=self.dtype)

  # --- the decoder protocol ---------------------------------------------------------
  def embed(self, tokens: jax.Array) -> jax.Array:
    """tokens int [...] -> embeddings [..., E]."""
    return self.embedding(tokens).astype(self.dtype)

  def embed_soft(self, probs: jax.Array) -> jax.Array:
    """Token distributions [..., V] -> expected embeddings [..., E] (Gumbel / soft inputs)."""
    return (probs.astype(self.dtype) @ self.embedding.embedding.astype(self.dtype))

  def init_cache(self, batch: int, cond: jax.Array | None = None, length: int = 0) -> LSTMState:
    """Zero state, or a state computed from cond [batch, C] when cond_to_state. `length`
    (the Transformer's cache size) is not needed: an LSTM's state has none."""
    del length
    cond = _vector(cond)
    if cond is None or not self.cond_to_state:
      return self.lstm.zero_state(batch)
    flat = jnp.tanh(self.cond_state(cond.astype(self.dtype)))
    parts = jnp.split(flat, 2 * self.num_layers, axis=-1)
    return tuple((parts[2 * l], parts[2 * l + 1]) for l in range(self.num_layers))

  def __call__(self, inputs: jax.Array, cond: jax.Array | None = None, *,
               train: bool = False, soft_inputs: bool = False, return_hidden: bool = False):
    """Teacher-forced decoding.

    Args:
      inputs: int32 [batch, time] input tokens (targets shifted right, BOS first),
        or [batch, time, V] token distributions when `soft_inputs`.
      cond: optional conditioning vector [batch, C].
      train: dropout on.
      return_hidden: also return the top layer's h [batch, time, H] after each
        prefix (used by value heads).

    Returns:
      logits float32 [batch, time, V] (and the hidden states when asked).
    """
    h = self._teacher_forced(inputs, cond, train, soft_inputs)
    logits = self.out(self.drop(h, deterministic=not train))
    chex.assert_shape(logits, (inputs.shape[0], inputs.shape[1], self.vocab_size))
    return (logits, h) if return_hidden else logits

  def token_nll(self, inputs: jax.Array, targets: jax.Array, cond: jax.Array | None = None, *,
                train: bool = False, soft_inputs: bool = False, return_hidden: bool = False):
    """Teacher-forced -log p(targets[b, t] | inputs[b, :t+1]) [batch, time], the same as
    `objectives.token_nll(self(inputs, ...), targets)` (same dropout masks) but with the
    fused projection + softmax gradient of `objectives.linear_token_nll`: the training
    loss of every likelihood-trained algorithm. Arguments as `__call__`."""
    h = self._teacher_forced(inputs, cond, train, soft_inputs)
    nll = self.out(self.drop(h, deterministic=not train), targets)
    chex.assert_shape(nll, inputs.shape[:2])
    return (nll, h) if return_hidden else nll

  def step(self, inputs: jax.Array, cache: LSTMState, cond: jax.Array | None = None,
           *, train: bool = False):
    """One decoding step: int32 [batch] tokens (or [batch, E] embeddings) ->
    (logits float32 [batch, V], new state)."""
    x = self.embed(inputs) if inputs.ndim == 1 else inputs.astype(self.dtype)
    x = self.drop(x, deterministic=not train)
    h, cache = self.lstm.step(x, cache, self._gate_bias(cond), train=train)
    h = self._attend(h[:, None], cond)[:, 0]
    return self.out(self.drop(h, deterministic=not train)), cache

  # --- internals --------------------------------------------------------------------
  def _gate_bias(self, cond):
    cond = _vector(cond)
    if cond is None or not self.cond_to_input:
      return None
    first = self.cond_gates(cond.astype(self.dtype))
    zeros = jnp.zeros_like(first)
    return [first] + [zeros] * (self.num_layers - 1)

  def _teacher_forced(self, inputs, cond, train, soft_inputs):
    """Top-layer states [batch, time, H] of a teacher-forced pass."""
    x = self.embed_soft(inputs) if soft_inputs else self.embed(inputs)
    x = self.drop(x, deterministic=not train)
    h, _ = self.lstm(x, self.init_cache(inputs.shape[0], cond), self._gate_bias(cond),
                     train=train)
    return self._attend(h, cond)

  def _attend(self, h: jax.Array, cond):
    """Top states [batch, T, H] -> the attention read-out o_t (module docstring), or h
    itself without `attention`. A condition without memory reads a zero context."""
    if not self.attention:
      return h
    o = self.attn_state(h)
    if isinstance(cond, dict) and 'memory' in cond:
      memory = cond['memory'].astype(self.dtype)
      mask = cond['memory_mask'] > 0
      scores = jnp.einsum('bth,bmh->btm', h, self.attn_key(memory)).astype(jnp.float32)
      scores = jnp.where(mask[:, None, :], scores, -1e9)
      weights = jax.nn.softmax(scores, -1) * mask.any(-1)[:, None, None]
      o = o + self.attn_context(jnp.einsum('btm,bmd->btd', weights.astype(self.dtype), memory))
    return jnp.tanh(o)


def _vector(cond):
  """The condition vector of a decoder's condition (a dict with memory, or the vector)."""
  return cond.get('vector') if isinstance(cond, dict) else cond


class LSTMEncoder(nn.Module):
  """Sentence encoder: (bi-)LSTM over embeddings, returns the final state(s).

  Padding never reaches the summary: each direction's state is read at the
  sentence's last real token.
  """
  vocab_size: int
  emb_dim: int = 256
  hidden_size: int = 256
  bidirectional: bool = False
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array, *, train: bool = False,
               state: LSTMState | None = None, return_states: bool = False):
    """tokens int32 [batch, time] (or float [batch, time, V] token distributions, read
    as their expected embeddings: Gumbel-softmax sentences), mask [batch, time] ->
    [batch, H or 2H] summary. `state`: the forward direction's initial (c, h) (e.g. from
    a style label, Shen et al. 2017), zeros by default. `return_states`: also the
    states at every position [batch, time, H or 2H] (an attention memory; each
    direction's state after reading up to that token, padding positions arbitrary)."""
    embed = nn.Embed(self.vocab_size, self.emb_dim, embedding_init=nn.initializers.normal(0.1))
    if jnp.issubdtype(tokens.dtype, jnp.integer):
      x = embed(tokens)
    else:
      x = tokens.astype(self.dtype) @ embed.embedding.astype(self.dtype)
    x = nn.Dropout(self.dropout)(x.astype(self.dtype), deterministic=not train)
    m = mask.astype(bool)
    last = jnp.maximum(m.sum(axis=1) - 1, 0)[:, None, None]
    outs, states = [], []
    directions = ('fwd', 'bwd') if self.bidirectional else ('fwd',)
    for direction in directions:
      layer = LSTMLayers(self.hidden_size, 1, 0.0, self.dtype, name=f'lstm_{direction}')
      # The backward direction reads each sentence reversed within its length,
      # so it starts at the last real token rather than at trailing padding.
      xs = x if direction == 'fwd' else _reverse_within_length(x, m)
      start = state if state is not None and direction == 'fwd' else layer.zero_state(x.shape[0])
      hs, _ = layer(xs, start, None, train=train)
      outs.append(jnp.take_along_axis(hs, last, axis=1)[:, 0])
      states.append(hs if direction == 'fwd' else _reverse_within_length(hs, m))
    summary = jnp.concatenate(outs, axis=-1)
    return (summary, jnp.concatenate(states, axis=-1)) if return_states else summary


def _reverse_within_length(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Reverses each row's first `length` steps in place: [b, t, ...] -> same shape."""
  t = x.shape[1]
  length = mask.sum(axis=1)
  idx = jnp.arange(t)[None, :]
  src = jnp.where(idx < length[:, None], length[:, None] - 1 - idx, idx)
  return jnp.take_along_axis(x, src.reshape(src.shape + (1,) * (x.ndim - 2)), axis=1)

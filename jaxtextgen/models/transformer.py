"""The Transformer decoder: a pre-LN causal language model (GPT-2's layout) that
implements the decoder protocol of `models.decoder`, and the conditional LayerNorm
through which a condition vector reaches it.

    x = embed(tokens) + positions
    each block:  x = x + Drop(Attn(LN1(x, cond)));  x = x + Drop(MLP(LN2(x, cond)))
    logits = VocabProjection(LN_f(x, cond))

Every LayerNorm is a `ConditionalLayerNorm` (Su Jianlin's Conditional Layer
Normalization, as bert4keras' `LayerNormalization(conditional=True)`): a condition
vector [batch, C] shifts each norm's gamma and beta through zero-initialised Dense
layers, so a freshly initialised conditional model is exactly the unconditional one
and learns how much to listen to the condition.

Attention is `jax.nn.dot_product_attention`: teacher forcing with `is_causal=True`
(on GPU in bfloat16 / float16, cuDNN's flash attention); `step` attends one query to
a key/value cache of static length, masking the positions not written yet, so the
cache can be the carry of the sampler's `lax.scan`. The output layer is the LSTM's
`VocabProjection`, whose fused projection + softmax gradient makes `token_nll` the
cheap training loss.

Compute dtype `dtype` (e.g. bfloat16); params, LayerNorm statistics, attention
softmax, logits and losses stay float32.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.models.lstm import VocabProjection

POSITIONS = ('learned', 'sinusoidal')

# GPT-2's init: N(0, 0.02) everywhere; the projections back into the residual stream
# are scaled by 1/sqrt(2 * layers) so the stream's variance does not grow with depth.
_INIT = nn.initializers.normal(0.02)


class ConditionalLayerNorm(nn.Module):
  """LayerNorm over the last axis whose gamma and beta a condition vector can shift.

  y = (x - mean) / sqrt(var + epsilon) * gamma + beta, statistics in float32, with
  gamma = scale + cond_h @ W_gamma and beta = bias + cond_h @ W_beta (W zero-initialised,
  no biases) where cond_h = cond, or cond @ W_h when `hidden` > 0 (linear, bert4keras'
  default `hidden_activation`). Without `conditional`, or with cond None, a plain LayerNorm
  (params 'scale', 'bias' as `nn.LayerNorm`'s).

  Attributes:
    epsilon: added to the variance.
    hidden: width of the optional bias-free linear layer between cond and gamma/beta
      (bert4keras' `hidden_units`; 0: none).
    dtype: output dtype.
    conditional: whether cond modulates gamma and beta.
  """
  epsilon: float = 1e-6
  hidden: int = 0
  dtype: Any = jnp.float32
  conditional: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
    """x [batch, ..., D], cond float [batch, C] or None -> [batch, ..., D] in `dtype`."""
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones_init(), (features,))
    bias = self.param('bias', nn.initializers.zeros_init(), (features,))
    x = x.astype(jnp.float32)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
    y = centred * jax.lax.rsqrt(var + self.epsilon)
    gamma, beta = scale, bias
    if self.conditional and cond is not None:
      chex.assert_rank(cond, 2)
      chex.assert_equal_shape_prefix((x, cond), 1)
      c = cond.astype(jnp.float32)
      if self.hidden > 0:
        c = nn.Dense(self.hidden, use_bias=False, kernel_init=nn.initializers.glorot_uniform(),
                     name='cond_hidden')(c)
      zero = nn.initializers.zeros_init()
      d_gamma = nn.Dense(features, use_bias=False, kernel_init=zero, name='cond_gamma')(c)
      d_beta = nn.Dense(features, use_bias=False, kernel_init=zero, name='cond_beta')(c)
      # One (gamma, beta) per sequence: broadcast over every axis between batch and features.
      shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
      gamma = scale + d_gamma.reshape(shape)
      beta = bias + d_beta.reshape(shape)
    return (y * gamma + beta).astype(self.dtype)


def sinusoidal_positions(positions: jax.Array, width: int) -> jax.Array:
  """Vaswani et al.'s fixed encodings: int positions [...] -> float32 [..., width],
  sin(p / 10000^(2i / width)) in the first half of the features, cos in the second
  (the layout of flax's lm1b example)."""
  half = width // 2
  freq = np.exp(-np.log(10_000.0) * np.arange(half) / max(half, 1)).astype(np.float32)
  angle = positions.astype(jnp.float32)[..., None] * freq
  enc = jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)
  return jnp.pad(enc, [(0, 0)] * (enc.ndim - 1) + [(0, width - 2 * half)])


def _attention_impl(dtype: Any, head_dim: int) -> str | None:
  """cuDNN's flash attention where it applies (GPU, half precision, head_dim a multiple of 8
  up to 128); otherwise XLA's (what `implementation=None` picks)."""
  half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
  if jax.default_backend() == 'gpu' and half and head_dim % 8 == 0 and head_dim <= 128:
    return 'cudnn'
  return None


def _attend(q, k, v, *, is_causal=False, kv_length=None):
  """jax.nn.dot_product_attention on [batch, time, heads, head_dim] operands, on cuDNN when
  it applies and accepts these shapes (it checks them while tracing), else XLA's."""
  impl = _attention_impl(q.dtype, q.shape[-1]) if kv_length is None else None
  kw = dict(is_causal=is_causal, key_value_seq_lengths=kv_length)
  if impl == 'cudnn':
    try:
      return jax.nn.dot_product_attention(q, k, v, implementation='cudnn', **kw)
    except (NotImplementedError, ValueError, RuntimeError):
      pass
  return jax.nn.dot_product_attention(q, k, v, **kw)


class TransformerBlock(nn.Module):
  """One pre-LN block: x + Drop(Attn(LN1(x))), then x + Drop(MLP(LN2(x))) with GELU
  (tanh approximation, `nn.gelu`'s default). Query, key and value are one fused Dense."""
  hidden_size: int
  num_heads: int
  mlp_dim: int
  num_layers: int
  dropout: float = 0.0
  conditional: bool = False
  cln_hidden: int = 0
  dtype: Any = jnp.float32

  def setup(self):
    h, dt = self.hidden_size, self.dtype
    residual_init = nn.initializers.normal(0.02 / np.sqrt(2 * self.num_layers))
    ln = lambda name: ConditionalLayerNorm(conditional=self.conditional, hidden=self.cln_hidden,
                                           dtype=dt, name=name)
    self.ln1, self.ln2 = ln('ln1'), ln('ln2')
    self.qkv = nn.Dense(3 * h, dtype=dt, kernel_init=_INIT, name='qkv')
    self.attn_out = nn.Dense(h, dtype=dt, kernel_init=residual_init, name='attn_out')
    self.mlp_in = nn.Dense(self.mlp_dim, dtype=dt, kernel_init=_INIT, name='mlp_in')
    self.mlp_out = nn.Dense(h, dtype=dt, kernel_init=residual_init, name='mlp_out')
    self.drop = nn.Dropout(self.dropout)

  def _heads(self, x):
    """[batch, time, H] -> q, k, v each [batch, time, heads, head_dim]."""
    b, t, _ = x.shape
    qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.hidden_size // self.num_heads)
    return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]

  def _mlp(self, x, cond, train):
    y = self.mlp_out(nn.gelu(self.mlp_in(self.ln2(x, cond))))
    return x + self.drop(y, deterministic=not train)

  def __call__(self, x: jax.Array, cond: jax.Array | None, *, train: bool) -> jax.Array:
    """Teacher-forced, causal: x [batch, time, H] -> [batch, time, H]."""
    b, t, h = x.shape
    q, k, v = self._heads(self.ln1(x, cond))
    a = _attend(q, k, v, is_causal=True).reshape(b, t, h)
    x = x + self.drop(self.attn_out(a), deterministic=not train)
    return self._mlp(x, cond, train)

  def step(self, x: jax.Array, cache_k: jax.Array, cache_v: jax.Array, layer: int,
           index: jax.Array, cond: jax.Array | None, *, train: bool):
    """One position: x [batch, 1, H] at position `index` (int32 scalar), the decoder's caches
    [layers, batch, length, heads, head_dim] of which this block owns row `layer` ->
    (x [batch, 1, H], updated caches). Writing into the stacked caches in place (rather
    than slicing out and re-stacking a layer) lets XLA update the scan carry without
    copies. Keys beyond `index` are not attended (zeros, or stale after a reuse)."""
    b, _, h = x.shape
    q, k, v = self._heads(self.ln1(x, cond))
    at = (layer, 0, index, 0, 0)
    cache_k = jax.lax.dynamic_update_slice(cache_k, k[None].astype(cache_k.dtype), at)
    cache_v = jax.lax.dynamic_update_slice(cache_v, v[None].astype(cache_v.dtype), at)
    seen = jnp.full((b,), index + 1, jnp.int32)
    a = _attend(q, cache_k[layer].astype(q.dtype), cache_v[layer].astype(q.dtype),
                kv_length=seen)
    x = x + self.drop(self.attn_out(a.reshape(b, 1, h)), deterministic=not train)
    return self._mlp(x, cond, train), cache_k, cache_v


class TransformerDecoder(nn.Module):
  """Pre-LN causal Transformer decoder / language model, optionally conditioned through
  every LayerNorm (see the module docstring).

  Attributes:
    vocab_size: V, output classes (and input embedding rows).
    hidden_size: H, model width (also the token embedding size E).
    num_layers: blocks.
    num_heads: attention heads; head_dim = H // num_heads.
    mlp_dim: feed-forward width.
    dropout: rate on the embeddings and on each block's two residual branches.
    positions: 'learned' (a [max_positions, H] table) or 'sinusoidal' (fixed).
    max_positions: the longest sequence of a learned table; the default cache length.
    conditional: every LayerNorm reads the condition vector.
    cln_hidden: `ConditionalLayerNorm.hidden` of every norm.
    dtype: compute dtype (params stay float32).
  """
  vocab_size: int
  hidden_size: int = 256
  num_layers: int = 2
  num_heads: int = 4
  mlp_dim: int = 1024
  dropout: float = 0.0
  positions: str = 'learned'
  max_positions: int = 512
  conditional: bool = False
  cln_hidden: int = 0
  dtype: Any = jnp.float32

  def setup(self):
    if self.positions not in POSITIONS:
      raise ValueError(f'config.model.positions={self.positions!r}: use one of {POSITIONS}')
    if self.hidden_size % self.num_heads:
      raise ValueError(f'config.model.hidden_size={self.hidden_size} does not divide by '
                       f'config.model.num_heads={self.num_heads}; pick sizes that divide.')
    self.embedding = nn.Embed(self.vocab_size, self.hidden_size, embedding_init=_INIT)
    if self.positions == 'learned':
      self.pos_embedding = self.param('pos_embedding', _INIT,
                                      (self.max_positions, self.hidden_size))
    self.blocks = [TransformerBlock(self.hidden_size, self.num_heads, self.mlp_dim,
                                    self.num_layers, self.dropout, self.conditional,
                                    self.cln_hidden, self.dtype, name=f'block{l}')
                   for l in range(self.num_layers)]
    self.ln_f = ConditionalLayerNorm(conditional=self.conditional, hidden=self.cln_hidden,
                                     dtype=self.dtype)
    self.drop = nn.Dropout(self.dropout)
    self.out = VocabProjection(self.vocab_size, dtype=self.dtype)

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads

  def _check_length(self, length: int, what: str):
    if self.positions == 'learned' and length > self.max_positions:
      raise ValueError(f'{what} of {length} positions is longer than the learned position '
                       f'table: raise config.model.max_positions (now {self.max_positions}) '
                       f'or truncate the sequences.')

  def _position_embeddings(self, positions: jax.Array) -> jax.Array:
    """int32 positions [...] -> [..., H] in the compute dtype."""
    if self.positions == 'learned':
      return jnp.take(self.pos_embedding, positions, axis=0).astype(self.dtype)
    return sinusoidal_positions(positions, self.hidden_size).astype(self.dtype)

  # --- the protocol ----------------------------------------------------------------------
  def embed(self, tokens: jax.Array) -> jax.Array:
    """tokens int [...] -> token embeddings [..., H] (no positions: `step` adds them)."""
    return self.embedding(tokens).astype(self.dtype)

  def embed_soft(self, probs: jax.Array) -> jax.Array:
    """Token distributions [..., V] -> expected embeddings [..., H]."""
    return probs.astype(self.dtype) @ self.embedding.embedding.astype(self.dtype)

  def init_cache(self, batch: int, cond: jax.Array | None = None, length: int = 0) -> dict:
    """The state before the first `step`: {'k', 'v': zeros [layers, batch, length, heads,
    head_dim] in the compute dtype, 'index': int32 scalar 0, the next write position}.
    length 0: max_positions. Steps past `length` are not supported (the writes clamp; with
    learned positions a step past max_positions gives NaN logits).
    cond is unused: the condition enters at every step."""
    del cond
    length = length or self.max_positions
    self._check_length(length, 'a decoding cache')
    shape = (self.num_layers, batch, length, self.num_heads, self.head_dim)
    zeros = jnp.zeros(shape, self.dtype)
    return {'k': zeros, 'v': zeros, 'index': jnp.zeros((), jnp.int32)}

  def step(self, inputs: jax.Array, cache: dict, cond: jax.Array | None = None, *,
           train: bool = False):
    """One position: int32 token ids [batch] or embeddings [batch, H] (as `embed` gives,
    without positions) at position cache['index'] -> (logits float32 [batch, V], cache
    with this position's keys and values and index + 1)."""
    x = self.embed(inputs) if inputs.ndim == 1 else inputs.astype(self.dtype)
    batch = x.shape[0]
    chex.assert_shape(x, (batch, self.hidden_size))
    index = cache['index']
    x = (x + self._position_embeddings(index))[:, None, :]
    x = self.drop(x, deterministic=not train)
    k, v = cache['k'], cache['v']
    for l, block in enumerate(self.blocks):
      x, k, v = block.step(x, k, v, l, index, cond, train=train)
    logits = self.out(self.ln_f(x[:, 0], cond))
    chex.assert_shape(logits, (batch, self.vocab_size))
    return logits, {'k': k, 'v': v, 'index': index + 1}

  def __call__(self, inputs: jax.Array, cond: jax.Array | None = None, *, train: bool = False,
               soft_inputs: bool = False, return_hidden: bool = False):
    """Teacher forcing: int32 [batch, T] inputs (targets shifted right, BOS first), or
    [batch, T, V] distributions with `soft_inputs` -> logits float32 [batch, T, V] (and the
    final LayerNorm's output [batch, T, H] with `return_hidden`). Position t sees inputs
    0..t only."""
    h = self._hidden(inputs, cond, train, soft_inputs)
    logits = self.out(h)
    chex.assert_shape(logits, (*inputs.shape[:2], self.vocab_size))
    return (logits, h) if return_hidden else logits

  def token_nll(self, inputs: jax.Array, targets: jax.Array, cond: jax.Array | None = None, *,
                train: bool = False, soft_inputs: bool = False, return_hidden: bool = False):
    """-log p(targets[b, t] | inputs[b, :t+1]) float32 [batch, T]: `objectives.token_nll` of
    `__call__`'s logits, with the output layer's fused gradient. Arguments as `__call__`."""
    h = self._hidden(inputs, cond, train, soft_inputs)
    nll = self.out(h, targets)
    chex.assert_shape(nll, inputs.shape[:2])
    return (nll, h) if return_hidden else nll

  def _hidden(self, inputs, cond, train, soft_inputs):
    """The final LayerNorm's output [batch, T, H] of a teacher-forced pass."""
    batch, length = inputs.shape[:2]
    self._check_length(length, 'a sequence')
    x = self.embed_soft(inputs) if soft_inputs else self.embed(inputs)
    x = x + self._position_embeddings(jnp.arange(length))[None]
    x = self.drop(x, deterministic=not train)
    for block in self.blocks:
      x = block(x, cond, train=train)
    h = self.ln_f(x, cond)
    chex.assert_shape(h, (batch, length, self.hidden_size))
    return h

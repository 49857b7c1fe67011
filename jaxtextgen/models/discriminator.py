"""The discriminators (critics) of every GAN algorithm, and a value head.

`CNNDiscriminator` is SeqGAN's text CNN (Yu et al. 2017, after Kim 2014 and
Zhang & LeCun 2015): one convolution per filter width over the sentence's
embeddings (`conv1d`, whose gradients are im2col matmuls), ReLU, max-over-time
pooling, a highway layer, dropout and a linear output. `LSTMDiscriminator` is the
recurrent alternative, `TransformerDiscriminator` the attention one (the blocks of
`models.transformer`). All read a sentence in any of the three forms GAN
algorithms produce:

  - hard token ids, int [batch, time] (real data, sampled sentences: SeqGAN);
  - token distributions, float [batch, time, vocab] (one-hot, softmax or
    Gumbel-softmax vectors: gumbel_gan, wgan), read as the expected embedding
    `probs @ E`, so a one-hot vector reads exactly as its token id;
  - features, float [batch, time, D] (embeddings, generator hidden states),
    through `features`, which skips the embedding table.

A module reads token-space inputs (ids or distributions, through its own
embedding) or features of one fixed width D, whichever it was initialised
with: the first layer's weights have that width.

With `num_classes=0` (the GANs) the output is one logit per sentence, float32
[batch]: D(x) = sigmoid(logit) is the probability that x is real, and the losses
of `objectives.gan` take these logits (WGAN reads them as critic scores).
SeqGAN's two-class softmax (`two_class=True`) is the same model
parameterised by two scores; softmax(s)[real] = sigmoid(s_real - s_fake), so
it returns s_real - s_fake. With `num_classes >= 2` the same bodies are text
classifiers (`steps.classifier`): float32 logits [batch, num_classes].
"""

from __future__ import annotations

from typing import Any, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtextgen.models.lstm import LSTMLayers

# SeqGAN's discriminator (discriminator.py / sequence_gan.py of LantaoYu/SeqGAN).
SEQGAN_FILTER_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
SEQGAN_NUM_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


def _symmetric_uniform(limit: float):
  """U(-limit, limit), SeqGAN's embedding initialiser (flax's `uniform` draws U(0, s))."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -limit, limit)
  return init


# --- a 1-D convolution: XLA's convolution forward, im2col matmuls backward ----------------------

_NWC = ('NWC', 'WIO', 'NWC')


def windows(x: jax.Array, width: int) -> jax.Array:
  """im2col: x [batch, time, in] -> [batch, time - width + 1, width * in], whose row p
  is x[:, p], ..., x[:, p + width - 1] concatenated: the row order of
  kernel.reshape(width * in, out) for a kernel [width, in, out]."""
  positions = x.shape[1] - width + 1
  return jnp.concatenate([x[:, j:j + positions] for j in range(width)], axis=-1)


@jax.custom_vjp
def conv1d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'VALID' 1-D cross-correlation: x [batch, time, in], kernel [width, in, out]
  -> [batch, time - width + 1, out] = windows(x, width) @ kernel.reshape(width * in, out),
  exactly `lax.conv_general_dilated`.

  Forward: XLA's convolution, which forms the windows tile by tile. Materialised,
  the windows of the tens of thousands of rollouts a SeqGAN generator step scores
  would take gigabytes, and at a training batch an im2col forward is no faster.
  Backward: the two matmuls of im2col, d kernel = windows^T g and d windows =
  g kernel^T folded back onto x (the transpose of `windows`); the windows of a
  training batch are small. Plain autodiff of the convolution gives transposed
  convolutions (a padded full correlation with the flipped kernel, a convolution
  with the batch as its features), which XLA:CPU runs much slower than these
  matmuls, and slower still inside lax.cond / lax.switch, where it leaves them in
  non-canonical dimension orders (README, benchmark notes). Reverse-over-reverse
  (gradient penalties) works; forward-mode (jvp) does not, as for any custom_vjp.
  """
  return jax.lax.conv_general_dilated(x, kernel, (1,), 'VALID', dimension_numbers=_NWC)


def _conv1d_fwd(x, kernel):
  return conv1d(x, kernel), (x, kernel)


def _conv1d_bwd(res, g):
  x, kernel = res
  width, fan_in, fan_out = kernel.shape
  win, fold = jax.vjp(lambda x: windows(x, width), x)  # [batch, positions, width * in]
  rows = win.reshape(-1, width * fan_in)
  g_rows = g.reshape(-1, fan_out).astype(win.dtype)
  flat_kernel = kernel.reshape(width * fan_in, fan_out).astype(win.dtype)
  d_kernel = (rows.T @ g_rows).reshape(kernel.shape)
  (dx,) = fold((g_rows @ flat_kernel.T).reshape(win.shape))
  return dx.astype(x.dtype), d_kernel.astype(kernel.dtype)


conv1d.defvjp(_conv1d_fwd, _conv1d_bwd)


class Conv1D(nn.Module):
  """nn.Conv(features, (width,), padding='VALID') on [batch, time, in], through
  `conv1d`; the same parameters ('kernel' [width, in, features], 'bias')."""
  features: int
  width: int
  kernel_init: Any = nn.initializers.truncated_normal(0.1)
  bias_init: Any = nn.initializers.constant(0.1)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init, (self.width, x.shape[-1], self.features))
    bias = self.param('bias', self.bias_init, (self.features,))
    return conv1d(x.astype(self.dtype), kernel.astype(self.dtype)) + bias.astype(self.dtype)


class _ReadsTokens:
  """The shared front end: ids / distributions -> embeddings [batch, time, E]."""

  def _embed_inputs(self, inputs: jax.Array) -> jax.Array:
    if jnp.issubdtype(inputs.dtype, jnp.integer):
      chex.assert_rank(inputs, 2)
      return self.embedding(inputs).astype(self.dtype)
    if inputs.ndim == 3 and inputs.shape[-1] == self.vocab_size:
      # The expected embedding under the distribution: one matmul, exact for one-hots.
      return inputs.astype(self.dtype) @ self.embedding.embedding.astype(self.dtype)
    raise ValueError(
        f'{type(self).__name__} reads int token ids [batch, time] or token distributions '
        f'[batch, time, {self.vocab_size}]; got {inputs.dtype} {inputs.shape}. Pass embeddings '
        'or hidden states to `.features` (method=...features) instead.')

  def _setup_head(self):
    if self.num_classes == 1 or self.num_classes < 0:
      raise ValueError(f'{type(self).__name__}: num_classes={self.num_classes}; use 0 (one '
                       'logit per sentence, the GANs) or the number of classes, at least 2')
    # SeqGAN's output layer: N(0, 0.1) truncated kernel, bias 0.1.
    self.drop = nn.Dropout(self.dropout)
    width = self.num_classes or (2 if self.two_class else 1)
    self.output = nn.Dense(width, dtype=self.dtype,
                           kernel_init=nn.initializers.truncated_normal(0.1),
                           bias_init=nn.initializers.constant(0.1))

  def _logit(self, pooled: jax.Array, *, train: bool) -> jax.Array:
    """[batch, F] -> dropout -> float32 logits: [batch, num_classes], or with
    num_classes=0 one per sentence [batch]."""
    batch = pooled.shape[0]
    scores = self.output(self.drop(pooled, deterministic=not train)).astype(jnp.float32)
    if self.num_classes:
      chex.assert_shape(scores, (batch, self.num_classes))
      return scores
    logits = scores[:, 1] - scores[:, 0] if self.two_class else scores[:, 0]
    chex.assert_shape(logits, (batch,))
    return logits


class Highway(nn.Module):
  """y = t * relu(W_h x + b_h) + (1 - t) * x,  t = sigmoid(W_t x + b_t + bias).

  SeqGAN builds it with transform bias 0 (its `highway(..., 1, 0)`)."""
  bias: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    size = x.shape[-1]
    # TF's get_variable default (SeqGAN's `linear`): Glorot-uniform weights.
    dense = lambda name: nn.Dense(size, dtype=self.dtype, name=name,
                                  kernel_init=nn.initializers.glorot_uniform())
    g = nn.relu(dense('transform')(x))
    t = nn.sigmoid(dense('gate')(x) + self.bias)
    return t * g + (1.0 - t) * x


class CNNDiscriminator(nn.Module, _ReadsTokens):
  """SeqGAN's CNN discriminator.

  Attributes:
    vocab_size: V (rows of the embedding table; unused by `features`).
    emb_dim: E, SeqGAN 64.
    filter_sizes, num_filters: one convolution of each width with that many
      filters (SeqGAN: widths 1-10, 15, 20 with 100/200/200/200/200/100x5/160/160).
    dropout: rate before the output layer (SeqGAN keeps 0.75: rate 0.25).
    two_class: SeqGAN's 2-score softmax output instead of one logit.
    num_classes: 0 (the GANs: one logit, see two_class) or C >= 2: logits
      [batch, C] (a text classifier; two_class is then ignored).
    masked_pooling: max-over-time over each sentence's own windows only (those
      starting within its first max(length - width + 1, 1) positions; a mask is
      then required), so its logits do not depend on how much padding the batch
      has. Off: every window counts, padding included (SeqGAN's fixed length).
    highway_bias: added to the highway gate's pre-activation.
    dtype: compute dtype of the embeddings, convolutions (forward and the im2col
      matmuls of their gradients) and dense layers, e.g. bfloat16; params and
      their gradients stay float32 and the logits are float32.

  Sentences shorter than the widest filter are padded with zero vectors at the
  end up to that width, so the parameter shapes never depend on the batch's
  length (trimmed batches, short smoke tests) and every filter always fires;
  at SeqGAN's length 20 nothing is padded and the model is exactly SeqGAN's.
  """
  vocab_size: int
  emb_dim: int = 64
  filter_sizes: Sequence[int] = SEQGAN_FILTER_SIZES
  num_filters: Sequence[int] = SEQGAN_NUM_FILTERS
  dropout: float = 0.25
  two_class: bool = True
  num_classes: int = 0
  masked_pooling: bool = False
  highway_bias: float = 0.0
  dtype: Any = jnp.float32

  def setup(self):
    if len(self.filter_sizes) != len(self.num_filters):
      raise ValueError(f'filter_sizes {tuple(self.filter_sizes)} and num_filters '
                       f'{tuple(self.num_filters)} must have the same length')
    if len(set(self.filter_sizes)) != len(self.filter_sizes):
      raise ValueError(f'filter_sizes {tuple(self.filter_sizes)} repeat a width; give each '
                       'width once, with the sum of the filters in num_filters')
    # SeqGAN's initialisers: embeddings U(-1, 1), conv kernels N(0, 0.1) truncated, biases 0.1.
    self.embedding = nn.Embed(self.vocab_size, self.emb_dim,
                              embedding_init=_symmetric_uniform(1.0))
    self.convs = [Conv1D(n, k, dtype=self.dtype, name=f'conv{k}')
                  for k, n in zip(self.filter_sizes, self.num_filters)]
    self.highway = Highway(self.highway_bias, self.dtype)
    self._setup_head()

  def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """inputs: int [batch, time] ids or float [batch, time, V] distributions;
    mask: optional [batch, time], 1 on the real tokens of a sentence (a prefix),
    zeroes the embeddings of masked positions.
    Returns float32 logits [batch] ([batch, num_classes] with num_classes)."""
    return self.features(self._embed_inputs(inputs), mask=mask, train=train)

  def features(self, x: jax.Array, *, mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """x: float [batch, time, D] embeddings or hidden states -> logits [batch]
    ([batch, num_classes] with num_classes)."""
    chex.assert_rank(x, 3)
    time = x.shape[1]
    x = x.astype(self.dtype)
    if mask is not None:
      x = x * mask[..., None].astype(self.dtype)
    elif self.masked_pooling:
      raise ValueError('CNNDiscriminator(masked_pooling=True) needs the mask [batch, time] of '
                       'real tokens; pass mask=...')
    widest = max(self.filter_sizes)
    if time < widest:
      x = jnp.pad(x, ((0, 0), (0, widest - time), (0, 0)))
    pooled = []
    for width, conv in zip(self.filter_sizes, self.convs):
      h = nn.relu(conv(x))  # [batch, windows, filters], >= 0
      if self.masked_pooling:
        # A sentence's own windows start before max(length - width + 1, 1); the others
        # read padding. Zeroing them leaves the max unchanged (ReLU outputs are >= 0 and
        # window 0 always counts).
        lengths = mask.astype(jnp.float32).sum(axis=1)
        own = jnp.arange(h.shape[1])[None] < jnp.maximum(lengths - width + 1, 1)[:, None]
        h = h * own[..., None].astype(h.dtype)
      pooled.append(h.max(axis=1))  # max over time: [batch, filters]
    return self._logit(self.highway(jnp.concatenate(pooled, axis=-1)), train=train)


class LSTMDiscriminator(nn.Module, _ReadsTokens):
  """A recurrent discriminator / critic: the shared `LSTMLayers` over the
  sentence, its top state at the last real token (all positions count without
  a mask), dropout, one logit.

  Attributes as `CNNDiscriminator`'s (num_classes included), plus hidden_size and
  num_layers. The recurrence runs forward, so with a mask the logits of a
  sentence never depend on the padding after it."""
  vocab_size: int
  emb_dim: int = 64
  hidden_size: int = 64
  num_layers: int = 1
  dropout: float = 0.25
  two_class: bool = False
  num_classes: int = 0
  dtype: Any = jnp.float32

  def setup(self):
    self.embedding = nn.Embed(self.vocab_size, self.emb_dim,
                              embedding_init=nn.initializers.normal(0.1))
    self.lstm = LSTMLayers(self.hidden_size, self.num_layers, self.dropout, self.dtype)
    self._setup_head()

  def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """inputs: int [batch, time] ids or float [batch, time, V] distributions -> logits [batch]
    ([batch, num_classes] with num_classes)."""
    return self.features(self._embed_inputs(inputs), mask=mask, train=train)

  def features(self, x: jax.Array, *, mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """x: float [batch, time, D] -> logits [batch] ([batch, num_classes] with num_classes)."""
    chex.assert_rank(x, 3)
    batch, time = x.shape[:2]
    hs, _ = self.lstm(x.astype(self.dtype), self.lstm.zero_state(batch), None, train=train)
    last = jnp.full((batch,), time - 1) if mask is None else jnp.maximum(mask.sum(1) - 1, 0)
    h = jnp.take_along_axis(hs, last.astype(jnp.int32)[:, None, None], axis=1)[:, 0]
    return self._logit(h, train=train)


class ValueHead(nn.Module):
  """A learned baseline for REINFORCE: generator states [..., H] -> values [...].

  Reads the state that emits token t (it has seen the prefix y_<t only), so
  its prediction does not depend on the action y_t and subtracting it leaves
  the policy gradient unbiased."""
  hidden_size: int = 64

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    x = nn.relu(nn.Dense(self.hidden_size, name='hidden')(h.astype(jnp.float32)))
    return nn.Dense(1, name='value')(x)[..., 0]


class TransformerDiscriminator(nn.Module, _ReadsTokens):
  """A Transformer critic / classifier: token embeddings + positions, the shared
  pre-LN causal `TransformerBlock`s of `models.transformer`, a final LayerNorm, its
  state at the last real token (which has attended to the whole sentence), dropout,
  the output layer. Attention is causal, so with a mask the logits of a sentence
  never depend on the padding after it.

  Attributes as `LSTMDiscriminator`'s, except that hidden_size is the model width
  and also the embedding size (there is no emb_dim), plus num_heads, mlp_dim,
  positions ('learned' or 'sinusoidal') and max_positions (the learned table's
  length)."""
  vocab_size: int
  hidden_size: int = 128
  num_layers: int = 2
  num_heads: int = 4
  mlp_dim: int = 512
  positions: str = 'learned'
  max_positions: int = 512
  dropout: float = 0.1
  two_class: bool = False
  num_classes: int = 0
  dtype: Any = jnp.float32

  def setup(self):
    from jaxtextgen.models import transformer  # pylint: disable=g-import-not-at-top
    if self.positions not in transformer.POSITIONS:
      raise ValueError(f'positions={self.positions!r}: use one of {transformer.POSITIONS}')
    if self.hidden_size % self.num_heads:
      raise ValueError(f'hidden_size={self.hidden_size} does not divide by num_heads='
                       f'{self.num_heads}; pick sizes that divide')
    self.embedding = nn.Embed(self.vocab_size, self.hidden_size,
                              embedding_init=nn.initializers.normal(0.02))
    if self.positions == 'learned':
      self.pos_embedding = self.param('pos_embedding', nn.initializers.normal(0.02),
                                      (self.max_positions, self.hidden_size))
    self.blocks = [transformer.TransformerBlock(self.hidden_size, self.num_heads, self.mlp_dim,
                                                self.num_layers, self.dropout, dtype=self.dtype,
                                                name=f'block{l}')
                   for l in range(self.num_layers)]
    self.ln_f = transformer.ConditionalLayerNorm(dtype=self.dtype)
    self._setup_head()

  def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """inputs: int [batch, time] ids or float [batch, time, V] distributions -> logits [batch]
    ([batch, num_classes] with num_classes)."""
    return self.features(self._embed_inputs(inputs), mask=mask, train=train)

  def features(self, x: jax.Array, *, mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """x: float [batch, time, hidden_size] -> logits [batch] ([batch, num_classes])."""
    chex.assert_rank(x, 3)
    batch, time = x.shape[:2]
    if self.positions == 'learned':
      if time > self.max_positions:
        raise ValueError(f'sentences of {time} positions exceed the learned position table '
                         f'({self.max_positions}); raise config.model.max_positions')
      pos = self.pos_embedding[:time]
    else:
      from jaxtextgen.models.transformer import sinusoidal_positions  # pylint: disable=g-import-not-at-top
      pos = sinusoidal_positions(jnp.arange(time), self.hidden_size)
    h = self.drop(x.astype(self.dtype) + pos.astype(self.dtype)[None], deterministic=not train)
    for block in self.blocks:
      h = block(h, None, train=train)
    h = self.ln_f(h)
    last = jnp.full((batch,), time - 1) if mask is None else jnp.maximum(mask.sum(1) - 1, 0)
    h = jnp.take_along_axis(h, last.astype(jnp.int32)[:, None, None], axis=1)[:, 0]
    return self._logit(h, train=train)

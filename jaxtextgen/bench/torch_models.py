"""The library's models written the way a PyTorch user writes them.

Same sizes, same computation, PyTorch idioms: `nn.LSTM` (cuDNN on GPU,
oneDNN/ATen on CPU) over the whole sequence, a conditioning vector
concatenated to every input step, `nn.Conv1d` filters, and for the Transformer
`F.scaled_dot_product_attention`. `convert.py` loads a
Flax model's parameters into these, so the parity test can show the same
losses and gradients.

Layout differences that `convert.py` bridges:
  - Flax's LSTM keeps an input projection `layer{l}_x` (Dense, kernel [in, 4H],
    bias [4H]) and a recurrent matrix `layer{l}_h` [H, 4H] without a bias;
    `nn.LSTM` keeps weight_ih [4H, in], weight_hh [4H, H], bias_ih and bias_hh.
    Both order the gates i, f, g, o.
  - The Flax decoder adds z's contribution as a per-sentence gate bias
    (`cond_gates`, [Z, 4H]); here z is concatenated to every embedding, so those
    rows sit at the end of weight_ih's input columns.
  - The Flax LSTM has one gate bias; nn.LSTM's second one (bias_hh) is frozen at
    zero (`_one_bias`), so both train the same parameters and gradient clipping
    sees the same global norm.
  - Transformer: Flax Dense kernels [in, out] are nn.Linear weights [out, in]; the
    fused qkv projection orders its outputs (q|k|v, head, head_dim) in both;
    LayerNorm 'scale' is 'weight'. The twin has plain LayerNorms (no condition).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _one_bias(lstm: nn.LSTM) -> nn.LSTM:
  """Zero and freeze nn.LSTM's bias_hh: the library's LSTM has a single gate bias."""
  for name, p in lstm.named_parameters():
    if name.startswith('bias_hh'):
      nn.init.zeros_(p)
      p.requires_grad_(False)
  return lstm


class Decoder(nn.Module):
  """`models.lstm.LSTMDecoder`: embedding, dropout, nn.LSTM, dropout, vocabulary projection.

  With cond_dim > 0 (the VAE decoder), z [B, Z] initialises every layer's (h, c)
  through tanh(Linear(z)) and is concatenated to every input step.
  """

  def __init__(self, vocab_size: int, emb_dim: int, hidden_size: int, num_layers: int = 1,
               dropout: float = 0.0, cond_dim: int = 0):
    super().__init__()
    self.hidden_size, self.num_layers, self.cond_dim = hidden_size, num_layers, cond_dim
    self.embedding = nn.Embedding(vocab_size, emb_dim)
    self.lstm = _one_bias(nn.LSTM(emb_dim + cond_dim, hidden_size, num_layers, batch_first=True,
                                  dropout=dropout if num_layers > 1 else 0.0))
    self.drop = nn.Dropout(dropout)
    self.out = nn.Linear(hidden_size, vocab_size)
    self.cond_state = nn.Linear(cond_dim, 2 * hidden_size * num_layers) if cond_dim else None

  def initial_state(self, cond: torch.Tensor | None):
    """(h0, c0) each [L, B, H] from z, or None (zeros) without conditioning."""
    if cond is None:
      return None
    # The Flax decoder splits tanh(Dense(z)) into (c_0, h_0, c_1, h_1, ...).
    parts = torch.tanh(self.cond_state(cond)).view(cond.shape[0], self.num_layers, 2, -1)
    c0 = parts[:, :, 0].transpose(0, 1).contiguous()
    h0 = parts[:, :, 1].transpose(0, 1).contiguous()
    return h0, c0

  def _inputs(self, tokens: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """int ids [B, T] (or input embeddings [B, T, E]) -> the LSTM's inputs."""
    x = self.drop(tokens if tokens.is_floating_point() else self.embedding(tokens))
    if cond is not None:
      x = torch.cat([x, cond[:, None, :].expand(-1, x.shape[1], -1).to(x.dtype)], dim=-1)
    return x

  def forward(self, inputs: torch.Tensor, cond: torch.Tensor | None = None):
    """Teacher forcing: int64 [B, T] inputs -> logits [B, T, V]."""
    hs, _ = self.lstm(self._inputs(inputs, cond), self.initial_state(cond))
    return self.out(self.drop(hs))

  def step(self, tokens: torch.Tensor, state, cond: torch.Tensor | None = None):
    """One decoding step: int64 [B] tokens (or input embeddings [B, E], e.g. a soft
    token's expected embedding) -> (logits [B, V], new state)."""
    hs, state = self.lstm(self._inputs(tokens[:, None], cond), state)
    return self.out(self.drop(hs[:, 0])), state


class Encoder(nn.Module):
  """`models.latent.LatentEncoder` over `models.lstm.LSTMEncoder`: embedding, (bi-)LSTM
  read at each sentence's last real token, then the Gaussian head (mean, logvar)."""

  def __init__(self, vocab_size: int, emb_dim: int, hidden_size: int, latent_dim: int,
               bidirectional: bool = False, variational: bool = True):
    super().__init__()
    self.bidirectional = bidirectional
    self.embedding = nn.Embedding(vocab_size, emb_dim)
    self.lstm = _one_bias(nn.LSTM(emb_dim, hidden_size, batch_first=True,
                                  bidirectional=bidirectional))
    width = hidden_size * (2 if bidirectional else 1)
    self.mean = nn.Linear(width, latent_dim)
    self.logvar = nn.Linear(width, latent_dim) if variational else None

  def forward(self, tokens: torch.Tensor, mask: torch.Tensor):
    """tokens [B, T], mask [B, T] -> (mean [B, Z], logvar [B, Z] or None)."""
    x = self.embedding(tokens)
    lengths = mask.sum(1).long().clamp(min=1)
    if self.bidirectional:
      packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                 enforce_sorted=False)
      _, (h, _) = self.lstm(packed)
      summary = torch.cat([h[0], h[1]], dim=-1)
    else:
      hs, _ = self.lstm(x)
      summary = hs[torch.arange(hs.shape[0], device=hs.device), lengths - 1]
    logvar = self.logvar(summary) if self.logvar is not None else None
    return self.mean(summary), logvar


class CNNDiscriminator(nn.Module):
  """`models.discriminator.CNNDiscriminator` (SeqGAN's): embedding, one Conv1d per
  width, ReLU, max over time, highway, dropout, output -> one logit per sentence."""

  def __init__(self, vocab_size: int, emb_dim: int, filter_sizes, num_filters,
               dropout: float = 0.25, two_class: bool = True, highway_bias: float = 0.0):
    super().__init__()
    self.filter_sizes, self.two_class, self.highway_bias = tuple(filter_sizes), two_class, \
        highway_bias
    self.embedding = nn.Embedding(vocab_size, emb_dim)
    self.convs = nn.ModuleList(nn.Conv1d(emb_dim, n, k)
                               for k, n in zip(filter_sizes, num_filters))
    width = sum(num_filters)
    self.transform = nn.Linear(width, width)
    self.gate = nn.Linear(width, width)
    self.drop = nn.Dropout(dropout)
    self.output = nn.Linear(width, 2 if two_class else 1)

  def embed(self, inputs: torch.Tensor) -> torch.Tensor:
    """int [B, T] ids or float [B, T, V] distributions -> [B, T, E]."""
    if inputs.is_floating_point():
      return inputs @ self.embedding.weight
    return self.embedding(inputs)

  def forward(self, inputs: torch.Tensor) -> torch.Tensor:
    x = self.embed(inputs).transpose(1, 2)  # [B, E, T]
    widest = max(self.filter_sizes)
    if x.shape[2] < widest:
      x = F.pad(x, (0, widest - x.shape[2]))
    pooled = torch.cat([F.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=1)
    t = torch.sigmoid(self.gate(pooled) + self.highway_bias)
    pooled = t * F.relu(self.transform(pooled)) + (1.0 - t) * pooled
    scores = self.output(self.drop(pooled))
    return scores[:, 1] - scores[:, 0] if self.two_class else scores[:, 0]


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
  """`models.transformer.sinusoidal_positions` of 0..length-1: [length, width], sin in the
  first half of the features, cos in the second (a zero column when width is odd)."""
  half = width // 2
  freq = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / max(half, 1))
  angle = torch.arange(length, dtype=torch.float32)[:, None] * freq
  return F.pad(torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1), (0, width - 2 * half))


class TransformerBlock(nn.Module):
  """`models.transformer.TransformerBlock`: pre-LN, x + Drop(Attn(LN1(x))), then
  x + Drop(MLP(LN2(x))) with tanh-approximated GELU (flax's `nn.gelu` default); causal
  attention through F.scaled_dot_product_attention (flash / memory-efficient kernels)."""

  def __init__(self, hidden_size: int, num_heads: int, mlp_dim: int, dropout: float = 0.0):
    super().__init__()
    self.num_heads = num_heads
    self.ln1 = nn.LayerNorm(hidden_size, eps=1e-6)
    self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
    self.attn_out = nn.Linear(hidden_size, hidden_size)
    self.ln2 = nn.LayerNorm(hidden_size, eps=1e-6)
    self.mlp_in = nn.Linear(hidden_size, mlp_dim)
    self.mlp_out = nn.Linear(mlp_dim, hidden_size)
    self.drop = nn.Dropout(dropout)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """x [B, T, H] -> [B, T, H]."""
    b, t, h = x.shape
    # The fused projection's features are (q|k|v, head, head_dim), as in the Flax block.
    qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.num_heads, h // self.num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, T, head_dim]
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + self.drop(self.attn_out(a.transpose(1, 2).reshape(b, t, h)))
    y = self.mlp_out(F.gelu(self.mlp_in(self.ln2(x)), approximate='tanh'))
    return x + self.drop(y)


class TransformerLM(nn.Module):
  """`models.transformer.TransformerDecoder` without a condition (plain LayerNorms): token
  embedding + positions (a learned table or fixed sinusoids), dropout, pre-LN blocks, a
  final LayerNorm, an untied output layer."""

  def __init__(self, vocab_size: int, hidden_size: int, num_layers: int, num_heads: int,
               mlp_dim: int, dropout: float = 0.0, positions: str = 'learned',
               max_positions: int = 512):
    super().__init__()
    self.embedding = nn.Embedding(vocab_size, hidden_size)
    self.learned = positions == 'learned'
    if self.learned:
      self.pos_embedding = nn.Parameter(0.02 * torch.randn(max_positions, hidden_size))
    else:
      self.register_buffer('sinusoids', sinusoidal_positions(max_positions, hidden_size),
                           persistent=False)
    self.drop = nn.Dropout(dropout)
    self.blocks = nn.ModuleList(TransformerBlock(hidden_size, num_heads, mlp_dim, dropout)
                                for _ in range(num_layers))
    self.ln_f = nn.LayerNorm(hidden_size, eps=1e-6)
    self.out = nn.Linear(hidden_size, vocab_size)

  def forward(self, inputs: torch.Tensor) -> torch.Tensor:
    """Teacher forcing: int64 [B, T] inputs -> logits [B, T, V]."""
    t = inputs.shape[1]
    pos = self.pos_embedding[:t] if self.learned else self.sinusoids[:t]
    x = self.drop(self.embedding(inputs) + pos)
    for block in self.blocks:
      x = block(x)
    return self.out(self.ln_f(x))

"""Data-to-text: records -> text with content selection, planning, attention and copy.

`D2TModel` is Puduppully et al. (2019, "Data-to-text generation with content selection
and planning"), or with `planner=False` the ablation they compare against: an
encoder-decoder with attention and copy over the linearised records. It implements the
decoder protocol (`models.decoder`), so the shared sampler and beam search drive it; its
condition `cond` is the encoded source (`encode`), a dict of arrays with a leading batch
axis:

    keys    [batch, M, H]  one memory slot per source token (attention and copy)
    mask    [batch, M]     1 on slots the decoder may attend to and copy from
    ext     [batch, M]     each slot's word in extended ids (V + i: the entry's i-th word
                           outside the vocabulary), what copying it emits
    summary [batch, H]     the decoder's initial state comes from it

Source layout (`data.d2t.encode`): the records' field tokens, linearised in input order,
`src_tokens` / `src_ext` / `src_field` / `src_record` / `src_mask`, all [batch, L].

With the planner (Puduppully et al. 2019, section 3):
  record encoder     r_j = ReLU(W [f_j,1; ...; f_j,K]), f_j,k the mean embedding of field
                     k's tokens plus a field-type embedding;
  content selection  a_j = sum_k softmax_k(r_j^T W_a r_k) r_k,
                     r^cs_j = sigmoid(W_g [r_j; a_j]) * r_j;
  content planner    a pointer network (LSTM) over {r^cs_j} and a learned stop vector; a
                     record already in the plan cannot be chosen again;
  plan encoder       a bi-LSTM over r^cs in plan order, e_k;
  text decoder       an LSTM whose attention and copy read the source tokens of planned
                     records only, each keyed by [token; field; e of its record's plan slot]
                     (unplanned records are not verbalised: content selection).
Without it: a bi-LSTM over [token; field] embeddings of the linearised records.

The text decoder is Luong-style: LSTM state h_t from the previous word, attention
over the memory, o_t = tanh(W [h_t; c_t]), and the output distribution over the vocabulary
extended by the entry's OOV words:
  copy='joint'        one softmax over [o_t W_v (V words); o_t W_c keys (M slots)], the
                      slots' mass added to their words (Gu et al. 2016);
  copy='conditional'  p = s_t softmax(o_t W_v) + (1 - s_t) attention scattered to the
                      slots' words, s_t = sigmoid(w [h_t; c_t; x_t]) (Gulcehre et al. 2016).
Both are distributions over V + max_oov ids (tested to sum to 1); `step` returns their log.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.models.lstm import LSTMLayers, _lstm_cell, _reverse_within_length

COPIES = ('joint', 'conditional')
_NEG = -1e9
_FLOOR = 1e-30  # probabilities are floored here before the log


def _masked_softmax_logits(logits, mask):
  return jnp.where(mask > 0, logits, _NEG)


class D2TModel(nn.Module):
  """Attributes: vocab_size (V + max_oov, the extended output space), base_vocab (V),
  unk_id, num_fields (K), max_records (R), emb_dim, hidden_size, dropout, planner, copy."""
  vocab_size: int
  base_vocab: int
  unk_id: int
  num_fields: int
  max_records: int
  emb_dim: int = 256
  hidden_size: int = 256
  dropout: float = 0.0
  planner: bool = True
  copy: str = 'joint'
  dtype: Any = jnp.float32

  def setup(self):
    h = self.hidden_size
    self.embedding = nn.Embed(self.base_vocab, self.emb_dim,
                              embedding_init=nn.initializers.normal(0.1))
    self.field_embedding = nn.Embed(self.num_fields + 1, self.emb_dim)
    self.drop = nn.Dropout(self.dropout)
    if self.planner:
      self.record_mlp = nn.Dense(h)
      self.cs_bilinear = nn.Dense(h, use_bias=False)
      self.cs_gate = nn.Dense(h)
      self.plan_lstm = LSTMLayers(h)
      self.plan_start = self.param('plan_start', nn.initializers.normal(0.1), (h,))
      self.plan_stop = self.param('plan_stop', nn.initializers.normal(0.1), (h,))
      self.plan_init = nn.Dense(2 * h)
      self.plan_query = self.param('plan_query', nn.initializers.lecun_normal(), (h, h))
      self.plan_fwd = LSTMLayers(h // 2)
      self.plan_bwd = LSTMLayers(h - h // 2)
    else:
      self.src_fwd = LSTMLayers(h // 2)
      self.src_bwd = LSTMLayers(h - h // 2)
    self.memory_proj = nn.Dense(h)
    self.dec_init = nn.Dense(2 * h)
    self.dec_lstm = LSTMLayers(h)
    self.attn = nn.Dense(h, use_bias=False)
    self.combine = nn.Dense(h)
    self.out = nn.Dense(self.base_vocab)
    if self.copy == 'joint':
      self.copy_query = nn.Dense(h, use_bias=False)
    elif self.copy == 'conditional':
      self.switch = nn.Dense(1)
    else:
      raise ValueError(f'config.d2t.copy={self.copy!r}: use one of {COPIES}')

  # --- source side ----------------------------------------------------------------------
  def _token_features(self, src, train):
    x = jnp.concatenate([self.embed(src['src_tokens']),
                         self.field_embedding(src['src_field']).astype(self.dtype)], -1)
    return self.drop(x, deterministic=not train)

  def _bilstm(self, fwd, bwd, x, mask):
    b, mask = x.shape[0], mask > 0
    hf, _ = fwd(x, fwd.zero_state(b), None, train=False)
    hb, _ = bwd(_reverse_within_length(x, mask), bwd.zero_state(b), None, train=False)
    return jnp.concatenate([hf, _reverse_within_length(hb, mask)], -1)

  def records(self, src, *, train: bool = False, x=None):
    """r^cs [batch, R, H]: records encoded and gated by content selection; `x`: the source
    token features when the caller already has them."""
    x = self._token_features(src, train) if x is None else x
    seg = src['src_record'] * self.num_fields + jnp.minimum(src['src_field'], self.num_fields - 1)
    onehot = jax.nn.one_hot(seg, self.max_records * self.num_fields) * src['src_mask'][..., None]
    sums = jnp.einsum('blr,ble->bre', onehot, x)
    fields = sums / jnp.maximum(onehot.sum(1), 1.0)[..., None]
    b = x.shape[0]
    r = nn.relu(self.record_mlp(fields.reshape(b, self.max_records, -1)))
    scores = jnp.einsum('bjh,bkh->bjk', self.cs_bilinear(r), r)
    scores = _masked_softmax_logits(scores, src['rec_mask'][:, None, :])
    ctx = jax.nn.softmax(scores, -1) @ r
    return jax.nn.sigmoid(self.cs_gate(jnp.concatenate([r, ctx], -1))) * r

  def _candidates(self, rcs, rec_mask):
    b = rcs.shape[0]
    cand = jnp.concatenate([rcs, jnp.broadcast_to(self.plan_stop, (b, 1, rcs.shape[-1]))], 1)
    return cand, jnp.concatenate([rec_mask, jnp.ones((b, 1), rec_mask.dtype)], 1)

  def _plan_state(self, rcs, rec_mask):
    mean = (rcs * rec_mask[..., None]).sum(1) / jnp.maximum(rec_mask.sum(1), 1)[:, None]
    c, h = jnp.split(jnp.tanh(self.plan_init(mean)), 2, -1)
    return ((c, h),)

  def plan_logits(self, rcs, rec_mask, plan):
    """Teacher-forced pointer logits [batch, R + 1, R + 1] of the oracle `plan`
    ([batch, R + 1] record indices, then the stop pointer R): step p scores every
    record and stop given plan[:, :p]; records already chosen and absent are masked."""
    b, big_r = plan.shape[0], self.max_records
    cand, cand_mask = self._candidates(rcs, rec_mask)
    prev = jnp.take_along_axis(cand, plan[:, :-1, None], 1)
    inputs = jnp.concatenate([jnp.broadcast_to(self.plan_start, (b, 1, cand.shape[-1])), prev], 1)
    h, _ = self.plan_lstm(inputs, self._plan_state(rcs, rec_mask), None, train=False)
    logits = jnp.einsum('bph,bjh->bpj', h @ self.plan_query, cand)
    chosen = jax.nn.one_hot(plan, big_r + 1)                         # [b, P, R+1]
    before = jnp.cumsum(chosen, 1) - chosen
    allowed = cand_mask[:, None, :] * (before == 0)
    allowed = allowed.at[:, :, big_r].set(1.0)
    return _masked_softmax_logits(logits, allowed)

  def decode_plan(self, rcs, rec_mask):
    """Greedy pointer decoding: (plan int32 [batch, R + 1], record indices then R (stop)
    repeated; plan_len int32 [batch], records before the stop, at least one when the entry
    has records). The LSTM's input
    projections and the pointer's keys are computed once, so the scan is plain JAX."""
    b, big_r = rcs.shape[0], self.max_records
    cand, cand_mask = self._candidates(rcs, rec_mask)
    w_x, w_h = self.plan_lstm.w_x[0], self.plan_lstm.w_h[0]
    gx_cand = w_x(cand)                                   # [b, R+1, 4H]
    gx_start = jnp.broadcast_to(w_x(self.plan_start), (b, gx_cand.shape[-1]))
    keys = jnp.einsum('bjo,io->bji', cand, self.plan_query)   # logits = h . keys_j

    def body(carry, _):
      (c, h), gx, used, done = carry
      c, h, _ = _lstm_cell(gx, c, h, w_h)
      logits = jnp.einsum('bi,bji->bj', h, keys)
      # stop only after a record (when there is one): a plan is never empty
      can_stop = (used.sum(1) > 0) | (cand_mask[:, :big_r].sum(1) == 0)
      allowed = (cand_mask * (1 - used)).at[:, big_r].set(can_stop.astype(cand_mask.dtype))
      choice = jnp.argmax(_masked_softmax_logits(logits, allowed), -1)
      choice = jnp.where(done, big_r, choice)
      done = done | (choice == big_r)
      used = used + jax.nn.one_hot(choice, big_r + 1) * (choice != big_r)[:, None]
      gx = jnp.take_along_axis(gx_cand, choice[:, None, None], 1)[:, 0]
      return ((c, h), gx, used, done), choice

    init = (self._plan_state(rcs, rec_mask)[0], gx_start, jnp.zeros((b, big_r + 1)),
            jnp.zeros((b,), bool))
    _, plan = jax.lax.scan(body, init, None, length=big_r + 1)
    plan = jnp.swapaxes(plan, 0, 1).astype(jnp.int32)
    return plan, jnp.argmax(plan == big_r, 1).astype(jnp.int32)

  def encode(self, src, plan=None, *, train: bool = False, rcs=None):
    """The decoder's `cond` (module docstring) from the source fields; with the planner,
    `plan` int [batch, R + 1] (oracle at training, `decode_plan`'s at inference) and
    `rcs`, the caller's `records` (computed here when None)."""
    x = self._token_features(src, train)
    mask = src['src_mask']
    if self.planner:
      rcs = self.records(src, train=train, x=x) if rcs is None else rcs
      big_r = self.max_records
      in_plan = (plan < big_r) & (jnp.cumsum(plan == big_r, 1) == 0)
      order = jnp.where(in_plan, plan, 0)
      enc = self._bilstm(self.plan_fwd, self.plan_bwd,
                         jnp.take_along_axis(rcs, order[..., None], 1), in_plan)
      # slot of each record in the plan (its first one), -1 when unplanned
      slot = jnp.full(plan.shape[:1] + (big_r + 1,), -1, jnp.int32)
      pos = jnp.broadcast_to(jnp.arange(plan.shape[1]), plan.shape)
      slot = slot.at[jnp.arange(plan.shape[0])[:, None], jnp.where(in_plan, plan, big_r)].max(
          jnp.where(in_plan, pos, -1))[:, :big_r]
      tok_slot = jnp.take_along_axis(slot, src['src_record'], 1)
      rec_enc = jnp.take_along_axis(enc, jnp.maximum(tok_slot, 0)[..., None], 1)
      mask = mask * (tok_slot >= 0)
      keys = self.memory_proj(jnp.concatenate([x, rec_enc], -1))
      w = in_plan.astype(jnp.float32)
      summary = (enc * w[..., None]).sum(1) / jnp.maximum(w.sum(1), 1)[:, None]
    else:
      enc = self._bilstm(self.src_fwd, self.src_bwd, x, mask)
      keys = self.memory_proj(jnp.concatenate([x, enc], -1))
      summary = (enc * mask[..., None]).sum(1) / jnp.maximum(mask.sum(1), 1)[:, None]
    return {'keys': jnp.tanh(keys), 'mask': mask.astype(jnp.float32), 'ext': src['src_ext'],
            'summary': summary}

  # --- the decoder protocol ---------------------------------------------------------------
  def embed(self, tokens):
    """Extended ids (copied OOV words read as UNK) -> embeddings [..., E]."""
    tokens = jnp.where(tokens >= self.base_vocab, self.unk_id, tokens)
    return self.embedding(tokens).astype(self.dtype)

  def embed_soft(self, probs):
    table = self.embedding.embedding.astype(self.dtype)
    base = probs[..., :self.base_vocab].astype(self.dtype) @ table
    return base + probs[..., self.base_vocab:].sum(-1, keepdims=True) * table[self.unk_id]

  def init_cache(self, batch: int, cond=None, length: int = 0):
    del length
    if cond is None:
      return self.dec_lstm.zero_state(batch)
    c, h = jnp.split(jnp.tanh(self.dec_init(cond['summary'])), 2, -1)
    return ((c, h),)

  def _outputs(self, h, x, cond, train):
    """Per position: (log p over the vocabulary part, log p of each memory slot being
    copied), [..., V] and [..., M], whose exps together sum to 1."""
    keys, mask = cond['keys'], cond['mask']
    lead = h.ndim - 2  # 0 for a step [b, H], 1 for teacher forcing [b, T, H]
    expand = (lambda a: a[:, None]) if lead else (lambda a: a)
    scores = jnp.einsum('b...h,bmh->b...m', self.attn(h), keys)
    scores = _masked_softmax_logits(scores, expand(mask))
    attn = jax.nn.softmax(scores, -1)
    ctx = jnp.einsum('b...m,bmh->b...h', attn, keys)
    o = jnp.tanh(self.combine(jnp.concatenate([h, ctx], -1)))
    o = self.drop(o, deterministic=not train)
    vocab_logits = self.out(o).astype(jnp.float32)
    if self.copy == 'joint':
      copy_logits = jnp.einsum('b...h,bmh->b...m', self.copy_query(o), keys).astype(jnp.float32)
      copy_logits = _masked_softmax_logits(copy_logits, expand(mask))
      z = jax.nn.logsumexp(jnp.concatenate([vocab_logits, copy_logits], -1), -1, keepdims=True)
      return vocab_logits - z, copy_logits - z
    s = self.switch(jnp.concatenate([h, ctx, x], -1)).astype(jnp.float32)
    return (jax.nn.log_softmax(vocab_logits) + jax.nn.log_sigmoid(s),
            jnp.log(jnp.maximum(attn.astype(jnp.float32), _FLOOR)) + jax.nn.log_sigmoid(-s))

  def _full(self, log_vocab, log_copy, ext):
    """log p over the extended vocabulary [..., V + X] from `_outputs`: the vocabulary
    part, plus each slot's copy mass added to its word."""
    p = jnp.pad(jnp.exp(log_vocab), [(0, 0)] * (log_vocab.ndim - 1)
                + [(0, self.vocab_size - self.base_vocab)])
    b = jnp.arange(ext.shape[0])
    if log_copy.ndim == 2:  # one step [batch, M]
      p = p.at[b[:, None], ext].add(jnp.exp(log_copy))
    else:                   # teacher forcing [batch, T, M]
      t = jnp.arange(log_copy.shape[1])
      p = p.at[b[:, None, None], t[None, :, None], ext[:, None, :]].add(jnp.exp(log_copy))
    return jnp.log(jnp.maximum(p, _FLOOR))

  def _hidden(self, inputs, cond, train):
    x = self.drop(self.embed(inputs), deterministic=not train)
    state = self.init_cache(inputs.shape[0], cond)
    h, _ = self.dec_lstm(x, state, None, train=train)
    return h, x

  def step(self, inputs, cache, cond=None, *, train: bool = False):
    x = self.embed(inputs) if inputs.ndim == 1 else inputs.astype(self.dtype)
    x = self.drop(x, deterministic=not train)
    h, cache = self.dec_lstm.step(x, cache, None, train=train)
    log_vocab, log_copy = self._outputs(h, x, cond, train)
    return self._full(log_vocab, log_copy, cond['ext']), cache

  def __call__(self, inputs, cond=None, *, train: bool = False, soft_inputs: bool = False,
               return_hidden: bool = False):
    """Teacher forcing: log p over the extended vocabulary [batch, T, V + X]."""
    del soft_inputs
    h, x = self._hidden(inputs, cond, train)
    out = self._full(*self._outputs(h, x, cond, train), cond['ext'])
    return (out, h) if return_hidden else out

  def token_nll(self, inputs, targets, cond=None, *, train: bool = False,
                soft_inputs: bool = False, return_hidden: bool = False):
    """-log p(targets) [batch, T] under the copy distribution, without materialising it:
    the vocabulary term (targets < V) and every slot whose word is the target."""
    del soft_inputs
    h, x = self._hidden(inputs, cond, train)
    log_vocab, log_copy = self._outputs(h, x, cond, train)
    in_vocab = targets < self.base_vocab
    lv = jnp.take_along_axis(log_vocab, jnp.where(in_vocab, targets, 0)[..., None], -1)[..., 0]
    lv = jnp.where(in_vocab, lv, -jnp.inf)
    hit = cond['ext'][:, None, :] == targets[..., None]
    lc = jax.nn.logsumexp(jnp.where(hit, log_copy, -jnp.inf), -1)
    nll = -jnp.logaddexp(lv, lc)
    nll = jnp.minimum(nll, -np.log(_FLOOR))  # a target neither generable nor copyable
    return (nll, h) if return_hidden else nll

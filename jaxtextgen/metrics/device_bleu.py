"""Corpus BLEU of reconstructions, counted on device from token ids.

Definition: corpus BLEU-n (Papineni et al. 2002) with one reference per
hypothesis, as sacrebleu computes it on pre-tokenised text
(`sacrebleu.corpus_bleu(hyps, [refs], tokenize='none', smooth_method='none')`,
reported here in [0, 1], not x100): clipped n-gram matches and n-gram
totals (max(0, L - n + 1) per hypothesis) are summed over the corpus,
p_n = matches_n / totals_n, BP = exp(min(0, 1 - ref_len / hyp_len)) on the
summed lengths, BLEU = BP * exp(mean_n log p_n), and 0 when some p_n is 0.

Every statistic is a sum over sentences, so an eval step returns them for its
batch and the sums over the split give the exact corpus BLEU; no text leaves
the device.

`sentence_bleu` is the per-row counterpart: each hypothesis against its own
1..R references, with nltk's sentence BLEU definition (see its docstring).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _shift(x: jax.Array, s: int) -> jax.Array:
  """x[:, i + s, j + s] at [:, i, j] (False past the end): [b, t, t] -> [b, t, t]."""
  if s == 0:
    return x
  return jnp.pad(x[:, s:, s:], ((0, 0), (0, s), (0, s)))


def _shift_rect(x: jax.Array, s: int) -> jax.Array:
  """x[..., i + s, j + s] at [..., i, j] (False past the end): [..., t, t2] -> [..., t, t2]."""
  if s == 0:
    return x
  t, t2 = x.shape[-2:]
  if s >= t or s >= t2:
    return jnp.zeros_like(x)
  pad = [(0, 0)] * (x.ndim - 2) + [(0, s), (0, s)]
  return jnp.pad(x[..., s:, s:], pad)


def bleu_stats(hyp: jax.Array, hyp_len: jax.Array, ref: jax.Array, ref_len: jax.Array,
               max_n: int = 4) -> dict[str, jax.Array]:
  """Sums over the batch of the BLEU statistics.

  Args:
    hyp: int [batch, T] hypothesis tokens; only the first hyp_len count.
    hyp_len: int [batch] hypothesis lengths (0 for padding rows).
    ref: int [batch, T] reference tokens (same T); only the first ref_len count.
    ref_len: int [batch] reference lengths.
    max_n: the largest n-gram order (static).

  Returns:
    {'bleu_hyp_len', 'bleu_ref_len', 'bleu_match_{n}', 'bleu_total_{n}' for n = 1..max_n},
    float32 scalars.
  """
  t = hyp.shape[1]
  pos = jnp.arange(t)[None, :]
  eq_hr1 = hyp[:, :, None] == ref[:, None, :]
  eq_hh1 = hyp[:, :, None] == hyp[:, None, :]
  eq_hr, eq_hh = eq_hr1, eq_hh1
  out = {'bleu_hyp_len': hyp_len.sum().astype(jnp.float32),
         'bleu_ref_len': ref_len.sum().astype(jnp.float32)}
  for n in range(1, max_n + 1):
    if n > 1:  # n-gram equality at (i, j): (n-1)-gram equality and the n-th tokens equal
      eq_hr = eq_hr & _shift(eq_hr1, n - 1)
      eq_hh = eq_hh & _shift(eq_hh1, n - 1)
    h_ok = pos + n <= hyp_len[:, None]  # an n-gram starts at i
    r_ok = pos + n <= ref_len[:, None]
    count_h = (eq_hh & h_ok[:, None, :]).sum(-1)
    count_r = (eq_hr & r_ok[:, None, :]).sum(-1)
    # Each distinct n-gram g adds min(count_h(g), count_r(g)); spread over its
    # count_h(g) occurrences in the hypothesis, that is a sum over positions.
    share = jnp.minimum(count_h, count_r) / jnp.maximum(count_h, 1)
    matches = jnp.round(jnp.where(h_ok, share, 0.0).sum(-1))
    out[f'bleu_match_{n}'] = matches.sum().astype(jnp.float32)
    out[f'bleu_total_{n}'] = jnp.maximum(hyp_len - n + 1, 0).sum().astype(jnp.float32)
  return out


def corpus_bleu(sums: dict, max_n: int = 4) -> float:
  """BLEU in [0, 1] from `bleu_stats` summed over a corpus (module docstring)."""
  c, r = sums['bleu_hyp_len'], sums['bleu_ref_len']
  if c == 0:
    return 0.0
  log_p = []
  for n in range(1, max_n + 1):
    m, total = sums[f'bleu_match_{n}'], sums[f'bleu_total_{n}']
    if m == 0 or total == 0:
      return 0.0
    log_p.append(math.log(m / total))
  return math.exp(min(0.0, 1.0 - r / c) + sum(log_p) / max_n)


def sentence_bleu(hyp: jax.Array, hyp_len: jax.Array, refs: jax.Array, ref_len: jax.Array,
                  max_n: int = 4, smooth: bool = True) -> jax.Array:
  """Sentence BLEU of each hypothesis against its own references.

  Definition (nltk `sentence_bleu(references, hypothesis,
  weights=(1/max_n,) * max_n, smoothing_function=...)` with
  `SmoothingFunction().method2` when smooth, no smoothing otherwise), per row:
  m_n = sum over distinct n-grams g of the hypothesis of
  min(count_hyp(g), max over the row's references r of count_r(g));
  t_n = max(0, hyp_len - n + 1); p_1 = m_1 / max(1, t_1) and, for n >= 2,
  p_n = m_n / max(1, t_n), or (m_n + 1) / (max(1, t_n) + 1) when smooth
  (method2: add one to numerator and denominator of every order but the first);
  r = the length of the present reference closest to hyp_len (ties: the shorter);
  BP = 1 if hyp_len > r, 0 if hyp_len == 0, else exp(1 - r / hyp_len);
  BLEU = BP * exp(mean_n log p_n), and 0 when m_1 == 0 or (not smooth) when
  some m_n == 0 (nltk's method0 then gives a value below 1e-70).

  Args:
    hyp: int [batch, T] hypothesis tokens; only the first hyp_len (<= T) count.
    hyp_len: int [batch] hypothesis lengths.
    refs: int [batch, R, T2] R references per row (any T2); only the first
      ref_len count.
    ref_len: int [batch, R] reference lengths, 0 for an absent reference; a row
      needs >= 1 reference with length > 0.
    max_n: the largest n-gram order (static).
    smooth: nltk's method2 smoothing (static).

  Returns:
    float32 [batch] BLEU in [0, 1]; row i depends only on row i of the inputs.
  """
  t, t2 = hyp.shape[1], refs.shape[2]
  hyp_len = hyp_len.astype(jnp.int32)
  ref_len = ref_len.astype(jnp.int32)
  pos_h = jnp.arange(t)[None, :]  # [1, T]
  pos_r = jnp.arange(t2)[None, None, :]  # [1, 1, T2]
  eq_hh1 = hyp[:, :, None] == hyp[:, None, :]  # [b, T, T]
  eq_hr1 = hyp[:, None, :, None] == refs[:, :, None, :]  # [b, R, T, T2]
  eq_hh, eq_hr = eq_hh1, eq_hr1
  log_p, zero = [], hyp_len <= 0
  for n in range(1, max_n + 1):
    if n > 1:  # n-gram equality at (i, j): (n-1)-gram equality and the n-th tokens equal
      eq_hh = eq_hh & _shift_rect(eq_hh1, n - 1)
      eq_hr = eq_hr & _shift_rect(eq_hr1, n - 1)
    h_ok = pos_h + n <= hyp_len[:, None]  # [b, T]: an n-gram starts at i
    r_ok = pos_r + n <= ref_len[:, :, None]  # [b, R, T2]
    count_h = (eq_hh & h_ok[:, None, :]).sum(-1)  # [b, T]
    count_r = (eq_hr & r_ok[:, :, None, :]).sum(-1).max(1)  # [b, T]: max over references
    # Each distinct n-gram g adds min(count_h(g), max_r count_r(g)); spread over
    # its count_h(g) occurrences in the hypothesis, that is a sum over positions.
    share = jnp.minimum(count_h, count_r) / jnp.maximum(count_h, 1)
    matches = jnp.round(jnp.where(h_ok, share, 0.0).sum(-1))  # [b]
    denom = jnp.maximum(hyp_len - n + 1, 1).astype(jnp.float32)
    if smooth and n > 1:
      matches, denom = matches + 1.0, denom + 1.0
    if n == 1 or not smooth:
      zero = zero | (matches == 0)
    log_p.append(jnp.log(jnp.maximum(matches, 1.0) / denom))
  # Closest present reference length; ties go to the shorter one.
  present = ref_len > 0
  big = jnp.iinfo(jnp.int32).max
  dist = jnp.where(present, jnp.abs(ref_len - hyp_len[:, None]), big)
  best = dist == dist.min(-1, keepdims=True)
  r = jnp.where(present & best, ref_len, big).min(-1).astype(jnp.float32)
  c = hyp_len.astype(jnp.float32)
  log_bp = jnp.where(c > r, 0.0, 1.0 - r / jnp.maximum(c, 1.0))
  bleu = jnp.exp(log_bp + sum(log_p) / max_n)
  return jnp.where(zero, 0.0, bleu).astype(jnp.float32)

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

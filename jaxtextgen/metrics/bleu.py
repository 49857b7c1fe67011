"""BLEU, Self-BLEU and distinct-n for text-GAN evaluation (Texygen / RelGAN /
TextGAN-PyTorch convention), computed exactly but fast.

Definition (the single source of truth for this library)
---------------------------------------------------------
``BLEU-n`` of a set of hypotheses against a reference set ``R`` is the mean over
hypotheses ``h`` of::

    nltk.translate.bleu_score.sentence_bleu(
        R, h, weights=(1/n,)*n, smoothing_function=SmoothingFunction().method1)

i.e. every hypothesis is scored against the FULL reference set.  For one
hypothesis ``h`` of length ``L`` (nltk 3.x semantics, mirrored exactly):

* ``m_k`` (k=1..n) = sum over distinct k-grams ``g`` of ``h`` of
  ``min(count_h(g), max_{r in R} count_r(g))``; ``d_k = max(1, L-k+1)``
  (so a hypothesis shorter than k has ``m_k = 0, d_k = 1``).
* If ``m_1 == 0`` (incl. an empty hypothesis) the score is ``0``.
* Otherwise ``p_k = m_k / d_k`` and, for orders with ``m_k == 0``, method1 uses
  ``p_k = 0.1 / d_k`` (epsilon 0.1 added to the numerator).
* Brevity penalty: ``c`` = the reference length closest to ``L``, ties to the
  shorter; ``BP = 1`` if ``L > c`` else ``exp(1 - c/L)``.
* ``score = BP * exp(fsum(1/n * log(p_k) for k=1..n))``.

Speed: :class:`BleuReference` precomputes once per reference set, for every
order ``k <= max_n``, the clipping table ``g -> max_r count_r(g)`` and the
sorted reference lengths (closest length by bisect), so a hypothesis costs
O(len(h) * n) instead of O(|R| * total reference length).

Self-BLEU-n scores each sample against all OTHER samples: the sample itself is
never a reference, but other samples that are identical to it DO count (so a
sample set with duplicates gets a higher Self-BLEU, as it should).  The table
keeps, per n-gram, the top two counts and which sample holds the top one, so
excluding a sample is O(1) per n-gram; the length multiset excludes one
occurrence of the sample's own length.

Tokenisation: inputs are sequences of string tokens.  The corpora used here are
pre-tokenised (space separated), so :func:`tokenize_for_bleu` is simply
``line.split()``.  Texygen applied ``nltk.word_tokenize`` to its (also
pre-tokenised) files; on such text the two mostly agree, but ``word_tokenize``
splits e.g. trailing punctuation / contractions attached to words, so scores on
raw untokenised text are not comparable across the two.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from typing import Callable, Sequence

__all__ = ["BleuReference", "bleu", "self_bleu", "distinct_n", "tokenize_for_bleu"]

_EPSILON = 0.1  # nltk SmoothingFunction().method1 default


def tokenize_for_bleu(line: str) -> list[str]:
  """Whitespace tokenisation (corpora here are pre-tokenised; see module doc)."""
  return line.split()


def _as_tokens(seq: Sequence[str]) -> tuple:
  if isinstance(seq, str):
    raise TypeError("expected a sequence of tokens, got a str; tokenize it first "
                    "(e.g. tokenize_for_bleu(line))")
  return tuple(seq)


def _ngram_counts(tokens: tuple, k: int) -> Counter:
  if len(tokens) < k:
    return Counter()
  return Counter(zip(*[tokens[i:] for i in range(k)]))


def _check_n(n: int, max_n: int) -> None:
  if not isinstance(n, int) or n < 1 or n > max_n:
    raise ValueError(f"n must be an int in [1, {max_n}], got {n!r}")


class _Lengths:
  """Multiset of reference lengths; closest length (ties -> shorter) by bisect,
  optionally excluding one occurrence of one length."""

  def __init__(self, lengths: Sequence[int]):
    self.counts = Counter(lengths)
    self.uniq = sorted(self.counts)

  def closest(self, hyp_len: int, exclude: int | None = None) -> int:
    uniq, counts = self.uniq, self.counts

    def avail(v: int) -> bool:
      return counts[v] - (v == exclude) > 0

    k = bisect_right(uniq, hyp_len) - 1          # largest <= hyp_len
    while k >= 0 and not avail(uniq[k]):
      k -= 1
    j = bisect_right(uniq, hyp_len)              # smallest > hyp_len
    while j < len(uniq) and not avail(uniq[j]):
      j += 1
    lo = uniq[k] if k >= 0 else None
    hi = uniq[j] if j < len(uniq) else None
    if lo is None and hi is None:
      raise ValueError("BLEU needs at least one reference")
    if hi is None or (lo is not None and hyp_len - lo <= hi - hyp_len):
      return lo
    return hi


def _combine(hyp_len: int, matches: Sequence[int], n: int, ref_len: int) -> float:
  """nltk's corpus_bleu arithmetic for one hypothesis (same float ops, same order)."""
  if matches[0] == 0:
    return 0.0
  w = 1 / n
  logs = []
  for k in range(1, n + 1):
    m, d = matches[k - 1], max(1, hyp_len - k + 1)
    p = m / d if m != 0 else (m + _EPSILON) / d
    logs.append(w * math.log(p))
  bp = 1 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
  return bp * math.exp(math.fsum(logs))


def _matches(hyp: tuple, n: int, clip: Callable[[int, tuple], int]) -> list[int]:
  return [sum(min(c, clip(k, g)) for g, c in _ngram_counts(hyp, k).items())
          for k in range(1, n + 1)]


class BleuReference:
  """A reference set with precomputed clipping tables; build once, reuse.

  ``sentence_bleu(h, n)`` equals nltk ``sentence_bleu(references, h,
  (1/n,)*n, method1)`` (see module docstring); ``bleu(hs, n)`` is its mean.
  """

  def __init__(self, references: Sequence[Sequence[str]], max_n: int = 5):
    refs = [_as_tokens(r) for r in references]
    if not refs:
      raise ValueError("BLEU needs at least one reference")
    if max_n < 1:
      raise ValueError("max_n must be >= 1")
    self.max_n = max_n
    self.num_references = len(refs)
    self.max_counts: list[dict] = []
    for k in range(1, max_n + 1):
      table: dict = {}
      for r in refs:
        for g, c in _ngram_counts(r, k).items():
          if c > table.get(g, 0):
            table[g] = c
      self.max_counts.append(table)
    self._lengths = _Lengths([len(r) for r in refs])

  def closest_ref_length(self, hyp_len: int) -> int:
    return self._lengths.closest(hyp_len)

  def sentence_bleu(self, hypothesis: Sequence[str], n: int) -> float:
    _check_n(n, self.max_n)
    hyp = _as_tokens(hypothesis)
    tabs = self.max_counts
    m = _matches(hyp, n, lambda k, g: tabs[k - 1].get(g, 0))
    if m[0] == 0:
      return 0.0
    return _combine(len(hyp), m, n, self._lengths.closest(len(hyp)))

  def bleu(self, hypotheses: Sequence[Sequence[str]], n: int) -> float:
    """Mean sentence BLEU-n over ``hypotheses`` (each vs. the full set)."""
    hyps = list(hypotheses)
    if not hyps:
      raise ValueError("need at least one hypothesis")
    return math.fsum(self.sentence_bleu(h, n) for h in hyps) / len(hyps)


def bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
         n: int) -> float:
  """Convenience: ``BleuReference(references, max_n=n).bleu(hypotheses, n)``."""
  return BleuReference(references, max_n=n).bleu(hypotheses, n)


def self_bleu(samples: Sequence[Sequence[str]], n: int,
              max_samples: int | None = None) -> float:
  """Self-BLEU-n: mean over samples ``s_i`` of nltk ``sentence_bleu(others_i,
  s_i, (1/n,)*n, method1)`` with ``others_i = samples[:i] + samples[i+1:]``.

  The sample itself is never its own reference; other samples equal to it DO
  count as references.  If ``max_samples`` is given, only the first
  ``max_samples`` samples are used, both as hypotheses and as the reference
  pool (Texygen ``SelfBleu.get_bleu_fast`` convention, sample_size=500).
  Requires at least two samples.
  """
  if not isinstance(n, int) or n < 1:
    raise ValueError(f"n must be a positive int, got {n!r}")
  data = [_as_tokens(s) for s in samples]
  if max_samples is not None:
    data = data[:max_samples]
  if len(data) < 2:
    raise ValueError("self_bleu needs at least two samples")
  # Per order: g -> [top count, index of a sample holding top, second-best count]
  # (second == top when two samples tie for the top).
  tables: list[dict] = [dict() for _ in range(n)]
  counts_per_sample = []
  for i, s in enumerate(data):
    per_order = [_ngram_counts(s, k) for k in range(1, n + 1)]
    counts_per_sample.append(per_order)
    for table, cnt in zip(tables, per_order):
      for g, c in cnt.items():
        e = table.get(g)
        if e is None:
          table[g] = [c, i, 0]
        elif c > e[0]:
          e[2], e[0], e[1] = e[0], c, i
        elif c > e[2]:
          e[2] = c
  lengths = _Lengths([len(s) for s in data])
  total = []
  for i, s in enumerate(data):
    m = []
    for table, cnt in zip(tables, counts_per_sample[i]):
      acc = 0
      for g, c in cnt.items():
        e = table[g]
        acc += min(c, e[2] if e[1] == i else e[0])
      m.append(acc)
    if m[0] == 0:
      total.append(0.0)
      continue
    L = len(s)
    total.append(_combine(L, m, n, lengths.closest(L, exclude=L)))
  return math.fsum(total) / len(total)


def distinct_n(samples: Sequence[Sequence[str]], n: int) -> float:
  """Distinct-n: (# unique n-grams) / (# n-gram occurrences), pooled over all
  samples (n-grams never cross sample boundaries).  Returns 0.0 if there are
  no n-grams at all (every sample shorter than n)."""
  if n < 1:
    raise ValueError("n must be >= 1")
  uniq: set = set()
  total = 0
  for s in samples:
    t = _as_tokens(s)
    grams = list(zip(*[t[i:] for i in range(n)]))
    total += len(grams)
    uniq.update(grams)
  return len(uniq) / total if total else 0.0

"""Diversity of generated text: distinct-n (Li et al. 2016, "A Diversity-Promoting
Objective Function for Neural Conversation Models").

distinct-n = (number of distinct n-grams) / (total number of n-grams), counted over
all sentences together; a sentence shorter than n contributes no n-gram. 0 when there
is no n-gram at all. Self-BLEU, the other diversity measure, is `metrics.bleu.self_bleu`.
"""

from __future__ import annotations

from typing import Sequence


def distinct_n(sentences: Sequence[Sequence], n: int) -> float:
  """Distinct n-grams over total n-grams of tokenised `sentences` (lists of tokens)."""
  if n < 1:
    raise ValueError(f'distinct-n needs n >= 1, got {n}')
  seen, total = set(), 0
  for s in sentences:
    s = tuple(s)
    grams = [s[i:i + n] for i in range(len(s) - n + 1)]
    total += len(grams)
    seen.update(grams)
  return len(seen) / total if total else 0.0

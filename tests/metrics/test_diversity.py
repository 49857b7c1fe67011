"""distinct-n against hand counts."""

import pytest

from jaxtextgen.metrics.diversity import distinct_n


def test_distinct_n_by_hand():
  sents = [('a', 'b', 'a'), ('a', 'b'), ('c',)]
  # unigrams: a b a a b c -> 3 distinct of 6; bigrams: ab ba ab -> 2 of 3 (c has none).
  assert distinct_n(sents, 1) == pytest.approx(3 / 6)
  assert distinct_n(sents, 2) == pytest.approx(2 / 3)
  assert distinct_n(sents, 3) == pytest.approx(1.0)  # one trigram: a b a
  assert distinct_n([('a',)], 2) == 0.0
  with pytest.raises(ValueError, match='n >= 1'):
    distinct_n(sents, 0)

"""BLEU / Self-BLEU / distinct-n must equal the nltk reference computation."""
import random

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from jaxtextgen.metrics.bleu import (
    BleuReference,
    bleu,
    distinct_n,
    self_bleu,
    tokenize_for_bleu,
)

_SMOOTH = SmoothingFunction().method1
TOL = 1e-9


def nltk_bleu(refs, hyp, n):
  return sentence_bleu(refs, hyp, weights=(1.0 / n,) * n, smoothing_function=_SMOOTH)


def nltk_mean_bleu(hyps, refs, n):
  return sum(nltk_bleu(refs, h, n) for h in hyps) / len(hyps)


def nltk_self_bleu(samples, n):
  scores = [nltk_bleu(samples[:i] + samples[i + 1:], s, n) for i, s in enumerate(samples)]
  return sum(scores) / len(scores)


def random_sentences(rng, count, vocab, min_len=0, max_len=12):
  words = [f"w{i}" for i in range(vocab)]
  return [[rng.choice(words) for _ in range(rng.randint(min_len, max_len))]
          for _ in range(count)]


@pytest.fixture(scope="module")
def random_corpus():
  rng = random.Random(1234)
  refs = random_sentences(rng, 40, vocab=12, min_len=1, max_len=14)
  hyps = random_sentences(rng, 60, vocab=14, min_len=0, max_len=14)
  # Edge cases: empty, length < n, tokens never in references (zero overlap),
  # only unigram overlap, repeated token (clipping), very long hypothesis.
  hyps += [[], ["w1"], ["w1", "w2"], ["w3", "w4", "w5"], ["zz", "yy", "xx", "ww"],
           ["zz"], ["w0"] * 9, ["w1", "zz", "w2", "yy", "w3", "xx"],
           refs[0][:], refs[1] + refs[2], ["w5"] * 40]
  return hyps, refs


REAL_REFS = [tokenize_for_bleu(s) for s in [
    "the cat sat on the mat .",
    "a man is walking his dog in the park .",
    "there is a cat on the mat .",
    "the weather is nice today and the sun is shining .",
    "she said that she would come back tomorrow morning .",
    "i do n't think that is a good idea .",
    "the children are playing in the garden .",
    "he bought a new car last week .",
]]
REAL_HYPS = [tokenize_for_bleu(s) for s in [
    "the cat is on the mat .",
    "a man walks the dog in a park .",
    "the sun is shining today .",
    "i think that is a very good idea .",
    "she will come back tomorrow .",
    "children play in the garden",
    "he bought a car .",
    "the the the the the the the .",
    "completely unrelated words here",
    "the",
    ".",
    "",
]]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_sentence_bleu_matches_nltk_random(random_corpus, n):
  hyps, refs = random_corpus
  ref = BleuReference(refs, max_n=5)
  for h in hyps:
    assert ref.sentence_bleu(h, n) == pytest.approx(nltk_bleu(refs, h, n), abs=TOL, rel=0)
  assert ref.bleu(hyps, n) == pytest.approx(nltk_mean_bleu(hyps, refs, n), abs=TOL, rel=0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_bleu_matches_nltk_real_sentences(n):
  ref = BleuReference(REAL_REFS, max_n=5)
  for h in REAL_HYPS:
    assert ref.sentence_bleu(h, n) == pytest.approx(nltk_bleu(REAL_REFS, h, n),
                                                    abs=TOL, rel=0)
  expected = nltk_mean_bleu(REAL_HYPS, REAL_REFS, n)
  assert bleu(REAL_HYPS, REAL_REFS, n) == pytest.approx(expected, abs=TOL, rel=0)


def test_brevity_penalty_ties_and_short_references():
  # Reference lengths 2 and 6 are equidistant from a length-4 hypothesis: the
  # shorter one (2) must be used -> BP = 1; an empty reference is allowed.
  refs = [["a", "b"], ["a", "b", "c", "d", "e", "f"], []]
  for h in (["a", "b", "c", "d"], ["a"], ["a", "b", "c", "d", "e"], ["x", "a", "b"]):
    for n in (1, 2, 3, 4):
      assert BleuReference(refs, 4).sentence_bleu(h, n) == pytest.approx(
          nltk_bleu(refs, h, n), abs=TOL, rel=0)


def test_zero_unigram_overlap_is_zero():
  ref = BleuReference([["a", "b", "c"]], max_n=3)
  assert ref.sentence_bleu(["x", "y", "z"], 3) == 0.0
  assert ref.sentence_bleu([], 2) == 0.0


def test_reference_table_built_once_and_reused(random_corpus):
  hyps, refs = random_corpus
  ref = BleuReference(refs, max_n=5)
  tables = ref.max_counts
  ids = [id(t) for t in tables]
  first = ref.bleu(hyps, 4)
  second = ref.bleu(hyps[:10], 3)  # different order, same tables
  assert ref.max_counts is tables and [id(t) for t in ref.max_counts] == ids
  assert ref.bleu(hyps, 4) == first
  assert second == pytest.approx(nltk_mean_bleu(hyps[:10], refs, 3), abs=TOL, rel=0)
  # The table holds the max count over references, not the sum.
  assert tables[0][("w0",)] == max(r.count("w0") for r in refs)


def test_errors():
  ref = BleuReference(REAL_REFS, max_n=3)
  with pytest.raises(ValueError):
    ref.sentence_bleu(["the"], 4)
  with pytest.raises(TypeError):
    ref.sentence_bleu("the cat", 2)
  with pytest.raises(ValueError):
    BleuReference([])
  with pytest.raises(ValueError):
    self_bleu([["a"]], 2)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_self_bleu_matches_bruteforce(n):
  rng = random.Random(7 + n)
  samples = random_sentences(rng, 30, vocab=10, min_len=0, max_len=10)
  samples += [["w1"], ["zz", "yy"], []]
  assert self_bleu(samples, n) == pytest.approx(nltk_self_bleu(samples, n), abs=TOL, rel=0)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_self_bleu_with_duplicates(n):
  rng = random.Random(99)
  base = random_sentences(rng, 15, vocab=8, min_len=1, max_len=9)
  # Duplicates (other samples) count as references; the sample itself never does.
  samples = base + [base[0][:], base[0][:], base[3][:], ["q", "r", "s", "t"]]
  rng.shuffle(samples)
  got = self_bleu(samples, n)
  assert got == pytest.approx(nltk_self_bleu(samples, n), abs=TOL, rel=0)
  # A unique sample gets no credit from itself; an exact duplicate pair scores 1.
  assert self_bleu([["q", "r", "s", "t"], ["a", "b"]], n) == 0.0
  assert self_bleu([["a", "b", "c", "d", "e"]] * 2, n) == pytest.approx(1.0)


def test_self_bleu_max_samples():
  rng = random.Random(3)
  samples = random_sentences(rng, 25, vocab=9, min_len=1, max_len=8)
  assert self_bleu(samples, 3, max_samples=12) == pytest.approx(
      nltk_self_bleu(samples[:12], 3), abs=TOL, rel=0)


def test_distinct_n_hand_computed():
  samples = [["a", "b", "a", "b"], ["a", "b", "c"], ["d"]]
  # unigrams: 8 total, unique {a,b,c,d} -> 4/8
  assert distinct_n(samples, 1) == pytest.approx(4 / 8)
  # bigrams: (a,b),(b,a),(a,b) | (a,b),(b,c) | - -> 5 total, unique 3
  assert distinct_n(samples, 2) == pytest.approx(3 / 5)
  # trigrams: (a,b,a),(b,a,b) | (a,b,c) -> 3 total, 3 unique
  assert distinct_n(samples, 3) == pytest.approx(1.0)
  assert distinct_n(samples, 5) == 0.0


def test_tokenize_for_bleu():
  assert tokenize_for_bleu("  the cat\tsat .\n") == ["the", "cat", "sat", "."]

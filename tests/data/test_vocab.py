"""Vocabulary: specials, build rules, round trips, persistence."""

import pytest

from jaxtextgen.data.vocab import SPECIALS, Vocab


def test_build_counts_and_limits():
  v = Vocab.build(['b a a', 'c a b', 'd'], min_count=2)
  assert v.itos == list(SPECIALS) + ['a', 'b']  # most frequent first; c, d below min_count
  assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id, v.mask_id) == (0, 1, 2, 3, 4)
  assert Vocab.build(['b a a', 'c a b', 'd'], max_size=6).itos == list(SPECIALS) + ['a']
  # Ties are broken alphabetically, so the ids never depend on line order.
  assert Vocab.build(['y x', 'x y']).itos[5:] == ['x', 'y']


def test_corpus_unk_token_maps_to_our_unk():
  v = Vocab.build(['the <unk> sat', 'the cat'])
  assert '<unk>' not in v.itos[5:]
  assert v.encode('the <unk> dog') == [v.stoi['the'], v.unk_id, v.unk_id]


def test_encode_decode_round_trip():
  v = Vocab.build(['the cat sat', 'on the mat'])
  ids = v.encode('the mat sat on the cat')
  assert v.decode(ids) == 'the mat sat on the cat'
  # decode stops at EOS and drops padding / BOS
  assert v.decode([v.bos_id] + ids[:2] + [v.eos_id, 9, 9]) == 'the mat'
  assert v.decode([v.bos_id, 5, v.pad_id], strip=False) == '<bos> the <pad>'


def test_save_load(tmp_path):
  v = Vocab.build(['ünïcode wörds here', 'here too'])
  v.save(str(tmp_path / 'vocab.json'))
  assert Vocab.load(str(tmp_path / 'vocab.json')) == v


def test_identity_vocab_for_the_oracle(tmp_path):
  v = Vocab.identity(50)
  assert len(v) == 50 and v.bos_id == 0 and v.eos_id == -1 and v.pad_id == -1
  assert v.encode('3 0 49') == [3, 0, 49] and v.decode([3, 0, 49]) == '3 0 49'
  v.save(str(tmp_path / 'v.json'))
  assert Vocab.load(str(tmp_path / 'v.json')) == v


def test_empty_vocabulary_is_an_error():
  with pytest.raises(ValueError, match='min_count'):
    Vocab.build(['a b'], min_count=5)

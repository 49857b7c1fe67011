"""Vocabulary: specials, build rules, round trips, persistence, tokenizers."""

import json

import pytest

from jaxtextgen.data.vocab import SPACE, SPECIALS, Vocab


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


def test_char_tokenizer_round_trip_keeps_spaces():
  v = Vocab.build(['ab  c', 'cab'], tokenizer='char')
  assert v.tokenizer == 'char'
  assert v.itos[5:] == ['a', 'b', 'c', SPACE]  # counts 2, 2, 2, 1; ties alphabetical
  assert v.split('a b\t\u3000c') == ['a', SPACE, 'b', SPACE, 'c']  # each whitespace run: one token
  ids = v.encode('ba c')
  assert ids == [v.stoi['b'], v.stoi['a'], v.stoi[SPACE], v.stoi['c']]
  assert v.decode(ids + [v.eos_id, 5]) == 'ba c'
  assert v.encode('az') == [v.stoi['a'], v.unk_id]
  assert v.decode([v.bos_id, 5, v.pad_id], strip=False) == '<bos>a<pad>'
  cn = Vocab.build(['很好 不错', '不好'], tokenizer='char')
  assert cn.decode(cn.encode('不错 很好')) == '不错 很好'


def test_tokenizer_is_saved_and_old_files_load_as_word(tmp_path):
  path = str(tmp_path / 'vocab.json')
  v = Vocab.build(['ab c'], tokenizer='char')
  v.save(path)
  with open(path, encoding='utf-8') as f:
    assert json.load(f)['tokenizer'] == 'char'
  assert Vocab.load(path) == v and Vocab.load(path).tokenizer == 'char'
  old = {'tokens': list(SPECIALS) + ['x'], 'specials': True, 'bos_id': 1}  # written before
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(old, f)
  assert Vocab.load(path).tokenizer == 'word'
  assert Vocab.load(path).encode('x x') == [5, 5]


def test_unknown_tokenizer_is_an_error():
  with pytest.raises(ValueError, match=r"config\.data\.tokenizer='bpe'.*use 'word'.*or 'char'"):
    Vocab.build(['a b'], tokenizer='bpe')

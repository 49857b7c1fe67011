"""Data-to-text data: WebNLG XML and RotoWire json builders, oracle plans, arrays, inputs."""

import json
import os

import numpy as np
import pytest

from jaxtextgen.data import corpora, d2t
from jaxtextgen.data.vocab import Vocab

WEBNLG_XML = """<benchmark>
  <entries>
    <entry category="Airport" eid="Id1" size="2">
      <modifiedtripleset>
        <mtriple>Aarhus | leaderName | Jacob_Bundsgaard</mtriple>
        <mtriple>Aarhus_Airport | cityServed | Aarhus</mtriple>
      </modifiedtripleset>
      <lex comment="good" lid="Id1">Aarhus airport serves the city of Aarhus whose leader is Jacob Bundsgaard.</lex>
      <lex comment="good" lid="Id2">Jacob Bundsgaard leads Aarhus, which Aarhus Airport serves.</lex>
    </entry>
    <entry category="Airport" eid="Id2" size="1">
      <modifiedtripleset>
        <mtriple>Aarhus_Airport | runwayLength | "2777.0"</mtriple>
      </modifiedtripleset>
      <lex comment="good" lid="Id1">The runway of Aarhus Airport is 2777.0 long.</lex>
    </entry>
    <entry category="Airport" eid="Id3" size="1">
      <modifiedtripleset>
        <mtriple>Aarhus_Airport | location | Tirstrup</mtriple>
      </modifiedtripleset>
      <lex comment="good" lid="Id1">Aarhus Airport is located in Tirstrup.</lex>
      <lex comment="good" lid="Id2">Aarhus Airport is in Tirstrup.</lex>
    </entry>
  </entries>
</benchmark>
"""


def write_webnlg(root):
  for split in ('train', 'dev'):
    os.makedirs(os.path.join(root, split, '2triples'), exist_ok=True)
    with open(os.path.join(root, split, '2triples', 'x.xml'), 'w', encoding='utf-8') as f:
      f.write(WEBNLG_XML)
  return str(root)


def test_tokenize_and_fields():
  assert d2t.tokenize("Aarhus, Denmark's") == ['aarhus', ',', 'denmark', "'", 's']
  assert d2t.field_tokens('Aarhus_Airport') == ['aarhus', 'airport']
  assert d2t.field_tokens('cityServed') == ['city', 'served']
  assert d2t.field_tokens('"2777.0"') == ['2777', '.', '0']


def test_webnlg_builder_reads_every_reference(tmp_path):
  root = write_webnlg(tmp_path / 'webnlg')
  entries = corpora.load_entries('webnlg', root, 'train', cache_dir=str(tmp_path / 'cache'))
  assert [len(e['references']) for e in entries] == [2, 1, 2]
  assert entries[0]['records'] == [['Aarhus', 'leaderName', 'Jacob_Bundsgaard'],
                                   ['Aarhus_Airport', 'cityServed', 'Aarhus']]
  assert entries[1]['references'] == ['The runway of Aarhus Airport is 2777.0 long.']
  assert corpora.available_splits('webnlg', root, cache_dir=str(tmp_path / 'cache')) == [
      'train', 'validation']


def test_an_xml_file_without_entries_is_one_clear_error(tmp_path):
  root = write_webnlg(tmp_path / 'webnlg')
  with open(os.path.join(root, 'train', '2triples', 'empty.xml'), 'w') as f:
    f.write('<benchmark><entries></entries></benchmark>')
  with pytest.raises(ValueError, match=r'empty.xml holds no <entry> elements'):
    corpora.load_entries('webnlg', root, 'train', cache_dir=str(tmp_path / 'cache'))
  with open(os.path.join(root, 'train', '2triples', 'empty.xml'), 'w') as f:
    f.write('<benchmark><entries>')
  with pytest.raises(ValueError, match='not well-formed XML'):
    corpora.load_entries('webnlg', root, 'train', cache_dir=str(tmp_path / 'cache2'))


def test_oracle_plans_by_first_mention():
  records = [['Aarhus', 'leaderName', 'Jacob_Bundsgaard'],
             ['Aarhus_Airport', 'cityServed', 'Aarhus'],
             ['Aarhus_Airport', 'location', 'Central_Denmark_Region'],
             ['Aarhus_Airport', 'elevation', '25.0']]
  ref = d2t.tokenize('Jacob Bundsgaard leads Aarhus, which Aarhus Airport in the Central '
                     'Denmark region serves.')
  # object found whole: Jacob Bundsgaard at 0, Aarhus at 3 (leads); the region by its
  # longest content word ('central' at 10); the elevation never: kept last (WebNLG)
  assert d2t.oracle_plan(records, ref, 'webnlg', keep_unmentioned=True) == [0, 1, 2, 3]
  ref2 = d2t.tokenize('Serving Aarhus, the airport lies in Central Denmark; its mayor is '
                      'Jacob Bundsgaard.')
  assert d2t.oracle_plan(records, ref2, 'webnlg', keep_unmentioned=True) == [1, 2, 0, 3]
  assert d2t.oracle_plan(records, ref2, 'webnlg', keep_unmentioned=False) == [1, 2, 0]
  # two records whose object is the same word: the first in input order claims it
  same = [['A', 'p', 'Paris'], ['B', 'q', 'Paris']]
  assert d2t.oracle_plan(same, ['paris'], 'webnlg', keep_unmentioned=False) == [0]


def test_rotowire_values_count_only_next_to_their_entity():
  records = [['Al Horford', 'PTS', '20', 'H'], ['Goran Dragic', 'PTS', '20', 'A'],
             ['Goran Dragic', 'AST', '7', 'A']]
  ref = d2t.tokenize('Goran Dragic had 7 assists and 20 points . Horford scored 20 .')
  # record 1's value 20 sits in Dragic's sentence (pos 5); Horford's 20 in the next (pos 11)
  assert d2t.oracle_plan(records, ref, 'rotowire', keep_unmentioned=False) == [2, 1, 0]


def test_rotowire_builder_on_a_fixture(tmp_path):
  root = d2t.write_rotowire_fixture(str(tmp_path / 'roto'), num_games=3)
  entries = corpora.load_entries('rotowire', root, 'train', cache_dir=str(tmp_path / 'c'))
  assert len(entries) == 3
  game = json.load(open(os.path.join(root, 'train.json')))[0]
  recs = entries[0]['records']
  assert ['Al Horford', 'PTS', game['box_score']['PTS']['0'], 'H'] in recs
  assert not any(r[0] == game['box_score']['PLAYER_NAME']['3'] and r[1] == 'REB' for r in recs)
  assert [f'{game["home_line"]["TEAM-CITY"]} {game["home_line"]["TEAM-NAME"]}', 'TEAM-PTS',
          game['home_line']['TEAM-PTS'], 'H'] in recs
  assert entries[0]['references'] == [' '.join(game['summary'])]
  with open(os.path.join(root, 'valid.json'), 'w') as f:
    json.dump([{'home_city': 'x'}], f)
  with pytest.raises(ValueError, match='not a boxscore-data record'):
    corpora.load_entries('rotowire', root, 'validation', cache_dir=str(tmp_path / 'c2'))


def _vocab(entries):
  return Vocab.build(d2t.vocabulary_texts(entries, 'webnlg', False))


def test_encode_copies_oov_words_with_extended_ids():
  train = [{'id': 'a', 'records': [['Aarhus', 'leaderName', 'Jacob_Bundsgaard']],
            'references': ['Jacob Bundsgaard leads Aarhus.']}]
  vocab = _vocab(train)
  dev = [{'id': 'b', 'records': [['Zurich', 'leaderName', 'Corine_Mauch']],
          'references': ['Corine Mauch leads Zurich.', 'Zurich is led by Corine Mauch.']}]
  arrays, source = d2t.encode(dev, vocab, kind='webnlg', max_len=12, max_records=3,
                              max_field_len=5, max_source_len=10, max_refs=3, max_oov=4,
                              delex=False)
  v = len(vocab)
  assert source.oov == [['zurich', 'corine', 'mauch']]
  assert arrays['tokens'].shape == (2, 12)                   # one row per reference
  first = arrays['tokens'][0][:arrays['mask'][0].sum().astype(int)].tolist()
  assert first == [v + 1, v + 2, vocab.stoi['leads'], v, vocab.stoi['.'], vocab.eos_id]
  assert arrays['src_ext'][0][:5].tolist() == [v, vocab.stoi['leader'], vocab.stoi['name'],
                                               v + 1, v + 2]
  assert arrays['src_tokens'][0][0] == vocab.unk_id
  assert arrays['src_field'][0][:6].tolist() == [0, 1, 1, 2, 2, 3]
  assert arrays['plan'][0].tolist() == [0, 3, 3, 3] and arrays['plan_mask'][0].tolist() == [1, 1, 0, 0]
  assert arrays['ref_len'][0].tolist() == [5, 7, 0]
  assert d2t.decode_text(first, vocab, source.oov[0], {}) == ['corine', 'mauch', 'leads',
                                                              'zurich', '.']


def test_delexicalisation_round_trip():
  entry = {'id': 'a', 'records': [['Aarhus_Airport', 'cityServed', 'Aarhus']],
           'references': ['Aarhus Airport serves Aarhus.']}
  delexed, names = d2t.delexicalize(entry, 'webnlg')
  assert delexed['records'] == [['ent0', 'cityServed', 'ent1']]
  assert delexed['references'] == ['ent0 serves ent1 .']
  assert d2t.relexicalize('ent0 serves ent1 .'.split(), names) == d2t.tokenize(
      entry['references'][0])


@pytest.mark.parametrize('line,match', [
    ('Aarhus | cityServed', 'not a record of 3'),
    ('a | b | c ;; d | | f', 'not a record of 3'),
    ('[["a", "b"]]', 'is malformed'),
    ('[{"subject": "a"', 'not valid JSON'),
])
def test_malformed_generate_inputs_name_the_line(line, match):
  with pytest.raises(ValueError, match=rf'--input line 7: .*{match}'):
    d2t.parse_input_line(line, 'webnlg', 7)


def test_generate_inputs_in_both_forms():
  assert d2t.parse_input_line('a | b | c ;; d | e | f', 'webnlg', 1) == [['a', 'b', 'c'],
                                                                         ['d', 'e', 'f']]
  assert d2t.parse_input_line('[{"subject": "a", "predicate": "b", "object": "c"}]',
                              'webnlg', 1) == [['a', 'b', 'c']]
  assert d2t.parse_input_line('[["x", "PTS", "3", "H"]]', 'rotowire', 1) == [['x', 'PTS', '3', 'H']]


def test_detokenize():
  tokens = d2t.tokenize("Aarhus Airport's runway (in Denmark) is 3,700.5 m long, isn't it?")
  assert d2t.detokenize(tokens) == "Aarhus airport's runway (in denmark) is 3,700.5 m long, isn't it?"

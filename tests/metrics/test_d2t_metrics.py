"""Data-to-text metrics against hand-computed values."""

import numpy as np
import pytest
import sacrebleu

from jaxtextgen.metrics import d2t as m


def test_kendall_tau_by_hand():
  assert m.kendall_tau([0, 1, 2], [0, 1, 2]) == 1.0
  assert m.kendall_tau([2, 1, 0], [0, 1, 2]) == -1.0
  # shared records 0, 1, 2 (3 absent from pred); pairs (0,1) concordant, (0,2) discordant,
  # (1,2) discordant: (1 - 2) / 3
  assert m.kendall_tau([1, 2, 0], [0, 1, 2, 3]) == pytest.approx(-1 / 3)
  assert m.kendall_tau([0], [0, 1]) is None


@pytest.mark.parametrize('tokens,key', [
    ('ardmore airport ( new zealand )', 'ardmore airport'),
    ('abilene , texas', 'abilene'),
    ('2777 . 0', '2777'),
    ('" 100305 . 0 "', '100305'),
    ('english language', 'english'),
    ('language', 'language'),
    ('1 . 0', '1'),
    ('. 0', '. 0'),
])
def test_entity_key(tokens, key):
  assert m.entity_key(tokens.split()) == tuple(key.split())


@pytest.mark.parametrize('text,entity', [
    ('owned by jp mcmanus .', 'j . p . mc manus'),
    ('arros negre is a dish', 'arròs negre'),
    ('the leader is lars lokke rasmussen', 'lars løkke rasmussen'),
    ('manager of afc blackpool', 'a . f . c . blackpool'),
    ('people called texans', 'texan'),
    ('the language of americans', 'americans'),
    ('published by lippincott , williams and wilkins', 'lippincott williams & wilkins'),
    ('it is in the u . s .', 'united states'),
    ('operated by the usaf', 'united states air force'),
    ('he died on february 28 , 1966 .', '1966 - 02 - 28'),
    ('born on the 23rd of july 1927', '1927 - 07 - 23'),
    ('inaugurated on 28 - 09 - 2013 .', '2013 - 09 - 28'),
    ('born on nov 18 , 1923', '1923 - 11 - 18'),
])
def test_realises_the_forms_texts_write(text, entity):
  assert m.realises(text.split(), tuple(entity.split()))


@pytest.mark.parametrize('text,entity', [
    ('he lives in indiana', 'india'),           # a word's start is not the word
    ('the cast of paris hilton', 'paris hilton inn'),
    ('born on february 27 , 1966', '1966 - 02 - 28'),   # another day
    ('born in 1966 , in may', '1966 - 02 - 28'),
    ('it is a monument', 'ivory tower'),        # initials that spell a common word
    ('the 14th of 2015', '14 l / 32 r'),
    ('', 'aarhus'),
])
def test_does_not_realise_what_is_not_there(text, entity):
  assert not m.realises(text.split(), tuple(entity.split()))


class _Source:
  def __init__(self):
    self.entries = [{'records': [['Aarhus_Airport', 'cityServed', 'Abilene,_Texas']]},
                    {'records': [['Alan_Bean', 'birthPlace', 'Wheeler,_Texas']]}]
    self.names = [{}, {}]
    self.refs = [[['aarhus', 'airport', 'serves', 'abilene', '.'], ['it', 'serves', 'abilene']],
                 [['alan', 'bean', 'was', 'born', 'in', 'wheeler', '.']]]
    self.entities = [[('aarhus', 'airport'), ('abilene', ',', 'texas')],
                     [('alan', 'bean'), ('wheeler', ',', 'texas')]]
    self.plans = [[0], [0]]
    self.lexicon = [('aarhus', 'airport'), ('alan', 'bean'), ('buzz', 'aldrin'), ('texas',)]


def test_generation_metrics_by_hand():
  texts = [['aarhus', 'airport', 'serves', 'abilene', ',', 'texas', '.'],
           ['buzz', 'aldrin', 'was', 'born', 'in', 'texas', '.']]
  out = m.generation_metrics(texts, _Source(), [[0], [0]])
  # covered: aarhus airport, abilene (key of "abilene , texas"); not alan bean, wheeler
  assert out['entity_coverage'] == 0.5
  assert out['reference_entity_coverage'] == 1.0
  # mentions of lexicon keys: "aarhus airport" and "texas" (in its input's field), then
  # "buzz aldrin" (in no field of entry 2) and "texas" (in "wheeler , texas"): 1 of 4
  assert out['entity_hallucination'] == 0.25
  refs = [['aarhus airport serves abilene .', 'alan bean was born in wheeler .'],
          ['it serves abilene', None]]
  expected = sacrebleu.corpus_bleu([' '.join(t) for t in texts], refs, tokenize='none',
                                   force=True).score
  assert out['bleu'] == pytest.approx(expected)
  assert out['plan_exact'] == 1.0 and np.isnan(out['plan_kendall_tau'])
  assert 'plan_exact' not in m.generation_metrics(texts, _Source(), None)

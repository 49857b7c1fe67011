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
    ('english language', 'english'),
    ('language', 'language'),
    ('1 . 0', '1'),
    ('. 0', '. 0'),
])
def test_entity_key(tokens, key):
  assert m.entity_key(tokens.split()) == tuple(key.split())


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

"""Oracle-plan statistics of WebNLG 2017, read from the XML (no training, seconds on a CPU).

    python bench/webnlg_plan_stats.py [CORPUS_DIR]   # default ../shared/data/webnlg2017

1. dev: the input order taken as the plan, scored as the `d2t` eval scores a predicted plan
   (`metrics.d2t.generation_metrics`): exact match with, and Kendall tau against, the oracle
   plan of each entry's first reference (WebNLG: unmentioned records kept at the end).
2. train: the share of records `data.d2t.oracle_plan` finds in a reference (unmentioned
   records left out), over every (entry, reference) training pair and over first references.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, whatever is installed

import numpy as np  # pylint: disable=g-import-not-at-top

from jaxtextgen.data import d2t  # pylint: disable=g-import-not-at-top
from jaxtextgen.metrics.d2t import kendall_tau  # pylint: disable=g-import-not-at-top


def entries(corpus_dir, split):
  return [e for f in d2t.webnlg_files(corpus_dir)[split]
          for e in d2t.parse_webnlg_xml(os.path.join(corpus_dir, f))]


def plan(entry, ref, keep_unmentioned):
  """As `data.d2t.encode` builds the oracle plan (no delexicalisation)."""
  fields = [[' '.join(d2t.field_tokens(v)) for v in rec] for rec in entry['records']]
  return d2t.oracle_plan(fields, d2t.tokenize(ref), 'webnlg', keep_unmentioned=keep_unmentioned)


def main(corpus_dir):
  dev = entries(corpus_dir, 'validation')
  gold = [plan(e, e['references'][0], True) for e in dev]
  order = [list(range(len(e['records']))) for e in dev]
  exact = np.mean([p == g for p, g in zip(order, gold)])
  taus = [t for t in map(kendall_tau, order, gold) if t is not None]
  print(f'dev: {len(dev)} entries; input order as the plan: exact {exact:.3f}, '
        f'Kendall tau {np.mean(taus):.3f} over the {len(taus)} entries with >= 2 records')
  train = entries(corpus_dir, 'train')
  for name, refs in (('every reference', lambda e: e['references']),
                     ('first references', lambda e: e['references'][:1])):
    found = total = 0
    for e in train:
      for ref in refs(e):
        found += len(plan(e, ref, False))
        total += len(e['records'])
    print(f'train, {name}: {found:,} of {total:,} records found ({found / total:.1%})')


if __name__ == '__main__':
  main(sys.argv[1] if len(sys.argv) > 1 else
       os.path.join(ROOT, '..', 'shared', 'data', 'webnlg2017'))

"""Data-to-text metrics, on generated texts as word tokens (`data.d2t.tokenize`'s lowercased
tokens, entities put back after delexicalisation).

  bleu                  sacrebleu corpus BLEU (0-100), every reference of an entry a
                        reference stream (entries with fewer leave None, which sacrebleu
                        skips), tokenize='none' on the space-joined lowercased tokens of
                        `data.d2t.tokenize` (hypotheses and references alike), the WebNLG
                        challenge's multi-bleu convention on tokenised lowercased text
  plan_exact            fraction of entries whose predicted plan equals the oracle plan
                        (`data.d2t.oracle_plan` of the entry's first reference)
  plan_kendall_tau      mean Kendall tau-a between the two orders, over the records in
                        both plans ((concordant - discordant pairs) / pairs); entries with
                        fewer than 2 shared records are left out
  entity_coverage       fraction of the input entities (WebNLG: distinct subjects and
                        objects) whose key (`entity_key`) occurs, contiguous, in the text
  reference_entity_coverage  the same of each entry's first reference: the ceiling set by
                        human texts, which paraphrase entities (dates, "U.S.")
  entity_hallucination  among the corpus entities (keys of train and eval inputs) that a
                        text mentions, the fraction whose key occurs in none of its input's
                        fields; an entity counts when its key has >= 2 tokens or one
                        alphabetic token of >= 4 characters, so that numbers and short words
                        do not count

An entity's key is its tokens without parenthesised parts ("ardmore airport ( new zealand
)" -> "ardmore airport"), cut at the first comma ("abilene , texas" -> "abilene"), without
a trailing ". 0" ("2777 . 0" -> "2777") or a trailing "language" after another word
("english language" -> "english"): the parts that WebNLG's texts drop.
"""

from __future__ import annotations

import numpy as np


def _contains(tokens: list[str], key: tuple) -> bool:
  n = len(key)
  return n > 0 and any(tuple(tokens[i:i + n]) == key for i in range(len(tokens) - n + 1))


def entity_key(tokens) -> tuple:
  """The part of an entity's tokens that a text is expected to contain (module docstring)."""
  out, depth = [], 0
  for w in tokens:
    if w in ('(', ')'):
      depth = max(0, depth + (1 if w == '(' else -1))
    elif not depth:
      out.append(w)
  if ',' in out:
    out = out[:out.index(',')]
  if len(out) >= 3 and out[-2:] == ['.', '0']:
    out = out[:-2]
  if len(out) > 1 and out[-1] == 'language':
    out = out[:-1]
  return tuple(out)


def entity_coverage(texts: list[list[str]], entities: list[list[tuple]]) -> float:
  """Fraction of the entities of each text's input whose key occurs in the text."""
  hits = [_contains(t, entity_key(e)) for t, ents in zip(texts, entities) for e in ents]
  return float(np.mean(hits)) if hits else float('nan')


def kendall_tau(pred: list[int], gold: list[int]) -> float | None:
  """Kendall tau-a of the shared items' orders; None with fewer than 2 shared items."""
  rank = {r: i for i, r in enumerate(pred)}
  shared = [r for r in gold if r in rank]
  n = len(shared)
  if n < 2:
    return None
  score = 0
  for i in range(n):
    for j in range(i + 1, n):
      score += 1 if rank[shared[i]] < rank[shared[j]] else -1
  return score / (n * (n - 1) / 2)


def subset(source, entries: np.ndarray):
  """The `data.d2t.Source` of only `entries` (indices), in that order."""
  from jaxtextgen.data.d2t import Source  # pylint: disable=g-import-not-at-top
  pick = lambda xs: [xs[int(i)] for i in entries]
  return Source(source.kind, pick(source.entries), pick(source.names), pick(source.oov),
                pick(source.refs), pick(source.entities), pick(source.plans), source.lexicon)


def _significant(entity: tuple) -> bool:
  return len(entity) >= 2 or (len(entity) == 1 and entity[0].isalpha() and len(entity[0]) >= 4)


def generation_metrics(texts: list[list[str]], source, plans: list[list[int]] | None) -> dict:
  """The metrics of the module docstring; `texts` as token lists, one per entry of
  `source` (`subset`), `plans` the predicted record orders (None: no planner)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  hyps = [' '.join(t) for t in texts]
  m = max(len(r) for r in source.refs)
  streams = [[' '.join(r[k]) if k < len(r) else None for r in source.refs] for k in range(m)]
  # force: the texts are tokenised on purpose (sacrebleu would warn that they look it)
  out = {'bleu': float(sacrebleu.corpus_bleu(hyps, streams, tokenize='none', force=True).score),
         'generated_entries': float(len(texts))}
  out['entity_coverage'] = entity_coverage(texts, source.entities)
  out['reference_entity_coverage'] = entity_coverage([r[0] for r in source.refs],
                                                     source.entities)
  mentioned = foreign = 0
  keys = {entity_key(e) for e in source.lexicon}
  by_first: dict[str, list[tuple]] = {}
  for k in keys:
    if _significant(k):
      by_first.setdefault(k[0], []).append(k)
  from jaxtextgen.data.d2t import field_tokens  # pylint: disable=g-import-not-at-top
  for text, entry, names in zip(texts, source.entries, source.names):
    fields = [field_tokens(v) for rec in entry['records'] for v in rec]
    fields += [w for w in names.values()]
    seen = set()
    for i, w in enumerate(text):
      for k in by_first.get(w, ()):
        if tuple(text[i:i + len(k)]) == k:
          seen.add(k)
    for k in seen:
      mentioned += 1
      foreign += not any(_contains(f, k) for f in fields)
  out['entity_hallucination'] = foreign / max(mentioned, 1)
  if plans is not None:
    out['plan_exact'] = float(np.mean([p == g for p, g in zip(plans, source.plans)]))
    taus = [t for t in (kendall_tau(p, g) for p, g in zip(plans, source.plans)) if t is not None]
    out['plan_kendall_tau'] = float(np.mean(taus)) if taus else float('nan')
  return out

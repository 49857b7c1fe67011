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
                        objects) that the text realises (`realises`: the entity's key,
                        compared on letters and digits, or its date written out)
  reference_entity_coverage  the same of each entry's first reference (human texts also
                        paraphrase: "American" for "United States", "died" for "deceased")
  entity_hallucination  among the corpus entities (keys of train and eval inputs) that a
                        text mentions, the fraction whose key occurs in none of its input's
                        fields; an entity counts when its key has >= 2 tokens or one
                        alphabetic token of >= 4 characters, so that numbers and short words
                        do not count

An entity's key is its tokens without quotes and parenthesised parts ("ardmore airport (
new zealand )" -> "ardmore airport"), cut at the first comma ("abilene , texas" ->
"abilene"), without a trailing ". 0" ("2777 . 0" -> "2777") or a trailing "language" after
another word ("english language" -> "english"): the parts that WebNLG's texts drop.

A text realises a key (`realises`) when the key's letters and digits, in order and with
spaces, punctuation, case and diacritics ignored ("&" read as "and"), occur in the text's,
starting at the start of a word and ending at the end of one, a plural "s" more or less
allowed: "j . p . mc manus" is realised by "jp mcmanus", "arròs negre" by "arros negre",
"a . f . c . blackpool" by "afc blackpool", "texan" by "texans"; a key of two or more
words also by its initials, with or without those of "of", "the", "and", "de" ("united
states" by "u . s .", "united states air force" by "usaf"; not initials that spell a
common short word, such as "it"). A date key "yyyy - mm - dd" is also realised by its year
with its day and its month (a name, a three-letter abbreviation or the number) among the
five words on either side: "february 28 , 1966", "the 28th of february 1966", "28 - 02 -
1966". Entity coverage was measured on exact token keys before (README: data-to-text): on
WebNLG dev that rule gives the first references 0.855.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np


def _contains(tokens: list[str], key: tuple) -> bool:
  n = len(key)
  return n > 0 and any(tuple(tokens[i:i + n]) == key for i in range(len(tokens) - n + 1))


def entity_key(tokens) -> tuple:
  """The part of an entity's tokens that a text is expected to contain (module docstring)."""
  out, depth = [], 0
  for w in tokens:
    if w in ('"', "''", '``'):
      continue
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


_MONTHS = ('january', 'february', 'march', 'april', 'may', 'june', 'july', 'august',
           'september', 'october', 'november', 'december')


_LETTERS = str.maketrans({'ø': 'o', 'æ': 'ae', 'œ': 'oe', 'ß': 'ss', 'ł': 'l', 'đ': 'd',
                          'ı': 'i', 'þ': 'th', 'ð': 'd'})  # what NFKD does not decompose
_SMALL = ('of', 'the', 'and', 'de')
_WORDS = {'an', 'as', 'at', 'be', 'by', 'he', 'if', 'in', 'is', 'it', 'of', 'on', 'or', 'so',
          'to', 'the', 'and', 'was', 'has', 'its', 'his', 'her', 'she', 'for', 'are', 'who'}


def _fold(word: str) -> str:
  """A word's letters and digits, lowercased, without diacritics ("&": "and")."""
  if word == '&':
    return 'and'
  plain = unicodedata.normalize('NFKD', word.lower().translate(_LETTERS))
  return ''.join(ch for ch in plain if ch.isalnum() and not unicodedata.combining(ch))


def _folded(tokens) -> list[str]:
  """The folded words of `tokens`, without those that fold to nothing (punctuation)."""
  return [f for f in map(_fold, tokens) if f]


def _spans(words: list[str]) -> tuple[str, set, set]:
  """Folded words concatenated, and the offsets where words start and end."""
  text, starts, ends = '', set(), set()
  for w in words:
    starts.add(len(text))
    text += w
    ends.add(len(text))
  return text, starts, ends


def _day(word: str) -> int | None:
  m = re.fullmatch(r'0?(\d{1,2})(st|nd|rd|th)?', word)
  return int(m.group(1)) if m else None


def _month(word: str) -> int | None:
  if word.isdigit() and 1 <= int(word) <= 12:
    return int(word)
  for i, name in enumerate(_MONTHS):
    if word == name or (len(word) >= 3 and name.startswith(word)):
      return i + 1
  return None


def _date_realised(words: list[str], key: tuple) -> bool:
  """`key` an ISO date "yyyy - mm - dd": its year among folded `words` with its month and
  its day among the five words on either side."""
  year, month, day = key[0], int(key[2]), int(key[4])
  for i, w in enumerate(words):
    if w == year:
      near = words[max(0, i - 5):i] + words[i + 1:i + 6]
      if any(_month(x) == month and _day(y) == day
             for j, x in enumerate(near) for k, y in enumerate(near) if j != k):
        return True
  return False


def _realiser(tokens):
  """`realises` for one text: key -> bool, the text folded once for all its keys."""
  words = _folded(tokens)
  text, starts, ends = _spans(words)

  def realised(key: tuple) -> bool:
    if len(key) == 5 and key[1] == key[3] == '-' and re.fullmatch(
        r'\d{4}', key[0]) and key[2].isdigit() and key[4].isdigit():
      if _date_realised(words, key):
        return True
    parts = _folded(key)
    want = ''.join(parts)
    if not want:
      return False
    forms = {want, want + 's'} | ({want[:-1]} if want.endswith('s') and len(want) > 1 else set())
    if len(parts) >= 2 and all(w.isalpha() for w in parts):  # "united states" as "u . s ."
      initials = {''.join(w[0] for w in parts), ''.join(w[0] for w in parts if w not in _SMALL)}
      forms |= {i for i in initials if len(i) >= 2 and i not in _WORDS}
    for form in forms:
      at = text.find(form)
      while at >= 0:
        if at in starts and at + len(form) in ends:
          return True
        at = text.find(form, at + 1)
    return False

  return realised


def realises(tokens, key: tuple) -> bool:
  """Whether word `tokens` realise an entity `key` (module docstring)."""
  return _realiser(tokens)(key)


def entity_coverage(texts: list[list[str]], entities: list[list[tuple]]) -> float:
  """Fraction of the entities of each text's input that the text realises."""
  hits = [realised(entity_key(e)) for t, ents in zip(texts, entities)
          for realised in (_realiser(t),) for e in ents]
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

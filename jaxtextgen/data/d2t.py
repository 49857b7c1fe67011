"""Data-to-text corpora: records -> text, with oracle plans and a copyable source.

An *entry* (what the builders store, one JSON record each) is

    {'id': str, 'records': [[field string, ...], ...], 'references': [text, ...]}

with the corpus's fields in a fixed order (`FIELDS`): WebNLG 2017 (Gardent et al. 2017)
triples (subject, predicate, object); RotoWire (Wiseman et al. 2017, harvardnlp/boxscore-data
json) box- and line-score records (entity, type, value, home/away). Training uses one pair
per reference; eval scores each entry's output against all its references.

Tokenisation (`tokenize`): lowercase, then `\\w+` runs and single other characters
("Aarhus, Denmark's" -> aarhus , denmark ' s). Field strings are normalised first
(`normalize_field`): underscores become spaces, surrounding quotes go, camelCase
predicates are split (cityServed -> city served).

Oracle plans (`oracle_plan`, Puduppully et al. 2019 extract them with an IE system; here
by string matching, on tokens): a record is mentioned at the first position of the
reference where its *key* occurs as a whole token sequence. The key is the object
(WebNLG) or the value (RotoWire). When the whole object is not found, the record is placed
at the first occurrence of its rarest-looking object token: the longest one of >= 3
characters that is not a stop word (e.g. "Central Denmark Region" is found at "central"
in "... part of the Central Denmark region"). RotoWire values count only inside a sentence
that also names the record's entity (any token of its name). The plan lists mentioned
records by position (ties: input order), each position claimed by the first record in
input order. With `keep_unmentioned` (WebNLG, where every triple must be verbalised),
records that are never found follow in input order; otherwise (RotoWire) they are left
out: content selection.

Delexicalisation (config.d2t.delex): every subject / object (WebNLG) string is replaced,
in records and references, by a placeholder `ent0`, `ent1`, ... (per entry, in order of
first appearance); `relexicalize` puts the strings back into generated text.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import xml.etree.ElementTree as ET

import numpy as np

FIELDS = {'webnlg': ('subject', 'predicate', 'object'),
          'rotowire': ('entity', 'type', 'value', 'home_away')}
KEY_FIELD = {'webnlg': 2, 'rotowire': 2}
ENTITY_FIELDS = {'webnlg': (0, 2), 'rotowire': (0,)}

_TOKEN = re.compile(r'\w+|[^\w\s]')
_CAMEL = re.compile(r'(?<=[a-z0-9])(?=[A-Z])')
_STOP = frozenset('the and for with from that this its was are has had his her their which '
                  'who' .split())


def tokenize(text: str) -> list[str]:
  """Lowercased word tokens: runs of word characters, and each other non-space character."""
  return _TOKEN.findall(text.lower())


_NO_SPACE_BEFORE = re.compile(r' ([,.;:!?%)\]}])')
_CONTRACTION = re.compile(r" ' (?=(s|t|re|ve|ll|d|m)\b)")
_NO_SPACE_AFTER = re.compile(r'([(\[{$]) ')
_DECIMAL = re.compile(r'(\d) ([.,]) (?=\d)')


def detokenize(tokens: list[str]) -> str:
  """Readable text from `tokenize`'s tokens (for --mode=generate; metrics read tokens):
  no space before punctuation or after opening brackets, decimals and thousands
  rejoined ('3700 . 0' -> '3700.0'), contractions ("isn ' t" -> "isn't"), the first
  letter capitalised."""
  text = _CONTRACTION.sub("'", ' '.join(tokens))
  text = _DECIMAL.sub(r'\1\2', text)
  text = _NO_SPACE_AFTER.sub(r'\1', _NO_SPACE_BEFORE.sub(r'\1', text))
  return text[:1].upper() + text[1:]


def normalize_field(text: str) -> str:
  """A raw field string as words: underscores -> spaces, surrounding quotes stripped,
  camelCase split ('cityServed' -> 'city Served')."""
  text = text.strip().replace('_', ' ')
  if len(text) >= 2 and text[0] == text[-1] == '"':
    text = text[1:-1]
  return _CAMEL.sub(' ', text)


def field_tokens(text: str) -> list[str]:
  return tokenize(normalize_field(text))


# --- parsers --------------------------------------------------------------------------------------

def parse_webnlg_xml(path: str) -> list[dict]:
  """Entries of one WebNLG challenge XML file: the modified triples and every `lex` text.
  A file with no <entry>, or an entry without triples or texts, is an error naming it."""
  try:
    root = ET.parse(path).getroot()
  except ET.ParseError as e:
    raise ValueError(f'{path}: not well-formed XML ({e}); restore the file from the '
                     'WebNLG release') from None
  entries = []
  for entry in root.iter('entry'):
    eid = f'{os.path.basename(path)}:{entry.get("eid")}'
    triples = []
    for t in entry.iter('mtriple'):
      parts = [p.strip() for p in (t.text or '').split('|')]
      if len(parts) != 3 or not all(parts):
        raise ValueError(f'{path}: entry {entry.get("eid")}: triple {t.text!r} is not '
                         '"subject | predicate | object"')
      triples.append(parts)
    refs = [' '.join((lex.text or '').split()) for lex in entry.iter('lex')]
    refs = [r for r in refs if r]
    if not triples or not refs:
      raise ValueError(f'{path}: entry {entry.get("eid")} has no '
                       f'{"<mtriple>" if not triples else "<lex> text"}; fix or remove it')
    entries.append({'id': eid, 'records': triples, 'references': refs})
  if not entries:
    raise ValueError(f'{path} holds no <entry> elements: it is not a WebNLG benchmark file '
                     '(<benchmark><entries><entry>...); remove it from the corpus directory')
  return entries


def webnlg_files(corpus_dir: str) -> dict[str, list[str]]:
  """{'train': [...], 'validation': [...], 'test': [...]}: the XML files under
  corpus_dir/{train,dev,test}/ (relative paths, sorted); splits without files are absent."""
  out = {}
  for split, sub in (('train', 'train'), ('validation', 'dev'), ('test', 'test')):
    files = sorted(glob.glob(os.path.join(corpus_dir, sub, '**', '*.xml'), recursive=True))
    if files:
      out[split] = [os.path.relpath(f, corpus_dir) for f in files]
  return out


def rotowire_entries(games: list, path: str = 'rotowire') -> list[dict]:
  """Entries of harvardnlp/boxscore-data json games: one record per player statistic of
  the box score (entity = player name, type = the statistic, value, H / A) and per team
  line-score statistic (entity = team city + name), the summary as the reference."""
  entries = []
  for g, game in enumerate(games):
    try:
      home_city = game['home_city']
      records = []
      box = game['box_score']
      for idx, name in box['PLAYER_NAME'].items():
        side = 'H' if box['TEAM_CITY'][idx] == home_city else 'A'
        for key, column in box.items():
          if key in ('PLAYER_NAME', 'FIRST_NAME', 'SECOND_NAME', 'TEAM_CITY'):
            continue
          value = str(column.get(idx, 'N/A'))
          if value not in ('N/A', ''):
            records.append([name, key, value, side])
      for side, key in (('H', 'home_line'), ('A', 'vis_line')):
        line = game[key]
        team = f'{line["TEAM-CITY"]} {line["TEAM-NAME"]}'
        for stat, value in line.items():
          if stat not in ('TEAM-CITY', 'TEAM-NAME'):
            records.append([team, stat, str(value), side])
      summary = game['summary']
      text = ' '.join(summary) if isinstance(summary, list) else str(summary)
    except (KeyError, TypeError, AttributeError) as e:
      raise ValueError(f'{path}: game {g} is not a boxscore-data record (missing {e}); '
                       'expected the harvardnlp/boxscore-data json layout') from None
    if not records or not text.strip():
      raise ValueError(f'{path}: game {g} has no records or no summary')
    entries.append({'id': f'{os.path.basename(path)}:{g}', 'records': records,
                    'references': [text]})
  return entries


def parse_rotowire_json(path: str) -> list[dict]:
  with open(path, encoding='utf-8') as f:
    try:
      games = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON ({e})') from None
  if not isinstance(games, list) or not games:
    raise ValueError(f'{path} holds no games: expected a JSON list of boxscore-data games')
  return rotowire_entries(games, path)


def rotowire_files(corpus_dir: str) -> dict[str, list[str]]:
  return {s: [f] for s, f in (('train', 'train.json'), ('validation', 'valid.json'),
                              ('test', 'test.json'))
          if os.path.isfile(os.path.join(corpus_dir, f))}


PARSERS = {'webnlg': parse_webnlg_xml, 'rotowire': parse_rotowire_json}
FILES = {'webnlg': webnlg_files, 'rotowire': rotowire_files}


# --- user inputs (--mode=generate) -------------------------------------------------------------

def parse_input_line(line: str, kind: str, number: int) -> list[list[str]]:
  """One --mode=generate input: 's | p | o ;; s | p | o' triples, or a JSON list of
  records (each a list of field strings, or an object keyed by the corpus's field
  names). A malformed line is an error naming its number and the expected forms."""
  fields = FIELDS[kind]
  expected = (f'expected "s | p | o ;; s | p | o" triples or a JSON list of records with '
              f'{len(fields)} fields {fields}')
  line = line.strip()
  if line.startswith('['):
    try:
      raw = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f'--input line {number}: not valid JSON ({e.msg}); {expected}') from None
    records = []
    for r in raw if isinstance(raw, list) else [None]:
      if isinstance(r, dict):
        r = [r.get(f) for f in fields]
      if not isinstance(r, list) or len(r) != len(fields) or any(
          v is None or not str(v).strip() for v in r):
        raise ValueError(f'--input line {number}: record {r!r} is malformed; {expected}')
      records.append([str(v) for v in r])
  else:
    records = []
    for part in line.split(';;'):
      r = [p.strip() for p in part.split('|')]
      if len(r) != len(fields) or not all(r):
        raise ValueError(f'--input line {number}: {part.strip()!r} is not a record of '
                         f'{len(fields)} "|"-separated fields; {expected}')
      records.append(r)
  if not records:
    raise ValueError(f'--input line {number} holds no records; {expected}')
  return records


# --- delexicalisation ---------------------------------------------------------------------------

def delexicalize(entry: dict, kind: str) -> tuple[dict, dict[str, list[str]]]:
  """(the entry with entity strings replaced by ent0, ent1, ... in records and
  references, {placeholder: entity tokens}). References are returned tokenised."""
  names: dict[tuple, str] = {}
  for rec in entry['records']:
    for f in ENTITY_FIELDS[kind]:
      key = tuple(field_tokens(rec[f]))
      if key and key not in names:
        names[key] = f'ent{len(names)}'
  longest_first = sorted(names, key=len, reverse=True)

  def sub(tokens: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(tokens):
      for key in longest_first:
        if tuple(tokens[i:i + len(key)]) == key:
          out.append(names[key])
          i += len(key)
          break
      else:
        out.append(tokens[i])
        i += 1
    return out

  records = [[names.get(tuple(field_tokens(v)), v) if f in ENTITY_FIELDS[kind] else v
              for f, v in enumerate(rec)] for rec in entry['records']]
  refs = [' '.join(sub(tokenize(r))) for r in entry['references']]
  return ({**entry, 'records': records, 'references': refs},
          {v: list(k) for k, v in names.items()})


def relexicalize(tokens: list[str], names: dict[str, list[str]]) -> list[str]:
  return [w for t in tokens for w in names.get(t, [t])]


# --- oracle plans -------------------------------------------------------------------------------

def _find(tokens: list[str], key: list[str], start: int = 0, end: int | None = None) -> int:
  end = len(tokens) if end is None else end
  for i in range(start, end - len(key) + 1):
    if tokens[i:i + len(key)] == key:
      return i
  return -1


def mention_position(record_tokens: list[list[str]], ref: list[str], kind: str) -> int:
  """The reference position where a record is first mentioned (module docstring), -1 if
  never. record_tokens: the record's fields as token lists."""
  key = record_tokens[KEY_FIELD[kind]]
  if not key:
    return -1
  if kind == 'rotowire':
    names = set(record_tokens[0])
    start = 0
    for end in [i + 1 for i, t in enumerate(ref) if t == '.'] + [len(ref)]:
      if names & set(ref[start:end]):
        pos = _find(ref, key, start, end)
        if pos >= 0:
          return pos
      start = end
    return -1
  pos = _find(ref, key)
  if pos >= 0:
    return pos
  words = sorted((w for w in key if len(w) >= 3 and w not in _STOP), key=len, reverse=True)
  return _find(ref, words[:1]) if words else -1


def oracle_plan(records: list[list[str]], ref_tokens: list[str], kind: str, *,
                keep_unmentioned: bool) -> list[int]:
  """Record indices in the order the reference first mentions them (module docstring)."""
  toks = [[field_tokens(v) for v in rec] for rec in records]
  found, claimed = [], set()
  for i, rec in enumerate(toks):
    pos = mention_position(rec, ref_tokens, kind)
    if pos >= 0 and pos not in claimed:
      claimed.add(pos)
      found.append((pos, i))
  plan = [i for _, i in sorted(found)]
  if keep_unmentioned:
    plan += [i for i in range(len(records)) if i not in set(plan)]
  return plan


# --- arrays ---------------------------------------------------------------------------------------

class Source:
  """The structured side of a d2t split, kept on the host for eval and generation.

  entries: the split's entries (after delexicalisation, if on); names: per entry, the
  placeholder -> entity tokens map (empty without delex); oov: per entry, the source
  words outside the vocabulary, whose extended ids are V + their index; refs: per entry,
  the references as token lists (relexicalised); entities: per entry, the input
  entities as token tuples; plans: per entry, the oracle plan of its first reference;
  lexicon: every entity of the corpus (set for the eval split, for the hallucination rate).
  """

  def __init__(self, kind, entries, names, oov, refs, entities, plans, lexicon=()):
    self.kind, self.entries, self.names, self.oov = kind, entries, names, oov
    self.refs, self.entities, self.plans, self.lexicon = refs, entities, plans, list(lexicon)

  def __len__(self) -> int:
    return len(self.entries)


def sizes(config) -> dict:
  """`encode`'s keyword arguments from a config (config.data, config.d2t)."""
  d = config.d2t
  return dict(kind=config.data.corpus, max_len=config.data.max_len, max_records=d.max_records,
              max_field_len=d.max_field_len, max_source_len=d.max_source_len,
              max_refs=d.max_refs, max_oov=d.max_oov, delex=d.delex)


def vocabulary_texts(entries: list[dict], kind: str, delex: bool) -> list[str]:
  """What the vocabulary is built from: every reference and every field, tokenised."""
  out = []
  for e in entries:
    if delex:
      e, _ = delexicalize(e, kind)
    out += [' '.join(tokenize(r)) for r in e['references']]
    out += [' '.join(field_tokens(v)) for rec in e['records'] for v in rec]
  return out


def encode(entries: list[dict], vocab, *, kind: str, max_len: int, max_records: int,
           max_field_len: int, max_source_len: int, max_refs: int, max_oov: int, delex: bool):
  """(arrays, Source) of a split: one row per (entry, reference).

  arrays (numpy, rows N, records R = max_records, source tokens L = max_source_len, refs M):
    tokens, mask    [N, max_len]   the reference in extended ids + EOS (a word of the
                                   entry's source outside the vocabulary is V + its OOV
                                   index, so that it can be copied; other unknowns UNK)
    src_tokens      [N, L]         the records' field tokens linearised (record by record,
                                   field by field, at most max_field_len per field),
                                   vocabulary ids (UNK outside)
    src_ext         [N, L]         the same in extended ids
    src_field       [N, L]         each token's field 0..K-1 (K on padding)
    src_record      [N, L]         each token's record
    src_mask        [N, L]         1 on real tokens
    rec_mask        [N, R]         1 on real records
    plan            [N, R + 1]     the oracle plan of the row's reference, then the stop
                                   pointer R, then R (padding)
    plan_mask       [N, R + 1]     1 up to and including the stop pointer
    refs            [N, M, max_len] every reference of the entry, extended ids (reward)
    ref_len         [N, M]         their lengths in tokens (EOS excluded); 0: absent
    entry           [N]            the entry index
  Records beyond max_records, field tokens beyond max_field_len, references beyond max_refs
  and OOV words beyond max_oov are cut, with one warning each naming the setting.
  """
  v, K, R, F, L = len(vocab), len(FIELDS[kind]), max_records, max_field_len, max_source_len
  keep_unmentioned = kind == 'webnlg'
  rows = []
  names_all, oov_all, refs_all, ents_all, plans_all, kept_entries = [], [], [], [], [], []
  cut = dict.fromkeys(('max_records', 'max_field_len', 'max_source_len', 'max_refs', 'max_oov',
                       'max_len'), 0)
  for ei, raw in enumerate(entries):
    entry, names = delexicalize(raw, kind) if delex else (raw, {})
    records = entry['records']
    if len(records) > R:
      cut['max_records'] += 1
      records = records[:R]
    toks = [[field_tokens(val) if f not in ENTITY_FIELDS[kind] or not delex else [val]
             for f, val in enumerate(rec)] for rec in records]
    oov: list[str] = []
    for rec in toks:
      for f in rec:
        if len(f) > F:
          cut['max_field_len'] += 1
        for w in f[:F]:
          if w not in vocab.stoi and w not in oov:
            if len(oov) < max_oov:
              oov.append(w)
            else:
              cut['max_oov'] += 1
    ext = lambda w: vocab.stoi[w] if w in vocab.stoi else (
        v + oov.index(w) if w in oov else vocab.unk_id)
    src = np.zeros((5, L), np.int32)  # tokens, ext, field, record, mask
    src[2] = K
    n = 0
    for r, rec in enumerate(toks):
      for f, words in enumerate(rec):
        for w in words[:F]:
          if n == L:
            cut['max_source_len'] += 1
            break
          src[:, n] = (vocab.stoi.get(w, vocab.unk_id), ext(w), f, r, 1)
          n += 1
    rec_mask = np.zeros(R, np.float32)
    rec_mask[:len(records)] = 1
    fields = [[' '.join(f) for f in rec] for rec in toks]
    refs_tok = [r.split() if delex else tokenize(r) for r in entry['references']]
    if len(refs_tok) > max_refs:
      cut['max_refs'] += 1
    refs = np.zeros((max_refs, max_len), np.int32)
    ref_len = np.zeros(max_refs, np.int32)
    refs_ids = [[ext(w) for w in words] for words in refs_tok]
    for m, ids in enumerate(refs_ids[:max_refs]):
      ids = ids[:max_len - 1]
      refs[m, :len(ids)], ref_len[m] = ids, len(ids)
    entry_plans = []
    for words, ids in zip(refs_tok, refs_ids):
      ids = list(ids)
      if len(ids) > max_len - 1:
        cut['max_len'] += 1
        ids = ids[:max_len - 1]
      ids.append(vocab.eos_id)
      tokens = np.full(max_len, vocab.pad_id, np.int32)
      mask = np.zeros(max_len, np.float32)
      tokens[:len(ids)], mask[:len(ids)] = ids, 1
      plan = oracle_plan(fields, words, kind, keep_unmentioned=keep_unmentioned)
      entry_plans.append(plan)
      plan_arr = np.full(R + 1, R, np.int32)
      plan_arr[:len(plan)] = plan
      plan_mask = np.zeros(R + 1, np.float32)
      plan_mask[:len(plan) + 1] = 1
      rows.append(dict(tokens=tokens, mask=mask, src_tokens=src[0], src_ext=src[1],
                       src_field=src[2], src_record=src[3],
                       src_mask=src[4].astype(np.float32), rec_mask=rec_mask, plan=plan_arr,
                       plan_mask=plan_mask, refs=refs, ref_len=ref_len,
                       entry=np.int32(len(kept_entries))))
    kept_entries.append(entry)
    names_all.append(names)
    oov_all.append(oov)
    refs_all.append([relexicalize(w, names) for w in refs_tok])
    ents = {tuple(field_tokens(rec[f])) for rec in raw['records'][:R]
            for f in ENTITY_FIELDS[kind]}
    ents_all.append(sorted(e for e in ents if e))
    plans_all.append(entry_plans[0])
  for key, n in cut.items():
    if n:
      logging.warning('d2t data: %d %s cut by config.%s; raise it to keep them whole', n,
                      {'max_records': 'entries had records', 'max_field_len': 'fields were',
                       'max_source_len': 'entries had source tokens',
                       'max_refs': 'entries had references', 'max_oov': 'source words were '
                       'left uncopyable (OOV list full)', 'max_len': 'references were'}[key],
                      'data.max_len' if key == 'max_len' else f'd2t.{key}')
  if not rows:
    raise ValueError('d2t data: the split holds no entries')
  arrays = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  source = Source(kind, kept_entries, names_all, oov_all, refs_all, ents_all, plans_all)
  return arrays, source


def decode_text(ids, vocab, oov: list[str], names: dict) -> list[str]:
  """Extended ids (up to EOS) -> word tokens: vocabulary words, copied OOV words, entities
  put back for placeholders."""
  v, words = len(vocab), []
  for i in np.asarray(ids).tolist():
    if i == vocab.eos_id:
      break
    if i in (vocab.pad_id, vocab.bos_id):
      continue
    words.append(vocab.itos[i] if i < v else (oov[i - v] if i - v < len(oov) else '<unk>'))
  return relexicalize(words, names)


def write_rotowire_fixture(directory: str, num_games: int = 6) -> str:
  """A tiny synthetic RotoWire corpus in the boxscore-data layout (train.json, valid.json)
  for tests and the `:smoke` preset of configs/d2t_rotowire.py; returns `directory`."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(0)
  teams = [('Boston', 'Celtics'), ('Miami', 'Heat'), ('Chicago', 'Bulls'), ('Utah', 'Jazz')]
  players = ['Al Horford', 'Goran Dragic', 'Jimmy Butler', 'Rudy Gobert', 'Kemba Walker',
             'Dwyane Wade']

  def game(g):
    home, vis = teams[g % 4], teams[(g + 1) % 4]
    names = [players[(g + i) % len(players)] for i in range(4)]
    cities = [home[0], home[0], vis[0], vis[0]]
    pts = [int(x) for x in rng.integers(2, 40, 4)]
    box = {'PLAYER_NAME': {str(i): n for i, n in enumerate(names)},
           'FIRST_NAME': {str(i): n.split()[0] for i, n in enumerate(names)},
           'SECOND_NAME': {str(i): n.split()[1] for i, n in enumerate(names)},
           'TEAM_CITY': {str(i): c for i, c in enumerate(cities)},
           'PTS': {str(i): str(p) for i, p in enumerate(pts)},
           'AST': {str(i): str(int(a)) for i, a in enumerate(rng.integers(0, 12, 4))},
           'REB': {str(i): 'N/A' if i == 3 else str(int(r))
                   for i, r in enumerate(rng.integers(0, 15, 4))}}
    line = lambda t, p: {'TEAM-CITY': t[0], 'TEAM-NAME': t[1], 'TEAM-PTS': str(p)}
    hp, vp = sum(pts[:2]) + 60, sum(pts[2:]) + 60
    best = int(np.argmax(pts))
    summary = (f'The {home[0]} {home[1]} ( {hp} ) defeated the {vis[0]} {vis[1]} ( {vp} ) . '
               f'{names[best]} scored {pts[best]} points . {names[(best + 1) % 4]} added '
               f'{pts[(best + 1) % 4]} points .')
    return {'home_city': home[0], 'vis_city': vis[0], 'box_score': box,
            'home_line': line(home, hp), 'vis_line': line(vis, vp), 'summary': summary.split()}

  for split, n in (('train.json', num_games), ('valid.json', max(2, num_games // 3))):
    with open(os.path.join(directory, split), 'w', encoding='utf-8') as f:
      json.dump([game(g) for g in range(n)], f)
  return directory

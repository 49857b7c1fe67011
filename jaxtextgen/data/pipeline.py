"""From a config to batches: corpus or oracle -> vocabulary -> token arrays -> grain.

Every split is tokenised once into fixed-size numpy arrays (the corpora of this
field are at most a few hundred MB of text); grain then only shuffles, shards
and batches example *indices*, so a batch is a cheap gather and the order is a
pure function of (seed, step): resuming at step s is `dataset[s:]`.

A batch is a dict of numpy arrays:
  tokens  int32   [batch, max_len]  target tokens, EOS included, PAD after it
  mask    float32 [batch, max_len]  1 on real tokens (EOS included)
  label   int32   [batch]           class label, -1 when the corpus has none
  weight  float32 [batch]           1 for real examples, 0 for eval padding rows
and, for conditional models, the fields of their source (`TokenizedSplit.extra`; data-to-text:
records, plans, references, `data.d2t.encode`). Only `tokens` and `mask` have the time axis
that batches are trimmed and padded along (`TIME_FIELDS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from typing import Iterator

import grain
import sys

import numpy as np

from jaxtextgen.data.vocab import Vocab, check_tokenizer

Batch = dict[str, np.ndarray]
TIME_FIELDS = ('tokens', 'mask')  # the fields cut to a batch's longest sentence


@dataclasses.dataclass(frozen=True)
class TokenizedSplit:
  """A split as arrays: tokens/mask [num, max_len], labels [num], and `extra`: more
  named arrays [num, ...] that batches carry (a conditional model's source fields)."""
  tokens: np.ndarray
  mask: np.ndarray
  labels: np.ndarray
  num_truncated: int = 0
  extra: dict = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.tokens)

  def gather(self, idx: np.ndarray, weight: np.ndarray | None = None) -> Batch:
    w = np.ones(len(idx), np.float32) if weight is None else weight
    return {'tokens': self.tokens[idx], 'mask': self.mask[idx] * w[:, None],
            'label': self.labels[idx], 'weight': w,
            **{k: v[idx] for k, v in self.extra.items()}}


def tokenize(texts: list[str], labels: np.ndarray | None, vocab: Vocab, max_len: int,
             *, name: str = 'split', fix: str = 'raise config.data.max_len to keep them whole'
             ) -> TokenizedSplit:
  """Encodes sentences as [num, max_len] targets ending in EOS.

  A sentence with more than max_len - 1 tokens keeps its first max_len - 1 and
  its EOS; how many were cut is returned and logged (with `fix`, what to change),
  so nobody trains on a silently different corpus. Without EOS (oracle) rows are
  exactly max_len.
  """
  has_eos = vocab.eos_id >= 0
  room = max_len - 1 if has_eos else max_len
  tokens = np.full((len(texts), max_len), max(vocab.pad_id, 0), np.int32)
  mask = np.zeros((len(texts), max_len), np.float32)
  truncated = 0
  for i, text in enumerate(texts):
    ids = vocab.encode(text)
    if len(ids) > room:
      truncated += 1
      ids = ids[:room]
    if has_eos:
      ids = ids + [vocab.eos_id]
    tokens[i, :len(ids)] = ids
    mask[i, :len(ids)] = 1.0
  if truncated:
    logging.warning('%s: %d of %d sentences (%.2f%%) had more than %d %s tokens and were '
                    'truncated; %s.', name, truncated, len(texts), 100 * truncated / len(texts),
                    room, vocab.tokenizer, fix)
  labels = np.full(len(texts), -1, np.int32) if labels is None else np.asarray(labels, np.int32)
  return TokenizedSplit(tokens, mask, labels, truncated)


def train_dataset(split: TokenizedSplit, *, batch_size: int, seed: int,
                  process_index: int = 0, process_count: int = 1, sort_chunk: int = 0,
                  trim_multiple: int = 0) -> grain.MapDataset:
  """Infinite, random-access dataset of this process's rows of each global batch.

  Item s is the batch of step s, a pure function of (seed, s): examples are
  reshuffled every epoch (grain derives a new permutation per repetition from
  `seed`); every process computes the same global batch of indices and gathers
  only its own batch_size // process_count rows.

  Args:
    sort_chunk: if > 1, length bucketing: each run of sort_chunk global batches
      is sorted by sentence length, cut into batches of similar lengths, and
      these are visited in a seeded random order (less padding, same examples).
    trim_multiple: if > 0, each batch is cut to its longest sentence rounded up
      to this multiple (few distinct shapes, so few compilations), capped at
      the split's max_len.
  """
  if batch_size % process_count:
    raise ValueError(f'config.batch_size={batch_size} does not divide across '
                     f'{process_count} processes; use a multiple of {process_count}.')
  if len(split) < batch_size:
    raise ValueError(f'the training split has {len(split)} examples, fewer than one batch '
                     f'(config.batch_size={batch_size}); lower the batch size.')
  local = batch_size // process_count
  rows = slice(process_index * local, (process_index + 1) * local)
  chunk = max(sort_chunk, 1)
  stream = grain.MapDataset.range(len(split)).shuffle(seed=seed).repeat(None)
  chunks = stream.batch(batch_size * chunk, drop_remainder=True)
  lengths = split.mask.sum(axis=1).astype(np.int64)
  max_len = split.tokens.shape[1]

  def batch_at(step: int) -> Batch:
    c, j = divmod(step, chunk)
    idx = chunks[c]
    if chunk > 1:
      groups = idx[np.argsort(lengths[idx], kind='stable')].reshape(chunk, batch_size)
      idx = groups[np.random.default_rng([seed, c]).permutation(chunk)[j]]
    batch = split.gather(idx[rows])
    if trim_multiple:
      longest = int(lengths[idx].max())  # over the GLOBAL batch: equal shapes on all processes
      keep = min(max_len, -(-max(longest, 1) // trim_multiple) * trim_multiple)
      batch = {k: v[:, :keep] if k in TIME_FIELDS else v for k, v in batch.items()}
    return batch

  return grain.MapDataset.range(_INFINITE).map(batch_at)


_INFINITE = 2**62


def stack_batches(batches: list[Batch], length: int, pad_id: int) -> Batch:
  """k batches -> one batch of arrays [k, B, ...] (what a fused update such as an
  adversarial round consumes): [B, T] fields (trimmed to their longest sentence by
  data.trim_multiple) padded back to `length`, 'tokens' with pad_id, the rest with 0."""
  def pad(key, x):
    if key not in TIME_FIELDS or x.shape[1] == length:
      return x
    return np.pad(x, ((0, 0), (0, length - x.shape[1])),
                  constant_values=pad_id if key == 'tokens' else 0)
  return {k: np.stack([pad(k, b[k]) for b in batches]) for k in batches[0]}


def train_iterator(split: TokenizedSplit, *, start_step: int = 0, **kwargs) -> Iterator[Batch]:
  """Batches from step `start_step` on (see `train_dataset` for the keyword
  arguments), prefetched in a background thread."""
  ds = train_dataset(split, **kwargs)[start_step:]
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=4)))


def eval_batches(split: TokenizedSplit, *, batch_size: int, process_index: int = 0,
                 process_count: int = 1, limit: int | None = None, base_len: int = 0,
                 multiple: int = 1) -> Iterator[Batch]:
  """The split's first `limit` sentences (default all) once each, in batches whose cost
  follows their tokens.

  With `base_len` > 0, batches are grouped by length: sentences of at most base_len
  tokens come in batch_size rows of base_len columns; a longer one goes to the bucket of
  base_len * 2^k columns (the smallest that holds it, at most the split's width), whose
  batches have batch_size * base_len / (base_len * 2^k) rows, a multiple of `multiple`
  (the devices) and at least that, so every batch holds about batch_size * base_len
  token slots and one long line costs what its tokens cost. Without it, one bucket of the
  split's width. Buckets come shortest first, each in split order. Every batch's last
  rows may be padding (weight 0, no tokens), so a bucket's batches share one shape (one
  compilation) and nothing is dropped. Each batch carries 'index', the split positions of
  its GLOBAL rows (every process's), for statistics that must come back in split order.
  """
  num = len(split) if limit is None else min(limit, len(split))
  width = split.tokens.shape[1]
  base = min(base_len, width) if base_len > 0 else width
  lengths = split.mask[:num].sum(axis=1).astype(np.int64)
  buckets = np.full(num, base, np.int64)
  while (long := lengths > buckets).any():
    buckets[long] = np.minimum(buckets[long] * 2, width)
  for length in np.unique(buckets):
    members = np.flatnonzero(buckets == length)
    rows = batch_size if length == base else max(
        multiple, batch_size * base // int(length) // multiple * multiple)
    if rows % process_count:
      raise ValueError(f'eval batches of {rows} rows do not divide across {process_count} '
                       f'processes; make config.eval_batch_size a multiple of the devices')
    local = rows // process_count
    sl = slice(process_index * local, (process_index + 1) * local)
    for start in range(0, len(members), rows):
      take = members[start:start + rows]
      weight = np.zeros(rows, np.float32)
      weight[:len(take)] = 1
      idx = np.concatenate([take, np.full(rows - len(take), take[-1])])
      batch = split.gather(idx[sl], weight[sl])
      batch = {k: v[:, :length] if k in TIME_FIELDS else v for k, v in batch.items()}
      yield {**batch, 'index': idx}


# ----------------------------------------------------------------------------------------
# From config to data
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Data:
  """Everything the trainer needs from the data side."""
  vocab: Vocab
  train: TokenizedSplit
  eval: TokenizedSplit | None
  oracle_params: dict | None = None  # set for the synthetic oracle task
  provenance: str = ''  # where the data came from: files and their SHA-256, or the oracle
  source: object = None  # data-to-text: the eval split's entries (`data.d2t.Source`)

  @property
  def spec(self) -> dict:
    """What models need to know about tokens (written into config.vocab)."""
    return {'size': len(self.vocab), 'bos_id': self.vocab.bos_id, 'eos_id': self.vocab.eos_id,
            'pad_id': max(self.vocab.pad_id, 0), 'mask_id': self.vocab.mask_id,
            'unk_id': self.vocab.unk_id}


def _oracle_data(cfg) -> Data:
  from jaxtextgen.data import oracle  # pylint: disable=g-import-not-at-top
  if cfg.oracle_path:
    params = oracle.load_oracle_params(cfg.oracle_path)
    with open(cfg.oracle_path, 'rb') as f:
      digest = hashlib.sha256(f.read()).hexdigest()[:16]
    source = f'oracle: the weights in {os.path.basename(cfg.oracle_path)} sha256 {digest}'
  else:
    params = oracle.random_oracle_params(cfg.oracle_seed, vocab_size=cfg.oracle_vocab_size)
    source = (f'oracle: seeded random, seed {cfg.oracle_seed}, vocabulary '
              f'{cfg.oracle_vocab_size} (no data.oracle_path)')
  logging.info('data: %s', source)
  vocab_size = int(params['emb'].shape[0])
  vocab = Vocab.identity(vocab_size)
  def split(seed, num):
    toks = oracle.generate_corpus(params, seed=seed, num=num, length=cfg.max_len)
    return TokenizedSplit(toks.astype(np.int32), np.ones(toks.shape, np.float32),
                          np.full(num, -1, np.int32))
  train = split(cfg.oracle_seed + 1, cfg.oracle_num_train)
  held_out = split(cfg.oracle_seed + 2, cfg.oracle_num_eval) if cfg.oracle_num_eval else None
  return Data(vocab, train, held_out, params, source)


def check_labels(labels: np.ndarray, num_classes: int, split: str) -> None:
  """With num_classes > 0, every label must lie in [0, num_classes): one clear
  error at start-up naming the split, the first offending label and the fix."""
  if num_classes <= 0 or not len(labels):
    return
  bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
  if not len(bad):
    return
  i, label = int(bad[0]), int(labels[bad[0]])
  where = f'split {split!r}: record {i} (of {len(labels)}; {len(bad)} bad in all) has label {label}'
  if label == -1:
    raise ValueError(
        f'{where}, i.e. no label, but config.data.num_classes={num_classes} asks for labelled '
        'data; use a labelled corpus (yelp_sentiment, cn_sentiment, or text_lines with '
        '"sentence<TAB>label" lines), or set config.data.num_classes=0 for an unlabelled '
        'algorithm')
  raise ValueError(
      f'{where}, outside [0, {num_classes}) of config.data.num_classes={num_classes}; set '
      f'config.data.num_classes={max(num_classes, label + 1)} or more (labels are 0, 1, ...), or '
      'fix the corpus labels')


def keep_labels(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Semi-supervised training data: the labels of round(fraction * n) sentences, chosen
  by a permutation seeded by `seed`, and -1 (unlabelled) for the others."""
  keep = int(round(fraction * len(labels)))
  out = np.full_like(labels, -1)
  chosen = np.random.default_rng(seed).permutation(len(labels))[:keep]
  out[chosen] = labels[chosen]
  return out


def eval_length(texts: list[str], vocab: Vocab, max_len: int, max_eval_len: int) -> int:
  """Eval rows' length: the longest sentence plus EOS (at least max_len), so eval
  scores whole sentences, unless max_eval_len > 0 caps it."""
  longest = 1 + max((len(vocab.split(t)) for t in texts), default=0)
  length = max(max_len, longest)
  return min(length, max_eval_len) if max_eval_len > 0 else length


def _check_data_config(cfg) -> None:
  check_tokenizer(cfg.tokenizer)
  if cfg.max_eval_len and cfg.max_eval_len < cfg.max_len:
    raise ValueError(f'config.data.max_eval_len={cfg.max_eval_len} is below config.data.max_len='
                     f'{cfg.max_len}: eval would cut sentences shorter than training does; set '
                     f'it >= {cfg.max_len}, or 0 for no eval truncation')
  if not 0 < cfg.label_fraction <= 1 or (cfg.label_fraction < 1 and cfg.num_classes < 2):
    raise ValueError(f'config.data.label_fraction={cfg.label_fraction}: the fraction of train '
                     'labels kept must lie in (0, 1], and below 1 it needs a labelled corpus '
                     '(config.data.num_classes >= 2)')
  if cfg.num_classes < 0 or cfg.num_classes == 1:
    raise ValueError(f'config.data.num_classes={cfg.num_classes}: use 0 (unlabelled) or the '
                     'number of classes, at least 2')


def build_data(config, vocab_path: str | None = None, *, save_vocab: bool = True) -> Data:
  """Loads and tokenises the corpus named by config.data.

  The vocabulary comes from `vocab_path` when that file exists (a resumed run
  must keep its ids) and is otherwise built from the training split only and,
  if `vocab_path` is given and `save_vocab` (process 0 only), saved there.
  Eval sentences are whole (or cut to config.data.max_eval_len, with a warning);
  with config.data.num_classes > 0 every label is checked to lie in
  [0, num_classes).
  """
  cfg = config.data
  _check_data_config(cfg)
  if cfg.corpus in ('webnlg', 'rotowire'):
    data = _d2t_data(config, vocab_path)
  elif cfg.corpus == 'oracle':
    data = _oracle_data(cfg)
  else:
    from jaxtextgen.data import corpora  # pylint: disable=g-import-not-at-top
    load = lambda split: corpora.load_split(cfg.corpus, cfg.corpus_dir, split,
                                            cache_dir=cfg.cache_dir or None, download=cfg.download)
    train_raw = load(cfg.train_split)
    if vocab_path and os.path.exists(vocab_path):
      vocab = Vocab.load(vocab_path)
      if vocab.tokenizer != cfg.tokenizer:
        raise ValueError(f'{vocab_path} was built with tokenizer {vocab.tokenizer!r}, but '
                         f'config.data.tokenizer={cfg.tokenizer!r}; set it back to '
                         f'{vocab.tokenizer!r} to resume this run, or use a new --workdir')
    else:
      vocab = Vocab.build(train_raw.texts, min_count=cfg.min_count, max_size=cfg.max_vocab or None,
                          tokenizer=cfg.tokenizer)
    train = tokenize(train_raw.texts, train_raw.labels, vocab, cfg.max_len, name=cfg.train_split)
    held_out = None
    if cfg.eval_split:
      eval_raw = load(cfg.eval_split)
      eval_len = eval_length(eval_raw.texts, vocab, cfg.max_len, cfg.max_eval_len)
      held_out = tokenize(eval_raw.texts, eval_raw.labels, vocab, eval_len, name=cfg.eval_split,
                          fix='raise config.data.max_eval_len (0: eval never truncates) to '
                          'score them whole')
    data = Data(vocab, train, held_out,
                provenance=corpora.provenance(cfg.corpus, cfg.corpus_dir, cfg.download))
    logging.info('data: %s', data.provenance)
  names = ('oracle train', 'oracle eval') if cfg.corpus == 'oracle' else (cfg.train_split,
                                                                          cfg.eval_split)
  check_labels(data.train.labels, cfg.num_classes, names[0])
  if cfg.label_fraction < 1:
    data = dataclasses.replace(data, train=dataclasses.replace(
        data.train, labels=keep_labels(data.train.labels, cfg.label_fraction, config.seed)))
  if data.eval is not None:
    check_labels(data.eval.labels, cfg.num_classes, names[1])
  if vocab_path and save_vocab and not os.path.exists(vocab_path):
    data.vocab.save(vocab_path)
  return data


def _d2t_data(config, vocab_path: str | None) -> Data:
  """A data-to-text corpus (`data.d2t`): the vocabulary of the training references and
  fields, one row per (entry, reference) with the source fields in `extra`."""
  from jaxtextgen.data import corpora, d2t  # pylint: disable=g-import-not-at-top
  cfg, d = config.data, config.d2t
  load = lambda split: corpora.load_entries(cfg.corpus, cfg.corpus_dir, split,
                                            cache_dir=cfg.cache_dir or None)
  train_entries = load(cfg.train_split)
  if vocab_path and os.path.exists(vocab_path):
    vocab = Vocab.load(vocab_path)
  else:
    vocab = Vocab.build(d2t.vocabulary_texts(train_entries, cfg.corpus, d.delex),
                        min_count=cfg.min_count, max_size=cfg.max_vocab or None)
  sizes = d2t.sizes(config)

  def split_of(entries):
    arrays, source = d2t.encode(entries, vocab, **sizes)
    tokens, mask = arrays.pop('tokens'), arrays.pop('mask')
    return TokenizedSplit(tokens, mask, np.full(len(tokens), -1, np.int32), extra=arrays), source

  train, train_source = split_of(train_entries)
  held_out, source = split_of(load(cfg.eval_split)) if cfg.eval_split else (None, None)
  if source is not None:  # every entity of the corpus, for the hallucination rate
    source.lexicon = sorted({e for s in (train_source, source) for ents in s.entities
                             for e in ents})
  return Data(vocab, train, held_out, provenance=corpora.provenance(cfg.corpus, cfg.corpus_dir),
              source=source)


def read_sentences(path: str, what: str) -> list[str]:
  """Non-empty lines of a UTF-8 text file ('-': stdin), stripped."""
  try:
    raw = sys.stdin.buffer.read() if path == '-' else open(path, 'rb').read()
  except FileNotFoundError:
    raise FileNotFoundError(f'{what}={path!r}: no such file; give a text file with one '
                            "sentence per line, or '-' to read stdin.") from None
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b'\n') + 1
    raise ValueError(f'{what}={path!r}: line {line} is not UTF-8 (byte offset {e.start}); '
                     're-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).') from None
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  if not lines:
    raise ValueError(f'{what}={path!r} holds no sentences; give one sentence per line.')
  return lines

"""Vocabulary and tokenisation: built from the training split only, saved beside checkpoints.

Two tokenizers (config.data.tokenizer), recorded in vocab.json so a resumed run, an eval
or a judge reads text exactly as training did:

  'word'  whitespace-separated words (the corpora of this field come pre-tokenised);
  'char'  every character is a token, and each run of whitespace is one visible token
          SPACE ('▁'), so an English character model keeps its spaces; decode maps SPACE
          back to ' ' and joins without separators (a literal '▁' in the text therefore
          decodes as a space).
"""

from __future__ import annotations

import collections
import json
import os
import re
from typing import Iterable, Sequence

import numpy as np

PAD, BOS, EOS, UNK, MASK = '<pad>', '<bos>', '<eos>', '<unk>', '<mask>'
SPECIALS = (PAD, BOS, EOS, UNK, MASK)
TOKENIZERS = ('word', 'char')
SPACE = '\u2581'  # '▁', SentencePiece's visible space

_CHARS = re.compile(r'\s+|\S')


def check_tokenizer(tokenizer: str) -> str:
  if tokenizer not in TOKENIZERS:
    raise ValueError(f"config.data.tokenizer={tokenizer!r} is not a tokenizer; use 'word' "
                     "(whitespace-separated words) or 'char' (every character a token)")
  return tokenizer


def split_tokens(text: str, tokenizer: str = 'word') -> list[str]:
  """text -> its token strings: whitespace words, or characters with each whitespace
  run as one SPACE ('a  bc' -> ['a', '▁', 'b', 'c'])."""
  if check_tokenizer(tokenizer) == 'word':
    return text.split()
  return [SPACE if t[0].isspace() else t for t in _CHARS.findall(text)]


class Vocab:
  """Maps tokens to ids. Ids 0..4 are `<pad> <bos> <eos> <unk> <mask>`.

  The synthetic oracle uses `Vocab.identity(n)` instead: token i is the string
  'i', there are no specials, and BOS is SeqGAN's start token 0 (also an
  ordinary token), EOS and PAD do not exist (`eos_id == pad_id == -1`).
  """

  def __init__(self, tokens: Sequence[str], *, specials: bool = True, bos_id: int | None = None,
               tokenizer: str = 'word'):
    self.itos = list(tokens)
    self.stoi = {t: i for i, t in enumerate(self.itos)}
    if len(self.stoi) != len(self.itos):
      raise ValueError('vocabulary has duplicate tokens')
    self.tokenizer = check_tokenizer(tokenizer)
    self.has_specials = specials
    if specials:
      if tuple(self.itos[:len(SPECIALS)]) != SPECIALS:
        raise ValueError(f'vocabulary must start with {SPECIALS}')
      self.pad_id, self.bos_id, self.eos_id, self.unk_id, self.mask_id = range(5)
    else:
      self.pad_id = self.eos_id = self.unk_id = self.mask_id = -1
      self.bos_id = 0 if bos_id is None else bos_id

  def __len__(self) -> int:
    return len(self.itos)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocab) and self.to_json() == other.to_json()

  @classmethod
  def build(cls, sentences: Iterable[str], *, min_count: int = 1, max_size: int | None = None,
            tokenizer: str = 'word') -> 'Vocab':
    """From sentences split by `tokenizer`: tokens with count >= min_count, most
    frequent first (ties broken alphabetically, so the result is stable), at most
    max_size entries including the 5 specials."""
    counts = collections.Counter(t for s in sentences for t in split_tokens(s, tokenizer))
    for sp in SPECIALS:
      counts.pop(sp, None)  # e.g. PTB's literal '<unk>' maps onto our UNK
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
      words = words[:max(0, max_size - len(SPECIALS))]
    if not words:
      raise ValueError('the vocabulary is empty: the training split has no token with '
                       f'count >= min_count={min_count}; lower config.data.min_count')
    return cls(list(SPECIALS) + words, tokenizer=tokenizer)

  @classmethod
  def identity(cls, size: int, bos_id: int = 0) -> 'Vocab':
    return cls([str(i) for i in range(size)], specials=False, bos_id=bos_id)

  def split(self, sentence: str) -> list[str]:
    """The sentence's token strings under this vocabulary's tokenizer."""
    return split_tokens(sentence, self.tokenizer)

  def encode(self, sentence: str) -> list[int]:
    """Tokens -> ids (unknown tokens -> UNK; no BOS/EOS added)."""
    if not self.has_specials:
      return [int(w) for w in sentence.split()]
    return [self.stoi.get(w, self.unk_id) for w in self.split(sentence)]

  def decode(self, ids: Sequence[int] | np.ndarray, *, strip: bool = True) -> str:
    """Ids -> text; stops at EOS and drops PAD/BOS when strip. Words are joined by
    spaces; characters without separators, SPACE read as ' '."""
    out = []
    for i in np.asarray(ids).tolist():
      if strip and self.has_specials:
        if i == self.eos_id:
          break
        if i in (self.pad_id, self.bos_id):
          continue
      out.append(self.itos[i])
    if self.tokenizer == 'char':
      return ''.join(out).replace(SPACE, ' ')
    return ' '.join(out)

  def to_json(self) -> dict:
    return {'tokens': self.itos, 'specials': self.has_specials, 'bos_id': self.bos_id,
            'tokenizer': self.tokenizer}

  def save(self, path: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(self.to_json(), f, ensure_ascii=False)
    os.replace(tmp, path)  # atomic: a kill never leaves half a vocab

  @classmethod
  def load(cls, path: str) -> 'Vocab':
    """A saved vocabulary; files written before tokenizers existed are 'word'."""
    with open(path, encoding='utf-8') as f:
      d = json.load(f)
    return cls(d['tokens'], specials=d['specials'], bos_id=d['bos_id'],
               tokenizer=d.get('tokenizer', 'word'))

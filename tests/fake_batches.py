"""A random padded batch in the trainer's format, shared by the algorithm tests.

Importable from any test module: pytest puts tests/ (the rootdir conftest's
folder) on sys.path."""

import numpy as np


def padded_batch(seed: int, batch: int, time: int, vocab: int, *, first_word: int,
                 eos: int | None = None) -> dict:
  """Words drawn from [first_word, vocab), PAD (0) after each sentence.

  With `eos`, each row has 1..time-1 words followed by EOS (the mask covers it);
  without, 1..time words and no EOS.
  """
  rs = np.random.RandomState(seed)
  lengths = rs.randint(1, time if eos is not None else time + 1, size=batch)
  pos = np.arange(time)[None]
  tokens = np.where(pos < lengths[:, None], rs.randint(first_word, vocab, size=(batch, time)), 0)
  if eos is not None:
    tokens[np.arange(batch), lengths] = eos
    lengths = lengths + 1
  return {'tokens': tokens.astype(np.int32),
          'mask': (pos < lengths[:, None]).astype(np.float32),
          'label': np.zeros(batch, np.int32), 'weight': np.ones(batch, np.float32)}

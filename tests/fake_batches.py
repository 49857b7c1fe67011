"""A random padded batch in the trainer's format and a tiny GAN config, shared by the
algorithm tests.

Importable from any test module: pytest puts tests/ (the rootdir conftest's
folder) on sys.path."""

import numpy as np

from jaxtextgen.config import base_config


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


def tiny_gan_config(vocab: int, time: int, num_train_steps: int, **gan):
  """base_config with an 8-unit generator, a 3-width CNN of 3 filters each, vocabulary
  ids PAD 0 / BOS 1 / EOS 2, and `gan` overrides of config.gan."""
  c = base_config()
  c.model.emb_dim, c.model.hidden_size = 8, 8
  c.data.max_len = time
  c.num_train_steps = num_train_steps
  g = c.gan
  g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 8, (1, 2, 3), (3, 3, 3)
  g.update(gan)
  with c.unlocked():
    c.vocab.update(dict(size=vocab, bos_id=1, eos_id=2, pad_id=0))
  return c

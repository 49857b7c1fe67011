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


def without_rates(rows):
  """Metric rows without the throughput columns, which depend on wall time."""
  return [{k: v for k, v in r.items() if k not in ('steps_per_s', 'tokens_per_s')} for r in rows]


def terminated_at(batch_index):
  """A trainer.pipeline.train_iterator replacement that sends SIGTERM as it hands out
  batch `batch_index` (counted from the step the run starts at)."""
  import os  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top
  from jaxtextgen.train import trainer  # pylint: disable=g-import-not-at-top
  original = trainer.pipeline.train_iterator

  def iterator(*args, **kwargs):
    for i, batch in enumerate(original(*args, **kwargs)):
      if i == batch_index:
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch
  return iterator


def run_schedule(algo, config, state, rng, batch_fn):
  """Runs algo.schedule(config) update by update, each phase's update jitted once,
  fused updates on their batches stacked [k, B, T]; batch i is batch_fn(i). Yields
  (phase name, old state, new state, metrics), all on the host."""
  import functools  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  i = 0
  for phase in algo.schedule(config).resolve(config.num_train_steps).phases:
    fn = jax.jit(functools.partial(phase.update, config=config))
    for _ in range(phase.updates):
      bs = [batch_fn(i + j) for j in range(phase.batches)]
      i += phase.batches
      batch = bs[0] if phase.batches == 1 else {k: jnp.stack([b[k] for b in bs]) for k in bs[0]}
      new, metrics = fn(state, batch, rng)
      yield phase.name, jax.device_get(state), jax.device_get(new), jax.device_get(metrics)
      state = new

"""Token corruptions for denoising autoencoders and word dropout, on device.

Pure functions of (uniform noise, tokens, mask): they run inside a jitted
train step, which draws the noise from the step's key. Each takes a batch of
sentences laid out as the pipeline makes them (`tokens` int32 [batch, time],
`mask` [batch, time] with 1 on the words and on the EOS) and corrupts only the
*words*: EOS and padding never move, never vanish and are never replaced, so a
corrupted sentence is still a well-formed input and the clean one stays the
target.

    u = jax.random.uniform(key, (3,) + tokens.shape)
    noisy_tokens, noisy_mask = corrupt(u, tokens, mask, mask_prob=0.1, drop_prob=0.1,
                                       shuffle_k=3, mask_id=4, eos_id=2, pad_id=0)

References:
  Shen et al., Style transfer from non-parallel text by cross-alignment, 2017;
  Lample et al., Unsupervised machine translation using monolingual corpora
  only, ICLR 2018, Sec. 2.3 (word drop and local shuffle);
  Bowman et al., Generating sentences from a continuous space, CoNLL 2016
  (word dropout of decoder inputs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def word_positions(tokens: jax.Array, mask: jax.Array, eos_id: int) -> jax.Array:
  """bool [batch, time]: real tokens that are not EOS (eos_id -1: no EOS, e.g. the oracle)."""
  return (mask > 0) & (tokens != eos_id)


def replace_tokens(u: jax.Array, tokens: jax.Array, where: jax.Array, prob,
                   replacement_id: int) -> jax.Array:
  """Replaces each token with `replacement_id` with probability `prob` where `where` is set.

  Masking with <mask> (dae) and word dropout with <unk> (vae decoder inputs)
  are this one operation with different positions and ids.

  Args:
    u: float [batch, time] uniform(0, 1) noise.
    tokens: int32 [batch, time].
    where: bool [batch, time] positions that may be replaced.
    prob: replacement probability (may be traced).
    replacement_id: the token written in.
  """
  return jnp.where(where & (u < prob), replacement_id, tokens).astype(tokens.dtype)


def drop_words(u: jax.Array, tokens: jax.Array, mask: jax.Array, *, prob, eos_id: int,
               pad_id: int) -> tuple[jax.Array, jax.Array]:
  """Deletes each word with probability `prob`; the survivors close up in order.

  Args:
    u: float [batch, time] uniform(0, 1) noise.
    tokens, mask: the batch.

  Returns:
    (tokens, mask) of the shortened sentences: EOS right after the last kept
    word, `pad_id` and mask 0 after it.
  """
  t = tokens.shape[1]
  pos = jnp.arange(t)[None, :]
  dropped = word_positions(tokens, mask, eos_id) & (u < prob)
  keep = (mask > 0) & ~dropped
  # A stable order: kept tokens first in their original order, the rest after.
  order = jnp.argsort(jnp.where(keep, pos, t + pos), axis=1)
  new_len = keep.sum(axis=1, keepdims=True)
  new_mask = (pos < new_len).astype(mask.dtype)
  new_tokens = jnp.where(new_mask > 0, jnp.take_along_axis(tokens, order, axis=1), pad_id)
  return new_tokens.astype(tokens.dtype), new_mask


def shuffle_words(u: jax.Array, tokens: jax.Array, mask: jax.Array, *, k: int,
                  eos_id: int) -> jax.Array:
  """Local shuffle: a random permutation sigma of the words with |sigma(i) - i| <= k.

  Lample et al.'s construction: sort the words by i + U(0, k + 1). Two words
  can only swap when their offsets differ by at most k, so no word moves more
  than k places; k = 0 is the identity. EOS and padding keep their places.

  Args:
    u: float [batch, time] uniform(0, 1) noise.
    tokens, mask: the batch.
    k: the largest displacement (static int).
  """
  t = tokens.shape[1]
  pos = jnp.arange(t)[None, :].astype(jnp.float32)
  words = word_positions(tokens, mask, eos_id)
  # Words come first in every sentence, so placing non-words after all of them
  # (offset 2t + pos) leaves EOS and padding exactly where they were.
  key = jnp.where(words, pos + (k + 1) * u, 2 * t + pos)
  return jnp.take_along_axis(tokens, jnp.argsort(key, axis=1), axis=1)


def corrupt(u: jax.Array, tokens: jax.Array, mask: jax.Array, *, mask_prob=0.0,
            drop_prob=0.0, shuffle_k: int = 0, mask_id: int = -1, eos_id: int = -1,
            pad_id: int = 0) -> tuple[jax.Array, jax.Array]:
  """The dae's input noise: word drop, then <mask>, then local shuffle (each off at 0).

  Dropping first makes `mask_prob` a rate over the surviving words, and
  shuffling last moves <mask> tokens like any other word.

  Args:
    u: float [3, batch, time] uniform(0, 1) noise, one slice per corruption
      (drop, mask, shuffle); the caller draws it, e.g. for the global batch.
    tokens, mask: the clean batch (int32 / float [batch, time]).
    mask_prob: probability of replacing a word with `mask_id`.
    drop_prob: probability of deleting a word.
    shuffle_k: largest displacement of the local shuffle (static; 0: off).
    mask_id, eos_id, pad_id: special ids (config.vocab).

  Returns:
    (tokens, mask) of the corrupted batch, same shapes.
  """
  if mask_prob and mask_id < 0:
    raise ValueError('mask_prob > 0 needs a <mask> token, and this vocabulary has none '
                     '(the synthetic oracle); set config.ae.mask_prob=0.')
  if drop_prob:
    tokens, mask = drop_words(u[0], tokens, mask, prob=drop_prob, eos_id=eos_id, pad_id=pad_id)
  if mask_prob:
    tokens = replace_tokens(u[1], tokens, word_positions(tokens, mask, eos_id), mask_prob,
                            mask_id)
  if shuffle_k:
    tokens = shuffle_words(u[2], tokens, mask, k=shuffle_k, eos_id=eos_id)
  return tokens, mask

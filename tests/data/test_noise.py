"""The dae corruptions and word dropout, each on a hand-made sentence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.data import noise

EOS, PAD, MASK, UNK = 2, 0, 4, 3
# "10 11 12 13 14 <eos>" padded to 8.
TOKENS = np.array([[10, 11, 12, 13, 14, EOS, PAD, PAD]], np.int32)
MASK_ = np.array([[1, 1, 1, 1, 1, 1, 0, 0]], np.float32)
# Small noise at positions 0 and 2 (and at EOS / padding, which must not matter).
U = np.array([[0.05, 0.9, 0.05, 0.9, 0.9, 0.05, 0.05, 0.05]], np.float32)


def test_mask_replaces_exactly_the_chosen_words():
  words = noise.word_positions(TOKENS, MASK_, EOS)
  out = noise.replace_tokens(U, TOKENS, words, 0.1, MASK)
  np.testing.assert_array_equal(out, [[MASK, 11, MASK, 13, 14, EOS, PAD, PAD]])
  np.testing.assert_array_equal(noise.replace_tokens(U, TOKENS, words, 0.0, MASK), TOKENS)
  np.testing.assert_array_equal(noise.replace_tokens(U, TOKENS, words, 1.0, MASK),
                                [[MASK] * 5 + [EOS, PAD, PAD]])


def test_drop_closes_up_in_order_and_keeps_eos():
  toks, mask = noise.drop_words(U, TOKENS, MASK_, prob=0.1, eos_id=EOS, pad_id=PAD)
  np.testing.assert_array_equal(toks, [[11, 13, 14, EOS, PAD, PAD, PAD, PAD]])
  np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 0, 0, 0, 0]])
  toks, mask = noise.drop_words(U, TOKENS, MASK_, prob=1.0, eos_id=EOS, pad_id=PAD)
  np.testing.assert_array_equal(toks, [[EOS] + [PAD] * 7])
  np.testing.assert_array_equal(mask.sum(), 1)


def test_local_shuffle_moves_no_word_more_than_k():
  u = np.array([[0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
  # Keys 0 + 3 * 0.9 = 2.7, 1, 2, 3, 4: the first word moves two places right.
  np.testing.assert_array_equal(noise.shuffle_words(u, TOKENS, MASK_, k=2, eos_id=EOS),
                                [[11, 12, 10, 13, 14, EOS, PAD, PAD]])
  many = jax.random.uniform(jax.random.key(0), (2000, 8))
  batch = np.repeat(TOKENS, 2000, axis=0)
  for k in (0, 1, 3):
    out = np.asarray(noise.shuffle_words(many, batch, np.repeat(MASK_, 2000, 0), k=k, eos_id=EOS))
    np.testing.assert_array_equal(out[:, 5:], batch[:, 5:])  # EOS and padding stay
    np.testing.assert_array_equal(np.sort(out[:, :5], axis=1), batch[:, :5])  # a permutation
    displacement = np.abs(out[:, :5] - 10 - np.arange(5))
    assert displacement.max() == k


def test_corrupt_combines_and_checks_the_mask_token():
  u = np.stack([U, U, np.zeros_like(U)])
  toks, mask = noise.corrupt(u, TOKENS, MASK_, mask_prob=0.1, drop_prob=0.1, shuffle_k=0,
                             mask_id=MASK, eos_id=EOS, pad_id=PAD)
  # Dropped 10 and 12, then masked the survivors sitting at positions 0 and 2.
  np.testing.assert_array_equal(toks, [[MASK, 13, MASK, EOS, PAD, PAD, PAD, PAD]])
  np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 0, 0, 0, 0]])
  toks, mask = noise.corrupt(u, TOKENS, MASK_, eos_id=EOS)
  np.testing.assert_array_equal(toks, TOKENS)
  with pytest.raises(ValueError, match='mask_prob=0'):
    noise.corrupt(u, TOKENS, MASK_, mask_prob=0.1, mask_id=-1)


def test_replacement_rate_is_the_probability():
  tokens = jnp.full((500, 40), 7, jnp.int32)
  where = jnp.arange(40)[None, :] % 2 == 0
  out = noise.replace_tokens(jax.random.uniform(jax.random.key(1), tokens.shape), tokens,
                             where, 0.3, UNK)
  rate = float((out == UNK).sum() / where.sum() / 500)
  assert abs(rate - 0.3) < 0.01
  assert not bool(((out == UNK) & ~where).any())

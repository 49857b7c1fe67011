"""Device sentence BLEU must equal nltk's sentence_bleu on token ids."""
import random
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

from jaxtextgen.metrics.device_bleu import sentence_bleu

TOL = 1e-5


def nltk_bleu(refs, hyp, max_n, smooth):
  smoothing = SmoothingFunction().method2 if smooth else SmoothingFunction().method0
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # method0 warns on zero counts
    return float(nltk_sentence_bleu(refs, hyp, weights=(1.0 / max_n,) * max_n,
                                    smoothing_function=smoothing))


def random_batch(seed, batch, vocab, t=12, t2=14, max_refs=4):
  """Padded arrays (padding holds random ids) and the unpadded lists."""
  rng = random.Random(seed)
  r = max_refs
  hyp = np.array([[rng.randrange(vocab) for _ in range(t)] for _ in range(batch)], np.int32)
  refs = np.array([[[rng.randrange(vocab) for _ in range(t2)] for _ in range(r)]
                   for _ in range(batch)], np.int32)
  hyp_len = np.zeros(batch, np.int32)
  ref_len = np.zeros((batch, r), np.int32)
  for i in range(batch):
    hyp_len[i] = rng.randint(0, t)
    n_refs = rng.randint(1, r)
    slots = rng.sample(range(r), n_refs)  # absent references anywhere among the R slots
    for k in slots:
      ref_len[i, k] = rng.randint(1, 12)
  hyps_l = [hyp[i, :hyp_len[i]].tolist() for i in range(batch)]
  refs_l = [[refs[i, k, :ref_len[i, k]].tolist() for k in range(r) if ref_len[i, k] > 0]
            for i in range(batch)]
  return (hyp, hyp_len, refs, ref_len), hyps_l, refs_l


@pytest.mark.parametrize('max_n', [2, 4])
@pytest.mark.parametrize('smooth', [True, False])
@pytest.mark.parametrize('vocab', [5, 6])
def test_matches_nltk(max_n, smooth, vocab):
  arrays, hyps_l, refs_l = random_batch(seed=100 * max_n + vocab + smooth, batch=200,
                                        vocab=vocab)
  got = np.asarray(sentence_bleu(*map(jnp.asarray, arrays), max_n=max_n, smooth=smooth))
  want = np.array([nltk_bleu(r, h, max_n, smooth) for h, r in zip(hyps_l, refs_l)])
  assert got.dtype == np.float32 and got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
  assert (want > 0).sum() > 20  # the comparison is not all zeros
  assert ((got >= 0) & (got <= 1)).all()


def test_edge_cases_match_nltk():
  # empty hypothesis, hypothesis shorter than n, clipping of a repeated token,
  # no overlap, length ties between references, hypothesis longer than all refs.
  cases = [
      ([], [[1, 2, 3]]),
      ([1], [[1, 2, 3]]),
      ([1, 2], [[1, 2], [3, 1, 2, 4]]),
      ([0, 0, 0, 0, 0], [[0, 0, 1], [0, 2, 0, 0]]),
      ([4, 4, 4], [[1, 2, 3]]),
      ([1, 2, 3, 4], [[1, 2, 3], [1, 2, 3, 4, 0]]),
      ([1, 2, 3, 4, 1, 2, 3, 4, 1], [[1, 2, 3, 4], [2, 3]]),
  ]
  t, t2, r = 10, 6, 2
  hyp = np.full((len(cases), t), 7, np.int32)
  refs = np.full((len(cases), r, t2), 1, np.int32)
  hyp_len = np.zeros(len(cases), np.int32)
  ref_len = np.zeros((len(cases), r), np.int32)
  for i, (h, rs) in enumerate(cases):
    hyp[i, :len(h)], hyp_len[i] = h, len(h)
    for k, ref in enumerate(rs):
      refs[i, k, :len(ref)], ref_len[i, k] = ref, len(ref)
  for max_n in (2, 4):
    for smooth in (True, False):
      got = np.asarray(sentence_bleu(jnp.asarray(hyp), jnp.asarray(hyp_len), jnp.asarray(refs),
                                     jnp.asarray(ref_len), max_n=max_n, smooth=smooth))
      want = np.array([nltk_bleu(rs, h, max_n, smooth) for h, rs in cases])
      np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=f'{max_n=} {smooth=}')


def test_jit_and_batch_independence():
  arrays, _, _ = random_batch(seed=7, batch=16, vocab=5)
  hyp, hyp_len, refs, ref_len = map(jnp.asarray, arrays)
  f = jax.jit(sentence_bleu, static_argnames=('max_n', 'smooth'))
  full = np.asarray(f(hyp, hyp_len, refs, ref_len, max_n=4, smooth=True))
  np.testing.assert_allclose(full, np.asarray(sentence_bleu(hyp, hyp_len, refs, ref_len)),
                             rtol=0, atol=1e-7)
  # Row i alone gives the same value as in the batch.
  for i in range(4):
    one = f(hyp[i:i + 1], hyp_len[i:i + 1], refs[i:i + 1], ref_len[i:i + 1], max_n=4,
            smooth=True)
    np.testing.assert_allclose(np.asarray(one)[0], full[i], rtol=0, atol=1e-7)
  # Changing the other rows leaves row 0 unchanged.
  perm = jnp.asarray([0] + list(range(15, 0, -1)))
  other = np.asarray(f(hyp[perm], hyp_len[perm], refs[perm], ref_len[perm], max_n=4,
                       smooth=True))
  np.testing.assert_allclose(other, full[np.asarray(perm)], rtol=0, atol=1e-7)
  garbage = f(hyp.at[1:].set(0), hyp_len.at[1:].set(12), refs.at[1:].set(0),
              ref_len.at[1:].set(1), max_n=4, smooth=True)
  np.testing.assert_allclose(np.asarray(garbage)[0], full[0], rtol=0, atol=1e-7)


@pytest.mark.parametrize('smooth', [True, False])
def test_identical_is_one(smooth):
  seq = [3, 1, 4, 1, 5, 2, 6, 5, 3]
  hyp = jnp.asarray([seq + [0, 0, 0]], jnp.int32)
  refs = jnp.asarray([[seq + [9], [0] * 10]], jnp.int32)
  got = sentence_bleu(hyp, jnp.asarray([9]), refs, jnp.asarray([[9, 0]]), smooth=smooth)
  np.testing.assert_allclose(np.asarray(got), [1.0], rtol=0, atol=1e-6)

"""`sampler.beam_search` for any decoder: exhaustive with enough beams, greedy with one,
scores that are the chosen sentences' log-probabilities."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.models import decoder as decoder_lib
from jaxtextgen.models.sampler import beam_search, sample

V, L, B, C = 5, 3, 2, 4
PAD, BOS, EOS = 0, 1, 2


def _model(kind):
  dec = decoder_lib.make(kind, vocab_size=V, emb_dim=8, hidden_size=8, num_layers=1,
                         dropout=0.0, conditional=True, num_heads=2, mlp_dim=16,
                         positions='learned', max_positions=16, dtype=jnp.float32, cln_hidden=0)
  cond = jax.random.normal(jax.random.key(1), (B, C))
  params = dec.init(jax.random.key(0), jnp.ones((B, L), jnp.int32), cond)
  # Sharper distributions than at init, so the search has something to find.
  params = jax.tree.map(lambda x: x * 3.0, params)
  return dec, params, cond


def _log_probs(dec, params, cond, seqs):
  """Teacher-forced log p of each sentence [n, L] up to and including its first EOS, in
  one call (cond [1, C] for all)."""
  seqs = np.asarray(seqs)
  inputs = np.concatenate([np.full((len(seqs), 1), BOS), seqs[:, :-1]], axis=1)
  logp = jax.jit(dec.apply)(params, jnp.asarray(inputs), jnp.repeat(cond, len(seqs), 0))
  logp = np.asarray(jax.nn.log_softmax(logp))
  picked = np.take_along_axis(logp, seqs[..., None], axis=-1)[..., 0]
  after_eos = np.cumsum(seqs == EOS, axis=1) - (seqs == EOS) > 0
  return np.where(after_eos, 0.0, picked).sum(-1)


def _canonical(seq):
  """PAD after the first EOS (what a decoder emits)."""
  seq = list(seq)
  if EOS in seq:
    i = seq.index(EOS)
    seq = seq[:i + 1] + [PAD] * (len(seq) - i - 1)
  return tuple(seq)


@pytest.mark.parametrize('kind', ['lstm', 'transformer'])
def test_enough_beams_find_the_most_likely_sentence(kind):
  dec, params, cond = _model(kind)
  tokens, score = beam_search(dec, params, batch=B, beam=V ** L, length=L, bos_id=BOS,
                              eos_id=EOS, pad_id=PAD, cond=cond)
  for row in range(B):
    c = cond[row:row + 1]
    candidates = sorted({_canonical(s) for s in itertools.product(range(V), repeat=L)})
    scores = _log_probs(dec, params, c, candidates)
    assert tuple(np.asarray(tokens[row])) == candidates[int(np.argmax(scores))]
    np.testing.assert_allclose(score[row], scores.max(), rtol=1e-4)


@pytest.mark.parametrize('kind', ['lstm', 'transformer'])
def test_one_beam_is_greedy(kind):
  dec, params, cond = _model(kind)
  tokens, score = beam_search(dec, params, batch=B, beam=1, length=L, bos_id=BOS, eos_id=EOS,
                              pad_id=PAD, cond=cond)
  greedy = sample(dec, params, jax.random.key(0), batch=B, length=L, bos_id=BOS, eos_id=EOS,
                  pad_id=PAD, greedy=True, cond=cond)
  np.testing.assert_array_equal(tokens, greedy.tokens)
  np.testing.assert_allclose(score, greedy.log_probs.sum(-1), rtol=1e-5)
  wider, wider_score = beam_search(dec, params, batch=B, beam=4, length=L, bos_id=BOS,
                                   eos_id=EOS, pad_id=PAD, cond=cond)
  assert np.all(np.asarray(wider_score) >= np.asarray(score) - 1e-5)


@pytest.mark.parametrize('kind', ['lstm', 'transformer'])
def test_n_best_returns_every_final_hypothesis_with_the_best_first_by_score(kind):
  dec, params, cond = _model(kind)
  kw = dict(batch=B, beam=4, length=L, bos_id=BOS, eos_id=EOS, pad_id=PAD, cond=cond,
            length_penalty=1.0)
  best, _ = beam_search(dec, params, **kw)
  tokens, ranked = beam_search(dec, params, n_best=True, **kw)
  assert tokens.shape == (B, 4, L) and ranked.shape == (B, 4)
  pick = np.take_along_axis(np.asarray(tokens), np.argmax(ranked, 1)[:, None, None], 1)[:, 0]
  np.testing.assert_array_equal(pick, best)
  for row in range(B):  # each score: the hypothesis's log p / its length up to EOS
    seqs = np.asarray(tokens[row])
    assert len({tuple(s) for s in seqs}) == 4
    lengths = [list(s).index(EOS) + 1 if EOS in s else L for s in seqs]
    np.testing.assert_allclose(ranked[row],
                               _log_probs(dec, params, cond[row:row + 1], seqs) / lengths,
                               rtol=1e-4)

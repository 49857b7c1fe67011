"""The shared sampler on both decoders: nucleus filtering, temperature / top-k against the
distributions they define, greedy decoding of the Transformer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.models import decoder as decoder_lib
from jaxtextgen.models.sampler import sample, top_p_mask

V, B, T = 11, 4, 6


def test_top_p_mask_keeps_the_smallest_set_reaching_p():
  probs = np.array([0.05, 0.4, 0.25, 0.2, 0.1])
  logits = jnp.log(jnp.asarray(probs))[None]
  kept = np.isfinite(np.asarray(top_p_mask(logits, 0.6)))[0]
  np.testing.assert_array_equal(kept, [False, True, True, False, False])  # .4 + .25 >= .6
  kept = np.isfinite(np.asarray(top_p_mask(logits, 0.66)))[0]
  np.testing.assert_array_equal(kept, [False, True, True, True, False])  # .65 < .66
  kept = np.isfinite(np.asarray(top_p_mask(logits, 0.01)))[0]
  np.testing.assert_array_equal(kept, [False, True, False, False, False])  # the top one stays
  # Kept logits are unchanged (the draw renormalises them).
  assert float(top_p_mask(logits, 0.6)[0, 1]) == float(logits[0, 1])


def _decoder(kind, **kw):
  dec = decoder_lib.make(kind, vocab_size=V, emb_dim=8, hidden_size=8, num_layers=2,
                         dropout=0.0, dtype=jnp.float32, num_heads=2, mlp_dim=16,
                         max_positions=16, **kw)
  toks = jnp.zeros((B, T), jnp.int32)
  params = dec.init(jax.random.key(0), toks)
  # Spread the logits so that the nucleus is a strict subset at every step.
  params = jax.tree.map(lambda x: x * 3.0, params)
  return dec, params


@pytest.mark.parametrize('kind', decoder_lib.DECODERS)
def test_nucleus_samples_stay_inside_the_top_p_set(kind):
  dec, params = _decoder(kind)
  p = 0.5
  out = sample(dec, params, jax.random.key(1), batch=256, length=T, bos_id=1, top_p=p)
  logits = dec.apply(params, jnp.concatenate([jnp.ones((256, 1), jnp.int32),
                                              out.tokens[:, :-1]], axis=1))
  allowed = np.isfinite(np.asarray(top_p_mask(logits, p)))
  chosen = np.take_along_axis(allowed, np.asarray(out.tokens)[..., None], -1)[..., 0]
  assert chosen.all()
  assert allowed.sum(-1).min() < V  # the filter did cut something


@pytest.mark.parametrize('kind', decoder_lib.DECODERS)
def test_greedy_follows_the_teacher_forced_argmax(kind):
  dec, params = _decoder(kind)
  out = sample(dec, params, jax.random.key(2), batch=B, length=T, bos_id=1, greedy=True)
  inputs = jnp.concatenate([jnp.ones((B, 1), jnp.int32), out.tokens[:, :-1]], axis=1)
  np.testing.assert_array_equal(np.argmax(dec.apply(params, inputs), -1), out.tokens)


def test_temperature_and_top_k_draw_from_the_distributions_they_define():
  """First-token frequencies of 40k draws against softmax(logits / tau), and against the
  renormalised top-k softmax: within 4 standard errors per token."""
  dec, params = _decoder('lstm')
  n = 40_000
  first = dec.apply(params, jnp.ones((1, 1), jnp.int32))[0, 0]
  for kw, probs in (
      (dict(temperature=0.5), jax.nn.softmax(first / 0.5)),
      (dict(top_k=3), jax.nn.softmax(jnp.where(first >= jnp.sort(first)[-3], first, -jnp.inf)))):
    out = sample(dec, params, jax.random.key(3), batch=n, length=1, bos_id=1, **kw)
    freq = np.bincount(np.asarray(out.tokens[:, 0]), minlength=V) / n
    probs = np.asarray(probs, np.float64)
    se = np.sqrt(probs * (1 - probs) / n) + 1e-12
    assert np.all(np.abs(freq - probs) <= 4 * se + 1e-9), (kw, freq, probs)

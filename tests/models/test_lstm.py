"""The shared LSTM decoder/encoder and the sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.models.lstm import LSTMDecoder, LSTMEncoder
from jaxtextgen.models.sampler import sample

V = 13


def _decoder(**kw):
  kw = {'vocab_size': V, 'emb_dim': 8, 'hidden_size': 16, **kw}
  dec = LSTMDecoder(**kw)
  toks = jax.random.randint(jax.random.key(0), (3, 7), 0, V)
  cond = jax.random.normal(jax.random.key(1), (3, 5))
  variables = dec.init(jax.random.key(2), toks, cond)
  return dec, variables, toks, cond


@pytest.mark.parametrize('layers,to_state,to_input', [(1, False, False), (2, True, True),
                                                      (3, False, True)])
def test_teacher_forced_equals_step_by_step(layers, to_state, to_input):
  dec, v, toks, cond = _decoder(num_layers=layers, cond_to_state=to_state,
                                cond_to_input=to_input)
  full, hidden = dec.apply(v, toks, cond, return_hidden=True)
  state = dec.apply(v, 3, cond, method='init_cache')
  for t in range(toks.shape[1]):
    logits, state = dec.apply(v, toks[:, t], state, cond, method='step')
    np.testing.assert_allclose(logits, full[:, t], atol=1e-5)
    # The hidden states of the teacher-forced pass are the top h after each prefix.
    np.testing.assert_allclose(state[-1][1], hidden[:, t], atol=1e-5)


def test_condition_changes_output_only_when_wired():
  dec, v, toks, cond = _decoder(cond_to_state=True)
  a = dec.apply(v, toks, cond)
  b = dec.apply(v, toks, cond + 1.0)
  assert np.abs(a - b).max() > 1e-4
  plain, vp, _, _ = _decoder()
  np.testing.assert_array_equal(plain.apply(vp, toks, cond), plain.apply(vp, toks, cond + 1.0))


def test_soft_inputs_of_one_hot_equal_token_inputs():
  dec, v, toks, _ = _decoder(num_layers=2)
  np.testing.assert_allclose(dec.apply(v, jax.nn.one_hot(toks, V), soft_inputs=True),
                             dec.apply(v, toks), atol=1e-5)


def test_dropout_only_in_training():
  dec, v, toks, _ = _decoder(dropout=0.5, num_layers=2)
  np.testing.assert_array_equal(dec.apply(v, toks), dec.apply(v, toks))
  a = dec.apply(v, toks, train=True, rngs={'dropout': jax.random.key(0)})
  b = dec.apply(v, toks, train=True, rngs={'dropout': jax.random.key(1)})
  assert np.abs(a - b).max() > 1e-4


def _sample(dec, v, **kw):
  kw = {'batch': 6, 'length': 9, 'bos_id': 1, 'eos_id': 2, 'pad_id': 0, **kw}
  return sample(dec, v, jax.random.key(kw.pop('seed', 0)), **kw)


def test_sampler_shapes_eos_padding_and_determinism():
  dec, v, _, _ = _decoder()
  s = _sample(dec, v, length=30, batch=64)
  toks, mask = np.asarray(s.tokens), np.asarray(s.mask)
  assert toks.shape == mask.shape == (64, 30)
  for row, m in zip(toks, mask):
    n = int(m.sum())
    assert np.all(m[:n] == 1) and np.all(m[n:] == 0)
    if n < 30:
      assert row[n - 1] == 2 and np.all(row[n:] == 0)  # EOS then padding
    assert 2 not in row[:n - 1]
  np.testing.assert_array_equal(toks, _sample(dec, v, length=30, batch=64).tokens)
  assert not np.array_equal(toks, _sample(dec, v, length=30, batch=64, seed=1).tokens)


def test_greedy_follows_teacher_forced_argmax_and_top1_equals_greedy():
  dec, v, _, _ = _decoder()
  g = _sample(dec, v, greedy=True, eos_id=-1)
  inputs = jnp.concatenate([jnp.ones((6, 1), jnp.int32), g.tokens[:, :-1]], axis=1)
  np.testing.assert_array_equal(g.tokens, jnp.argmax(dec.apply(v, inputs), -1))
  np.testing.assert_array_equal(_sample(dec, v, top_k=1, eos_id=-1).tokens, g.tokens)


def test_sampler_log_probs_match_teacher_forcing():
  dec, v, _, _ = _decoder()
  s = _sample(dec, v, temperature=0.7)
  inputs = jnp.concatenate([jnp.ones((6, 1), jnp.int32), s.tokens[:, :-1]], axis=1)
  logp = jax.nn.log_softmax(dec.apply(v, inputs) / 0.7)
  expect = jnp.take_along_axis(logp, s.tokens[..., None], -1)[..., 0] * s.mask
  np.testing.assert_allclose(s.log_probs, expect, atol=1e-5)


def test_forced_positions_are_kept():
  dec, v, _, _ = _decoder()
  forced = jnp.full((6, 9), 7, jnp.int32)
  fmask = jnp.arange(9)[None, :] < jnp.arange(6)[:, None]  # row i: first i tokens forced
  s = _sample(dec, v, eos_id=-1, forced_tokens=forced, forced_mask=jnp.broadcast_to(fmask, (6, 9)))
  for i in range(6):
    assert np.all(np.asarray(s.tokens[i, :i]) == 7)


def test_encoder_ignores_padding_and_reads_backward():
  enc = LSTMEncoder(V, 8, 16, bidirectional=True)
  toks = jnp.array([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12]])
  mask = jnp.array([[1, 1, 1, 1, 0, 0], [1] * 6])
  v = enc.init(jax.random.key(0), toks, mask)
  out = enc.apply(v, toks, mask)
  assert out.shape == (2, 32)
  # Other values in the padding, or no padding at all, give the same summary.
  np.testing.assert_allclose(enc.apply(v, toks.at[0, 4:].set(9), mask)[0], out[0], atol=1e-6)
  np.testing.assert_allclose(enc.apply(v, toks[:1, :4], mask[:1, :4])[0], out[0], atol=1e-6)
  # The backward half is the forward cell of `lstm_bwd` over the reversed sentence.
  fwd_only = LSTMEncoder(V, 8, 16)
  vb = {'params': {'Embed_0': v['params']['Embed_0'], 'lstm_fwd': v['params']['lstm_bwd']}}
  np.testing.assert_allclose(fwd_only.apply(vb, toks[:1, 3::-1], mask[:1, :4])[0], out[0, 16:],
                             atol=1e-6)


@pytest.mark.parametrize('vocab', [1, 7, 50, 5003])
def test_categorical_matches_softmax_and_skips_impossible_tokens(vocab):
  from jaxtextgen.models.sampler import categorical
  rs = np.random.RandomState(vocab)
  logits = rs.normal(size=vocab).astype(np.float32) * 2
  if vocab > 1:
    logits[rs.choice(vocab, max(1, vocab // 5), replace=False)] = -np.inf
  n = 100_000
  draws = np.asarray(categorical(jax.random.key(0), jnp.broadcast_to(jnp.asarray(logits), (n, vocab))))
  assert draws.shape == (n,) and draws.dtype == np.int32
  counts = np.bincount(draws, minlength=vocab)
  p = np.exp(logits.astype(np.float64) - logits.max())
  p /= p.sum()
  assert np.all(counts[p == 0] == 0)
  if vocab == 1:
    return
  # Pearson's chi-square goodness of fit; tokens expected fewer than 5 times pooled into one
  # bin. A sampler off by a few percent on a frequent token fails at p < 1e-4.
  from scipy import stats  # pylint: disable=g-import-not-at-top
  expected = n * p
  big = expected >= 5
  obs = np.append(counts[big], counts[~big].sum())
  exp = np.append(expected[big], expected[~big].sum())
  keep = exp > 0
  assert obs[~keep].sum() == 0
  assert stats.chisquare(obs[keep], exp[keep]).pvalue > 1e-4


@pytest.mark.parametrize('reverse', [False, True])
def test_hand_written_backprop_through_time_equals_autodiff(reverse):
  """The LSTM layer's custom VJP (per-step dgates, one weight-gradient matmul after the
  scan) against autodiff of the very same forward scan, with cotangents on every
  step's c and h and gradients for the initial state."""
  from jaxtextgen.models import lstm  # pylint: disable=g-import-not-at-top
  b, t, h = 3, 6, 5
  ks = jax.random.split(jax.random.key(7), 7)
  gx = jax.random.normal(ks[0], (b, t, 4 * h))
  c0, h0 = jax.random.normal(ks[1], (b, h)), jax.random.normal(ks[2], (b, h))
  w_h = jax.random.normal(ks[3], (h, 4 * h)) * 0.5
  dcs, dhs = jax.random.normal(ks[4], (b, t, h)), jax.random.normal(ks[5], (b, t, h))

  def reference(gx, c0, h0, w_h):  # plain autodiff of the forward scan
    g = jnp.swapaxes(gx, 0, 1)
    g = g[::-1] if reverse else g
    cs, hs, _ = lstm._lstm_forward(g, c0, h0, w_h, 1)  # pylint: disable=protected-access
    cs, hs = (cs[::-1], hs[::-1]) if reverse else (cs, hs)
    return jnp.swapaxes(cs, 0, 1), jnp.swapaxes(hs, 0, 1)

  custom = lambda *a: lstm._scan_layer(*a, reverse=reverse)  # pylint: disable=protected-access
  out1, vjp1 = jax.vjp(custom, gx, c0, h0, w_h)
  out2, vjp2 = jax.vjp(reference, gx, c0, h0, w_h)
  for a, r in zip(out1, out2):
    np.testing.assert_allclose(a, r, atol=1e-6)
  for name, a, r in zip(('gates_x', 'c0', 'h0', 'w_h'), vjp1((dcs, dhs)), vjp2((dcs, dhs))):
    assert float(jnp.abs(r).max()) > 1e-3, name  # every input really gets a gradient
    np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5, err_msg=name)


def test_token_nll_equals_token_nll_of_logits_with_the_same_dropout():
  from jaxtextgen.objectives import token_nll  # pylint: disable=g-import-not-at-top
  dec, v, toks, cond = _decoder(dropout=0.4, num_layers=2, cond_to_state=True)
  targets = jnp.roll(toks, -1, axis=1)
  rngs = {'dropout': jax.random.key(3)}
  fused = lambda v: dec.apply(v, toks, targets, cond, train=True, rngs=rngs,
                              method=LSTMDecoder.token_nll)
  plain = lambda v: token_nll(dec.apply(v, toks, cond, train=True, rngs=rngs), targets)
  np.testing.assert_allclose(fused(v), plain(v), rtol=1e-6)
  g1 = jax.grad(lambda v: fused(v).sum())(v)
  g2 = jax.grad(lambda v: plain(v).sum())(v)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g1, g2)
  nll, hidden = dec.apply(v, toks, targets, cond, return_hidden=True,
                          method=LSTMDecoder.token_nll)
  assert nll.shape == toks.shape and hidden.shape == (3, 7, 16)


def test_encoder_reads_one_hot_distributions_as_ids_and_starts_from_a_given_state():
  enc = LSTMEncoder(vocab_size=11, emb_dim=4, hidden_size=5)
  tokens = jnp.array([[3, 4, 5, 0], [6, 7, 0, 0]], jnp.int32)
  mask = (tokens > 0).astype(jnp.float32)
  params = enc.init(jax.random.key(0), tokens, mask)
  ids = enc.apply(params, tokens, mask)
  soft = enc.apply(params, jax.nn.one_hot(tokens, 11), mask)
  np.testing.assert_allclose(soft, ids, rtol=1e-6, atol=1e-6)
  grads = jax.grad(lambda p: enc.apply(params, p, mask).sum())(jax.nn.one_hot(tokens, 11))
  assert np.abs(np.asarray(grads)).sum() > 0  # soft sentences are differentiable inputs
  start = ((jnp.ones((2, 5)), -jnp.ones((2, 5))),)
  moved = enc.apply(params, tokens, mask, state=start)
  assert np.abs(np.asarray(moved - ids)).min() > 0
  np.testing.assert_allclose(enc.apply(params, tokens, mask, state=((jnp.zeros((2, 5)),) * 2,)),
                             ids, rtol=1e-6)


def test_decoder_equals_a_float64_numpy_lstm():
  """Teacher-forced logits against the textbook LSTM in float64 numpy (gates i, f, g, o in
  the parameters' column blocks; c = f c + i g, h = o tanh(c); zero initial state): an
  independent reference for the cell maths that teacher forcing and `step` share."""
  dec, variables, toks, _ = _decoder(num_layers=2)
  p = jax.tree.map(lambda x: np.asarray(x, np.float64), variables['params'])
  sig = lambda x: 1 / (1 + np.exp(-x))
  x = p['embedding']['embedding'][np.asarray(toks)]
  for l in range(2):
    w_x, b, w_h = p['lstm'][f'layer{l}_x']['kernel'], p['lstm'][f'layer{l}_x']['bias'], p['lstm'][f'layer{l}_h']
    c = h = np.zeros((x.shape[0], w_h.shape[0]))
    hs = []
    for t in range(x.shape[1]):
      i, f, g, o = np.split(x[:, t] @ w_x + b + h @ w_h, 4, axis=-1)
      c = sig(f) * c + sig(i) * np.tanh(g)
      h = sig(o) * np.tanh(c)
      hs.append(h)
    x = np.stack(hs, 1)
  want = x @ p['out']['kernel'] + p['out']['bias']
  np.testing.assert_allclose(dec.apply(variables, toks), want, rtol=2e-5, atol=2e-5)


def _attending(bidirectional=False):
  """An attending decoder and a dict condition whose memory comes from an encoder."""
  dec = LSTMDecoder(vocab_size=V, emb_dim=8, hidden_size=16, cond_to_state=True,
                    cond_to_input=True, attention=True)
  enc = LSTMEncoder(vocab_size=V, emb_dim=8, hidden_size=6, bidirectional=bidirectional)
  src = jax.random.randint(jax.random.key(3), (3, 5), 0, V)
  src_mask = jnp.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], jnp.float32)
  ev = enc.init(jax.random.key(4), src, src_mask)
  _, states = enc.apply(ev, src, src_mask, return_states=True)
  cond = {'vector': jax.random.normal(jax.random.key(1), (3, 5)), 'memory': states,
          'memory_mask': src_mask}
  toks = jax.random.randint(jax.random.key(0), (3, 7), 0, V)
  return dec, dec.init(jax.random.key(2), toks, cond), toks, cond


@pytest.mark.parametrize('bidirectional', [False, True])
def test_attending_decoder_teacher_forced_equals_step_by_step(bidirectional):
  dec, v, toks, cond = _attending(bidirectional)
  full = dec.apply(v, toks, cond)
  nll = dec.apply(v, toks, toks, cond, method='token_nll')
  log_p = jnp.take_along_axis(jax.nn.log_softmax(full), toks[..., None], -1)[..., 0]
  np.testing.assert_allclose(nll, -log_p, atol=1e-5)
  state = dec.apply(v, 3, cond, method='init_cache')
  for t in range(toks.shape[1]):
    logits, state = dec.apply(v, toks[:, t], state, cond, method='step')
    np.testing.assert_allclose(logits, full[:, t], atol=1e-5)


def test_attention_reads_the_unmasked_memory_only_and_its_gradient_reaches_it():
  dec, v, toks, cond = _attending()
  base = dec.apply(v, toks, cond)
  # Row 1 attends to its first 3 slots: what lies in the masked slots changes nothing.
  junk = cond['memory'].at[1, 3:].set(100.0)
  np.testing.assert_allclose(dec.apply(v, toks, {**cond, 'memory': junk})[1], base[1],
                             atol=1e-5)
  moved = cond['memory'].at[1, 0].add(1.0)
  assert np.abs(dec.apply(v, toks, {**cond, 'memory': moved})[1] - base[1]).max() > 1e-4
  g = jax.grad(lambda m: dec.apply(v, toks, toks, {**cond, 'memory': m},
                                   method='token_nll').sum())(cond['memory'])
  assert np.abs(g[1, :3]).min() > 0 and np.abs(g[1, 3:]).max() == 0
  # Without memory (a plain vector, or a memory that is all masked) the context is zero.
  empty = {**cond, 'memory_mask': jnp.zeros_like(cond['memory_mask'])}
  np.testing.assert_allclose(dec.apply(v, toks, empty), dec.apply(v, toks, cond['vector']),
                             atol=1e-6)

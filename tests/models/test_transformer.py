"""The Transformer decoder and its conditional LayerNorm."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.models import decoder as decoder_lib
from jaxtextgen.models.transformer import ConditionalLayerNorm, TransformerDecoder
from jaxtextgen.objectives.sequence import token_nll

V, B, T, C = 13, 3, 7, 5


def _decoder(init=False, **kw):
  """(decoder, variables, tokens [B, T], cond [B, C]), shared by the tests of one config.
  The variables are the decoder's own init with `init`, else random (every weight nonzero,
  so the condition matters): compiling flax's initialisers costs more than these tests."""
  return _built(init, tuple(sorted(kw.items())))


@functools.lru_cache(maxsize=None)
def _built(init, items):
  kw = {'vocab_size': V, 'hidden_size': 16, 'num_layers': 2, 'num_heads': 4, 'mlp_dim': 32,
        'max_positions': 12, **dict(items)}
  dec = TransformerDecoder(**kw)
  rng = np.random.default_rng(0)
  toks = jnp.asarray(rng.integers(0, V, (B, T)), jnp.int32)
  cond = jnp.asarray(rng.standard_normal((B, C)), jnp.float32)
  if init:
    # An 'rbg' key: threefry's random bits take longer to compile than the rest of the test.
    return dec, jax.jit(dec.init)(jax.random.key(2, impl='rbg'), toks, cond), toks, cond
  shapes = jax.eval_shape(dec.init, jax.random.key(2), toks, cond)
  zeros = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), shapes)
  return dec, _perturb(zeros), toks, cond


def _perturb(variables, seed=3, scale=0.3):
  """Every parameter moved by noise (numpy's: no compiling)."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: x + np.float32(scale) * rng.standard_normal(x.shape, np.float32),
                      variables)


def _drop_cond(tree):
  """The params without the conditional LayerNorms' condition weights."""
  if not isinstance(tree, dict):
    return tree
  return {k: _drop_cond(x) for k, x in tree.items() if not k.startswith('cond_')}


# --- ConditionalLayerNorm --------------------------------------------------------------------

def _normal(shape, seed, mean=0.0, std=1.0):
  return jnp.asarray(mean + std * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize('hidden', [0, 6])
@pytest.mark.parametrize('shape', [(B, 8), (B, 4, 8)])
def test_conditional_ln_at_init_is_layer_norm(hidden, shape):
  x, cond = _normal(shape, 0, 1.0, 3.0), _normal((B, C), 1)
  cln, ln, plain = (ConditionalLayerNorm(conditional=True, hidden=hidden),
                    nn.LayerNorm(epsilon=1e-6), ConditionalLayerNorm())

  @jax.jit
  def run(key):
    v = cln.init(key, x, cond)
    return (v, ln.apply(ln.init(key, x), x), cln.apply(v, x, cond), cln.apply(v, x),
            plain.apply(plain.init(key, x), x))

  v, expect, conditioned, no_cond, unconditional = run(jax.random.key(2))
  assert {'cond_gamma', 'cond_beta'} <= set(v['params'])
  assert ('cond_hidden' in v['params']) == (hidden > 0)
  np.testing.assert_allclose(conditioned, expect, atol=1e-5)
  np.testing.assert_allclose(no_cond, expect, atol=1e-5)  # cond None: plain LN
  np.testing.assert_allclose(unconditional, expect, atol=1e-5)


@pytest.mark.parametrize('hidden', [0, 6])
def test_conditional_ln_gradients_reach_the_condition(hidden):
  x, cond = _normal((B, 4, 8), 0), _normal((B, C), 1)
  cln = ConditionalLayerNorm(conditional=True, hidden=hidden)
  loss = lambda v, cond: jnp.sum(jnp.sin(cln.apply(v, x, cond)))

  @jax.jit
  def run(key):
    v = cln.init(key, x, cond)
    trained = _perturb(v)
    return (jax.grad(loss, argnums=(0, 1))(v, cond), jax.grad(loss, argnums=1)(trained, cond),
            cln.apply(trained, x, cond), cln.apply(trained, x[:, 2], cond))

  (g_params, g_cond), g_cond_trained, out, out_2 = run(jax.random.key(2))
  # At init the zero weights get gradient (so they learn) but cond does not (yet).
  assert np.abs(g_params['params']['cond_gamma']['kernel']).max() > 1e-4
  assert np.abs(g_params['params']['cond_beta']['kernel']).max() > 1e-4
  np.testing.assert_allclose(g_cond, 0.0)
  assert np.abs(g_cond_trained).max() > 1e-4
  # One gamma / beta per sequence, shared by every position.
  np.testing.assert_allclose(out_2, out[:, 2], atol=1e-5)


def test_conditional_ln_bf16_output_f32_statistics():
  x = _normal((B, 8), 0, 100.0).astype(jnp.bfloat16)  # a large mean: f32 statistics
  cln = ConditionalLayerNorm(dtype=jnp.bfloat16)
  v = {'params': {'scale': jnp.ones(8), 'bias': jnp.zeros(8)}}
  out, ref = jax.jit(lambda x: (cln.apply(v, x), cln.apply(v, x.astype(jnp.float32))))(x)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(out.astype(jnp.float32), ref, atol=2e-2)


# --- TransformerDecoder ----------------------------------------------------------------------

def test_make_builds_it_with_the_config_names():
  dec = decoder_lib.make('transformer', vocab_size=V, emb_dim=8, hidden_size=16, num_layers=1,
                         dropout=0.0, dtype=jnp.float32, num_heads=2, mlp_dim=32,
                         positions='sinusoidal', max_positions=9, conditional=True, cln_hidden=4)
  assert isinstance(dec, TransformerDecoder) and dec.hidden_size == 16
  for name in decoder_lib.METHODS:
    assert callable(getattr(dec, name))


@pytest.mark.parametrize('positions', ['learned', 'sinusoidal'])
@pytest.mark.parametrize('conditional', [False, True])
def test_cached_steps_equal_teacher_forcing(positions, conditional):
  dec, v, toks, cond = _decoder(positions=positions, conditional=conditional, cln_hidden=4)

  @jax.jit
  def run(v):
    full, hidden = dec.apply(v, toks, cond, return_hidden=True)
    def body(cache, tok):
      logits, cache = dec.apply(v, tok, cache, cond, method='step')
      return cache, logits
    # The sampler's shape: the cache is the carry of a scan.
    cache, logits = jax.lax.scan(body, dec.apply(v, B, cond, method='init_cache'), toks.T)
    # Embedding inputs (as the relaxed sampler feeds them) are the same as token ids, and a
    # cache as long as the sentence is enough.
    emb = dec.apply(v, toks.T, method='embed')
    _, from_emb = jax.lax.scan(body, dec.apply(v, B, cond, length=T, method='init_cache'), emb)
    return full, hidden, cache, logits, from_emb

  full, hidden, cache, logits, from_emb = run(v)
  assert full.dtype == jnp.float32 and hidden.shape == (B, T, 16)
  assert cache['k'].shape == (2, B, 12, 4, 4) and int(cache['index']) == T
  np.testing.assert_allclose(jnp.swapaxes(logits, 0, 1), full, atol=1e-5)
  np.testing.assert_allclose(jnp.swapaxes(from_emb, 0, 1), full, atol=1e-5)


def test_soft_one_hot_inputs_equal_token_inputs():
  dec, v, toks, cond = _decoder(num_layers=1)

  @jax.jit
  def run(v):
    one_hot = jax.nn.one_hot(toks, V)
    return (dec.apply(v, one_hot, cond, soft_inputs=True), dec.apply(v, toks, cond),
            dec.apply(v, one_hot, method='embed_soft'), dec.apply(v, toks, method='embed'))

  soft, hard, soft_emb, emb = run(v)
  np.testing.assert_allclose(soft, hard, atol=1e-5)
  np.testing.assert_allclose(soft_emb, emb, atol=1e-6)


def test_token_nll_is_log_softmax_of_the_logits():
  dec, v, toks, cond = _decoder(conditional=True, num_layers=1)
  targets = jnp.roll(toks, -1, axis=1)
  fused = lambda v: dec.apply(v, toks, targets, cond, return_hidden=True, method='token_nll')
  plain = lambda v: dec.apply(v, toks, cond, return_hidden=True)
  sums = lambda f: jax.grad(lambda v: f(v)[0].sum())

  @jax.jit
  def run(v):
    # The fused gradient is autodiff's of the unfused loss.
    unfused = lambda v: (token_nll(plain(v)[0], targets), None)
    return fused(v), plain(v), sums(fused)(v), sums(unfused)(v)

  (nll, nll_hidden), (logits, hidden), g_fused, g_plain = run(v)
  np.testing.assert_allclose(nll, token_nll(logits, targets), atol=1e-5)
  np.testing.assert_allclose(nll_hidden, hidden, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), g_fused, g_plain)


def test_causal():
  dec, v, toks, _ = _decoder()
  changed = toks.at[:, 4].set((toks[:, 4] + 1) % V)
  a, b = jax.jit(jax.vmap(lambda t: dec.apply(v, t)))(jnp.stack([toks, changed]))
  np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)
  assert np.abs(a[:, 4:] - b[:, 4:]).max() > 1e-4


def test_bfloat16_compute_float32_logits_and_params():
  dec, v, toks, cond = _decoder(dtype=jnp.bfloat16, conditional=True, num_layers=1)
  f32, _, _, _ = _decoder(conditional=True, num_layers=1)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(v))

  @jax.jit
  def run(v):
    cache = dec.apply(v, B, cond, method='init_cache')
    return (dec.apply(v, toks, cond), f32.apply(v, toks, cond), cache['k'].dtype == jnp.bfloat16,
            dec.apply(v, toks[:, 0], cache, cond, method='step')[0],
            dec.apply(v, toks, toks, cond, method='token_nll'))

  logits, ref, bf16_cache, step_logits, nll = run(v)
  assert bf16_cache
  assert logits.dtype == step_logits.dtype == nll.dtype == jnp.float32
  np.testing.assert_allclose(logits, ref, atol=5e-2)
  np.testing.assert_allclose(step_logits, ref[:, 0], atol=5e-2)


def test_longer_than_max_positions_is_a_clear_error():
  dec, v, _, _ = _decoder()  # max_positions 12
  long = jnp.zeros((B, 13), jnp.int32)
  with pytest.raises(ValueError, match='config.model.max_positions'):
    jax.eval_shape(lambda v: dec.apply(v, long), v)
  with pytest.raises(ValueError, match='config.model.max_positions'):
    dec.apply(v, B, length=13, method='init_cache')
  # Fixed encodings have no table to run off.
  sin, vs, _, _ = _decoder(positions='sinusoidal')
  assert jax.eval_shape(lambda v: sin.apply(v, long), vs).shape == (B, 13, V)


def test_condition_matters_only_after_training():
  dec, v, toks, cond = _decoder(init=True, conditional=True, cln_hidden=4, num_layers=1)
  plain, _, _, _ = _decoder(num_layers=1)

  @jax.jit
  def run(v):
    # Rows: (init, cond), (init, cond + 1), (trained, cond), (trained, cond + 1).
    vs = jax.tree.map(lambda a, b: jnp.stack([a, a, b, b]), v, _perturb(v))
    conds = jnp.stack([cond, cond + 1.0] * 2)
    out = jax.vmap(lambda v, c: dec.apply(v, toks, c))(vs, conds)
    return out, plain.apply(_drop_cond(v), toks)

  out, unconditional = run(v)
  np.testing.assert_allclose(out[0], out[1], atol=1e-6)
  # At init it is the unconditional model with the same other weights.
  np.testing.assert_allclose(out[0], unconditional, atol=1e-6)
  assert np.abs(out[2] - out[3]).max() > 1e-3


def test_dropout_only_in_training():
  dec, v, toks, _ = _decoder(dropout=0.5, num_layers=1)

  @jax.jit
  def run(v, keys):
    cache = dec.apply(v, B, method='init_cache')
    call = lambda train: jax.vmap(
        lambda k: dec.apply(v, toks, train=train, rngs={'dropout': k}))(keys)
    step = jax.vmap(lambda k: dec.apply(v, toks[:, 0], cache, train=True, method='step',
                                        rngs={'dropout': k})[0])(keys)
    return call(False), call(True), step

  # An 'rbg' key: threefry's random bits take longer to compile than the rest of the test.
  test, train, step = run(v, jax.random.split(jax.random.key(0, impl='rbg')))
  np.testing.assert_array_equal(test[0], test[1])
  assert np.abs(train[0] - train[1]).max() > 1e-4 and np.abs(step[0] - step[1]).max() > 1e-4
  assert np.all(np.isfinite(step))

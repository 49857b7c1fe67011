"""The `lm` algorithm: loss masking, learning, data-parallel equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from jaxtextgen.config import base_config
from jaxtextgen.steps import lm
from jaxtextgen.train import parallel
from fake_batches import padded_batch

V, T, B = 17, 6, 8


def _config(dropout=0.0):
  c = base_config()
  c.model.emb_dim, c.model.hidden_size, c.model.dropout = 8, 16, dropout
  c.num_train_steps = 100
  c.data.max_len = T
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=1, eos_id=2, pad_id=0))
  return c


def _batch(seed=0):
  return padded_batch(seed, B, T, V, first_word=3)


def test_padding_is_excluded_from_loss_and_gradient():
  c = _config()
  batch = _batch()
  state = lm.init(jax.random.key(0), c, batch)
  other = dict(batch, tokens=np.where(batch['mask'] > 0, batch['tokens'], 7).astype(np.int32))
  params = state.params['generator']
  f = lambda p, b: lm.nll(p, b, config=c)[0]
  np.testing.assert_allclose(f(params, batch), f(params, other), rtol=1e-6)
  g1, g2 = jax.grad(f)(params, batch), jax.grad(f)(params, other)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g1, g2)
  assert float(lm.nll(params, batch, config=c)[1]) == batch['mask'].sum()


def test_eval_sums_match_a_numpy_loop():
  c = _config()
  batch = _batch(1)
  state = lm.init(jax.random.key(0), c, batch)
  model = lm.make_decoder(c)
  inputs = np.concatenate([np.ones((B, 1), np.int32), batch['tokens'][:, :-1]], axis=1)
  logp = np.asarray(jax.nn.log_softmax(model.apply({'params': state.params['generator']}, inputs)),
                    np.float64)
  expect = -sum(logp[b, t, batch['tokens'][b, t]] for b in range(B) for t in range(T)
                if batch['mask'][b, t])
  sums = lm.eval_step(state, batch, None, config=c)
  np.testing.assert_allclose(sums['nll_sum'], expect, rtol=1e-5)
  out = lm.finalize_eval(jax.tree.map(float, sums))
  np.testing.assert_allclose(out['ppl'], np.exp(expect / batch['mask'].sum()), rtol=1e-5)
  np.testing.assert_allclose(out['nll_per_sentence'], expect / B, rtol=1e-5)


def test_training_reduces_the_loss():
  c = _config()
  c.optimizer.learning_rate = 3e-2
  batch = _batch()
  state = lm.init(jax.random.key(0), c, batch)
  step = jax.jit(lambda s, b, r: lm.train_step(s, b, r, config=c))
  state, first = step(state, batch, jax.random.key(1))
  for _ in range(30):
    state, m = step(state, batch, jax.random.key(1))
  assert float(m['loss']) < 0.5 * float(first['loss'])
  assert int(state.step) == 31


@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_sharded_and_pmap_steps_equal_single_device(dropout):
  """Sharded jit equals one device exactly, dropout included (the masks are drawn for the
  global batch); pmap draws its dropout masks per device, so it is compared without."""
  assert jax.device_count() >= 4, 'conftest forces 4 CPU devices'
  c = _config(dropout)
  batch = _batch()
  rng = jax.random.key(3)
  init = lambda: lm.init(jax.random.key(0), c, batch)

  single_mesh = parallel.make_mesh(jax.devices()[:1])
  s1, m1 = parallel.jit_step(lm.train_step, single_mesh, config=c)(
      init(), parallel.to_global(batch, single_mesh), rng)

  mesh = parallel.make_mesh(jax.devices()[:4])
  s4, m4 = parallel.jit_step(lm.train_step, mesh, config=c)(
      jax.device_put(init(), parallel.replicated(mesh)), parallel.to_global(batch, mesh), rng)
  assert parallel.to_global(batch, mesh)['tokens'].sharding.spec == jax.sharding.PartitionSpec('data')

  runs = [(s4, m4)]
  if not dropout:
    pstep = parallel.pmap_step(lm.train_step, config=c)
    replicated = jax.tree.map(lambda x: jnp.broadcast_to(x, (4,) + x.shape), init())
    sp, mp = pstep(replicated, parallel.shard_for_pmap(batch, 4), rng)
    runs.append((jax.tree.map(lambda x: x[0], sp), jax.tree.map(lambda x: x[0], mp)))
  else:  # dropout is on: the loss is not the dropout-free one
    no_drop = lm.train_step(init(), batch, rng, config=_config())[1]['loss']
    assert abs(float(m1['loss']) - float(no_drop)) > 1e-3

  for other, metrics in runs:
    np.testing.assert_allclose(metrics['loss'], m1['loss'], rtol=1e-6)
    np.testing.assert_allclose(metrics['tokens'], m1['tokens'])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6),
                 other.params, s1.params)


def test_sample_respects_config():
  c = _config()
  state = lm.init(jax.random.key(0), c, _batch())
  toks = lm.sample(state, jax.random.key(0), 5, config=c)
  assert toks.shape == (5, T) and toks.dtype == jnp.int32
  c.sample.greedy = True
  g1 = lm.sample(state, jax.random.key(0), 5, config=c)
  g2 = lm.sample(state, jax.random.key(9), 5, config=c)
  np.testing.assert_array_equal(g1, g2)


def test_eval_bleu_scores_temperature_one_samples_against_the_eval_batch():
  """eval.bleu: the rows are the real sentences and lm.draw's samples with the first key of
  the eval rng's split, words counted without EOS and padding; finalize_eval's BLEU and
  self-BLEU equal nltk's on those words."""
  c = _config()
  c.eval.bleu = True
  batch = _batch(2)
  state = lm.init(jax.random.key(0), c, batch)
  rng = jax.random.key(5)
  sums = lm.eval_step(state, batch, rng, config=c)
  rows = jax.tree.map(np.asarray, sums['per_example'])
  drawn = lm.draw(state.params['generator'], jax.random.split(rng)[0], B, config=c)
  np.testing.assert_array_equal(rows['fake'], np.asarray(drawn.tokens))
  np.testing.assert_array_equal(rows['real'], batch['tokens'])

  def words(tokens, mask):
    return [[int(t) for t, m in zip(r, mr) if m and t != c.vocab.eos_id]
            for r, mr in zip(tokens, mask)]
  refs, hyps = words(batch['tokens'], batch['mask']), words(drawn.tokens, drawn.mask)
  assert [len(h) for h in hyps] == rows['fake_len'].tolist()
  assert [len(r) for r in refs] == rows['real_len'].tolist()
  out = lm.finalize_eval({**jax.tree.map(float, {k: v for k, v in sums.items()
                                                if k != 'per_example'}), 'per_example': rows})
  smooth = SmoothingFunction().method1
  for n in (2, 3, 4, 5):
    bleu = lambda pool, h: sentence_bleu(pool, h, weights=(1 / n,) * n, smoothing_function=smooth)
    expect = np.mean([bleu(refs, h) for h in hyps])
    expect_self = np.mean([bleu(hyps[:i] + hyps[i + 1:], h) for i, h in enumerate(hyps)])
    np.testing.assert_allclose(out[f'bleu{n}'], expect, rtol=1e-9)
    np.testing.assert_allclose(out[f'self_bleu{n}'], expect_self, rtol=1e-9)


def test_nll_oracle_ignores_the_sampling_settings():
  """Metric samples are drawn at temperature 1 from the model (`lm.draw`), whatever
  config.sample says for --mode=sample: greedy, temperature or top-k change nothing."""
  from types import SimpleNamespace  # pylint: disable=g-import-not-at-top
  from jaxtextgen.data import oracle  # pylint: disable=g-import-not-at-top
  c = _config()
  c.eval.num_samples = 12
  with c.unlocked():
    c.vocab.update(dict(bos_id=0, eos_id=-1, pad_id=0))
  data = SimpleNamespace(oracle_params=oracle.random_oracle_params(3, vocab_size=V, emb_dim=4,
                                                                   hidden_dim=8))
  state = lm.init(jax.random.key(0), c, _batch())
  rng = jax.random.key(4)
  drawn = lm.draw(state.params['generator'], rng, 12, config=c).tokens
  expected = oracle.nll_oracle(data.oracle_params, np.asarray(drawn))
  got = [lm.evaluate_samples(state, rng, config=c, data=data)['nll_oracle']]
  c.sample.greedy = True
  got.append(lm.evaluate_samples(state, rng, config=c, data=data)['nll_oracle'])
  c.sample.greedy, c.sample.temperature, c.sample.top_k = False, 0.3, 2
  got.append(lm.evaluate_samples(state, rng, config=c, data=data)['nll_oracle'])
  assert got == [expected] * 3
  greedy = lm.sample(state, rng, 12, config=c)  # --mode=sample does follow config.sample
  assert oracle.nll_oracle(data.oracle_params, np.asarray(greedy)) != expected

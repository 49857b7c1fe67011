"""The data-to-text model: copy distributions, the pointer-network planner, the protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxtextgen.models.d2t import D2TModel
from jaxtextgen.models.sampler import beam_search, sample

V, X, R, K, L = 11, 4, 3, 3, 9
UNK = 3


def _src(seed=0, batch=2):
  rng = np.random.default_rng(seed)
  record = np.repeat(np.arange(R), L // R)[None].repeat(batch, 0)
  field = np.tile(np.arange(K), L // K)[None].repeat(batch, 0)
  ext = rng.integers(5, V + X, (batch, L))
  mask = np.ones((batch, L), np.float32)
  mask[1, -3:] = 0  # the second row has 2 records
  rec_mask = np.ones((batch, R), np.float32)
  rec_mask[1, -1] = 0
  return {'src_tokens': jnp.asarray(np.where(ext >= V, UNK, ext)), 'src_ext': jnp.asarray(ext),
          'src_field': jnp.asarray(field), 'src_record': jnp.asarray(record),
          'src_mask': jnp.asarray(mask), 'rec_mask': jnp.asarray(rec_mask)}


def _model(copy='joint', planner=True):
  return D2TModel(vocab_size=V + X, base_vocab=V, unk_id=UNK, num_fields=K, max_records=R,
                  emb_dim=8, hidden_size=8, planner=planner, copy=copy)


def _init(model, src, plan):
  def all_parts(m, s, p):
    cond = m.encode(s, p)
    return m.token_nll(jnp.zeros((2, 4), jnp.int32), jnp.zeros((2, 4), jnp.int32), cond), (
        m.plan_logits(m.records(s), s['rec_mask'], p) if m.planner else None)
  return model.init(jax.random.key(0), src, plan, method=all_parts)


PLAN = jnp.asarray([[2, 0, 1, R], [1, 0, R, R]], jnp.int32)


@pytest.mark.parametrize('copy', ['joint', 'conditional'])
@pytest.mark.parametrize('planner', [True, False])
def test_copy_distribution_sums_to_one_and_matches_token_nll(copy, planner):
  model, src = _model(copy, planner), _src()
  params = _init(model, src, PLAN)
  cond = model.apply(params, src, PLAN if planner else None, method='encode')
  rng = np.random.default_rng(1)
  targets = jnp.asarray(rng.integers(0, V + X, (2, 5)))
  inputs = jnp.concatenate([jnp.ones((2, 1), jnp.int32), targets[:, :-1]], 1)
  logp = model.apply(params, inputs, cond)                      # [2, 5, V + X]
  np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, atol=1e-5)
  nll = model.apply(params, inputs, targets, cond, method='token_nll')
  ref = -np.take_along_axis(np.asarray(logp), np.asarray(targets)[..., None], -1)[..., 0]
  np.testing.assert_allclose(nll, ref, rtol=1e-4, atol=1e-4)
  # copying mixes in: an OOV word present in the source has probability > 0, one absent ~0
  present = int(src['src_ext'][0][src['src_ext'][0] >= V][0])
  assert np.exp(logp[0, 0, present]) > 1e-4
  absent = [w for w in range(V, V + X) if w not in np.asarray(src['src_ext'][0])]
  if absent:
    assert np.exp(logp[0, 0, absent[0]]) < 1e-20
  # teacher forcing equals step-by-step decoding
  cache = model.apply(params, 2, cond, method='init_cache')
  for t in range(5):
    step_logp, cache = model.apply(params, inputs[:, t], cache, cond, method='step')
    np.testing.assert_allclose(step_logp, logp[:, t], rtol=1e-4, atol=1e-5)


def test_masked_source_slots_are_never_copied():
  model, src = _model('joint', planner=False), _src()
  params = _init(model, src, PLAN)
  src = dict(src, src_ext=src['src_ext'].at[1, -1].set(V + X - 1).at[1, :-3].set(5))
  cond = model.apply(params, src, None, method='encode')
  logp = model.apply(params, jnp.ones((2, 1), jnp.int32), cond)
  assert np.exp(logp[1, 0, V + X - 1]) < 1e-20  # only on a padding slot of row 1


def test_planner_learns_and_decodes_a_toy_order():
  """The pointer network fits the oracle plans of a toy task (records are listed in the
  order of a feature of theirs), and greedy decoding returns them, each record once."""
  model, src = _model(), _src(batch=2)
  params = _init(model, src, PLAN)
  plan = PLAN

  def loss_fn(p):
    logits = model.apply(p, src, method=lambda m, s: m.plan_logits(m.records(s), s['rec_mask'],
                                                                   plan))
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, plan)
    return nll[:, :3].mean() + nll[0, 3]  # row 1 stops at step 2: its step 3 is padding
  tx = optax.adam(0.05)

  @jax.jit
  def update(p, opt):
    u, opt = tx.update(jax.grad(loss_fn)(p), opt)
    return optax.apply_updates(p, u), opt
  opt = tx.init(params)
  loss0 = loss_fn(params)
  for _ in range(150):
    params, opt = update(params, opt)
  assert loss_fn(params) < 0.05 * loss0
  decoded, length = model.apply(params, src, method=lambda m, s: m.decode_plan(m.records(s),
                                                                               s['rec_mask']))
  np.testing.assert_array_equal(decoded[0], [2, 0, 1, R])
  np.testing.assert_array_equal(decoded[1, :2], [1, 0])
  np.testing.assert_array_equal(length, [3, 2])


def test_plan_logits_mask_chosen_and_absent_records():
  model, src = _model(), _src()
  params = _init(model, src, PLAN)
  logits = model.apply(params, src, method=lambda m, s: m.plan_logits(m.records(s),
                                                                      s['rec_mask'], PLAN))
  p = np.asarray(jax.nn.softmax(logits, -1))
  assert p[0, 1, 2] < 1e-6 and p[0, 2, 0] < 1e-6 and p[0, 2, 2] < 1e-6  # already chosen
  assert (p[1, :, 2] < 1e-6).all()                                      # absent record
  np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)


def test_sampler_and_beam_search_drive_it():
  model, src = _model(), _src()
  params = _init(model, src, PLAN)
  cond = model.apply(params, src, PLAN, method='encode')
  greedy = sample(model, params, jax.random.key(0), batch=2, length=6, bos_id=1, eos_id=2,
                  pad_id=0, greedy=True, cond=cond)
  beam1, _ = beam_search(model, params, batch=2, beam=1, length=6, bos_id=1, eos_id=2, pad_id=0,
                         cond=cond)
  np.testing.assert_array_equal(greedy.tokens, beam1)
  drawn = sample(model, params, jax.random.key(1), batch=2, length=6, bos_id=1, eos_id=2,
                 pad_id=0, cond=cond).tokens
  assert drawn.shape == (2, 6) and int(drawn.max()) < V + X


def test_decoded_plans_are_never_empty():
  """Even when the stop pointer outscores every record (one of the two signs makes its
  score huge at the first step), the planner picks a record before it stops."""
  model, src = _model(), _src()
  params = _init(model, src, PLAN)
  lengths = []
  for sign in (1000.0, -1000.0):
    p = jax.tree.map(lambda x: x, params)
    p['params']['plan_stop'] = sign * jnp.ones_like(p['params']['plan_stop'])
    _, length = model.apply(p, src, method=lambda m, s: m.decode_plan(m.records(s),
                                                                       s['rec_mask']))
    lengths.append(np.asarray(length))
  assert (np.stack(lengths) >= 1).all()

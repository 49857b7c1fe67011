"""Tests for jaxtextgen.objectives.sequence."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.objectives import sequence as sq

B, T, V = 3, 5, 6
LENGTHS = (5, 2, 0)  # a full row, a short row and an all-padding row


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  logits = rng.normal(scale=2.0, size=(B, T, V)).astype(np.float32)
  targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
  mask = (np.arange(T)[None, :] < np.array(LENGTHS)[:, None])
  return logits, targets, mask


def _nll_loop(logits, targets, mask):
  total, count = 0.0, 0
  for b in range(B):
    for t in range(T):
      row = logits[b, t].astype(np.float64)
      log_z = np.log(np.sum(np.exp(row - row.max()))) + row.max()
      if mask[b, t]:
        total += log_z - row[targets[b, t]]
        count += 1
  return total, count


def test_token_nll_equals_numpy_loop():
  logits, targets, _ = _batch()
  nll = np.asarray(sq.token_nll(logits, targets))
  assert nll.shape == (B, T)
  expected = np.zeros((B, T))
  for b in range(B):
    for t in range(T):
      row = logits[b, t].astype(np.float64)
      expected[b, t] = np.log(np.sum(np.exp(row))) - row[targets[b, t]]
  np.testing.assert_allclose(nll, expected, rtol=1e-5)


def test_sequence_cross_entropy_equals_numpy_loop():
  logits, targets, mask = _batch()
  nll_sum, count = jax.jit(sq.sequence_cross_entropy)(logits, targets, mask)
  exp_sum, exp_count = _nll_loop(logits, targets, mask)
  np.testing.assert_allclose(nll_sum, exp_sum, rtol=1e-5)
  assert float(count) == exp_count == sum(LENGTHS)


def test_padding_contributes_nothing_to_value_or_gradient():
  logits, targets, mask = _batch()
  pad = ~mask
  # Arbitrary logits and out-of-range target ids at padded positions.
  other = logits.copy()
  other[pad] = np.random.default_rng(1).normal(scale=50.0, size=(pad.sum(), V))
  bad_targets = np.where(pad, -7, targets).astype(np.int32)

  loss = jax.jit(jax.value_and_grad(lambda l, y, m: sq.sequence_cross_entropy(l, y, m)[0]))
  value, grad = loss(logits, targets, mask)
  value2, grad2 = loss(other, bad_targets, mask)
  np.testing.assert_allclose(value2, value, rtol=1e-6)
  np.testing.assert_allclose(grad2, grad, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(np.asarray(grad2)[pad], 0.0)
  assert np.all(np.abs(np.asarray(grad)[mask]).sum(-1) > 0)


def test_global_mean_from_sums_and_counts():
  # Two "devices" with different amounts of padding: sum/count pooling is
  # the exact token mean, a mean of per-device means is not.
  logits, targets, mask = _batch()
  xent = jax.jit(sq.sequence_cross_entropy)
  s0, c0 = xent(logits[:1], targets[:1], mask[:1])
  s1, c1 = xent(logits[1:], targets[1:], mask[1:])
  s, c = xent(logits, targets, mask)
  exp_sum, exp_count = _nll_loop(logits, targets, mask)
  np.testing.assert_allclose((s0 + s1) / (c0 + c1), exp_sum / exp_count, rtol=1e-5)
  np.testing.assert_allclose(s / c, exp_sum / exp_count, rtol=1e-5)
  assert abs(0.5 * (s0 / c0 + s1 / c1) - exp_sum / exp_count) > 1e-3


def test_masked_sum_weights_and_inert_entries():
  x = jnp.array([[1.0, 2.0, jnp.inf], [jnp.nan, 3.0, 4.0]])
  w = jnp.array([[1.0, 0.5, 0.0], [0.0, 2.0, 1.0]])
  np.testing.assert_allclose(sq.masked_sum(x, w), 1.0 + 1.0 + 6.0 + 4.0)
  np.testing.assert_allclose(sq.masked_sum(x, w > 0), 1.0 + 2.0 + 3.0 + 4.0)
  gx, gw = jax.grad(sq.masked_sum, argnums=(0, 1))(x, w)
  np.testing.assert_array_equal(gx, w)
  np.testing.assert_array_equal(gw, jnp.where(w > 0, x, 0.0))

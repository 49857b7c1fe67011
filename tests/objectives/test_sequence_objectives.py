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


def _projection_case(seed=0, hidden=4):
  rng = np.random.default_rng(seed)
  h = rng.normal(size=(B, T, hidden)).astype(np.float32)
  kernel = rng.normal(scale=1.5, size=(hidden, V)).astype(np.float32)
  bias = rng.normal(size=(V,)).astype(np.float32)
  targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
  weights = rng.normal(size=(B, T)).astype(np.float32)  # an arbitrary upstream gradient
  return h, kernel, bias, targets, weights


def test_linear_token_nll_value_and_gradients_equal_float64_reference():
  h, kernel, bias, targets, weights = _projection_case()
  logits = h.astype(np.float64) @ kernel + bias
  log_z = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
  nll = log_z - np.take_along_axis(logits, targets[..., None], -1)[..., 0]
  probs = np.exp(logits - log_z[..., None])
  dlogits = weights[..., None] * (probs - np.eye(V)[targets])  # d sum(w * nll) / d logits
  expected = (dlogits @ kernel.T, np.einsum('bth,btv->hv', h, dlogits),
              dlogits.sum((0, 1)))

  fn = jax.jit(sq.linear_token_nll)
  np.testing.assert_allclose(fn(h, kernel, bias, targets), nll, rtol=1e-5)
  grads = jax.jit(jax.grad(lambda *a: jnp.sum(weights * sq.linear_token_nll(*a, targets)),
                           argnums=(0, 1, 2)))(h, kernel, bias)
  for got, want in zip(grads, expected):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_linear_token_nll_equals_autodiff_of_projection_then_token_nll():
  h, kernel, bias, targets, weights = _projection_case(seed=1)
  fused = lambda h, k, b: jnp.sum(weights * sq.linear_token_nll(h, k, b, targets))
  plain = lambda h, k, b: jnp.sum(weights * sq.token_nll(h @ k + b, targets))
  v1, g1 = jax.value_and_grad(fused, argnums=(0, 1, 2))(h, kernel, bias)
  v2, g2 = jax.value_and_grad(plain, argnums=(0, 1, 2))(h, kernel, bias)
  np.testing.assert_allclose(v1, v2, rtol=1e-6)
  for a, b in zip(g1, g2):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_linear_token_nll_padding_is_inert_and_bfloat16_gives_float32():
  h, kernel, bias, targets, _ = _projection_case(seed=2)
  _, _, mask = _batch()
  bad = np.where(mask, targets, -7).astype(np.int32)  # out-of-range ids where padded
  loss = lambda h, y: sq.masked_sum(sq.linear_token_nll(h, kernel, bias, y), mask)
  v1, g1 = jax.value_and_grad(loss)(h, targets)
  v2, g2 = jax.value_and_grad(loss)(h, bad)
  np.testing.assert_allclose(v2, v1, rtol=1e-6)
  np.testing.assert_array_equal(g2, g1)
  np.testing.assert_array_equal(np.asarray(g1)[~mask], 0.0)

  low = sq.linear_token_nll(*(jnp.asarray(x, jnp.bfloat16) for x in (h, kernel, bias)), targets)
  assert low.dtype == jnp.float32
  np.testing.assert_allclose(low, sq.linear_token_nll(h, kernel, bias, targets), rtol=0.05,
                             atol=0.1)

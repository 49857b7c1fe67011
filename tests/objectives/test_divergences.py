"""Tests for jaxtextgen.objectives.divergences against float64 references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxtextgen.objectives import divergences

LOG2 = math.log(2.0)


class dv:  # jitted aliases: one compile per shape instead of one per primitive
  entropy = staticmethod(jax.jit(divergences.entropy))
  cross_entropy = staticmethod(jax.jit(divergences.cross_entropy))
  kl_divergence = staticmethod(jax.jit(divergences.kl_divergence))
  js_divergence = staticmethod(jax.jit(divergences.js_divergence))
  kl_gaussian = staticmethod(jax.jit(divergences.kl_gaussian))
  gaussian_log_density = staticmethod(jax.jit(divergences.gaussian_log_density))


def _log_softmax64(logits):
  logits = np.asarray(logits, np.float64)
  return logits - special.logsumexp(logits, axis=-1, keepdims=True)


def _probs64(logits):
  return np.exp(_log_softmax64(logits))


def _entropy64(logits):
  p = _probs64(logits)
  return -np.sum(special.xlogy(p, p), axis=-1)


def _kl64(p_logits, q_logits):
  p, lp, lq = _probs64(p_logits), _log_softmax64(p_logits), _log_softmax64(q_logits)
  log_ratio = np.where(p > 0, lp, 0.0) - np.where(p > 0, lq, 0.0)
  return np.sum(p * log_ratio, axis=-1)


def _js64(p_logits, q_logits):
  p, q = _probs64(p_logits), _probs64(q_logits)
  m = 0.5 * (p + q)
  kl = lambda a: np.sum(special.xlogy(a, a) - special.xlogy(a, m), axis=-1)
  return 0.5 * (kl(p) + kl(q))


@pytest.fixture(scope="module")
def logits_pair():
  rng = np.random.default_rng(0)
  return (rng.normal(scale=2.0, size=(3, 4, 7)).astype(np.float32),
          rng.normal(scale=2.0, size=(3, 4, 7)).astype(np.float32))


# Rows with exactly-zero probabilities: p and q share a zero at index 0,
# have disjoint supports in row 1, and p is one-hot in row 2.
NEG_INF = -np.inf
ZERO_P = np.array([[NEG_INF, 0.0, 1.0, NEG_INF],
                   [0.0, 1.0, NEG_INF, NEG_INF],
                   [NEG_INF, NEG_INF, 3.0, NEG_INF]], np.float32)
ZERO_Q = np.array([[NEG_INF, 2.0, -1.0, 0.5],
                   [NEG_INF, NEG_INF, 0.0, 0.0],
                   [0.0, 1.0, 2.0, 3.0]], np.float32)


def test_entropy_matches_reference(logits_pair):
  logits, _ = logits_pair
  np.testing.assert_allclose(dv.entropy(logits), _entropy64(logits), rtol=1e-5, atol=1e-6)


def test_entropy_closed_forms():
  np.testing.assert_allclose(dv.entropy(jnp.zeros(5)), math.log(5), rtol=1e-6)
  np.testing.assert_allclose(dv.entropy(ZERO_P[2]), 0.0, atol=1e-7)
  # Normalised log-probs are valid logits.
  lp = jax.nn.log_softmax(jnp.array([0.3, -1.2, 2.0]))
  np.testing.assert_allclose(dv.entropy(lp), _entropy64(lp), rtol=1e-6)


def test_cross_entropy_matches_reference_and_decomposes(logits_pair):
  p_logits, q_logits = logits_pair
  target = _probs64(p_logits)
  expected = -np.sum(target * _log_softmax64(q_logits), axis=-1)
  ce = dv.cross_entropy(target.astype(np.float32), q_logits)
  np.testing.assert_allclose(ce, expected, rtol=1e-5)
  # H(p, q) = H(p) + KL(p || q).
  np.testing.assert_allclose(
      ce, dv.entropy(p_logits) + dv.kl_divergence(p_logits, q_logits), rtol=1e-5)


def test_cross_entropy_one_hot_is_nll():
  logits = jnp.array([1.0, 2.0, 0.5])
  np.testing.assert_allclose(dv.cross_entropy(jnp.array([0.0, 1.0, 0.0]), logits),
                             -_log_softmax64(logits)[1], rtol=1e-6)


def test_kl_matches_reference(logits_pair):
  p_logits, q_logits = logits_pair
  kl = dv.kl_divergence(p_logits, q_logits)
  np.testing.assert_allclose(kl, _kl64(p_logits, q_logits), rtol=1e-4, atol=1e-6)
  assert np.all(np.asarray(kl) >= 0)
  np.testing.assert_allclose(dv.kl_divergence(p_logits, p_logits), 0.0, atol=1e-6)


def test_kl_infinite_when_support_not_covered():
  assert np.isinf(dv.kl_divergence(jnp.array([0.0, 0.0]), jnp.array([0.0, -jnp.inf])))


def test_js_matches_reference_symmetric_and_bounded(logits_pair):
  p_logits, q_logits = logits_pair
  js = np.asarray(dv.js_divergence(p_logits, q_logits))
  np.testing.assert_allclose(js, _js64(p_logits, q_logits), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(js, dv.js_divergence(q_logits, p_logits), rtol=1e-6, atol=1e-7)
  assert np.all(js >= -1e-7) and np.all(js <= LOG2 + 1e-6)
  np.testing.assert_allclose(dv.js_divergence(p_logits, p_logits), 0.0, atol=1e-6)


def test_js_is_log2_for_disjoint_supports():
  p = jnp.array([[0.0, 1.0, -jnp.inf, -jnp.inf], [5.0, -jnp.inf, -jnp.inf, -jnp.inf]])
  q = jnp.array([[-jnp.inf, -jnp.inf, 0.0, 0.0], [-jnp.inf, 1.0, 2.0, 3.0]])
  np.testing.assert_allclose(dv.js_divergence(p, q), [LOG2, LOG2], rtol=1e-6)


def test_zero_probabilities_give_finite_values_matching_reference():
  np.testing.assert_allclose(dv.entropy(ZERO_P), _entropy64(ZERO_P), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(dv.js_divergence(ZERO_P, ZERO_Q), _js64(ZERO_P, ZERO_Q),
                             rtol=1e-5)
  # KL(q || p) is finite only where supp(q) is inside supp(p); use q as p's support.
  np.testing.assert_allclose(dv.kl_divergence(ZERO_P, ZERO_Q[2:].repeat(3, 0)),
                             _kl64(ZERO_P, ZERO_Q[2:].repeat(3, 0)), rtol=1e-5)
  target = _probs64(ZERO_P).astype(np.float32)
  assert np.all(np.isfinite(dv.cross_entropy(target, ZERO_P)))


@pytest.mark.parametrize("name", ["entropy", "cross_entropy", "kl", "js"])
def test_zero_probabilities_give_finite_gradients(name):
  weights = jnp.arange(1.0, 4.0)  # a generic linear read-out of the rows
  q_full = jnp.asarray(ZERO_Q[2:].repeat(3, 0))
  fns = {
      "entropy": lambda a, b: dv.entropy(a),
      "cross_entropy": lambda a, b: dv.cross_entropy(jax.nn.softmax(a), a),
      # KL(p || q) needs supp(p) inside supp(q) to be finite.
      "kl": dv.kl_divergence,
      "js": dv.js_divergence,
  }
  q = q_full if name == "kl" else jnp.asarray(ZERO_Q)
  loss = lambda a, b: jnp.sum(weights * fns[name](a, b))
  ga, gb = jax.grad(loss, argnums=(0, 1))(jnp.asarray(ZERO_P), q)
  assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
  # Entries with zero probability under p carry no gradient.
  np.testing.assert_array_equal(np.asarray(ga)[np.isneginf(ZERO_P)], 0.0)


def test_cross_entropy_gradient_wrt_targets_is_finite_at_zero_prob():
  target = jnp.array([0.0, 0.5, 0.5])
  logits = jnp.array([-jnp.inf, 0.0, 1.0])
  g_t, g_l = jax.grad(lambda t, l: dv.cross_entropy(t, l), argnums=(0, 1))(target, logits)
  assert np.all(np.isfinite(g_t)) and np.all(np.isfinite(g_l))
  np.testing.assert_allclose(g_l, np.exp(_log_softmax64(logits)) - target, atol=1e-6)


def test_kl_gaussian_closed_form():
  mean = np.array([0.0, 0.5, -1.0, 2.0], np.float32)
  logvar = np.array([0.0, 0.3, -0.7, 1.2], np.float32)
  m, lv = mean.astype(np.float64), logvar.astype(np.float64)
  # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2 - 1) / 2.
  expected = -0.5 * lv + 0.5 * (np.exp(lv) + m ** 2 - 1.0)
  np.testing.assert_allclose(dv.kl_gaussian(mean, logvar), expected, rtol=1e-6, atol=1e-7)
  assert float(dv.kl_gaussian(mean, logvar)[0]) == 0.0


def test_gaussian_log_density_matches_scipy():
  rng = np.random.default_rng(1)
  z, mean, logvar = rng.normal(size=(3, 2, 5)).astype(np.float32)
  expected = stats.norm.logpdf(z, loc=mean, scale=np.exp(0.5 * logvar.astype(np.float64)))
  np.testing.assert_allclose(dv.gaussian_log_density(z, mean, logvar), expected,
                             rtol=1e-5, atol=1e-6)


def test_kl_gaussian_equals_monte_carlo_estimate():
  mean = jnp.array([0.5, -1.0, 0.0, 2.0])
  logvar = jnp.array([0.3, -0.7, 1.2, 0.0])
  n = 100_000
  eps = np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32)

  @jax.jit
  def log_ratio(eps):
    z = mean + jnp.exp(0.5 * logvar) * eps
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated per dimension.
    return (dv.gaussian_log_density(z, mean, logvar)
            - dv.gaussian_log_density(z, 0.0, 0.0))

  log_ratio = np.asarray(log_ratio(eps), np.float64)
  estimate = log_ratio.mean(axis=0)
  std_err = log_ratio.std(axis=0, ddof=1) / math.sqrt(n)
  analytic = np.asarray(dv.kl_gaussian(mean, logvar))
  assert np.all(np.abs(estimate - analytic) < 3.0 * std_err), (estimate, analytic, std_err)

"""Tests for jaxtextgen.objectives.discrete."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.objectives import discrete as ds

LOGITS = np.array([1.0, 0.0, -1.0, 2.0, 0.5], np.float32)


N_DRAWS = 50_000


@jax.jit
def _draws(rng, logits, temperature, cotangent):
  """Hard and soft samples sharing their Gumbel noise, and their VJPs."""
  outs = []
  for hard in (True, False):
    sample, vjp = jax.vjp(
        lambda l: ds.gumbel_softmax(rng, l, temperature, hard=hard), logits)
    outs += [sample, vjp(cotangent)[0]]
  return outs


@pytest.fixture(scope="module")
def draws():
  # One compiled shape for every Gumbel test: compiling the sampler is the
  # slow part on CPU.
  gen = np.random.default_rng(0)
  logits = np.broadcast_to(LOGITS, (N_DRAWS, LOGITS.size))
  cotangent = gen.normal(size=logits.shape).astype(np.float32)
  return logits, cotangent, _draws(jax.random.PRNGKey(0), logits, 0.7, cotangent)


def test_gumbel_argmax_frequencies_match_softmax(draws):
  _, _, (hard, _, soft, _) = draws
  freq = np.asarray(hard, np.float64).mean(axis=0)
  probs = np.exp(LOGITS - LOGITS.max()) / np.exp(LOGITS - LOGITS.max()).sum()
  total_variation = 0.5 * np.abs(freq - probs).sum()
  assert total_variation < 0.02, (freq, probs)
  # The hard sample is the argmax of the soft one.
  np.testing.assert_array_equal(np.argmax(hard, -1), np.argmax(soft, -1))
  np.testing.assert_allclose(np.asarray(soft).sum(-1), 1.0, rtol=1e-5)
  assert np.all(np.asarray(soft) >= 0)


def test_straight_through_forward_is_exactly_one_hot(draws):
  hard = np.asarray(draws[2][0])
  assert set(np.unique(hard)) <= {0.0, 1.0}
  np.testing.assert_array_equal(hard.sum(-1), 1.0)


def test_straight_through_gradient_equals_soft_gradient(draws):
  _, _, (_, g_hard, _, g_soft) = draws
  np.testing.assert_allclose(g_hard, g_soft, rtol=1e-6, atol=1e-7)
  assert np.abs(np.asarray(g_hard)).max() > 0


def test_low_temperature_soft_sample_approaches_hard(draws):
  logits, cotangent, _ = draws
  hard, _, soft, _ = _draws(jax.random.PRNGKey(2), logits, 1e-5, cotangent)
  # Rows whose top two perturbed logits are closer than ~1e-4 stay soft.
  close = np.abs(np.asarray(soft) - np.asarray(hard)).max(-1) > 1e-3
  assert close.mean() < 1e-3


@pytest.mark.parametrize("schedule, step, max_steps, expected", [
    ("const", 123, 1000, 100.0),
    ("exp", 0, 1000, 1.0),
    ("exp", 500, 1000, 10.0),        # 100 ** (1/2)
    ("exp", 1000, 1000, 100.0),
    ("lin", 0, 1000, 1.0),
    ("lin", 333, 1000, 34.0),        # 1 + 99 * 333/999
    ("lin", 999, 1000, 100.0),
    ("log", 0, 1000, 1.0),
    ("log", 999, 1000, 100.0),       # 1 + 99 * log(1000)/log(1000)
    ("log", 9, 100, 50.5),           # 1 + 99 * log(10)/log(100)
    ("sigmoid", 500, 1000, 50.5),    # 1 + 99 * sigmoid(0)
    ("sigmoid", 0, 1000, 1.0 + 99.0 / (1.0 + math.exp(10.0))),
    ("quad", 333, 1000, 12.0),       # 1 + 99 * (1/3)^2
    ("quad", 999, 1000, 100.0),
    ("sqrt", 25, 101, 50.5),         # 1 + 99 * sqrt(25/100)
])
def test_inverse_temperature_schedules(schedule, step, max_steps, expected):
  beta = ds.gumbel_inverse_temperature(step, schedule, max_steps, 100.0)
  np.testing.assert_allclose(beta, expected, rtol=1e-5)
  np.testing.assert_allclose(ds.gumbel_temperature(step, schedule, max_steps, 100.0),
                             1.0 / expected, rtol=1e-5)


def test_temperature_schedule_traced_step_and_bad_name():
  fn = jax.jit(ds.gumbel_temperature, static_argnums=(1, 2, 3))
  np.testing.assert_allclose(fn(jnp.int32(500), "exp", 1000, 100.0), 0.1, rtol=1e-5)
  with pytest.raises(ValueError, match="Unknown schedule"):
    ds.gumbel_inverse_temperature(0, "cosine", 10, 2.0)


def test_reinforce_loss_values_and_stop_gradient():
  log_probs = jnp.array([[-1.0, -2.0], [-0.5, -jnp.inf]])  # -inf at padding
  rewards = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  mask = jnp.array([[1, 1], [1, 0]])
  loss = jax.jit(ds.reinforce_loss)
  np.testing.assert_allclose(loss(log_probs, rewards, mask), (1.0 + 4.0 + 1.5) / 3.0,
                             rtol=1e-6)
  np.testing.assert_allclose(loss(log_probs, rewards, mask, 1.0), (0.0 + 2.0 + 1.0) / 3.0,
                             rtol=1e-6)
  g_lp, g_r, g_b = jax.jit(jax.grad(ds.reinforce_loss, argnums=(0, 1, 3)))(
      log_probs, rewards, mask, 0.5)
  np.testing.assert_allclose(g_lp, [[-0.5 / 3, -1.5 / 3], [-2.5 / 3, 0.0]], rtol=1e-6)
  np.testing.assert_array_equal(g_r, 0.0)
  assert float(g_b) == 0.0
  assert float(loss(log_probs, rewards, jnp.zeros((2, 2)))) == 0.0


THETA = np.array([0.5, -0.3, 1.0, 0.0], np.float32)
REWARD = jnp.array([10.0, 11.0, 12.0, 15.0])


@jax.jit
def _per_sample_policy_gradients(theta, actions, baseline):
  """Estimates of grad_theta E[r] from single samples, via -grad of the loss."""
  def one(action):
    def loss(theta):
      log_p = jax.nn.log_softmax(theta)[action]
      return ds.reinforce_loss(log_p[None, None], REWARD[action][None, None],
                               jnp.ones((1, 1)), baseline)
    return -jax.grad(loss)(theta)
  return jax.vmap(one)(actions)


def test_reinforce_gradient_is_unbiased_and_baseline_reduces_variance():
  n = 20_000
  p = np.exp(THETA.astype(np.float64)) / np.exp(THETA.astype(np.float64)).sum()
  mean_reward = float(p @ REWARD)
  analytic = p * (REWARD - mean_reward)  # grad_theta sum_k softmax(theta)_k r_k
  actions = np.random.default_rng(0).choice(THETA.size, size=n, p=p)
  variances = []
  for baseline in (0.0, mean_reward):
    grads = np.asarray(_per_sample_policy_gradients(THETA, actions, baseline), np.float64)
    std_err = grads.std(axis=0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(grads.mean(axis=0) - analytic) < 4.0 * std_err), (
        baseline, grads.mean(axis=0), analytic, std_err)
    variances.append(grads.var(axis=0).sum())
  assert variances[1] < 0.1 * variances[0], variances


def test_moving_average_baseline():
  rewards = jnp.array([[2.0, 4.0], [6.0, 100.0]])
  np.testing.assert_allclose(ds.moving_average_baseline(1.0, rewards, 0.9),
                             0.9 + 0.1 * 28.0, rtol=1e-6)
  mask = jnp.array([[1, 1], [1, 0]])
  np.testing.assert_allclose(ds.moving_average_baseline(1.0, rewards, 0.9, mask),
                             0.9 + 0.1 * 4.0, rtol=1e-6)
  assert float(jax.grad(lambda r: ds.moving_average_baseline(0.0, r, 0.5))(rewards).sum()) == 0.0

"""Tests for jaxtextgen.objectives.gan."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxtextgen.objectives import gan

LOG2 = math.log(2.0)
REAL = np.array([2.0, -1.0, 0.5, 4.0])
FAKE = np.array([-3.0, 0.0, 1.0, -0.5])


def _neg_log_sigmoid(x):
  # -log sigmoid(x) = log(1 + exp(-x)), in float64.
  return np.log1p(np.exp(-np.asarray(x, np.float64)))


def _f32(x):
  return jnp.asarray(x, jnp.float32)


def test_minimax_and_nonsaturating_values():
  # -log(1 - sigmoid(x)) = -log sigmoid(-x).
  np.testing.assert_allclose(
      gan.minimax_d_loss(_f32(REAL), _f32(FAKE)),
      _neg_log_sigmoid(REAL).mean() + _neg_log_sigmoid(-FAKE).mean(), rtol=1e-6)
  np.testing.assert_allclose(gan.minimax_g_loss(_f32(FAKE)),
                             -_neg_log_sigmoid(-FAKE).mean(), rtol=1e-6)
  np.testing.assert_allclose(gan.nonsaturating_g_loss(_f32(FAKE)),
                             _neg_log_sigmoid(FAKE).mean(), rtol=1e-6)
  # D = 1/2 everywhere: every cross-entropy term is log 2.
  zeros = jnp.zeros(3)
  np.testing.assert_allclose(gan.minimax_d_loss(zeros, zeros), 2 * LOG2, rtol=1e-6)
  np.testing.assert_allclose(gan.minimax_g_loss(zeros), -LOG2, rtol=1e-6)
  np.testing.assert_allclose(gan.nonsaturating_g_loss(zeros), LOG2, rtol=1e-6)


def test_losses_are_finite_for_extreme_logits():
  big = jnp.array([-1e4, 1e4])
  for value in (gan.minimax_d_loss(big, big), gan.minimax_g_loss(big),
                gan.nonsaturating_g_loss(big), gan.rsgan_d_loss(big, -big)):
    assert np.isfinite(value)


def test_nonsaturating_gradient_dominates_when_discriminator_wins():
  fake = jnp.full((4,), -10.0)  # D(G(z)) = sigmoid(-10) ~ 4.5e-5
  g_minimax = jax.grad(gan.minimax_g_loss)(fake)
  g_nonsat = jax.grad(gan.nonsaturating_g_loss)(fake)
  s = 1.0 / (1.0 + math.exp(10.0))
  # d/dx log(1 - sigmoid(x)) = -sigmoid(x); d/dx -log sigmoid(x) = sigmoid(x) - 1.
  np.testing.assert_allclose(g_minimax, np.full(4, -s / 4), rtol=1e-4)
  np.testing.assert_allclose(g_nonsat, np.full(4, (s - 1.0) / 4), rtol=1e-4)
  # Both push the fake logit up, the non-saturating one ~1/s times harder.
  assert np.all(g_nonsat < 0) and np.all(g_minimax < 0)
  assert np.all(np.abs(g_nonsat) > 1e4 * np.abs(g_minimax))


def test_rsgan_values():
  np.testing.assert_allclose(gan.rsgan_d_loss(_f32(REAL), _f32(FAKE)),
                             _neg_log_sigmoid(REAL - FAKE).mean(), rtol=1e-6)
  np.testing.assert_allclose(gan.rsgan_g_loss(_f32(REAL), _f32(FAKE)),
                             _neg_log_sigmoid(FAKE - REAL).mean(), rtol=1e-6)
  np.testing.assert_allclose(gan.rsgan_d_loss(_f32(FAKE), _f32(REAL)),
                             gan.rsgan_g_loss(_f32(REAL), _f32(FAKE)), rtol=1e-6)
  np.testing.assert_allclose(gan.rsgan_d_loss(_f32(REAL), _f32(REAL)), LOG2, rtol=1e-6)


def test_wgan_values():
  real, fake = _f32([1.0, 2.0, 3.0]), _f32([0.5, -0.5])
  np.testing.assert_allclose(gan.wgan_critic_loss(real, fake), 0.0 - 2.0)
  np.testing.assert_allclose(gan.wgan_g_loss(fake), -0.0)
  np.testing.assert_allclose(gan.wgan_g_loss(_f32([1.0, 3.0])), -2.0)


@jax.jit
def _penalty_and_grad(w, real, fake, rng):
  def penalty(w):
    critic = lambda x: jnp.sum(x * w, axis=(1, 2))
    return gan.gradient_penalty(critic, real, fake, rng)
  return jax.value_and_grad(penalty)(w)


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_on_linear_critic_soft_one_hot(scale):
  # critic(x) = <w, x>: grad_x = w for every interpolate, so the penalty is
  # (||w|| - 1)^2 whatever the interpolation coefficients.
  rng = np.random.default_rng(0)
  w = rng.normal(size=(5, 7)).astype(np.float32)
  w = scale * w / np.linalg.norm(w)
  real = np.eye(7, dtype=np.float32)[rng.integers(0, 7, size=(4, 5))]
  fake = rng.dirichlet(np.ones(7), size=(4, 5)).astype(np.float32)
  penalty, grad_w = _penalty_and_grad(w, real, fake, jax.random.PRNGKey(4))
  np.testing.assert_allclose(penalty, (scale - 1.0) ** 2, rtol=1e-5, atol=1e-7)
  # Double backprop: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
  np.testing.assert_allclose(grad_w, 2.0 * (scale - 1.0) * w / scale, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_per_example_norms():
  # critic(x)_b = a_b * <w, x_b> has per-example gradient norm |a_b| ||w||.
  a = jnp.array([0.5, 1.0, 3.0])
  w = jnp.array([0.6, 0.8])  # unit norm
  critic = lambda x: a * (x @ w)
  real, fake = jnp.ones((3, 2)), jnp.zeros((3, 2))
  expected = np.mean((np.abs(np.asarray(a)) - 1.0) ** 2)
  penalty = jax.jit(lambda rng: gan.gradient_penalty(critic, real, fake, rng))
  np.testing.assert_allclose(penalty(jax.random.PRNGKey(3)), expected, rtol=1e-6)


def test_gradient_penalty_flat_critic_has_finite_gradient():
  # critic(x) = <w, x> with w = 0: zero input-gradient, penalty (0 - 1)^2,
  # and a naive sqrt would give a nan gradient with respect to w.
  real, fake = jnp.ones((2, 3)), jnp.zeros((2, 3))

  @jax.jit
  def penalty_and_grad(w):
    return jax.value_and_grad(lambda w: gan.gradient_penalty(
        lambda x: x @ w, real, fake, jax.random.PRNGKey(0)))(w)

  value, grad = penalty_and_grad(jnp.zeros(3))
  assert float(value) == 1.0 and np.all(np.isfinite(grad))


PARAMS = {"dense": {"kernel": jnp.array([[0.5, -0.02], [0.003, 2.0]]),
                    "bias": jnp.array([-1.0, 0.005])},
          "scale": jnp.array(0.2)}


def _leaves_within(tree, c):
  return all(bool(jnp.all(jnp.abs(leaf) <= c)) for leaf in jax.tree_util.tree_leaves(tree))


def test_clip_weights_bounds_every_leaf():
  c = 0.01
  clipped = gan.clip_weights(PARAMS, c)
  assert _leaves_within(clipped, c)
  np.testing.assert_array_equal(clipped["dense"]["kernel"],
                                np.float32([[0.01, -0.01], [0.003, 0.01]]))
  np.testing.assert_array_equal(clipped["dense"]["bias"], np.float32([-0.01, 0.005]))


def test_clip_weights_filter():
  not_bias = lambda path, leaf: "bias" not in jax.tree_util.keystr(path)
  clipped = gan.clip_weights(PARAMS, 0.01, filter_fn=not_bias)
  np.testing.assert_array_equal(clipped["dense"]["bias"], PARAMS["dense"]["bias"])
  assert clipped["scale"] == np.float32(0.01)


def test_apply_updates_and_clip_is_exact():
  updates = jax.tree_util.tree_map(lambda p: 0.37 * jnp.ones_like(p), PARAMS)
  new = gan.apply_updates_and_clip(PARAMS, updates, 0.01)
  assert _leaves_within(new, 0.01)
  expected = jax.tree_util.tree_map(lambda p: jnp.clip(p + 0.37, -0.01, 0.01), PARAMS)
  jax.tree_util.tree_map(np.testing.assert_array_equal, new, expected)


def test_clip_weights_transform_keeps_params_clipped_through_training():
  c = 0.01
  opt = optax.chain(optax.sgd(0.05), gan.clip_weights_transform(c))
  loss = lambda p: sum(jnp.sum(jnp.sin(3.0 * leaf) * 5.0) for leaf in
                       jax.tree_util.tree_leaves(p))

  @jax.jit
  def step(params, state):
    grads = jax.grad(loss)(params)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, updates

  params, state = PARAMS, opt.init(PARAMS)
  for _ in range(5):
    prev = params
    params, state, updates = step(params, state)
    assert _leaves_within(params, c)  # exactly: the transform clips a few ulps inside
    # Same params as updating without the transform and clipping after.
    raw_updates = jax.tree_util.tree_map(lambda new, p: new - p, params, prev)
    np.testing.assert_allclose(
        np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(params)]),
        np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(
            gan.apply_updates_and_clip(prev, raw_updates, c))]), atol=1e-8)


def test_clip_weights_transform_bound_is_exact_for_far_moves():
  # p far from the bound makes clip(p + u) - p inexact; the result still lies in [-c, c].
  c = 0.01
  p = jax.random.uniform(jax.random.key(0), (100_000,), minval=-c, maxval=c)
  u = jax.random.normal(jax.random.key(1), (100_000,))
  tx = gan.clip_weights_transform(c)
  new = optax.apply_updates(p, tx.update(u, tx.init(p), p)[0])
  assert float(jnp.max(jnp.abs(new))) <= c
  assert float(jnp.max(jnp.abs(new))) >= c * (1 - 1e-6)


def test_clip_weights_transform_requires_params():
  tx = gan.clip_weights_transform(0.1)
  with pytest.raises(ValueError, match="params"):
    tx.update(PARAMS, tx.init(PARAMS))


def test_instance_noise_statistics():
  x = jnp.full((200, 500), 3.0)
  noise_fn = jax.jit(gan.instance_noise)
  noise = np.asarray(noise_fn(jax.random.PRNGKey(0), x, 0.5), np.float64) - 3.0
  # 1e5 draws: standard errors of the mean and std are ~0.0016 and ~0.0011.
  assert abs(noise.mean()) < 0.006 and abs(noise.std() - 0.5) < 0.005
  np.testing.assert_array_equal(noise_fn(jax.random.PRNGKey(0), x, 0.0), x)


def test_linear_decay_values():
  for step, expected in [(0, 0.1), (50, 0.06), (100, 0.02), (250, 0.02), (-5, 0.1)]:
    np.testing.assert_allclose(gan.linear_decay(step, 0.1, 0.02, 100), expected, rtol=1e-6)
  sched = optax.linear_schedule(0.1, 0.02, 100)
  for step in (0, 13, 77, 100, 140):
    np.testing.assert_allclose(gan.linear_decay(step, 0.1, 0.02, 100), sched(step), rtol=1e-6)
  np.testing.assert_allclose(jax.jit(gan.linear_decay, static_argnums=(1, 2, 3))(
      jnp.int32(25), 1.0, 0.0, 100), 0.75)

"""KL annealing schedules, free bits and the importance-weighted bound."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxtextgen.objectives import latent
from jaxtextgen.objectives.divergences import gaussian_log_density, kl_gaussian


def test_linear_annealing_values():
  f = lambda n: float(latent.linear_annealing(n, warmup_steps=1000, start=0.1))
  assert [f(0), f(500), f(1000), f(5000)] == pytest.approx([0.1, 0.55, 1.0, 1.0])
  assert float(latent.linear_annealing(250, 1000)) == pytest.approx(0.25)


def test_logistic_annealing_values():
  f = lambda n: float(latent.logistic_annealing(n, k=0.0025, x0=2500))
  assert f(2500) == pytest.approx(0.5)
  assert f(0) == pytest.approx(1 / (1 + math.exp(6.25)), rel=1e-5)
  assert f(10_000) == pytest.approx(1 / (1 + math.exp(-18.75)), rel=1e-6)


def test_cyclical_annealing_values():
  # 100 steps, 4 cycles of 25 steps, rising over the first half (12.5 steps) of each.
  f = lambda n: float(latent.cyclical_annealing(n, total_steps=100, num_cycles=4, ratio=0.5))
  got = [f(n) for n in (0, 5, 12, 13, 24, 25, 30, 50, 99)]
  assert got == pytest.approx([0.0, 0.4, 0.96, 1.0, 1.0, 0.0, 0.4, 0.0, 1.0])
  # Jittable with a traced step.
  np.testing.assert_allclose(jax.jit(lambda n: latent.cyclical_annealing(n, 100, 4, 0.5))(30),
                             0.4, rtol=1e-6)


def test_free_bits_value_and_zero_gradient_below_threshold():
  # Dimension 0 has batch-mean KL 0.02 < lambda, dimension 1 has 2.0 > lambda.
  mean = jnp.array([[0.1, 1.0], [-0.1, 3.0], [0.3, -1.0], [0.1, 1.0]])
  logvar = jnp.zeros_like(mean)
  lam = 0.1

  def objective(mean):
    kl = kl_gaussian(mean, logvar)
    return latent.free_bits_kl(kl, lam, kl.mean(0)).sum()

  kl = kl_gaussian(mean, logvar)
  assert float(kl.mean(0)[0]) < lam < float(kl.mean(0)[1])
  np.testing.assert_allclose(objective(mean), 4 * (lam + kl.mean(0)[1]), rtol=1e-6)
  grad = jax.grad(objective)(mean)
  np.testing.assert_array_equal(grad[:, 0], 0.0)
  np.testing.assert_allclose(grad[:, 1], mean[:, 1], rtol=1e-6)  # d/dm of m^2 / 2
  # lambda = 0 is the plain KL.
  np.testing.assert_allclose(latent.free_bits_kl(kl, 0.0, kl.mean(0)), kl.sum(-1))


# A linear Gaussian model with a known marginal: p(z) = N(0, I), p(x|z) = N(x; z, S2 I),
# so p(x) = N(x; 0, (1 + S2) I) and p(z|x) = N(x / (1 + S2), S2 / (1 + S2)).
S2, Z, B = 0.5, 3, 256


def _model():
  x = jax.random.normal(jax.random.key(0), (B, Z)) * math.sqrt(1 + S2)
  log_lik = lambda z: gaussian_log_density(x, z, math.log(S2)).sum(-1)
  true = stats.norm(0, math.sqrt(1 + S2)).logpdf(np.asarray(x, np.float64)).sum(-1)
  post_mean, post_logvar = x / (1 + S2), jnp.full_like(x, math.log(S2 / (1 + S2)))
  return x, log_lik, true, post_mean, post_logvar


def test_iw_bound_k1_is_the_elbo_sample_and_tightens_with_k():
  _, log_lik, true, post_mean, post_logvar = _model()
  mean, logvar = post_mean + 0.5, post_logvar + 0.7  # a poor proposal
  rng = jax.random.key(1)
  iw = jax.jit(lambda k, c: latent.iw_log_marginal(rng, mean, logvar, log_lik, num_samples=k,
                                                   chunk_size=c), static_argnums=(0, 1))
  eps = jax.random.normal(jax.random.fold_in(rng, 0), (1, B, Z))
  z = mean + jnp.exp(0.5 * logvar) * eps
  elbo = (log_lik(z) + gaussian_log_density(z, 0.0, 0.0).sum(-1)
          - gaussian_log_density(z, mean, logvar).sum(-1))[0]
  np.testing.assert_allclose(iw(1, 1), elbo, rtol=1e-6)
  bounds = [float(iw(k, c).mean()) for k, c in ((1, 1), (10, 10), (1000, 100))]
  assert bounds == sorted(bounds)
  assert bounds[-1] < true.mean() + 0.01
  assert true.mean() - bounds[-1] < 0.1 * (true.mean() - bounds[0])


def test_iw_bound_is_exact_with_the_true_posterior():
  _, log_lik, true, post_mean, post_logvar = _model()
  got = latent.iw_log_marginal(jax.random.key(2), post_mean, post_logvar, log_lik,
                               num_samples=4, chunk_size=2)
  np.testing.assert_allclose(got, true, rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match='multiple'):
    latent.iw_log_marginal(jax.random.key(2), post_mean, post_logvar, log_lik, num_samples=5,
                           chunk_size=2)

"""Objectives of latent-variable text models: KL annealing, free bits, the IWAE bound.

The analytic KL itself is `divergences.kl_gaussian`; here is what VAEs for
text do with it to avoid posterior collapse (annealing, free bits), and the
importance-weighted bound used to evaluate them. All pure functions.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from jaxtextgen.objectives.divergences import gaussian_log_density


# --- KL weight schedules: pure functions of the step, each in [0, 1] --------------------------

def linear_annealing(step, warmup_steps: int, start: float = 0.0) -> jax.Array:
  """`start` rising linearly to 1 over `warmup_steps`, then 1.

  w(n) = start + (1 - start) * min(1, n / warmup_steps). He et al. 2019 and
  texar's PTB VAE start at 0.1 and warm up over 10 epochs.
  """
  frac = jnp.clip(jnp.asarray(step, jnp.float32) / max(warmup_steps, 1), 0.0, 1.0)
  return start + (1.0 - start) * frac


def logistic_annealing(step, k: float, x0: float) -> jax.Array:
  """w(n) = 1 / (1 + exp(-k (n - x0))): Bowman et al. 2016's sigmoid, as in the
  Sentence-VAE code (k = 0.0025, x0 = 2500)."""
  return jax.nn.sigmoid(k * (jnp.asarray(step, jnp.float32) - x0))


def cyclical_annealing(step, total_steps: int, num_cycles: int, ratio: float) -> jax.Array:
  """Fu et al. 2019: training is cut into `num_cycles` cycles of equal length;
  in each, w rises linearly from 0 to 1 over the first `ratio` of the cycle
  and stays at 1 for the rest.

  With period P = total_steps / num_cycles and tau = (n mod P) / P:
  w(n) = min(1, tau / ratio).
  """
  period = total_steps / num_cycles
  tau = jnp.mod(jnp.asarray(step, jnp.float32), period) / period
  return jnp.minimum(1.0, tau / ratio)


# --- free bits ------------------------------------------------------------------------------

def free_bits_kl(kl: jax.Array, threshold: float, batch_mean: jax.Array) -> jax.Array:
  """Free-bits KL, per sentence, whose gradient vanishes on dimensions below `threshold`.

  The objective replaces sum_j KL_j by sum_j max(KLbar_j, lambda), where KLbar_j
  is dimension j's KL averaged over the (global) batch (Kingma et al. 2016;
  Li et al. 2019 use lambda per dimension): a dimension whose KL is under
  lambda nats is not pushed towards the prior at all. Each sentence carries
  KL_bj on the dimensions above the threshold and lambda on the others, so
  summing over the batch gives B * sum_j max(KLbar_j, lambda), and the sum
  over several devices is exact when `batch_mean` is the global mean.

  Args:
    kl: [batch, Z] analytic KL of each dimension (`kl_gaussian`).
    threshold: lambda, nats per dimension (0: plain KL).
    batch_mean: [Z] KLbar_j; its gradient is never used.

  Returns:
    [batch] the free-bits KL of each sentence.
  """
  above = jax.lax.stop_gradient(batch_mean) > threshold
  return jnp.where(above[None, :], kl, threshold).sum(axis=-1)


# --- importance-weighted bound ------------------------------------------------------------------

def iw_log_marginal(rng: jax.Array, mean: jax.Array, logvar: jax.Array,
                    log_likelihood: Callable[[jax.Array], jax.Array], *, num_samples: int,
                    chunk_size: int) -> jax.Array:
  """Importance-weighted estimate of log p(x) with q(z|x) as proposal (Burda et al. 2016).

  log p(x) >= E[log (1/K) sum_k w_k],  w_k = p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x),

  with p(z) = N(0, I). K = 1 is the single-sample ELBO estimate; the bound
  tightens as K grows and tends to log p(x). The K samples are drawn and
  scored `chunk_size` at a time inside a `lax.scan`, so memory holds
  chunk_size * batch decoder passes, not K * batch (K = 500 in He et al. 2019).

  Args:
    rng: key; chunk i uses eps ~ N(0, I) of shape [chunk_size, batch, Z] drawn
      from fold_in(rng, i), so K = chunk_size = 1 reproduces an ELBO estimate
      made with normal(fold_in(rng, 0), (1, batch, Z)).
    mean, logvar: [batch, Z] the posterior q(z|x).
    log_likelihood: z [chunk_size, batch, Z] -> log p(x|z) [chunk_size, batch].
    num_samples: K, a multiple of chunk_size.
    chunk_size: samples scored per scan step.

  Returns:
    [batch] the estimates of log p(x) (negate for the IW-NLL).
  """
  if num_samples % chunk_size:
    raise ValueError(f'num_samples={num_samples} is not a multiple of chunk_size={chunk_size}; '
                     'make config.vae.iw_samples a multiple of config.vae.iw_chunk.')

  def body(lse, i):
    eps = jax.random.normal(jax.random.fold_in(rng, i), (chunk_size,) + mean.shape)
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_w = (log_likelihood(z) + gaussian_log_density(z, 0.0, 0.0).sum(-1)
             - gaussian_log_density(z, mean, logvar).sum(-1))
    return jnp.logaddexp(lse, jax.nn.logsumexp(log_w, axis=0)), None

  init = jnp.full(mean.shape[:1], -jnp.inf, jnp.float32)
  lse, _ = jax.lax.scan(body, init, jnp.arange(num_samples // chunk_size))
  return lse - math.log(num_samples)

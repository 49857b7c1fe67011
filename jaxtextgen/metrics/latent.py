"""How much a latent-variable model uses its latent: mutual information and active units.

Definitions (He et al. 2019, "Lagging inference networks", Sec. 5 and App.):

* MI  I(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x):
      I = E_x E_{q(z|x)}[log q(z|x)] - E_{q(z)}[log q(z)],
  where q(z) = (1/N) sum_j q(z|x_j) is the aggregated posterior over the N
  sentences considered. The first term is analytic (minus the entropy of a
  Gaussian); the second is estimated with one z_i ~ q(z|x_i) per sentence.
* AU  the number of dimensions j with Var_x(E_q[z_j|x]) > 0.01 (the unbiased
  variance over sentences of the posterior means).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.objectives.divergences import gaussian_log_density

_LOG_2PI = math.log(2 * math.pi)


def mutual_information(mean: jax.Array, logvar: jax.Array, z: jax.Array,
                       weight: jax.Array | None = None, *, chunk_size: int = 1024) -> jax.Array:
  """He et al.'s MI estimate over a set of N posteriors (module docstring).

  The aggregated posterior q(z) is the mixture of all N posteriors given, so
  called on one eval batch it is He et al.'s per-batch estimate, and on the
  whole split (all rows at once) the whole-split one. The N x N densities are
  computed `chunk_size` rows of z at a time.

  Args:
    mean, logvar: [N, Z] posteriors q(z|x_i).
    z: [N, Z] one sample z_i ~ q(z|x_i) per row.
    weight: [N] 1 for real rows, 0 for padding (left out of q(z) and the mean).
    chunk_size: rows of z scored at once (memory chunk_size * N * Z).

  Returns:
    Scalar MI in nats.
  """
  n, zdim = mean.shape
  weight = jnp.ones((n,), jnp.float32) if weight is None else weight.astype(jnp.float32)
  count = weight.sum()
  # E_q[log q(z|x)] = -H(q(z|x)), analytic for a diagonal Gaussian.
  neg_entropy = -0.5 * (zdim * (_LOG_2PI + 1.0) + logvar.sum(-1))
  log_mix = jnp.where(weight > 0, jnp.log(jnp.maximum(weight, 1e-30)), -jnp.inf) - jnp.log(count)

  def log_q_agg(z_chunk):  # [c, Z] -> [c]: log (1/N) sum_j q(z | x_j)
    dens = gaussian_log_density(z_chunk[:, None, :], mean[None], logvar[None]).sum(-1)
    return jax.nn.logsumexp(dens + log_mix[None, :], axis=1)

  c = min(chunk_size, n)
  pad = (-n) % c
  z_padded = jnp.pad(z, ((0, pad), (0, 0)))
  log_qz = jax.lax.map(log_q_agg, z_padded.reshape(-1, c, zdim)).reshape(-1)[:n]
  return jnp.sum(weight * (neg_entropy - log_qz)) / count


def active_units(mean_sum: np.ndarray, mean_sq_sum: np.ndarray, count: float,
                 threshold: float = 0.01) -> int:
  """AU from per-dimension sums over the split (exact however the split was batched).

  Args:
    mean_sum: [Z] sum over sentences of E_q[z|x].
    mean_sq_sum: [Z] sum over sentences of E_q[z|x]^2.
    count: N, the number of sentences (> 1).
    threshold: a dimension is active when its variance exceeds it.

  Returns:
    The number of active dimensions.
  """
  return int(np.sum(posterior_mean_variance(mean_sum, mean_sq_sum, count) > threshold))


def posterior_mean_variance(mean_sum, mean_sq_sum, count) -> np.ndarray:
  """[Z] unbiased Var_x(E_q[z|x]) from sums, in float64 (the sums come from float32)."""
  s1, s2 = np.asarray(mean_sum, np.float64), np.asarray(mean_sq_sum, np.float64)
  return np.maximum(s2 - s1 * s1 / count, 0.0) / max(count - 1.0, 1.0)

"""Information measures between categorical and Gaussian distributions.

Every categorical function reduces over the last axis and takes *logits*.
Normalised log-probabilities are valid logits (``log_softmax`` is idempotent),
so the same functions accept either. Probabilities that are exactly zero
(logits of ``-inf``) follow the convention ``0 * log 0 = 0`` in both the value
and the gradient, the way ``scipy.special.xlogy`` does.
"""

import math

import jax
import jax.numpy as jnp

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)


def _xlogy_terms(p, log_y, where):
  """``p * log_y``, exactly 0 wherever ``where`` is False (i.e. ``p == 0``).

  ``log_y`` is replaced *before* the product, not after: a ``jnp.where`` on
  the product alone still back-propagates ``0 * inf = nan`` through the
  discarded branch.
  """
  return p * jnp.where(where, log_y, 0.0)


def entropy(logits: jax.Array) -> jax.Array:
  """Shannon entropy (in nats) of the categorical distribution ``softmax(logits)``.

  ``H(p) = -sum_k p_k log p_k`` with ``0 log 0 = 0``.

  Args:
      logits: ``[..., vocab]`` unnormalised log-probabilities (or log-probs).

  Returns:
      ``[...]`` entropies, in ``[0, log vocab]``.

  References:
      Shannon, A Mathematical Theory of Communication, 1948.
  """
  log_p = jax.nn.log_softmax(logits, axis=-1)
  p = jnp.exp(log_p)
  return -jnp.sum(_xlogy_terms(p, log_p, p > 0), axis=-1)


def cross_entropy(target_probs: jax.Array, logits: jax.Array) -> jax.Array:
  """Cross-entropy of a model ``softmax(logits)`` under target probabilities.

  ``H(t, q) = -sum_k t_k log q_k`` with ``q = softmax(logits)``; entries with
  ``t_k = 0`` contribute nothing even where ``q_k = 0``. For one-hot targets
  this is the negative log-likelihood (see ``sequence.token_nll`` for the
  integer-target form).

  Args:
      target_probs: ``[..., vocab]`` probabilities, each row summing to 1
          (soft labels are fine).
      logits: ``[..., vocab]`` model logits (or log-probs).

  Returns:
      ``[...]`` cross-entropies.

  References:
      Cover & Thomas, Elements of Information Theory, 2nd ed., 2006, Sec. 2.3.
  """
  log_q = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.sum(_xlogy_terms(target_probs, log_q, target_probs > 0), axis=-1)


def kl_divergence(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
  """Kullback-Leibler divergence ``KL(p || q)`` between two categoricals.

  ``KL(p || q) = sum_k p_k (log p_k - log q_k)`` with ``p = softmax(p_logits)``
  and ``q = softmax(q_logits)``. It is ``+inf`` when ``q_k = 0 < p_k``, as the
  mathematics says; entries with ``p_k = 0`` contribute nothing.

  Args:
      p_logits: ``[..., vocab]`` logits of the reference distribution ``p``.
      q_logits: ``[..., vocab]`` logits of the approximating distribution ``q``.

  Returns:
      ``[...]`` non-negative divergences (in nats).

  References:
      Kullback & Leibler, On Information and Sufficiency, 1951.
  """
  log_p = jax.nn.log_softmax(p_logits, axis=-1)
  log_q = jax.nn.log_softmax(q_logits, axis=-1)
  p = jnp.exp(log_p)
  return jnp.sum(_xlogy_terms(p, log_p - log_q, p > 0), axis=-1)


def js_divergence(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
  """Jensen-Shannon divergence (base e) between two categoricals.

  ``JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``.
  Symmetric, in ``[0, log 2]``, equal to ``log 2`` iff the supports are
  disjoint; unlike KL it is finite for any pair of distributions.

  Args:
      p_logits: ``[..., vocab]`` logits of ``p``.
      q_logits: ``[..., vocab]`` logits of ``q``.

  Returns:
      ``[...]`` divergences (in nats).

  References:
      Lin, Divergence measures based on the Shannon entropy, IEEE Trans.
      Inf. Theory, 1991.
  """
  log_p = jax.nn.log_softmax(p_logits, axis=-1)
  log_q = jax.nn.log_softmax(q_logits, axis=-1)
  p, q = jnp.exp(log_p), jnp.exp(log_q)
  # log m in log space keeps precision for tiny probabilities. Where both are
  # zero, logaddexp(-inf, -inf) has a nan gradient, so feed it dummy zeros
  # there (the term is masked out anyway).
  either = (p > 0) | (q > 0)
  log_m = jnp.logaddexp(jnp.where(either, log_p, 0.0),
                                              jnp.where(either, log_q, 0.0)) - _LOG_2
  kl_pm = jnp.sum(_xlogy_terms(p, log_p - log_m, p > 0), axis=-1)
  kl_qm = jnp.sum(_xlogy_terms(q, log_q - log_m, q > 0), axis=-1)
  return 0.5 * (kl_pm + kl_qm)


def kl_gaussian(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Analytic ``KL(N(mean, exp(logvar)) || N(0, 1))`` per dimension.

  ``KL = (exp(logvar) + mean^2 - 1 - logvar) / 2`` for each coordinate of a
  diagonal Gaussian posterior against a standard-normal prior. Not summed:
  callers reduce over ``latent`` (and choose how to weight it, e.g. KL
  annealing or free bits).

  Args:
      mean: ``[..., latent]`` posterior means.
      logvar: ``[..., latent]`` posterior log-variances.

  Returns:
      ``[..., latent]`` non-negative divergences (in nats).

  References:
      Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014, App. B.
  """
  return 0.5 * (jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar)


def gaussian_log_density(z: jax.Array, mean: jax.Array,
                                                  logvar: jax.Array) -> jax.Array:
  """Log-density of ``z`` under a diagonal Gaussian, per dimension.

  ``log N(z; mean, exp(logvar)) = -(log(2 pi) + logvar
  + (z - mean)^2 exp(-logvar)) / 2``. Use ``mean = logvar = 0`` for the
  standard-normal prior. Parameterised by log-variance so that it never
  divides by a variance that has underflowed.

  Args:
      z: ``[..., latent]`` points.
      mean: ``[..., latent]`` means (broadcastable against ``z``).
      logvar: ``[..., latent]`` log-variances (broadcastable against ``z``).

  Returns:
      ``[..., latent]`` log-densities; sum over ``latent`` for the joint.

  References:
      Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014.
  """
  return -0.5 * (_LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar))

"""Gradient estimators through sampled discrete tokens.

Two families: the Gumbel-softmax relaxation (reparameterised, biased, low
variance; RelGAN) and the score-function / REINFORCE estimator (unbiased, high
variance; SeqGAN and friends), with a moving-average baseline to tame it.
"""

import math
from typing import Optional

import jax
import jax.numpy as jnp

from jaxtextgen.objectives.sequence import masked_sum

_SCHEDULES = ("const", "lin", "exp", "log", "sigmoid", "quad", "sqrt")


def gumbel_softmax(rng: jax.Array, logits: jax.Array, temperature,
                   hard: bool = False) -> jax.Array:
  """Gumbel-softmax (Concrete) sample, optionally straight-through.

  ``y = softmax((logits + g) / temperature)`` with i.i.d. ``g ~ Gumbel(0, 1)``.
  ``argmax(logits + g)`` is an exact sample from ``softmax(logits)`` (the
  Gumbel-max trick) and ``y`` tends to its one-hot as ``temperature -> 0``.

  With ``hard=True`` the forward value is exactly ``one_hot(argmax(logits +
  g))`` while the backward pass is the soft sample's (straight-through):
  ``y_hard + (y - stop_gradient(y))``, whose second term is exactly 0 in the
  forward pass but has identity Jacobian.

  Args:
      rng: PRNG key.
      logits: ``[..., vocab]`` unnormalised log-probabilities.
      temperature: positive scalar ``tau`` (may be traced); RelGAN's
          inverse temperature is ``beta = 1 / tau``.
      hard: return the straight-through one-hot sample.

  Returns:
      ``[..., vocab]`` sample on the simplex (one-hot when ``hard``).

  References:
      Jang et al., Categorical Reparameterization with Gumbel-Softmax, ICLR
      2017; Maddison et al., The Concrete Distribution, ICLR 2017.
  """
  gumbels = jax.random.gumbel(rng, logits.shape, dtype=logits.dtype)
  perturbed = logits + gumbels
  soft = jax.nn.softmax(perturbed / temperature, axis=-1)
  if not hard:
    return soft
  one_hot = jax.nn.one_hot(jnp.argmax(perturbed, axis=-1), logits.shape[-1],
                           dtype=soft.dtype)
  return one_hot + (soft - jax.lax.stop_gradient(soft))


def gumbel_inverse_temperature(step, schedule: str, max_steps: int,
                               beta_max: float) -> jax.Array:
  """RelGAN's inverse-temperature schedules ``beta_n``, rising from 1 to ``beta_max``.

  With ``n = step``, ``N = max_steps`` and ``b = beta_max`` (formulas exactly
  as ``get_fixed_temperature`` in the RelGAN code)::

      'const':   b
      'lin':     1 + (b - 1) * n / (N - 1)
      'exp':     b ** (n / N)
      'log':     1 + (b - 1) * log(n + 1) / log(N)
      'sigmoid': 1 + (b - 1) * sigmoid(20 * (n - N / 2) / N)
      'quad':    1 + (b - 1) * n**2 / (N - 1)**2
      'sqrt':    1 + (b - 1) * sqrt(n / (N - 1))

  RelGAN multiplies the perturbed logits by ``beta`` (i.e. ``tau = 1 /
  beta``; see ``gumbel_temperature``). Its code fixes ``N = 5000``
  regardless of the number of adversarial steps; pass that to reproduce
  it. Steps beyond ``N`` extrapolate (no clamping, as in RelGAN).
  RelGAN's experiment scripts use ``'exp'`` with ``beta_max`` 100 or 1000.

  Args:
      step: current adversarial step ``n >= 0`` (int or traced scalar).
      schedule: one of ``'const', 'lin', 'exp', 'log', 'sigmoid', 'quad',
          'sqrt'`` (static).
      max_steps: ``N > 1``.
      beta_max: final inverse temperature ``b >= 1``.

  References:
      Nie et al., RelGAN: Relational Generative Adversarial Networks for
      Text Generation, ICLR 2019, Sec. 2.3 and App.
  """
  n = jnp.asarray(step, jnp.float32)
  big_n = float(max_steps)
  rise = beta_max - 1.0
  if schedule == "const":
    return jnp.full_like(n, beta_max)
  if schedule == "lin":
    return 1.0 + rise * n / (big_n - 1.0)
  if schedule == "exp":
    return jnp.asarray(beta_max, jnp.float32) ** (n / big_n)
  if schedule == "log":
    return 1.0 + rise * jnp.log1p(n) / math.log(big_n)
  if schedule == "sigmoid":
    return 1.0 + rise * jax.nn.sigmoid((n - big_n / 2.0) * 20.0 / big_n)
  if schedule == "quad":
    return 1.0 + rise * jnp.square(n / (big_n - 1.0))
  if schedule == "sqrt":
    return 1.0 + rise * jnp.sqrt(n / (big_n - 1.0))
  raise ValueError(f"Unknown schedule {schedule!r}; expected one of "
                   f"{_SCHEDULES}.")


def gumbel_temperature(step, schedule: str, max_steps: int,
                       beta_max: float) -> jax.Array:
  """Gumbel-softmax temperature ``tau_n = 1 / beta_n`` for ``gumbel_softmax``.

  ``beta_n`` is ``gumbel_inverse_temperature(step, schedule, max_steps,
  beta_max)``, so ``tau`` falls from 1 to ``1 / beta_max``.

  References:
      Nie et al., RelGAN, ICLR 2019, Sec. 2.3.
  """
  return 1.0 / gumbel_inverse_temperature(step, schedule, max_steps, beta_max)


def reinforce_loss(log_probs: jax.Array, rewards: jax.Array, mask: jax.Array,
                   baseline: Optional[jax.Array] = None) -> jax.Array:
  """Score-function (REINFORCE) surrogate loss, averaged over valid tokens.

  ``L = -sum_{b,t} mask * sg(r - baseline) * log pi(y_t | y_<t) / sum mask``
  where ``sg`` is ``stop_gradient``. Its gradient is an unbiased estimate of
  ``-grad E[r]`` for any action-independent ``baseline``, which only
  reduces variance. The value itself is not the expected reward.

  Args:
      log_probs: ``[batch, time]`` log-probabilities of the sampled tokens.
      rewards: ``[batch, time]`` per-token rewards (e.g. discriminator
          rollout scores), or ``[batch, 1]`` for one reward per sequence.
      mask: ``[batch, time]`` 1/True for valid tokens.
      baseline: optional scalar or array broadcastable to ``rewards``.

  Returns:
      Scalar loss (0 if there are no valid tokens).

  References:
      Williams, Simple statistical gradient-following algorithms for
      connectionist reinforcement learning, Machine Learning 8, 1992;
      Yu et al., SeqGAN, AAAI 2017.
  """
  advantage = rewards if baseline is None else rewards - baseline
  advantage = jax.lax.stop_gradient(jnp.broadcast_to(advantage,
                                                     log_probs.shape))
  count = jnp.sum(jnp.asarray(jnp.broadcast_to(mask, log_probs.shape),
                              log_probs.dtype))
  total = masked_sum(advantage * log_probs, mask)
  return -total / jnp.maximum(count, 1.0)


def moving_average_baseline(old: jax.Array, rewards: jax.Array, decay: float,
                            mask: Optional[jax.Array] = None) -> jax.Array:
  """Exponential moving average of the mean reward, for ``reinforce_loss``.

  ``b_new = decay * b_old + (1 - decay) * mean(rewards)``, the mean taken
  over valid entries when ``mask`` is given. Use the *old* value as the
  baseline for the current batch so it stays independent of its actions.

  Args:
      old: scalar previous baseline.
      rewards: rewards of the current batch (any shape).
      decay: in ``[0, 1)``; larger is smoother.
      mask: optional validity mask broadcastable to ``rewards``.

  Returns:
      Scalar updated baseline (carries no gradient).

  References:
      Williams, Machine Learning 8, 1992, Sec. 4 (reinforcement baselines).
  """
  rewards = jax.lax.stop_gradient(rewards)
  if mask is None:
    mean = jnp.mean(rewards)
  else:
    count = jnp.sum(jnp.asarray(jnp.broadcast_to(mask, rewards.shape),
                                rewards.dtype))
    mean = masked_sum(rewards, mask) / jnp.maximum(count, 1.0)
  return decay * old + (1.0 - decay) * mean

"""Adversarial losses and discriminator regularisers.

Discriminator outputs are raw *logits* ``d`` (``D = sigmoid(d)``) or, for WGAN,
unbounded critic scores. Log-sigmoid identities keep every loss finite:
``-log D = softplus(-d)`` and ``-log(1 - D) = softplus(d)``. Losses are scalar
means over the batch (the real and fake batches may differ in size).
"""

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax

FilterFn = Callable[[Any, jax.Array], bool]


def minimax_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Standard GAN discriminator loss (binary cross-entropy, real=1, fake=0).

  ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]
  = mean(softplus(-real_logits)) + mean(softplus(fake_logits))``.

  Args:
      real_logits: ``[batch, ...]`` discriminator logits on real data.
      fake_logits: ``[batch, ...]`` discriminator logits on generated data.

  References:
      Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014, Eq. 1.
  """
  return (jnp.mean(jax.nn.softplus(-real_logits))
          + jnp.mean(jax.nn.softplus(fake_logits)))


def minimax_g_loss(fake_logits: jax.Array) -> jax.Array:
  """Saturating generator loss, ``E[log(1 - D(G(z)))] = -mean(softplus(d))``.

  The literal minimax objective. Its gradient ``-sigmoid(d)`` vanishes when
  the discriminator confidently rejects fakes (``d -> -inf``), which is
  exactly when the generator needs signal; prefer ``nonsaturating_g_loss``.

  Args:
      fake_logits: ``[batch, ...]`` discriminator logits on generated data.

  References:
      Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014, Eq. 1.
  """
  return -jnp.mean(jax.nn.softplus(fake_logits))


def nonsaturating_g_loss(fake_logits: jax.Array) -> jax.Array:
  """Non-saturating generator loss, ``-E[log D(G(z))] = mean(softplus(-d))``.

  Same fixed point as the minimax loss, but its gradient ``sigmoid(d) - 1``
  tends to ``-1`` (not 0) when the discriminator rejects fakes.

  Args:
      fake_logits: ``[batch, ...]`` discriminator logits on generated data.

  References:
      Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014, Sec. 3.
  """
  return jnp.mean(jax.nn.softplus(-fake_logits))


def rsgan_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Relativistic standard GAN discriminator loss.

  ``L_D = BCE(d_real - d_fake, 1) = mean(softplus(-(real - fake)))``: the
  discriminator estimates the probability that a real sample is more
  realistic than a paired fake one. Inputs are paired elementwise (shapes
  must broadcast), as in RelGAN.

  Args:
      real_logits: ``[batch, ...]`` logits on real data.
      fake_logits: ``[batch, ...]`` logits on generated data.

  References:
      Jolicoeur-Martineau, The relativistic discriminator, ICLR 2019;
      Nie et al., RelGAN, ICLR 2019.
  """
  return jnp.mean(jax.nn.softplus(fake_logits - real_logits))


def rsgan_g_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Relativistic standard GAN generator loss, ``BCE(d_fake - d_real, 1)``.

  ``L_G = mean(softplus(-(fake - real)))``; unlike the standard GAN it also
  pushes ``d_real`` down, so the generator gets gradient through real data.
  Arguments as in ``rsgan_d_loss``.

  References:
      Jolicoeur-Martineau, The relativistic discriminator, ICLR 2019;
      Nie et al., RelGAN, ICLR 2019.
  """
  return jnp.mean(jax.nn.softplus(real_logits - fake_logits))


def wgan_critic_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Wasserstein critic loss, ``mean(fake_scores) - mean(real_scores)``.

  Minimising it maximises the Kantorovich-Rubinstein estimate of
  ``W_1(P_real, P_fake)``; only meaningful with a Lipschitz constraint
  (``clip_weights_transform`` or ``gradient_penalty``).

  References:
      Arjovsky et al., Wasserstein GAN, ICML 2017, Alg. 1.
  """
  return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wgan_g_loss(fake_scores: jax.Array) -> jax.Array:
  """Wasserstein generator loss, ``-mean(fake_scores)``.

  References:
      Arjovsky et al., Wasserstein GAN, ICML 2017, Alg. 1.
  """
  return -jnp.mean(fake_scores)


def gradient_penalty(critic_fn: Callable[[jax.Array], jax.Array],
                     real: jax.Array, fake: jax.Array,
                     rng: jax.Array) -> jax.Array:
  """WGAN-GP penalty ``E[(||grad_x critic(x_hat)||_2 - 1)^2]`` (unscaled).

  ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per
  example; the norm is over all non-batch axes, so inputs may be vectors,
  images or relaxed one-hot sequences ``[batch, time, vocab]``. Multiply by
  ``lambda`` (10 in the paper) and add to ``wgan_critic_loss``.

  Per-example gradients come from one ``grad`` of ``sum(critic_fn(x_hat))``,
  which is exact only if each output depends on its own input alone (no
  batch norm across examples, as the paper also requires).

  Args:
      critic_fn: maps ``[batch, ...]`` inputs to ``[batch]`` (or
          ``[batch, 1]``) scores; close over the critic parameters to
          differentiate the penalty with respect to them.
      real: ``[batch, ...]`` float real inputs.
      fake: ``[batch, ...]`` float generated inputs, same shape.
      rng: PRNG key for the interpolation coefficients.

  Returns:
      Scalar penalty.

  References:
      Gulrajani et al., Improved Training of Wasserstein GANs, NeurIPS 2017,
      Alg. 1.
  """
  eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  eps = jax.random.uniform(rng, eps_shape, dtype=real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
  sq_norms = jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1)
  # sqrt has an infinite derivative at 0 (a flat or dead-ReLU critic), which
  # would turn the parameter gradient into nan; use 0 there instead.
  nonzero = sq_norms > 0
  norms = jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq_norms, 1.0)), 0.0)
  return jnp.mean(jnp.square(norms - 1.0))


def clip_weights(params: Any, c: float,
                 filter_fn: Optional[FilterFn] = None) -> Any:
  """Clips every parameter leaf into ``[-c, c]`` (WGAN's Lipschitz hack).

  Args:
      params: a pytree of arrays.
      c: clipping bound (0.01 in the paper).
      filter_fn: optional ``(key_path, leaf) -> bool``; only leaves for which
          it returns True are clipped (default: all).

  References:
      Arjovsky et al., Wasserstein GAN, ICML 2017, Alg. 1, line 7.
  """
  def clip(path, p):
    if filter_fn is not None and not filter_fn(path, p):
      return p
    return jnp.clip(p, -c, c)
  return jax.tree_util.tree_map_with_path(clip, params)


def apply_updates_and_clip(params: Any, updates: Any, c: float,
                           filter_fn: Optional[FilterFn] = None) -> Any:
  """``clip_weights(optax.apply_updates(params, updates), c)``.

  The exact form of WGAN's "update, then clip": the clip is the last
  operation, so the bound holds exactly. Prefer it to
  ``clip_weights_transform`` when the training step can call it directly.
  """
  return clip_weights(optax.apply_updates(params, updates), c, filter_fn)


def clip_weights_transform(
        c: float,
        filter_fn: Optional[FilterFn] = None,
) -> optax.GradientTransformationExtraArgs:
  """Optax transform that makes ``apply_updates`` land on clipped params.

  A gradient transformation sees updates, not the parameters they will
  produce, so it cannot clip the parameters directly. Instead, given the
  final updates ``u`` and current ``params`` ``p``, it returns
  ``clip(p + u, -c, c) - p``; ``optax.apply_updates`` then yields
  ``clip(p + u)``. Hence it must be the *last* element of an
  ``optax.chain`` (after the learning-rate scaling) and ``update`` must be
  called with ``params``.

  ``p + (clip(p + u) - p)`` is evaluated in floating point (two roundings,
  at most 1.5 ulp of ``c``), so the transform clips into ``[-c', c']`` with
  ``c' = c (1 - 4 eps)`` of the leaf's dtype: every leaf then lies in
  ``[-c, c]`` exactly, 5e-7 relative inside the bound in float32.

  Args:
      c: clipping bound.
      filter_fn: optional ``(key_path, leaf) -> bool`` selecting the params
          to clip (key paths as in ``jax.tree_util.tree_map_with_path``).

  Returns:
      A stateless ``optax.GradientTransformationExtraArgs``.

  References:
      Arjovsky et al., Wasserstein GAN, ICML 2017, Alg. 1, line 7.
  """
  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError("clip_weights_transform needs params: call "
                       "update(updates, state, params).")
    def clipped(path, p, u):
      new = p + u
      if filter_fn is None or filter_fn(path, p):
        inner = c * (1.0 - 4.0 * float(jnp.finfo(p.dtype).eps))
        new = jnp.clip(new, -inner, inner)
      return (new - p).astype(u.dtype)
    updates = jax.tree_util.tree_map_with_path(clipped, params, updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def instance_noise(rng: jax.Array, x: jax.Array, std) -> jax.Array:
  """Adds ``N(0, std^2)`` noise to discriminator inputs.

  ``x + std * n``, ``n ~ N(0, I)``, applied to both real and fake inputs;
  it makes the two distributions overlap so that the discriminator cannot
  become perfect and its gradients stay informative. Anneal ``std`` to 0,
  e.g. with ``linear_decay``.

  Args:
      rng: PRNG key.
      x: ``[batch, ...]`` float inputs (e.g. one-hot ``[batch, time, vocab]``).
      std: scalar noise standard deviation (may be traced).

  References:
      Sonderby et al., Amortised MAP Inference for Image Super-resolution,
      ICLR 2017, Sec. 3.2.
  """
  return x + std * jax.random.normal(rng, x.shape, dtype=x.dtype)


def linear_decay(step, start: float, end: float, steps: int) -> jax.Array:
  """Linear interpolation from ``start`` to ``end`` over ``steps``, then flat.

  ``value(n) = start + (end - start) * clip(n / steps, 0, 1)``; the same as
  ``optax.linear_schedule(start, end, steps)(n)``, as a plain function.

  Args:
      step: current step (int or traced scalar).
      start: value at step 0.
      end: value at and after ``steps``.
      steps: length of the ramp (> 0).
  """
  frac = jnp.clip(jnp.asarray(step, jnp.float32) / steps, 0.0, 1.0)
  return start + (end - start) * frac

"""`wgan`: Wasserstein GAN on the generator's softmax outputs (Arjovsky et al. 2017,
as applied to text by Gulrajani et al. 2017 and Rajeswar et al. 2017).

The shared LSTM generator free-runs (`models.sampler.relaxed_sample` with
gumbel=False): step t emits the distribution p_t = softmax(logits_t) and reads
its expected embedding p_t @ E next, so the sequence is a differentiable
function of the parameters and of the random initial LSTM state
(N(0, gan.latent_std^2), which must be > 0: without it every fake would be the
same). The critic (`adversarial.make_discriminator`, its logit used raw, no
sigmoid) reads these distributions for fakes and one-hots for reals;
config.gan.loss must be 'wgan': the critic minimises mean(f(fake)) - mean(f(real))
and every weight is clipped into [-gan.clip, gan.clip] after each of its
gan.d_steps (n_critic) updates per generator update; the generator minimises
-mean(f(fake)). The WGAN recipe: RMSProp 5e-5 for both (gan.d_optimizer /
d_learning_rate, gan.g_optimizer / g_learning_rate), c = 0.01, n_critic = 5.

The clipping is the last transform of the critic's optax chain. Everything else
(the schedule, MLE pretraining or gan.generator_init, gan.mle_every, EMA, eval,
sampling) is gumbel_gan's, with softmax instead of Gumbel fakes. The critic reports
'd/gap' (mean real minus fake score, its Wasserstein estimate), not an accuracy.

    from jaxtextgen.steps import wgan
    state = wgan.init(rng, config, batch)
    state, metrics = wgan.train_step(state, batches, rng, config=config)  # a round
    # batches: the next g_steps + d_steps (n_critic) batches stacked [g + d, B, max_len]
"""

from __future__ import annotations

import jax

from jaxtextgen.steps import adversarial, gumbel_gan
from jaxtextgen.steps.common import TrainState


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """gumbel_gan's players, after checking the WGAN settings."""
  g = config.gan
  if g.loss != 'wgan':
    raise ValueError(f"config.gan.loss={g.loss!r}: the wgan algorithm trains a critic; set "
                     "config.gan.loss='wgan' (other losses on relaxed tokens: gumbel_gan)")
  if g.latent_std <= 0:
    raise ValueError('config.gan.latent_std=0 makes the softmax generator deterministic (every '
                     'fake the same); set it > 0, e.g. 1.0')
  return gumbel_gan.init(rng, config, sample_batch)


def train_step(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None):
  """One round: g_steps generator updates, then d_steps (n_critic) critic updates, on
  batches stacked [g_steps + d_steps, B, T] (`gumbel_gan.train_step` on softmax fakes)."""
  return gumbel_gan.train_step(state, batches, rng, config=config, axis_name=axis_name,
                               gumbel=False)


def schedule(config):
  """gumbel_gan's schedule on softmax fakes."""
  return gumbel_gan.schedule(config, gumbel=False)


def eval_step(state: TrainState, batch, rng: jax.Array, *, config):
  """`adversarial.eval_step` with the critic on softmax fakes; its d_gap is the
  critic's estimate of W_1 between the eval split and the generator."""
  return gumbel_gan.eval_step(state, batch, rng, config=config, gumbel=False)


finalize_eval = adversarial.finalize_eval
evaluate_samples = adversarial.evaluate_samples
sample = adversarial.sample

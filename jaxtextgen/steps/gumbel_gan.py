"""`gumbel_gan`: a GAN on Gumbel-softmax relaxed tokens (RelGAN, Nie et al. 2019;
GSGAN, Kusner & Hernandez-Lobato 2016), with the shared LSTM generator.

Players: 'generator' (the shared decoder, `lm.make_decoder`; MLE steps use
config.optimizer, adversarial steps their own config.gan.g_optimizer, RelGAN's
Adam 1e-2 / 1e-4 split) and 'discriminator' (`adversarial.make_discriminator`).

The generator free-runs (`models.sampler.relaxed_sample`): at step t it emits
y_t = softmax(beta_n * (logits_t + g_t)), g ~ Gumbel(0, 1), whose argmax is an
exact sample of the model, and reads the expected embedding y_t @ E next.
With config.gan.gumbel_hard, y_t is the straight-through one-hot (forward: the
sample's one-hot; backward: the soft vector's gradient). beta_n rises from 1 to
gan.gumbel_beta_max over the adversarial generator updates n by RelGAN's
schedule (gan.gumbel_schedule, 'exp' = beta_max ** (n / N)). The discriminator
reads these vectors for fakes and one-hots (token ids) for reals, so its
gradient reaches every generator parameter through every y_t. The loss is
config.gan.loss: 'nonsaturating', 'rsgan' (RelGAN's) or 'wgan' (a critic with
weight clipping gan.clip after every update).

The schedule (`schedule`, `adversarial.gan_schedule`): MLE pretraining (or a
pretrained generator, gan.generator_init), discriminator pretraining, then gan.rounds
rounds (`train_step`, one update each) of g_steps generator and d_steps discriminator
updates, an MLE step after every gan.mle_every-th generator update, EMA of the
generator (gan.ema_decay). Eval and sampling use hard samples
(`adversarial.eval_step`, `adversarial.sample`).

    from jaxtextgen.steps import gumbel_gan
    state = gumbel_gan.init(rng, config, batch)
    state, metrics = gumbel_gan.train_step(state, batches, rng, config=config)  # a round
    # batches: the next g_steps + d_steps batches stacked [g + d, B, max_len]
"""

from __future__ import annotations

import functools

import jax

from jaxtextgen.steps import adversarial
from jaxtextgen.steps.common import TrainState


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Generator (lm's init, or gan.generator_init's) with its MLE and adversarial
  optimizers, discriminator; the EMA starts as a copy of the generator."""
  adversarial.check_config(config)
  k_gen, k_d = jax.random.split(rng)
  gen, gen_tx = adversarial.init_generator(k_gen, config, sample_batch)
  d_params, d_tx = adversarial.init_discriminator(k_d, config)
  ema = {'generator': jax.tree.map(jax.numpy.copy, gen)} if config.gan.ema_decay > 0 else {}
  state = TrainState.create({'generator': gen, 'discriminator': d_params},
                            {'generator': gen_tx, 'discriminator': d_tx}, ema_params=ema)
  return adversarial.with_adversarial_optimizer(state, config)


def beta_of(state: TrainState, config, gumbel: bool):
  """The inverse temperature of this step's fakes (1 for softmax fakes)."""
  return adversarial.gumbel_beta(state.step, config) if gumbel else 1.0


def mle_step(state, batch, rng, *, config, axis_name=None):
  """Pretraining: one teacher-forcing step of the generator (EMA = copy)."""
  state, loss = adversarial.mle_update(state, batch, rng, config=config, axis_name=axis_name)
  return adversarial.with_ema(state, config, adversarial_update=False), {'loss': loss}


def discriminator_step(state, batch, rng, *, config, axis_name=None, gumbel: bool = True):
  """One discriminator step: the real batch (one-hot) vs as many fresh relaxed fakes."""
  k_fake, k_d = jax.random.split(rng)
  real = adversarial.pad_time(batch['tokens'], config.data.max_len, config.vocab.pad_id)
  fakes = adversarial.soft_fakes(state.params['generator'], k_fake, real.shape[0], config=config,
                                 gumbel=gumbel, beta=beta_of(state, config, gumbel))
  return adversarial.discriminator_update(state, real, jax.lax.stop_gradient(fakes.probs),
                                         k_d, config=config, axis_name=axis_name)


def generator_step(state, batch, rng, *, config, axis_name=None, gumbel: bool = True):
  """One adversarial generator step through the relaxed unroll, then an interleaved
  MLE step on the real batch (every gan.mle_every-th) and the EMA."""
  k_adv, k_mle = jax.random.split(rng)
  state, metrics = adversarial.soft_generator_update(state, batch, k_adv, config=config,
                                                     gumbel=gumbel, axis_name=axis_name)
  if config.gan.mle_every:
    state, metrics['mle/loss'] = adversarial.interleaved_mle(state, batch, k_mle, config=config,
                                                             axis_name=axis_name)
  return adversarial.with_ema(state, config, adversarial_update=True), metrics


def train_step(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None,
               gumbel: bool = True):
  """One adversarial round (`adversarial.round_step`) on batches stacked
  [g_steps + d_steps, B, T]. Returns (state, {'g/loss', 'g/beta', ..., 'd/loss', ...})."""
  return adversarial.round_step(
      state, batches, rng, config=config, axis_name=axis_name,
      generator=functools.partial(generator_step, gumbel=gumbel),
      discriminator=functools.partial(discriminator_step, gumbel=gumbel))


def schedule(config, gumbel: bool = True):
  """mle (gan.mle_steps), d_pretrain (gan.d_pretrain_steps), round (gan.rounds)."""
  return adversarial.gan_schedule(
      config, mle=mle_step, discriminator=functools.partial(discriminator_step, gumbel=gumbel),
      generator=functools.partial(generator_step, gumbel=gumbel))


def eval_step(state: TrainState, batch, rng: jax.Array, *, config, gumbel: bool = True):
  """`adversarial.eval_step`, D scoring relaxed fakes (those it is trained on)."""
  def d_fakes(gen, key, num):
    return adversarial.soft_fakes(gen, key, num, config=config, gumbel=gumbel,
                                  beta=beta_of(state, config, gumbel)).probs
  return adversarial.eval_step(state, batch, rng, config=config, d_fakes=d_fakes)


finalize_eval = adversarial.finalize_eval
evaluate_samples = adversarial.evaluate_samples
sample = adversarial.sample

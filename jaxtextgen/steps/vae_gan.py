"""`vae_gan`: the VAE's decoder as the GAN's generator (Larsen et al. 2016, on text).

Players: 'encoder' and 'decoder' (`vae`'s, with its optimizers, KL schedule, word dropout,
free bits, vae.encoder_init) and 'discriminator' (`adversarial.make_discriminator`). The
decoder writes Gumbel-softmax sentences (`models.sampler.relaxed_sample`, RelGAN's inverse
temperature schedule gan.gumbel_*, straight-through with gan.gumbel_hard) from two kinds
of codes: z ~ N(0, I) (prior samples) and z ~ q(z|x) of the real batch (reconstructions).
Which player gets which gradient:

  encoder        KL + reconstruction NLL (the VAE's loss, `vae.elbo_grads`); no
                 adversarial gradient: the reconstructions' codes are stop_gradient-ed
  decoder        vae_gan.gamma * reconstruction NLL + the adversarial generator loss of
                 gan.loss on prior samples and reconstructions (+ vae_gan.feature_weight *
                 Larsen's learned similarity: the squared distance between the
                 discriminator's penultimate features of each real sentence and of its
                 reconstruction)
  discriminator  real vs prior samples vs reconstructions: gan.loss ('nonsaturating',
                 'rsgan', 'wgan' with clipping) on B real sentences, each paired with one
                 prior sample and one reconstruction

The schedule is a GAN's (`adversarial.gan_schedule`): phase 'vae' (gan.mle_steps plain
`vae.train_step`s), 'd_pretrain', then gan.rounds rounds of g_steps VAE-GAN generator
updates (`generator_step`) and d_steps discriminator updates, one fused update each.
Eval is the VAE's (`vae.eval_step`: IW-NLL, KL, MI, active units, reconstruction BLEU,
and with config.eval.bleu BLEU / self-BLEU of prior samples); sampling draws from the
prior; --mode=sample's reconstructions / homotopy / latent PNG work as for the VAE.

    from jaxtextgen.steps import vae_gan
    state = vae_gan.init(rng, config, batch)
    state, metrics = vae_gan.train_step(state, batches, rng, config=config)  # a round
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtextgen.models.latent import reparameterize
from jaxtextgen.models.sampler import relaxed_sample
from jaxtextgen.steps import adversarial, autoencoding, vae
from jaxtextgen.steps.common import TrainState, pad_time


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """The VAE's encoder and decoder (`vae.init`) and the discriminator."""
  adversarial.check_config(config)
  if config.vae_gan.gamma < 0 or config.vae_gan.feature_weight < 0:
    raise ValueError(f'config.vae_gan: need gamma, feature_weight >= 0; got '
                     f'{config.vae_gan.gamma}, {config.vae_gan.feature_weight}')
  k_vae, k_d = jax.random.split(rng)
  state = vae.init(k_vae, config, sample_batch)
  d_params, d_tx = adversarial.init_discriminator(k_d, config)
  return TrainState.create({**state.params, 'discriminator': d_params},
                           {**state.tx, 'discriminator': d_tx})


def codes(state: TrainState, batch, rng: jax.Array, *, config) -> jax.Array:
  """[2B, Z]: B prior codes z ~ N(0, I), then the B real sentences' z ~ q(z|x), with no
  gradient into the encoder."""
  k_prior, k_post = jax.random.split(rng)
  mean, logvar = autoencoding.encode(state.params['encoder'], batch['tokens'], batch['mask'],
                                     config=config)
  post = reparameterize(jax.random.normal(k_post, mean.shape), mean, logvar)
  prior = jax.random.normal(k_prior, mean.shape)
  return jnp.concatenate([prior, jax.lax.stop_gradient(post)])


def fakes(decoder_params, z: jax.Array, rng: jax.Array, beta, *, config) -> jax.Array:
  """Gumbel-softmax sentences [n, max_len, V] of the decoder from codes z [n, Z]."""
  v, g = config.vocab, config.gan
  return relaxed_sample(autoencoding.make_decoder(config), {'params': decoder_params}, rng,
                        batch=z.shape[0], length=config.data.max_len, bos_id=v.bos_id,
                        eos_id=v.eos_id, pad_id=v.pad_id, gumbel=True,
                        inverse_temperature=beta, hard=g.gumbel_hard, cond=z).probs


def _real(batch, config) -> jax.Array:
  return pad_time(batch['tokens'], config.data.max_len, config.vocab.pad_id)


def discriminator_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One discriminator update: each real sentence against a prior sample and its
  reconstruction. Returns (state, `adversarial.discriminator_loss`'s metrics)."""
  k_code, k_fake, k_d = jax.random.split(rng, 3)
  beta = adversarial.gumbel_beta(state.step, config)
  z = codes(state, batch, k_code, config=config)
  fake = jax.lax.stop_gradient(fakes(state.params['decoder'], z, k_fake, beta, config=config))
  real = _real(batch, config)
  return adversarial.discriminator_update(state, jnp.concatenate([real, real]), fake, k_d,
                                          config=config, axis_name=axis_name)


def generator_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One update of encoder and decoder (module docstring): the VAE's gradients, plus the
  adversarial (and learned-similarity) gradient into the decoder only. Returns
  (state, the VAE's metrics plus 'adv_loss', 'fake_score', 'beta' and, with
  vae_gan.feature_weight, 'feature_loss')."""
  k_vae, k_code, k_fake, k_noise = jax.random.split(rng, 4)
  vg = config.vae_gan
  grads, metrics = vae.elbo_grads(state, batch, k_vae, config=config, axis_name=axis_name)
  beta = adversarial.gumbel_beta(state.step, config)
  z = codes(state, batch, k_code, config=config)
  real = _real(batch, config)
  d_params, n = state.params['discriminator'], real.shape[0]
  k_nr, k_nf = jax.random.split(k_noise)
  d_real = lambda: adversarial.d_inputs(jnp.concatenate([real, real]), k_nr, config=config)
  real_logits = adversarial.discriminator_logits(d_params, d_real(), config=config)
  real_features = (adversarial.discriminator_features(d_params, d_real()[:n], config=config)
                   if vg.feature_weight else None)

  def loss_fn(decoder):
    soft = adversarial.d_inputs(fakes(decoder, z, k_fake, beta, config=config), k_nf,
                                config=config)
    fake_logits = adversarial.discriminator_logits(d_params, soft, config=config)
    adv = adversarial.generator_loss(real_logits, fake_logits, config=config)
    aux = {'adv_loss': adv, 'fake_score': fake_logits.mean()}
    if vg.feature_weight:  # Larsen's learned similarity: D's features of x vs of its rec.
      rec_features = adversarial.discriminator_features(d_params, soft[n:], config=config)
      aux['feature_loss'] = jnp.mean(jnp.sum((rec_features - real_features) ** 2, -1))
      adv = adv + vg.feature_weight * aux['feature_loss']
    return adv, aux

  adv_grads, aux = jax.grad(loss_fn, has_aux=True)(state.params['decoder'])
  adv_grads, aux = adversarial.pmean((adv_grads, aux), axis_name)
  decoder_grads = jax.tree.map(lambda r, a: vg.gamma * r + a, grads['decoder'], adv_grads)
  state = state.apply_gradients('encoder', grads['encoder'])
  state = state.apply_gradients('decoder', decoder_grads)
  return state, {**metrics, **aux, 'beta': beta}


def train_step(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None):
  """One round (`adversarial.round_step`): g_steps `generator_step`s, then d_steps
  `discriminator_step`s, on batches stacked [g_steps + d_steps, B, T]."""
  return adversarial.round_step(state, batches, rng, config=config, axis_name=axis_name,
                                generator=generator_step, discriminator=discriminator_step)


def schedule(config):
  """vae (gan.mle_steps `vae.train_step`s), d_pretrain, round (gan.rounds)."""
  return adversarial.gan_schedule(config, mle=vae.train_step, discriminator=discriminator_step,
                                  generator=generator_step, pretrain='vae',
                                  counted_pretrain=False)


eval_step = vae.eval_step
finalize_eval = vae.finalize_eval
sample = vae.sample
encode_sentences = vae.encode_sentences
reconstruct = vae.reconstruct
homotopy = vae.homotopy
sample_outputs = vae.sample_outputs

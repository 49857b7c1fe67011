"""What the GAN algorithms share: the discriminator player, its update, the
generator's MLE update, EMA, and the schedule of named updates. Not an algorithm itself.

A GAN run is a schedule (`gan_schedule`, `steps.schedule`) of three phases, whose lengths
come from config.gan when the run starts:

    'mle'         gan.mle_steps updates of the generator, teacher forcing, a batch each
    'd_pretrain'  gan.d_pretrain_steps discriminator updates, real batch vs fresh fakes
    'round'       gan.rounds adversarial rounds; one round is ONE update (`round_step`)
                  that consumes g_steps + d_steps real batches, stacked [g + d, B, T]:
                  g_steps generator updates, then d_steps discriminator updates, each a
                  `lax.scan` on device, with nothing leaving the device during a round

so a SeqGAN round ("1 generator step, then 5 x 3 epochs of D") is g_steps=1,
d_steps=5*3*156, and every discriminator update sees a real batch it has not seen in
this round. The run's step counts real batches (mle + d_pretrain + rounds * (g + d)),
every single-batch update advances state.step by one and draws its keys from
fold_in(rng, state.step) (`counted`), so a fused round equals its updates run one by one.
Metrics: 'mle/loss'; 'd_pretrain/...'; in a round 'g/...' (the mean over its generator
updates), 'd/...' (over its discriminator updates) and, with gan.mle_every, 'mle/loss'
of the interleaved MLE steps.

The discriminator's objective is config.gan.loss: 'nonsaturating' (SeqGAN's
cross-entropy; the generator minimises -log D(fake)), 'rsgan' (relativistic,
RelGAN) or 'wgan' (a critic; config.gan.clip > 0 clips every weight into
[-clip, clip] after each update, by the last transform of its optax chain,
`objectives.gan.clip_weights_transform`). Its metrics: 'real' / 'fake' (mean
probability of 'real'; wgan: mean critic score), and 'acc' (nonsaturating: the
fraction of real and fake sentences on the right side of 0), 'pair_acc' (rsgan: the
fraction of pairs whose real one scores higher) or 'gap' (wgan: mean real minus fake
score, the critic's Wasserstein estimate).
Generators on relaxed tokens (gumbel_gan, wgan) share `soft_generator_update`:
the differentiable unroll of `models.sampler.relaxed_sample`, the
discriminator on its vectors, one update of the generator with its own
adversarial optimizer (config.gan.g_optimizer; MLE keeps config.optimizer).

config.gan.generator_init names the workdir of an `lm` (or any GAN) run whose
latest checkpoint's generator starts this one (`init_generator`), so a run can
skip MLE pretraining (gan.mle_steps = 0).

Eval (`eval_step` / `finalize_eval`, shared): NLL-gen on the eval split, the
discriminator's accuracy (d_acc_real / d_acc_fake; not for a critic) and d_gap (the
mean logit of real minus fake eval sentences: a critic's Wasserstein estimate) on
real eval sentences vs fresh fakes, and with config.eval.bleu BLEU-2..5 of
one temperature-1 sample per eval sentence against the eval split, and their
self-BLEU-2..5 (`lm.finalize_eval`).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxtextgen.models.discriminator import CNNDiscriminator, LSTMDiscriminator
from jaxtextgen.models.sampler import relaxed_sample
from jaxtextgen.objectives import gan as gan_losses
from jaxtextgen.objectives.discrete import gumbel_inverse_temperature
from jaxtextgen.steps import lm, schedule
from jaxtextgen.steps.common import (TrainState, compute_dtype, global_sum, load_params,
                                     make_optimizer, pad_time)

LOSSES = ('nonsaturating', 'rsgan', 'wgan')
G_ADV = 'generator_adv'  # opt_state / tx key of the adversarial generator optimizer

def adversarial_g_updates(step: jax.Array, config) -> jax.Array:
  """How many adversarial generator updates come before step `step` (real batches
  consumed so far; rounds put their g_steps generator updates first)."""
  g = config.gan
  adv = jnp.maximum(jnp.asarray(step, jnp.int32) - g.mle_steps - g.d_pretrain_steps, 0)
  rounds, in_round = jnp.divmod(adv, g.g_steps + g.d_steps)
  return rounds * g.g_steps + jnp.minimum(in_round, g.g_steps)


def check_config(config) -> None:
  """Errors a user can make in config.gan, raised at init with the fix."""
  g = config.gan
  if (g.g_steps < 1 or g.d_steps < 0 or g.mle_steps < 0 or g.d_pretrain_steps < 0
      or g.rounds < 0):
    raise ValueError(f'config.gan: need g_steps >= 1 and d_steps, mle_steps, d_pretrain_steps, '
                     f'rounds >= 0; got {g.g_steps}, {g.d_steps}, {g.mle_steps}, '
                     f'{g.d_pretrain_steps}, {g.rounds}')
  if not (0.0 <= g.ema_decay < 1.0 and 0.0 <= g.rollout_update_rate <= 1.0 and g.mle_every >= 0):
    raise ValueError(f'config.gan: need 0 <= ema_decay < 1, 0 <= rollout_update_rate <= 1 and '
                     f'mle_every >= 0; got {g.ema_decay}, {g.rollout_update_rate}, {g.mle_every}')
  if g.d_kind not in ('cnn', 'lstm'):
    raise ValueError(f"config.gan.d_kind={g.d_kind!r}: use 'cnn' or 'lstm'")
  if g.d_kind == 'cnn' and len(g.d_filter_sizes) != len(g.d_num_filters):
    raise ValueError(f'config.gan.d_filter_sizes {tuple(g.d_filter_sizes)} and d_num_filters '
                     f'{tuple(g.d_num_filters)} must have the same length')
  if g.loss not in LOSSES:
    raise ValueError(f'config.gan.loss={g.loss!r}: use one of {LOSSES}')
  if g.loss == 'wgan' and g.clip <= 0:
    raise ValueError("config.gan.loss='wgan' needs a Lipschitz critic: set config.gan.clip > 0 "
                     '(WGAN: 0.01)')
  if g.clip < 0 or g.instance_noise < 0 or g.latent_std < 0 or g.gumbel_beta_max < 1:
    raise ValueError(f'config.gan: need clip, instance_noise, latent_std >= 0 and '
                     f'gumbel_beta_max >= 1; got {g.clip}, {g.instance_noise}, {g.latent_std}, '
                     f'{g.gumbel_beta_max}')


# --- the discriminator player ---------------------------------------------------------------------

def make_discriminator(config):
  """The discriminator as configured by config.gan (SeqGAN's CNN or an LSTM)."""
  g = config.gan
  common = dict(vocab_size=config.vocab.size, emb_dim=g.d_emb_dim, dropout=g.d_dropout,
                two_class=g.d_two_class, dtype=compute_dtype(config))
  if g.d_kind == 'lstm':
    return LSTMDiscriminator(hidden_size=g.d_hidden_size, **common)
  return CNNDiscriminator(filter_sizes=tuple(g.d_filter_sizes),
                          num_filters=tuple(g.d_num_filters), **common)


def init_discriminator(rng: jax.Array, config):
  """(params, optimizer) of the discriminator on token ids [batch, max_len]; a
  weight-clipped critic starts inside the box too."""
  tokens = jnp.zeros((1, config.data.max_len), jnp.int32)
  params = make_discriminator(config).init(rng, tokens)['params']
  if config.gan.clip > 0:
    params = gan_losses.clip_weights(params, config.gan.clip)
  return params, discriminator_optimizer(config)


def discriminator_optimizer(config) -> optax.GradientTransformation:
  """config.gan.d_optimizer at constant d_learning_rate with d_grad_clip (Adam's betas
  from config.optimizer); with gan.clip, every update lands inside [-clip, clip]."""
  g = config.gan
  opt = ml_collections.ConfigDict(dict(
      config.optimizer.to_dict(), name=g.d_optimizer, learning_rate=g.d_learning_rate,
      grad_clip=g.d_grad_clip, schedule='constant', weight_decay=0.0))
  tx = make_optimizer(opt, config.num_train_steps)
  if g.clip > 0:  # WGAN
    tx = optax.chain(tx, gan_losses.clip_weights_transform(g.clip))
  return tx


def discriminator_logits(params, tokens: jax.Array, *, config, rng=None) -> jax.Array:
  """D's logits [batch] of int [batch, time] ids or [batch, time, V] distributions;
  dropout on when an rng is given."""
  rngs = {'dropout': rng} if rng is not None else {}
  return make_discriminator(config).apply({'params': params}, tokens, train=rng is not None,
                                          rngs=rngs)


def discriminator_features(params, tokens: jax.Array, *, config) -> jax.Array:
  """D's penultimate features [batch, F] (what its output layer reads, no dropout) of ids
  or distributions: Larsen et al.'s learned similarity compares these."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  _, state = make_discriminator(config).apply(
      {'params': params}, tokens, mutable=['intermediates'],
      capture_intermediates=lambda module, method: isinstance(module, nn.Dropout))
  return state['intermediates']['drop']['__call__'][0].astype(jnp.float32)


def d_inputs(x: jax.Array, rng: jax.Array, *, config) -> jax.Array:
  """What D reads: ids as they are, or [batch, time, V] vectors (one-hot reals, soft
  fakes) plus config.gan.instance_noise Gaussian noise. With noise, ids become one-hots."""
  std = config.gan.instance_noise
  if not std:
    return x
  if jnp.issubdtype(x.dtype, jnp.integer):
    x = jax.nn.one_hot(x, config.vocab.size, dtype=jnp.float32)
  return gan_losses.instance_noise(rng, x, std)


def discriminator_loss(params, real: jax.Array, fake: jax.Array, rng: jax.Array, *, config):
  """config.gan.loss's discriminator objective plus d_l2 * ||output layer||^2 / 2
  (SeqGAN's tf.nn.l2_loss). 'nonsaturating' is SeqGAN's cross-entropy over the mixed
  real/fake batch. real, fake: ids [batch, time] or distributions [batch, time, V].
  Returns (loss, metrics): 'loss' (without the L2 term), 'real' / 'fake' (mean
  probabilities of 'real'; wgan: mean critic scores) and 'acc' (nonsaturating), 'pair_acc'
  (rsgan) or 'gap' (wgan), as the module docstring defines them."""
  k_real, k_fake, k_nr, k_nf = jax.random.split(rng, 4)
  real_logits = discriminator_logits(params, d_inputs(real, k_nr, config=config), config=config,
                                     rng=k_real)
  fake_logits = discriminator_logits(params, d_inputs(fake, k_nf, config=config), config=config,
                                     rng=k_fake)
  kind = config.gan.loss
  if kind == 'wgan':
    loss = gan_losses.wgan_critic_loss(real_logits, fake_logits)
  elif kind == 'rsgan':
    loss = gan_losses.rsgan_d_loss(real_logits, fake_logits)
  else:  # minimax_d_loss sums the two halves' means; SeqGAN's mean over the mixed batch is half.
    loss = 0.5 * gan_losses.minimax_d_loss(real_logits, fake_logits)
  out = params['output']
  l2 = 0.5 * (jnp.sum(jnp.square(out['kernel'])) + jnp.sum(jnp.square(out['bias'])))
  score = (lambda x: x) if kind == 'wgan' else jax.nn.sigmoid
  metrics = {'loss': loss, 'real': score(real_logits).mean(), 'fake': score(fake_logits).mean()}
  if kind == 'wgan':
    metrics['gap'] = real_logits.mean() - fake_logits.mean()
  elif kind == 'rsgan':
    metrics['pair_acc'] = (real_logits > fake_logits).mean()
  else:
    metrics['acc'] = 0.5 * ((real_logits > 0).mean() + (fake_logits < 0).mean())
  return loss + config.gan.d_l2 * l2, metrics


def discriminator_update(state: TrainState, real: jax.Array, fake: jax.Array, rng: jax.Array, *,
                         config, axis_name=None):
  """One optimizer step of 'discriminator' on real vs fake (ids [batch, time] or
  distributions [batch, time, V]; equal local batches on every device, so the mean
  of device means is the global mean); its optax chain clips a critic's weights.
  Returns (state, metrics)."""
  grad_fn = jax.grad(discriminator_loss, has_aux=True)
  grads, metrics = grad_fn(state.params['discriminator'], real, fake, rng, config=config)
  grads, metrics = pmean((grads, metrics), axis_name)
  return state.apply_gradients('discriminator', grads), metrics


def generator_loss(real_logits: jax.Array, fake_logits: jax.Array, *, config) -> jax.Array:
  """config.gan.loss's generator objective on D's logits [batch]."""
  kind = config.gan.loss
  if kind == 'wgan':
    return gan_losses.wgan_g_loss(fake_logits)
  if kind == 'rsgan':
    return gan_losses.rsgan_g_loss(real_logits, fake_logits)
  return gan_losses.nonsaturating_g_loss(fake_logits)


# --- the generator -------------------------------------------------------------------------------

def load_generator(workdir: str) -> dict:
  """Generator params (numpy) of the latest checkpoint of an `lm` (or GAN) run in
  `workdir` (`common.load_params`: safe inside a jitted init)."""
  params = load_params(workdir, 'config.gan.generator_init',
                       'train an lm there first (configs/mle_oracle.py) or fix the path.')
  if 'generator' not in params:
    raise ValueError(f'config.gan.generator_init={workdir!r} holds no generator; point it at '
                     "the workdir of an 'lm' run.")
  return params['generator']


def init_generator(rng: jax.Array, config, sample_batch):
  """(params, MLE optimizer) of the generator: lm's init, or the generator of
  config.gan.generator_init's latest checkpoint (shapes must match)."""
  state = lm.init(rng, config, sample_batch)
  params, path = state.params['generator'], config.gan.generator_init
  if path:
    loaded = load_generator(path)
    shapes = lambda tree: jax.tree.map(np.shape, tree)
    if shapes(loaded) != shapes(params):
      raise ValueError(f'the generator in {path} does not fit this model: its parameter shapes '
                       f'are {shapes(loaded)}, this model needs {shapes(params)}. Pretrain with '
                       'the same corpus, vocabulary and config.model sizes.')
    params = jax.tree.map(jnp.asarray, loaded)
  return params, state.tx['generator']


def with_adversarial_optimizer(state: TrainState, config) -> TrainState:
  """Adds the optimizer of the adversarial generator updates (config.gan.g_optimizer,
  g_learning_rate; MLE steps keep config.optimizer) under the key G_ADV."""
  g = config.gan
  opt = ml_collections.ConfigDict(dict(
      config.optimizer.to_dict(), name=g.g_optimizer, learning_rate=g.g_learning_rate,
      schedule='constant', weight_decay=0.0))
  tx = make_optimizer(opt, config.num_train_steps)
  return state.replace(opt_state={**state.opt_state, G_ADV: tx.init(state.params['generator'])},
                       tx={**state.tx, G_ADV: tx})


sample_fakes = lm.draw  # the GANs' token fakes: the generator at temperature 1


def gumbel_beta(step: jax.Array, config) -> jax.Array:
  """RelGAN's inverse temperature at trainer step `step`: config.gan.gumbel_schedule
  over n = adversarial generator updates so far, N = gan.gumbel_anneal_steps (0: all
  of the run's)."""
  g = config.gan
  total = g.gumbel_anneal_steps or g.rounds * g.g_steps
  return gumbel_inverse_temperature(adversarial_g_updates(step, config), g.gumbel_schedule,
                                    max(total, 2), g.gumbel_beta_max)


def soft_fakes(gen_params, rng: jax.Array, num: int, *, config, gumbel: bool,
               beta: float | jax.Array = 1.0):
  """`num` differentiable fakes (`relaxed_sample`): Gumbel-softmax vectors at inverse
  temperature beta (config.gan.gumbel_hard: straight-through one-hots), or the
  softmax distributions. The latent noise of config.gan.latent_std (the only randomness
  of softmax fakes): the LSTM starts from N(0, latent_std^2) states (zeros if 0), any
  other decoder reads N(0, latent_std^2) noise added to BOS's embedding."""
  v, g = config.vocab, config.gan
  decoder = lm.make_decoder(config)
  params = {'params': gen_params}
  k_noise, k_sample = jax.random.split(rng)
  state, first = None, None
  noise = lambda k, x: g.latent_std * jax.random.normal(k, x.shape, x.dtype)
  if g.latent_std and config.model.decoder == 'lstm':
    zero = decoder.apply(params, num, method='init_cache')
    keys = jax.random.split(k_noise, len(jax.tree.leaves(zero)))
    leaves = [noise(k, x) for k, x in zip(keys, jax.tree.leaves(zero))]
    state = jax.tree.unflatten(jax.tree.structure(zero), leaves)
  elif g.latent_std:
    bos = decoder.apply(params, jnp.full((num,), v.bos_id, jnp.int32), method='embed')
    first = bos + noise(k_noise, bos)
  return relaxed_sample(decoder, params, k_sample, batch=num,
                        length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                        pad_id=v.pad_id, gumbel=gumbel, inverse_temperature=beta,
                        hard=g.gumbel_hard, cache=state, first_input=first)


def soft_generator_update(state: TrainState, batch, rng: jax.Array, *, config, gumbel: bool,
                          axis_name=None):
  """One adversarial generator step through relaxed tokens: unroll `num` soft fakes,
  score them with D (no dropout; reals too for rsgan), config.gan.loss's generator
  loss, gradients into the generator through every soft vector, one step of the
  adversarial optimizer. Returns (state, metrics)."""
  k_fake, k_noise = jax.random.split(rng)
  real = pad_time(batch['tokens'], config.data.max_len, config.vocab.pad_id)
  beta = gumbel_beta(state.step, config) if gumbel else jnp.ones((), jnp.float32)
  d_params = state.params['discriminator']
  k_nr, k_nf = jax.random.split(k_noise)
  real_logits = discriminator_logits(d_params, d_inputs(real, k_nr, config=config),
                                     config=config)

  def loss_fn(gen):
    fakes = soft_fakes(gen, k_fake, real.shape[0], config=config, gumbel=gumbel, beta=beta)
    fake_logits = discriminator_logits(d_params, d_inputs(fakes.probs, k_nf, config=config),
                                       config=config)
    return generator_loss(real_logits, fake_logits, config=config), fake_logits

  (loss, fake_logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params['generator'])
  grads, loss, fake_score = pmean((grads, loss, fake_logits.mean()), axis_name)
  gen = state.params['generator']
  updates, opt = state.tx[G_ADV].update(grads, state.opt_state[G_ADV], gen)
  state = state.replace(params={**state.params, 'generator': optax.apply_updates(gen, updates)},
                        opt_state={**state.opt_state, G_ADV: opt})
  return state, {'loss': loss, 'fake_score': fake_score, 'beta': beta}


def mle_update(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One 'generator' step on the global per-token NLL of a real batch (lm's loss).
  Returns (state, loss)."""
  count = global_sum(batch['mask'].sum(), axis_name)

  def loss_fn(params):
    return lm.nll(params, batch, config=config, train=True, rng=rng)[0] / count

  loss, grads = jax.value_and_grad(loss_fn)(state.params['generator'])
  grads, loss = global_sum((grads, loss), axis_name)
  return state.apply_gradients('generator', grads), loss


def interleaved_mle(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """After an adversarial generator update: an MLE step on the real batch when it
  was the config.gan.mle_every-th. Returns (state, MLE loss, NaN when this update had
  none: window means skip it)."""
  g = config.gan
  n = adversarial_g_updates(state.step, config) + 1
  return jax.lax.cond(
      n % g.mle_every == 0,
      lambda s: mle_update(s, batch, rng, config=config, axis_name=axis_name),
      lambda s: (s, jnp.full((), jnp.nan, jnp.float32)), state)


def ema_update(ema, params, decay: float):
  """decay * ema + (1 - decay) * params, leaf by leaf."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def with_ema(state: TrainState, config, *, adversarial_update: bool) -> TrainState:
  """The generator's EMA after a generator change: a copy during pretraining, a
  moving average once adversarial training has started (nothing when off)."""
  g = config.gan
  if not g.ema_decay:
    return state
  gen = state.params['generator']
  ema = ema_update(state.ema_params['generator'], gen, g.ema_decay) if adversarial_update else gen
  return state.replace(ema_params={**state.ema_params, 'generator': ema})


def eval_generator(state: TrainState, config):
  """The generator that eval and sampling use: its EMA when config.gan.ema_decay > 0."""
  return state.ema_params['generator'] if config.gan.ema_decay > 0 else state.params['generator']


# --- the step, eval and sampling every GAN algorithm shares ---------------------------------------

def counted(update: Callable) -> Callable:
  """A single-batch update as a step of the schedule: its keys are
  fold_in(rng, state.step) (and the device index under pmap: different samples and
  dropout on different shards), and it advances state.step by one."""
  def step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
    rng = jax.random.fold_in(rng, state.step)
    if axis_name is not None:
      rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
    state, metrics = update(state, batch, rng, config=config, axis_name=axis_name)
    return state.replace(step=state.step + 1), metrics
  return step


def scan_updates(update: Callable, state: TrainState, batches, rng: jax.Array, *, config,
                 axis_name=None):
  """`counted(update)` over stacked batches [k, B, T] by `lax.scan`: (state, the mean
  of each metric over the k updates, NaNs skipped)."""
  def body(s, batch):
    return counted(update)(s, batch, rng, config=config, axis_name=axis_name)
  state, metrics = jax.lax.scan(body, state, batches)
  return state, {k: jnp.nanmean(jnp.asarray(v, jnp.float32)) for k, v in metrics.items()}


def round_step(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None,
               generator: Callable, discriminator: Callable):
  """One adversarial round on g_steps + d_steps real batches stacked [g + d, B, T]:
  `generator` on the first g_steps, then `discriminator` on the rest, each update a
  `counted` step (so the round equals its updates run one by one with the same keys).
  Returns (state, {'g/<key>': mean over the generator updates, 'd/<key>': over the
  discriminator updates}; keys holding a '/' as they are)."""
  g = config.gan
  n = jax.tree.leaves(batches)[0].shape[0]
  if n != g.g_steps + g.d_steps:
    raise ValueError(f'a round takes g_steps + d_steps = {g.g_steps + g.d_steps} stacked '
                     f'batches [k, B, T]; got k = {n}')
  metrics = {}
  for name, update, part in (('g', generator, slice(0, g.g_steps)),
                             ('d', discriminator, slice(g.g_steps, n))):
    if part.stop > part.start:
      state, m = scan_updates(update, state, jax.tree.map(lambda x, p=part: x[p], batches),
                              rng, config=config, axis_name=axis_name)
      metrics.update({k if '/' in k else f'{name}/{k}': v for k, v in m.items()})
  return state, metrics


def gan_schedule(config, *, mle: Callable, discriminator: Callable, generator: Callable,
                 pretrain: str = 'mle', counted_pretrain: bool = True,
                 d_pretrain: Callable | None = None, d_pretrain_name: str = 'd_pretrain'):
  """The schedule of a GAN (module docstring) from config.gan, with the algorithm's
  three single-batch updates (state, batch, rng, *, config, axis_name) -> (state, metrics);
  the first phase is named `pretrain`, and `mle` is wrapped by `counted` unless
  `counted_pretrain` is False (an update that draws its keys and advances the step
  itself, e.g. `vae.train_step`). The second phase, `d_pretrain_name`, runs `d_pretrain`
  (default: `discriminator`)."""
  check_config(config)
  g = config.gan
  fused = functools.partial(round_step, generator=generator, discriminator=discriminator)
  return schedule.Schedule((
      schedule.Phase(pretrain, counted(mle) if counted_pretrain else mle, g.mle_steps),
      schedule.Phase(d_pretrain_name, counted(d_pretrain or discriminator), g.d_pretrain_steps),
      schedule.Phase('round', fused, g.rounds, batches=g.g_steps + g.d_steps)))


def eval_step(state: TrainState, batch, rng: jax.Array, *, config,
              d_fakes: Callable | None = None):
  """Sums over the batch: `lm.eval_step` of the evaluated generator (EMA when enabled)
  on the real eval batch (NLL-gen on that split; with config.eval.bleu, the rows for
  BLEU of its samples); how many real sentences and as many fakes D classifies right,
  and the sums of its logits. `d_fakes(gen_params, rng, num)` -> what D reads as fakes
  (default: token samples, the same ones BLEU scores)."""
  gen = eval_generator(state, config)
  v = config.vocab
  sums = lm.eval_step(state.replace(params={'generator': gen}), batch, rng, config=config)
  length, num = max(batch['tokens'].shape[1], config.data.max_len), batch['tokens'].shape[0]
  pad = lambda t: pad_time(t, length, v.pad_id)
  k_sample, k_d = jax.random.split(rng)  # lm.eval_step samples with k_sample
  if d_fakes is not None:
    fake = d_fakes(gen, k_d, num)
    fake = jnp.pad(fake, ((0, 0), (0, length - fake.shape[1]), (0, 0)))
    fake = fake.at[:, config.data.max_len:, v.pad_id].set(1.0)
  elif 'per_example' in sums:
    fake = sums['per_example']['fake']
  else:
    fake = pad(sample_fakes(gen, k_sample, num, config=config).tokens)
  d = lambda x: discriminator_logits(state.params['discriminator'], x, config=config)
  w = batch['weight']
  real_logits, fake_logits = d(pad(batch['tokens'])), d(fake)
  if config.gan.loss != 'wgan':  # a critic's scores have no threshold
    sums['d_real_correct'] = jnp.sum(w * (real_logits > 0))
    sums['d_fake_correct'] = jnp.sum(w * (fake_logits < 0))
  sums['d_gap_sum'] = jnp.sum(w * (real_logits - fake_logits))
  return sums


def finalize_eval(sums: dict) -> dict:
  """`lm.finalize_eval` (NLL / PPL on the eval split = NLL-gen, and bleu{n} /
  self_bleu{n} when sampled), D's accuracy on real eval sentences and on fakes, and
  d_gap = mean logit of real minus fake (wgan: the critic's estimate of W_1)."""
  out = lm.finalize_eval(sums)
  if 'd_real_correct' in sums:
    out['d_acc_real'] = sums['d_real_correct'] / sums['sentences']
    out['d_acc_fake'] = sums['d_fake_correct'] / sums['sentences']
  out['d_gap'] = sums['d_gap_sum'] / sums['sentences']
  return out


def evaluate_samples(state: TrainState, rng: jax.Array, *, config, data) -> dict:
  """The trainer's eval hook: NLL-oracle of the evaluated generator (EMA when enabled)."""
  return lm.oracle_metrics(eval_generator(state, config), rng, config=config, data=data)


def sample(state: TrainState, rng: jax.Array, num: int, *, config, **conditions) -> jax.Array:
  """`num` sentences int32 [num, config.data.max_len] from the evaluated generator
  (EMA when enabled), with config.sample's decoding settings."""
  gen = eval_generator(state, config)
  return lm.sample(state.replace(params={'generator': gen}), rng, num, config=config,
                   **conditions)


# --- small helpers ------------------------------------------------------------------------------

def pmean(x, axis_name: str | None):
  """Mean over devices under pmap/shard_map; identity under jit."""
  return x if axis_name is None else jax.lax.pmean(x, axis_name)

"""What the GAN algorithms share: the discriminator player, its update, the
generator's MLE update, EMA, and the step schedule. Not an algorithm itself.

Every GAN run is a sequence of trainer steps, each of which updates ONE player
on one real batch (config.gan):

    [0, mle_steps)                       'mle'       generator, teacher forcing
    [.., + d_pretrain_steps)             'd_pretrain' discriminator, real vs fresh fakes
    then rounds of g_steps + d_steps:    'g'         generator, the algorithm's own loss
                                         'd'         discriminator, real vs fresh fakes

so a SeqGAN round ("1 generator step, then 5 x 3 epochs of D") is g_steps=1,
d_steps=5*3*156, and every discriminator step sees a real batch it has not
seen in this round. The phase is a pure function of state.step, picked on
device by `lax.switch` inside the one jitted train step: the generic trainer
needs nothing GAN-specific and a run resumes at any step. The price, on
XLA:CPU only, is that the conditional copies the players it leaves untouched
(SeqGAN's discriminator with its Adam state is 86 MB: tens of ms a step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxtextgen.models.discriminator import CNNDiscriminator, LSTMDiscriminator
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.objectives.gan import minimax_d_loss
from jaxtextgen.steps import lm
from jaxtextgen.steps.common import TrainState, compute_dtype, global_sum, make_optimizer

# Phases, in the order they occur; `phase_at` returns their index.
PHASES = ('mle', 'd_pretrain', 'g', 'd')
MLE, D_PRETRAIN, G, D = range(4)


def phase_at(step: jax.Array, config) -> jax.Array:
  """int32 index into PHASES of the update that trainer step `step` (0-based) makes."""
  g = config.gan
  step = jnp.asarray(step, jnp.int32)
  adv = step - g.mle_steps - g.d_pretrain_steps
  in_round = jnp.mod(jnp.maximum(adv, 0), g.g_steps + g.d_steps)
  return jnp.where(step < g.mle_steps, MLE,
                   jnp.where(adv < 0, D_PRETRAIN, jnp.where(in_round < g.g_steps, G, D)))


def adversarial_g_updates(step: jax.Array, config) -> jax.Array:
  """How many adversarial generator updates come before trainer step `step`."""
  g = config.gan
  adv = jnp.maximum(jnp.asarray(step, jnp.int32) - g.mle_steps - g.d_pretrain_steps, 0)
  rounds, in_round = jnp.divmod(adv, g.g_steps + g.d_steps)
  return rounds * g.g_steps + jnp.minimum(in_round, g.g_steps)


def check_config(config) -> None:
  """Errors a user can make in config.gan, raised at init with the fix."""
  g = config.gan
  if g.g_steps < 1 or g.d_steps < 0 or g.mle_steps < 0 or g.d_pretrain_steps < 0:
    raise ValueError(f'config.gan: need g_steps >= 1 and d_steps, mle_steps, d_pretrain_steps '
                     f'>= 0; got {g.g_steps}, {g.d_steps}, {g.mle_steps}, {g.d_pretrain_steps}')
  if not (0.0 <= g.ema_decay < 1.0 and 0.0 <= g.rollout_update_rate <= 1.0 and g.mle_every >= 0):
    raise ValueError(f'config.gan: need 0 <= ema_decay < 1, 0 <= rollout_update_rate <= 1 and '
                     f'mle_every >= 0; got {g.ema_decay}, {g.rollout_update_rate}, {g.mle_every}')
  if g.d_kind not in ('cnn', 'lstm'):
    raise ValueError(f"config.gan.d_kind={g.d_kind!r}: use 'cnn' or 'lstm'")
  if g.d_kind == 'cnn' and len(g.d_filter_sizes) != len(g.d_num_filters):
    raise ValueError(f'config.gan.d_filter_sizes {tuple(g.d_filter_sizes)} and d_num_filters '
                     f'{tuple(g.d_num_filters)} must have the same length')


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
  """(params, optimizer) of the discriminator on token ids [batch, max_len]."""
  tokens = jnp.zeros((1, config.data.max_len), jnp.int32)
  params = make_discriminator(config).init(rng, tokens)['params']
  g = config.gan
  opt = ml_collections.ConfigDict(dict(
      config.optimizer.to_dict(), name=g.d_optimizer, learning_rate=g.d_learning_rate,
      grad_clip=g.d_grad_clip, schedule='constant', weight_decay=0.0))
  return params, make_optimizer(opt, config.num_train_steps)


def discriminator_logits(params, tokens: jax.Array, *, config, rng=None) -> jax.Array:
  """D's logits [batch] of int [batch, time] ids or [batch, time, V] distributions;
  dropout on when an rng is given."""
  rngs = {'dropout': rng} if rng is not None else {}
  return make_discriminator(config).apply({'params': params}, tokens, train=rng is not None,
                                          rngs=rngs)


def discriminator_loss(params, real: jax.Array, fake: jax.Array, rng: jax.Array, *, config):
  """SeqGAN's objective: cross-entropy over the mixed real/fake batch plus
  d_l2 * ||output layer||^2 / 2 (tf.nn.l2_loss). Returns (loss, metrics)."""
  k_real, k_fake = jax.random.split(rng)
  real_logits = discriminator_logits(params, real, config=config, rng=k_real)
  fake_logits = discriminator_logits(params, fake, config=config, rng=k_fake)
  # minimax_d_loss sums the two halves' means; SeqGAN's mean over the mixed batch is half that.
  loss = 0.5 * minimax_d_loss(real_logits, fake_logits)
  out = params['output']
  l2 = 0.5 * (jnp.sum(jnp.square(out['kernel'])) + jnp.sum(jnp.square(out['bias'])))
  metrics = {'d_real': jax.nn.sigmoid(real_logits).mean(),
             'd_fake': jax.nn.sigmoid(fake_logits).mean(),
             'd_acc': 0.5 * ((real_logits > 0).mean() + (fake_logits < 0).mean())}
  return loss + config.gan.d_l2 * l2, {'d_loss': loss, **metrics}


def discriminator_update(state: TrainState, real: jax.Array, fake: jax.Array, rng: jax.Array, *,
                         config, axis_name=None):
  """One optimizer step of 'discriminator' on real vs fake token ids [batch, time]
  (equal local batches on every device, so the mean of device means is the
  global mean). Returns (state, metrics)."""
  grad_fn = jax.grad(discriminator_loss, has_aux=True)
  grads, metrics = grad_fn(state.params['discriminator'], real, fake, rng, config=config)
  grads, metrics = pmean((grads, metrics), axis_name)
  return state.apply_gradients('discriminator', grads), metrics


# --- the generator -------------------------------------------------------------------------------

def sample_fakes(gen_params, rng: jax.Array, num: int, *, config):
  """`num` fresh generator sentences at temperature 1, the distribution being
  trained (config.sample's temperature / top-k are for --mode=sample only)."""
  v = config.vocab
  return sample_tokens(lm.make_decoder(config), {'params': gen_params}, rng, batch=num,
                       length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                       pad_id=v.pad_id)


def mle_update(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One 'generator' step on the global per-token NLL of a real batch (lm's loss).
  Returns (state, loss)."""
  count = global_sum(batch['mask'].sum(), axis_name)

  def loss_fn(params):
    return lm.nll(params, batch, config=config, train=True, rng=rng)[0] / count

  loss, grads = jax.value_and_grad(loss_fn)(state.params['generator'])
  grads, loss = global_sum((grads, loss), axis_name)
  return state.apply_gradients('generator', grads), loss


def ema_update(ema, params, decay: float):
  """decay * ema + (1 - decay) * params, leaf by leaf."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def eval_generator(state: TrainState, config):
  """The generator that eval and sampling use: its EMA when config.gan.ema_decay > 0."""
  return state.ema_params['generator'] if config.gan.ema_decay > 0 else state.params['generator']


# --- small helpers ------------------------------------------------------------------------------

def pad_time(tokens: jax.Array, length: int, pad_id: int) -> jax.Array:
  """int [batch, t] -> [batch, length] with pad_id appended (t <= length), so that
  trimmed real batches and full-length fakes look alike to the discriminator."""
  if tokens.shape[1] > length:
    raise ValueError(f'sentences of {tokens.shape[1]} tokens exceed config.data.max_len={length}')
  return jnp.pad(tokens, ((0, 0), (0, length - tokens.shape[1])), constant_values=pad_id)


def pmean(x, axis_name: str | None):
  """Mean over devices under pmap/shard_map; identity under jit."""
  return x if axis_name is None else jax.lax.pmean(x, axis_name)


def nan_metrics(keys) -> dict:
  """Placeholders for the metrics a phase does not measure (every branch of the
  step's lax.switch must return the same keys)."""
  return {k: jnp.full((), jnp.nan, jnp.float32) for k in keys}

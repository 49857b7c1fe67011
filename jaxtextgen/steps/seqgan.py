"""`seqgan`: SeqGAN (Yu et al. 2017), the generator trained by REINFORCE with
Monte-Carlo rollout rewards from a CNN discriminator.

Players: 'generator' (the shared decoder, `lm.make_decoder`: LSTM or Transformer),
'discriminator' (`adversarial.make_discriminator`, SeqGAN's CNN by default) and,
with the learned baseline, 'value' (a `ValueHead` on the generator's states).
`state.extra['rollout']` holds the rollout policy, a delayed copy of the
generator: a copy during pretraining, then after every adversarial generator
update rollout <- rate * rollout + (1 - rate) * generator (rate 0.8, SeqGAN's
rollout.py, which also takes the generator's embedding table as it is).

The schedule (`schedule`, `adversarial.gan_schedule`): MLE pretraining (`mle_step`),
discriminator pretraining (`discriminator_step`), then gan.rounds adversarial rounds,
each ONE update (`train_step`) of g_steps `generator_step`s and d_steps
`discriminator_step`s on stacked real batches.

The generator update. For B sampled sentences y of length T, the reward of
token t is Q(y_<=t) = mean over N rollouts of D(rollout), each rollout
continuing the prefix y_0..y_t with the rollout policy; Q(y_<=T-1) = D(y).
The rollout policy's states over every prefix come from one teacher-forced
pass; the (T-1) prefixes x N rollouts x B sentences then run as
config.gan.rollout_groups (4) sampler calls, one per group of consecutive
prefix lengths, each starting from the state at its shortest prefix
(`rollouts`): 226 instead of 380 row-steps per rollout at T = 20. Then ONE
discriminator call scores every row. Memory grows with (T-1)*N*B (1.8 GiB of
temporaries at the oracle sizes); `config.gan.rollout_chunks` = k runs the rollouts as k sequential
chunks (lax.map), dividing it by about k. Rewards are [batch, time, rollout]. The loss
is REINFORCE, -sum_t mask * (Q_t - b_t) * log G(y_t | y_<t) / tokens, with the
baseline b (config.gan.baseline):
  none             b = 0 (SeqGAN)
  moving_average   b = EMA of the mean reward (state.extra['baseline'])
  rollout_mean     b_t = V(y_<t), the mean D of N rollouts continuing the
                   prefix BEFORE token t (t = 0: rollouts of the empty
                   prefix), i.e. the advantage of choosing y_t
  value            b_t = a learned ValueHead on the state that emits y_t,
                   regressed on Q_t
Unlike SeqGAN's sum over the batch, the loss is a per-token mean (global over
devices); with Adam this only changes how gradient clipping bites.

    from jaxtextgen.steps import seqgan
    state = seqgan.init(rng, config, batch)
    state, metrics = seqgan.mle_step(state, batch, rng, config=config)  # pretraining
    state, metrics = seqgan.train_step(state, batches, rng, config=config)  # a round:
    # batches = the next g_steps + d_steps batches stacked [g + d, B, max_len]
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax

from jaxtextgen.models.discriminator import ValueHead
from jaxtextgen.models.sampler import continuation_cache, tile_cache
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.objectives.discrete import moving_average_baseline, reinforce_loss
from jaxtextgen.objectives.sequence import masked_sum
from jaxtextgen.steps import adversarial, lm
from jaxtextgen.steps.common import TrainState, global_sum, shift_right

BASELINES = ('none', 'moving_average', 'rollout_mean', 'value')


# --- Monte-Carlo rollouts ----------------------------------------------------------------------

def prefix_groups(first_prefix: int, length: int, num_groups: int) -> list[tuple[int, int]]:
  """Prefix lengths first_prefix..length-1 split into at most num_groups contiguous
  [start, stop) ranges with the least sampling work: a group of prefixes a..e-1 costs
  (e - a) rows x (length - a) steps (dynamic programming over the split points)."""
  lo, p = first_prefix, length - first_prefix
  g = max(1, min(num_groups, p))
  cost = lambda a, e: (e - a) * (length - a)
  # best[j][e]: the least work of prefixes lo..e-1 in j groups; cut[j][e]: the last start.
  inf = float('inf')
  best = [[inf] * (length + 1) for _ in range(g + 1)]
  cut = [[0] * (length + 1) for _ in range(g + 1)]
  best[0][lo] = 0
  for j in range(1, g + 1):
    for e in range(lo + 1, length + 1):
      for a in range(lo, e):
        c = best[j - 1][a] + cost(a, e)
        if c < best[j][e]:
          best[j][e], cut[j][e] = c, a
  j = min(range(1, g + 1), key=lambda j: (best[j][length], j))
  bounds, e = [length], length
  while j:
    e = cut[j][e]
    bounds.append(e)
    j -= 1
  bounds = bounds[::-1]
  return list(zip(bounds[:-1], bounds[1:]))


def rollouts(decoder, params, tokens: jax.Array, rng: jax.Array, *, num_rollouts: int,
             first_prefix: int = 1, bos_id: int, eos_id: int, pad_id: int,
             num_groups: int = 4, greedy: bool = False) -> jax.Array:
  """Completions of every prefix of every sentence.

  The rollout policy's states over the prefixes come from ONE teacher-forced pass of
  `step` over the sentences (`sampler.continuation_cache`). The prefixes are split
  into `num_groups` groups of consecutive lengths (`prefix_groups`); the rollouts of
  a group are one sampler call that starts from the state at the group's shortest
  prefix, forcing the group's longer prefixes, so a prefix of length L costs about
  T - L steps instead of T (num_groups 1: one call, T - first_prefix steps).

  Args:
    decoder, params: the rollout policy (a decoder and {'params': ...}).
    tokens: int32 [B, T] sentences (PAD after EOS, as the sampler writes them).
    num_rollouts: N completions per prefix.
    first_prefix: the shortest prefix (1: SeqGAN's 1..T-1; 0 adds the empty one).
    greedy: argmax continuations instead of samples (deterministic).

  Returns:
    int32 [B, P, N, T], P = T - first_prefix: out[b, p, n] is a sentence whose
    first first_prefix + p tokens are tokens[b]'s and the rest is sampled.
  """
  b, t = tokens.shape
  n = num_rollouts
  groups = prefix_groups(first_prefix, t, num_groups)
  caches = continuation_cache(decoder, params, tokens, bos_id=bos_id, length=t,
                              starts=[a for a, _ in groups])
  out = []
  for g, ((a, e), cache) in enumerate(zip(groups, caches)):
    k = (e - a) * n  # rows per sentence: prefixes a..e-1, N rollouts each, [B, k] order
    rows = b * k
    rest = jnp.broadcast_to(tokens[:, None, None, a:], (b, e - a, n, t - a))
    lengths = jnp.arange(a, e)  # forced positions a..L-1 of prefix L
    forced = jnp.broadcast_to((a + jnp.arange(t - a)[None, :] < lengths[:, None])[None, :, None],
                              (b, e - a, n, t - a))
    first = (jnp.full((b,), bos_id, jnp.int32) if a == 0 else tokens[:, a - 1])
    # Rows whose prefix holds EOS have stopped: they continue with PAD, as the sentence.
    stopped = (tokens[:, :a] == eos_id).any(axis=1) if eos_id >= 0 and a > 0 else None
    rep = lambda x: None if x is None else jnp.repeat(x, k, axis=0)
    cont = sample_tokens(decoder, params, jax.random.fold_in(rng, g), batch=rows, length=t - a,
                         bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, greedy=greedy,
                         forced_tokens=rest.reshape(rows, t - a),
                         forced_mask=forced.reshape(rows, t - a),
                         cache=tile_cache(decoder, params, cache, b, k, t),
                         first_input=rep(first), stopped=rep(stopped)).tokens
    head = jnp.broadcast_to(tokens[:, None, None, :a], (b, e - a, n, a))
    out.append(jnp.concatenate([head, cont.reshape(b, e - a, n, t - a)], axis=-1))
  return jnp.concatenate(out, axis=1)


def rollout_rewards(score_fn, decoder, params, tokens: jax.Array, rng: jax.Array, *,
                    num_rollouts: int, num_chunks: int = 1, first_prefix: int = 1,
                    bos_id: int, eos_id: int, pad_id: int, num_groups: int = 4) -> jax.Array:
  """D-scores of the rollouts of every prefix, plus of the complete sentence.

  Args:
    score_fn: int32 [M, T] sentences -> float [M] rewards (SeqGAN: D's
      probability of 'real').
    tokens: int32 [B, T].
    num_chunks: the rollouts run as this many sequential chunks of
      num_rollouts / num_chunks each (memory / num_chunks, same result
      distribution; chunk c draws with fold_in(rng, c)).
    num_groups: prefix groups of `rollouts` (config.gan.rollout_groups).
    Others as in `rollouts`.

  Returns:
    float [B, P + 1, N], P = T - first_prefix: [b, i, n] scores rollout n of
    sentence b's prefix of first_prefix + i tokens; [b, P, n] = score_fn(tokens)[b]
    for every n (the complete sentence needs no rollout).
  """
  b, t = tokens.shape
  if num_rollouts % num_chunks:
    raise ValueError(f'config.gan.num_rollouts={num_rollouts} is not a multiple of '
                     f'config.gan.rollout_chunks={num_chunks}')
  per_chunk = num_rollouts // num_chunks
  kw = dict(num_rollouts=per_chunk, first_prefix=first_prefix, bos_id=bos_id, eos_id=eos_id,
            pad_id=pad_id, num_groups=num_groups)

  def chunk(c):
    sents = rollouts(decoder, params, tokens, jax.random.fold_in(rng, c), **kw)
    return score_fn(sents.reshape(-1, t)).reshape(b, t - first_prefix, per_chunk)

  scores = jax.lax.map(chunk, jnp.arange(num_chunks))  # [C, B, P, N/C]
  scores = jnp.moveaxis(scores, 0, 2).reshape(b, t - first_prefix, num_rollouts)
  full = jnp.broadcast_to(score_fn(tokens)[:, None, None], (b, 1, num_rollouts))
  rewards = jnp.concatenate([scores, full.astype(scores.dtype)], axis=1)
  chex.assert_shape(rewards, (b, t - first_prefix + 1, num_rollouts))
  return rewards


def reward_fn(d_params, config):
  """The reward of a sentence: D's probability that it is real, float [M] for int [M, T]."""
  return lambda sents: jax.nn.sigmoid(
      adversarial.discriminator_logits(d_params, sents, config=config))


def update_rollout(rollout, generator, rate: float):
  """SeqGAN's delayed copy: rate * rollout + (1 - rate) * generator, except the
  token embedding table (both decoders call it 'embedding'), which SeqGAN's
  rollout.py re-reads from the generator."""
  mixed = jax.tree.map(lambda r, g: rate * r + (1.0 - rate) * g, rollout, generator)
  return {**mixed, 'embedding': generator['embedding']}


# --- init --------------------------------------------------------------------------------------

def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Generator (lm's init, or config.gan.generator_init's), discriminator, optional
  value head; rollout policy and EMA start as copies of the generator."""
  adversarial.check_config(config)
  g = config.gan
  if g.baseline not in BASELINES:
    raise ValueError(f'config.gan.baseline={g.baseline!r}: use one of {BASELINES}')
  if g.num_rollouts < 1 or g.num_rollouts % g.rollout_chunks:
    raise ValueError(f'config.gan.num_rollouts={g.num_rollouts} must be a positive multiple of '
                     f'config.gan.rollout_chunks={g.rollout_chunks}')
  if g.rollout_groups < 1:
    raise ValueError(f'config.gan.rollout_groups={g.rollout_groups}: use 1 or more')
  if g.loss != 'nonsaturating':
    raise ValueError(f"config.gan.loss={g.loss!r}: seqgan's rewards are D's probabilities; use "
                     "'nonsaturating' (or algorithm gumbel_gan / wgan)")
  k_gen, k_d, k_v = jax.random.split(rng, 3)
  gen, gen_tx = adversarial.init_generator(k_gen, config, sample_batch)
  d_params, d_tx = adversarial.init_discriminator(k_d, config)
  params = {'generator': gen, 'discriminator': d_params}
  tx = {'generator': gen_tx, 'discriminator': d_tx}
  if g.baseline == 'value':
    h = jnp.zeros((1, config.model.hidden_size), jnp.float32)
    params['value'] = ValueHead(g.value_hidden_size).init(k_v, h)['params']
    tx['value'] = optax.adam(g.value_learning_rate)
  copy = lambda p: jax.tree.map(jnp.copy, p)
  extra = {'rollout': copy(gen)}
  if g.baseline == 'moving_average':
    extra['baseline'] = jnp.zeros((), jnp.float32)
  ema = {'generator': copy(gen)} if g.ema_decay > 0 else {}
  return TrainState.create(params, tx, ema_params=ema, extra=extra)


# --- the three updates -------------------------------------------------------------------------

def _with_generator(state: TrainState, config, *, adversarial_update: bool) -> TrainState:
  """Rollout policy and EMA after a generator change: copies during pretraining,
  moving averages once adversarial training has started."""
  gen, rollout = state.params['generator'], state.extra['rollout']
  if adversarial_update:
    rollout = update_rollout(rollout, gen, config.gan.rollout_update_rate)
  state = state.replace(extra={**state.extra, 'rollout': rollout if adversarial_update else gen})
  return adversarial.with_ema(state, config, adversarial_update=adversarial_update)


def mle_step(state, batch, rng, *, config, axis_name=None):
  """Pretraining: one teacher-forcing step of the generator. Returns (state, {'loss'})."""
  state, loss = adversarial.mle_update(state, batch, rng, config=config, axis_name=axis_name)
  state = _with_generator(state, config, adversarial_update=False)
  return state, {'loss': loss}


def discriminator_step(state, batch, rng, *, config, axis_name=None):
  """One discriminator step: the real batch vs as many fresh generator samples.
  Returns (state, `adversarial.discriminator_loss`'s metrics)."""
  k_sample, k_d = jax.random.split(rng)
  real = adversarial.pad_time(batch['tokens'], config.data.max_len, config.vocab.pad_id)
  fake = adversarial.sample_fakes(state.params['generator'], k_sample, real.shape[0],
                                  config=config).tokens
  return adversarial.discriminator_update(state, real, fake, k_d, config=config,
                                         axis_name=axis_name)


def sentence_rewards(state: TrainState, tokens: jax.Array, rng: jax.Array, *, config,
                     score_fn=None) -> jax.Array:
  """Rollout rewards float [B, P + 1, N] of sampled sentences under the current
  discriminator (or `score_fn`), with the empty prefix when the baseline needs it."""
  v, g = config.vocab, config.gan
  score_fn = score_fn or reward_fn(state.params['discriminator'], config)
  return jax.lax.stop_gradient(rollout_rewards(
      score_fn, lm.make_decoder(config), {'params': state.extra['rollout']}, tokens, rng,
      num_rollouts=g.num_rollouts, num_chunks=g.rollout_chunks, num_groups=g.rollout_groups,
      first_prefix=0 if g.baseline == 'rollout_mean' else 1,
      bos_id=v.bos_id, eos_id=v.eos_id, pad_id=v.pad_id))


def policy_gradient_update(state: TrainState, tokens: jax.Array, mask: jax.Array,
                           rewards: jax.Array, *, config, axis_name=None):
  """One REINFORCE step of the generator on sampled sentences.

  Args:
    tokens, mask: [B, T] the samples and their validity (1 up to EOS).
    rewards: [B, P + 1, N] from `sentence_rewards` (P + 1 = T, or T + 1 with the
      empty prefix for the 'rollout_mean' baseline).

  Returns:
    (state, metrics); the baseline and value head are updated too.
  """
  g, (b, t) = config.gan, tokens.shape
  expect = (b, t + 1 if g.baseline == 'rollout_mean' else t, g.num_rollouts)
  if rewards.shape != expect:
    raise ValueError(f'rewards of shape {rewards.shape}, expected {expect} [batch, prefixes, '
                     f'rollouts] for config.gan.baseline={g.baseline!r} (see sentence_rewards)')
  q_all = rewards.mean(-1)  # [B, P + 1]: expected reward after each prefix
  q = q_all[:, -t:]
  count = global_sum(mask.sum(), axis_name)
  decoder = lm.make_decoder(config)
  value_head = ValueHead(g.value_hidden_size)

  def baseline_of(h):
    if g.baseline == 'moving_average':
      return state.extra['baseline']
    if g.baseline == 'rollout_mean':
      return q_all[:, :t]  # V(y_<t): rollouts of the prefix before token t
    if g.baseline == 'value':
      return value_head.apply({'params': state.params['value']}, h)
    return jnp.zeros((), jnp.float32)

  def loss_fn(params):
    nll, h = decoder.apply({'params': params}, shift_right(tokens, config.vocab.bos_id),
                           tokens, return_hidden=True, method='token_nll')
    h = jax.lax.stop_gradient(h).astype(jnp.float32)  # [B, T, H], the state emitting token t
    baseline = jax.lax.stop_gradient(baseline_of(h))
    # reinforce_loss is a local per-token mean; rescale it to the global one.
    loss = reinforce_loss(-nll, q, mask, baseline) * mask.sum() / count
    return loss, (h, jnp.broadcast_to(q - baseline, q.shape))

  (loss, (h, adv)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params['generator'])
  grads, loss = global_sum((grads, loss), axis_name)
  state = state.apply_gradients('generator', grads)

  mean = lambda x: global_sum(masked_sum(x, mask), axis_name) / count
  reward = mean(q)
  metrics = {'loss': loss, 'reward': reward,
             'advantage_std': jnp.sqrt(jnp.maximum(mean(adv**2) - mean(adv)**2, 0.0)),
             'baseline': mean(q - adv)}
  if g.baseline == 'moving_average':
    # Updated after use, so the baseline of a batch never depends on its own actions.
    state = state.replace(extra={**state.extra, 'baseline': moving_average_baseline(
        state.extra['baseline'], reward, g.baseline_decay)})
  if g.baseline == 'value':
    def value_loss_fn(p):
      return masked_sum((value_head.apply({'params': p}, h) - q) ** 2, mask) / count
    value_loss, value_grads = jax.value_and_grad(value_loss_fn)(state.params['value'])
    value_grads, value_loss = global_sum((value_grads, value_loss), axis_name)
    state = state.apply_gradients('value', value_grads)
    metrics['value_loss'] = value_loss
  return state, metrics


def generator_step(state, batch, rng, *, config, axis_name=None):
  """One adversarial generator step: sample B sentences, reward them by
  rollouts, REINFORCE; then the rollout policy, an interleaved MLE step on the
  real batch (every config.gan.mle_every-th) and the EMA."""
  k_sample, k_roll, k_mle = jax.random.split(rng, 3)
  g = config.gan
  fakes = adversarial.sample_fakes(state.params['generator'], k_sample,
                                   batch['tokens'].shape[0], config=config)
  rewards = sentence_rewards(state, fakes.tokens, k_roll, config=config)
  state, metrics = policy_gradient_update(state, fakes.tokens, fakes.mask, rewards,
                                          config=config, axis_name=axis_name)
  if g.mle_every:
    state, metrics['mle/loss'] = adversarial.interleaved_mle(state, batch, k_mle, config=config,
                                                             axis_name=axis_name)
  return _with_generator(state, config, adversarial_update=True), metrics


# --- the interface -----------------------------------------------------------------------------

def train_step(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None):
  """One adversarial round (`adversarial.round_step`): g_steps `generator_step`s, then
  d_steps `discriminator_step`s, on batches stacked [g_steps + d_steps, B, T]. Returns
  (state, {'g/loss', 'g/reward', ..., 'd/loss', 'd/acc', ...})."""
  return adversarial.round_step(state, batches, rng, config=config, axis_name=axis_name,
                                generator=generator_step, discriminator=discriminator_step)


def schedule(config):
  """mle (gan.mle_steps), d_pretrain (gan.d_pretrain_steps), round (gan.rounds)."""
  return adversarial.gan_schedule(config, mle=mle_step, discriminator=discriminator_step,
                                  generator=generator_step)


def eval_step(state: TrainState, batch, rng: jax.Array, *, config):
  """`adversarial.eval_step`: NLL-gen, D on real eval sentences vs samples, BLEU rows."""
  return adversarial.eval_step(state, batch, rng, config=config)


finalize_eval = adversarial.finalize_eval
evaluate_samples = adversarial.evaluate_samples
sample = adversarial.sample

"""`vae`: an LSTM variational autoencoder of sentences, with the tricks that keep
the decoder from ignoring z on text.

The loss of a batch, per sentence (z ~ q(z|x) by reparameterisation):

    rec   = -log p(x | z)                                 (decoder inputs may be <unk>-dropped)
    kl_j  = KL(q(z_j|x) || N(0, 1))                        (analytic, `kl_gaussian`)
    loss  = rec + beta * w(step) * sum_j kl_j              (free bits: max(mean kl_j, lambda))

Knobs (config.vae): the KL weight schedule w (constant, linear, logistic
(Bowman et al. 2016), cyclical (Fu et al. 2019)) times beta; word dropout of
the decoder's input tokens to <unk> during training (Bowman et al.); free bits
per dimension (Kingma et al. 2016, Li et al. 2019); an encoder initialised from
an `ae` run (Li et al. 2019); He et al. 2019's aggressive encoder updates
(`schedule`: phase 'aggressive', then 'train'): for the first vae.aggressive_steps
steps (rounded up to whole rounds) each step updates ONE player, in rounds
(`aggressive_round`, one fused update on k + 1 stacked batches) of
k = vae.aggressive_encoder_updates encoder steps (each on a fresh batch) then one
decoder step, so the encoder catches up with the decoder's posterior before the
decoder moves. He et al. run the inner loop until the encoder's loss stops falling
and end the phase when MI stops rising; here both are fixed counts, so a run stays a
pure function of (seed, step) and resumes exactly.

    from jaxtextgen.steps import vae
    state = vae.init(rng, config, batch)
    state, metrics = vae.train_step(state, batch, rng, config=config)

Eval (`finalize_eval`; nats per sentence unless said otherwise):
  rec_nll    -log p(x|z), one z ~ q(z|x) per sentence
  kl         KL(q(z|x) || p(z)), analytic
  neg_elbo   rec_nll + kl
  iw_nll     -log p(x) by the importance-weighted bound with config.vae.iw_samples
             samples (He et al. 2019 use 500); skipped when iw_samples = 0
  ppl        exp(total IW-NLL / tokens), tokens counting one EOS per sentence;
             ppl_elbo is the same with -ELBO (the PPL of texar's VAE table)
  mi         I(x; z) by He et al.'s estimator (`metrics.latent.mutual_information`)
             with q(z) aggregated over the WHOLE eval split (the trainer collects
             every sentence's posterior from `eval_step`'s 'per_example' rows);
             at most log(number of eval sentences)
  active_units  dims with Var_x E_q[z|x] > 0.01 over the whole split
  bleu       corpus BLEU-4 of greedy decodes from the posterior means
  bleu{n}, self_bleu{n}  with config.eval.bleu: BLEU-n (n = 2..5) of one temperature-1
             prior sample per eval sentence against the eval split, and among themselves
             (`lm.bleu_metrics`)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.data import noise
from jaxtextgen.metrics import latent as latent_metrics
from jaxtextgen.metrics.device_bleu import corpus_bleu
from jaxtextgen.models.latent import reparameterize
from jaxtextgen.objectives import latent as latent_objectives
from jaxtextgen.objectives.divergences import kl_gaussian
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.steps import autoencoding, latent_outputs, lm
from jaxtextgen.steps import schedule as schedule_lib
from jaxtextgen.steps.autoencoding import encode, global_noise, sentence_nll
from jaxtextgen.steps.common import TrainState, global_sum, shift_right

SCHEDULES = ('constant', 'linear', 'logistic', 'cyclical')

# The sample mode's helpers (see steps.autoencoding).
encode_sentences = autoencoding.encode_sentences
reconstruct = autoencoding.reconstruct
homotopy = autoencoding.homotopy
sample_outputs = latent_outputs.sample_outputs  # --mode=sample: reconstructions, ...


def init(rng: jax.Array, config, sample_batch, *, code_dim: int = 0,
         attention_ok: bool = False) -> TrainState:
  """Players 'encoder' (Gaussian head) and 'decoder' (reading [z, code] with a code of
  `code_dim`, `latent_condition`). With config.vae.encoder_init, the encoder's LSTM and
  mean head come from that ae run's latest checkpoint and the decoder starts fresh (Li
  et al. 2019)."""
  if config.vae.kl_schedule not in SCHEDULES:
    raise ValueError(f'config.vae.kl_schedule={config.vae.kl_schedule!r}: use one of {SCHEDULES}')
  if config.vae.kl_schedule == 'cyclical' and config.num_train_steps <= 0:
    raise ValueError("config.vae.kl_schedule='cyclical' spreads its cycles over "
                     'config.num_train_steps; set it (the trainer does, from num_epochs).')
  if config.vae.iw_samples % max(config.vae.iw_chunk, 1) or config.vae.iw_chunk < 1:
    raise ValueError(f'config.vae.iw_samples={config.vae.iw_samples} must be a multiple of '
                     f'config.vae.iw_chunk={config.vae.iw_chunk} (>= 1).')
  _check_aggressive(config)
  if config.vae.word_dropout and config.vocab.unk_id < 0:
    raise ValueError('config.vae.word_dropout needs an <unk> token, and this vocabulary has '
                     'none (the synthetic oracle); set config.vae.word_dropout=0.')
  state = autoencoding.init(rng, config, sample_batch, variational=True, code_dim=code_dim,
                            attention_ok=attention_ok)
  if config.vae.encoder_init:
    path = config.vae.encoder_init
    enc = autoencoding.with_pretrained_encoder(
        state.params['encoder'], autoencoding.load_encoder(path), path)
    state = TrainState.create({**state.params, 'encoder': enc}, state.tx)
  return state


def kl_weight(step, config) -> jax.Array:
  """beta * w(step), w the configured annealing schedule (`objectives.latent`)."""
  v = config.vae
  if v.kl_schedule == 'linear':
    w = latent_objectives.linear_annealing(step, v.kl_warmup_steps, v.kl_start)
  elif v.kl_schedule == 'logistic':
    w = latent_objectives.logistic_annealing(step, v.logistic_k, v.logistic_x0)
  elif v.kl_schedule == 'cyclical':
    w = latent_objectives.cyclical_annealing(step, config.num_train_steps, v.num_cycles,
                                             v.cycle_ratio)
  else:
    w = jnp.ones((), jnp.float32)
  return v.beta * w


def latent_condition(z: jax.Array, batch, memory: dict | None = None):
  """What the decoder reads: z [batch, Z], or [z, batch['code']] when the batch carries an
  attribute code [batch, C] (`ctrl_gen`'s one-hot c: batches are dicts that conditional
  models add fields to); with the encoder's `memory` (config.ae.attention,
  `autoencoding.encode`), the dict {'vector': that, 'memory', 'memory_mask'}."""
  if 'code' in batch:
    z = jnp.concatenate([z, batch['code'].astype(z.dtype)], axis=-1)
  return z if memory is None else {'vector': z, **memory}


def decoder_inputs(rng: jax.Array | None, batch, *, config, axis_name=None) -> jax.Array:
  """Teacher-forcing inputs [batch, T]: targets shifted right after BOS; with a key
  (training), each input WORD is replaced by <unk> with prob. config.vae.word_dropout
  (BOS and padding never are). Eval passes no key, so eval never drops words."""
  tokens, mask, v = batch['tokens'], batch['mask'], config.vocab
  inputs = shift_right(tokens, v.bos_id)
  if rng is None or not config.vae.word_dropout:
    return inputs
  words = noise.word_positions(inputs, shift_right(mask, 0), v.eos_id)
  u = global_noise(rng, jax.random.uniform, inputs.shape, axis_name)
  return noise.replace_tokens(u, inputs, words, config.vae.word_dropout, v.unk_id)


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None,
               players: tuple[str, ...] = ('encoder', 'decoder')):
  """One step on the (annealed, free-bits) negative ELBO per sentence, updating
  `players` (both; the aggressive phase updates one at a time).

  Returns (state, {'loss', 'rec_nll', 'kl', 'kl_weight', 'tokens'}); rec_nll and
  kl (the plain analytic KL) are per sentence.
  """
  grads, metrics = elbo_grads(state, batch, jax.random.fold_in(rng, state.step), config=config,
                              axis_name=axis_name)
  return autoencoding.apply_gradients(state, {p: grads[p] for p in players}), metrics


def elbo_grads(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """Gradients {'encoder', 'decoder'} of the step's loss (the annealed, free-bits negative
  ELBO per sentence, global over devices) with `rng` the step's key, and the metrics of
  `train_step`. What `vae_gan` adds its adversarial gradient to."""
  k_z, k_words, k_drop = jax.random.split(rng, 3)
  tokens, mask, weight = batch['tokens'], batch['mask'], batch['weight']
  sentences = global_sum(weight.sum(), axis_name)
  eps = global_noise(k_z, jax.random.normal, (tokens.shape[0], config.ae.latent_dim), axis_name)
  inputs = decoder_inputs(k_words, batch, config=config, axis_name=axis_name)
  w = kl_weight(state.step, config)
  free_bits = config.vae.free_bits

  def loss_fn(params):
    mean, logvar, memory = encode(params['encoder'], tokens, mask, config=config, memory=True)
    rec = sentence_nll(params['decoder'], latent_condition(reparameterize(eps, mean, logvar),
                                                           batch, memory), inputs, tokens,
                       mask, config=config, train=True,
                       rng=autoencoding.dropout_key(k_drop, axis_name))
    kl = kl_gaussian(mean, logvar) * weight[:, None]
    if free_bits:
      kl_mean = global_sum(jax.lax.stop_gradient(kl).sum(0), axis_name) / sentences
      kl_term = latent_objectives.free_bits_kl(kl, free_bits, kl_mean) * weight
    else:
      kl_term = kl.sum(-1)
    loss = (rec.sum() + w * kl_term.sum()) / sentences
    return loss, (rec.sum() / sentences, kl.sum() / sentences)

  (loss, (rec, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads, loss, rec, kl = global_sum((grads, loss, rec, kl), axis_name)
  metrics = {'loss': loss, 'rec_nll': rec, 'kl': kl, 'kl_weight': w,
             'tokens': global_sum(mask.sum(), axis_name)}
  return {p: grads[p] for p in autoencoding.PLAYERS}, metrics


def aggressive_round(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None):
  """He et al.'s inner loop as one update: k = vae.aggressive_encoder_updates
  encoder-only steps, then one decoder-only step, on batches stacked [k + 1, B, T].
  Returns (state, {'encoder/<key>': mean over the encoder steps, 'decoder/<key>'})."""
  k = config.vae.aggressive_encoder_updates
  metrics = {}
  for name, part in (('encoder', slice(0, k)), ('decoder', slice(k, k + 1))):
    def body(s, batch, name=name):
      return train_step(s, batch, rng, config=config, axis_name=axis_name, players=(name,))
    state, m = jax.lax.scan(body, state, jax.tree.map(lambda x, p=part: x[p], batches))
    metrics.update({f'{name}/{key}': v.mean() for key, v in m.items()})
  return state, metrics


def schedule(config):
  """'train' (train_step) for the whole run, after vae.aggressive_steps rounded up to
  rounds of aggressive_encoder_updates + 1 steps of 'aggressive' (aggressive_round)."""
  v = config.vae
  _check_aggressive(config)
  per_round = v.aggressive_encoder_updates + 1
  rounds = -(-v.aggressive_steps // per_round) if v.aggressive_steps else 0
  return schedule_lib.Schedule((
      schedule_lib.Phase('aggressive', aggressive_round, rounds, batches=per_round),
      schedule_lib.Phase('train', train_step, None)))


def _check_aggressive(config) -> None:
  if config.vae.aggressive_steps and config.vae.aggressive_encoder_updates < 1:
    raise ValueError('config.vae.aggressive_steps needs config.vae.aggressive_encoder_updates '
                     f'>= 1; got {config.vae.aggressive_encoder_updates}.')


def iw_log_marginal(state: TrainState, batch, rng: jax.Array, mean, logvar, *, config):
  """[batch] importance-weighted estimates of log p(x) (`objectives.latent.iw_log_marginal`)
  with config.vae.iw_samples samples, config.vae.iw_chunk decoded at a time."""
  tokens, mask = batch['tokens'], batch['mask']
  inputs = shift_right(tokens, config.vocab.bos_id)
  c = config.vae.iw_chunk

  def log_likelihood(z):  # [c, batch, Z] -> [c, batch]: one decoder pass of c * batch rows
    tile = lambda x: jnp.broadcast_to(x, (c,) + x.shape).reshape((-1,) + x.shape[1:])
    codes = {'code': tile(batch['code'])} if 'code' in batch else {}
    nll = sentence_nll(state.params['decoder'], latent_condition(z.reshape(-1, z.shape[-1]), codes),
                       tile(inputs), tile(tokens), tile(mask), config=config)
    return -nll.reshape(c, -1)

  return latent_objectives.iw_log_marginal(rng, mean, logvar, log_likelihood,
                                           num_samples=config.vae.iw_samples, chunk_size=c)


def eval_step(state: TrainState, batch, rng: jax.Array, *, config) -> dict:
  """Sums over the batch (weight-0 padding rows excluded) from which
  `finalize_eval` derives the metrics of the module docstring."""
  tokens, mask, weight = batch['tokens'], batch['mask'], batch['weight']
  k_z, k_iw = jax.random.split(rng)
  mean, logvar, memory = encode(state.params['encoder'], tokens, mask, config=config,
                                memory=True)
  z = reparameterize(jax.random.normal(k_z, mean.shape), mean, logvar)
  rec = sentence_nll(state.params['decoder'], latent_condition(z, batch, memory),
                     decoder_inputs(None, batch, config=config), tokens, mask, config=config)
  real = weight > 0
  sums = {'sentences': weight.sum(), 'tokens': mask.sum(), 'rec_nll_sum': rec.sum(),
          'kl_sum': jnp.where(real, kl_gaussian(mean, logvar).sum(-1), 0.0).sum(),
          'per_example': {'mean': mean, 'logvar': logvar, 'z': z},
          'mu_sum': (mean * weight[:, None]).sum(0),          # [Z]: for active units
          'mu_sq_sum': (mean ** 2 * weight[:, None]).sum(0),  # [Z]
          **autoencoding.greedy_bleu_sums(state, latent_condition(mean, batch, memory), batch,
                                          config=config)}
  if config.vae.iw_samples:
    log_px = iw_log_marginal(state, batch, k_iw, mean, logvar, config=config)
    sums['iw_nll_sum'] = -jnp.where(real, log_px, 0.0).sum()
  if config.eval.bleu:  # one temperature-1 prior sample per eval sentence
    prior = prior_draw(state.params['decoder'], jax.random.fold_in(rng, 1), tokens.shape[0],
                       config=config, code=batch.get('code'))
    sums['per_example'].update(lm.bleu_rows(batch, prior, config=config))
  return sums


def prior_draw(decoder_params, rng: jax.Array, num: int, *, config, code=None):
  """`num` sentences (`sampler.Samples`) from z ~ N(0, I) (with the attribute codes
  `code` [num, C], if any) at temperature 1: the model's distribution, which metrics use
  whatever config.sample says."""
  k_z, k_tok = jax.random.split(rng)
  z = jax.random.normal(k_z, (num, config.ae.latent_dim))
  z = z if code is None else latent_condition(z, {'code': code})
  v = config.vocab
  return sample_tokens(autoencoding.make_decoder(config), {'params': decoder_params}, k_tok,
                       batch=num, length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                       pad_id=v.pad_id, cond=z)


def _split_mutual_information(rows: dict | None) -> float:
  """He et al.'s MI estimate with q(z) aggregated over the WHOLE eval split (the
  trainer collects `eval_step`'s per-example rows); nan when called on sums alone."""
  if rows is None:
    return float('nan')
  return float(latent_metrics.mutual_information(
      jnp.asarray(rows['mean']), jnp.asarray(rows['logvar']), jnp.asarray(rows['z'])))


def finalize_eval(sums: dict) -> dict:
  """The metrics of the module docstring from the summed `eval_step` outputs."""
  n, tokens = sums['sentences'], sums['tokens']
  neg_elbo = sums['rec_nll_sum'] + sums['kl_sum']
  out = {'rec_nll': sums['rec_nll_sum'] / n, 'kl': sums['kl_sum'] / n, 'neg_elbo': neg_elbo / n,
         'ppl_elbo': float(np.exp(neg_elbo / tokens)),
         'mi': _split_mutual_information(sums.get('per_example')),
         'active_units': latent_metrics.active_units(
             np.asarray(sums['mu_sum'], np.float64), np.asarray(sums['mu_sq_sum'], np.float64),
             n),
         'bleu': corpus_bleu({k: v for k, v in sums.items() if k.startswith('bleu_')}),
         'eval_sentences': n}
  if 'fake' in sums.get('per_example', {}):
    out.update(lm.bleu_metrics(sums['per_example']))
  if 'iw_nll_sum' in sums:
    out.update(iw_nll=sums['iw_nll_sum'] / n, nll_per_token=sums['iw_nll_sum'] / tokens,
               ppl=float(np.exp(sums['iw_nll_sum'] / tokens)))
  return out


def sample(state: TrainState, rng: jax.Array, num: int, *, config, z=None) -> jax.Array:
  """`num` sentences from the prior: z ~ N(0, I) (or the given z [num, Z]), then the
  decoder with config.sample's temperature / top_k / greedy: int32 [num, max_len]."""
  return autoencoding.sample_latent(state, rng, num, config=config, z=z)

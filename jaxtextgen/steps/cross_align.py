"""`cross_align`: style transfer by cross-alignment (Shen et al. 2017, "Style Transfer from
Non-Parallel Text by Cross-Alignment"), the baseline later style-transfer papers compare
against. Two styles (config.data.num_classes = 2), labels on every sentence.

Players:
  'encoder'        E(x, s): the shared LSTM sentence encoder whose initial state (c, h)
                   comes from a table of the style s ('style' [2, 2H]), then a linear map
                   to z (ae.latent_dim; `LatentEncoder`, deterministic)
  'decoder'        G(y, z): the shared decoder of config.model.decoder conditioned on
                   [style embedding of y ('style' [2, cross_align.style_dim]), z]
  'discriminator'  D_0, D_1: the discriminators' CNN (config.gan.d_*) over sequences of
                   decoder hidden states [batch, T, H], one logit each

For a batch of sentences x with styles s (professor forcing, Lamb et al. 2016):
  real states    the decoder's top-layer states when teacher-forced on x from [s, z]
  fake states    its states when it runs free from [1 - s, z], each step fed the previous
                 Gumbel-softmax vector (temperature cross_align.gumbel_temperature, Shen:
                 0.1): x transferred to the other style
  L_D_j          D_j's cross-entropy: real states of style-j sentences against fake states
                 of sentences transferred into j
  L_rec          -log p(x | s, z) per sentence (mean over the batch)
  L_adv          sum_j of -log D_j(fake states transferred into j) (non-saturating)
Each step (`train_step`) first updates both discriminators on L_D_0 + L_D_1, then encoder
and decoder on L_rec + rho * L_adv (cross_align.rho) when both discriminator losses of this
batch (before their update) are below cross_align.gate (1.2 in the reference code), else on
L_rec alone; the generator's adversarial loss reads the updated discriminators. Shen et al.
use Adam 5e-4 with betas (0.5, 0.999) everywhere (the config's optimizer and gan.d_*).

The generator's forward pass runs once per step: its states feed the discriminator update
as constants, and the gradient of L_adv with respect to them is pulled back through the
same pass (`jax.vjp`).

Eval: rec_nll (per sentence), rec_nll_per_token, rec_ppl on the eval split, and the transfer
metrics of `steps.transfer` (every eval sentence moved to the other style). There is no
prior to sample from: --mode=transfer rewrites given sentences.

    from jaxtextgen.steps import cross_align
    state = cross_align.init(rng, config, batch)
    state, metrics = cross_align.train_step(state, batch, rng, config=config)
    moved = cross_align.transfer(state, tokens, mask, to_labels, from_labels, config=config)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtextgen.models.sampler import relaxed_sample
from jaxtextgen.steps import adversarial, autoencoding, transfer as transfer_lib
from jaxtextgen.steps.common import (TrainState, global_sum, make_decoder, make_optimizer,
                                     shift_right)

STYLES = 2


def check_config(config) -> None:
  """Errors a user can cause, raised at init with the fix."""
  if config.data.num_classes != STYLES:
    raise ValueError(f'config.data.num_classes={config.data.num_classes}: cross_align transfers '
                     'between two styles (Shen et al.); set it to 2 and use a corpus of two '
                     'labelled styles (yelp_sentiment, captions_li2018).')
  if config.data.label_fraction < 1:
    raise ValueError('cross_align needs the style of every train sentence; set '
                     'config.data.label_fraction=1 (ctrl_gen learns from unlabelled ones).')
  ca = config.cross_align
  if ca.rho < 0 or ca.gumbel_temperature <= 0 or ca.style_dim < 1:
    raise ValueError(f'config.cross_align: need rho >= 0, gumbel_temperature > 0, style_dim >= 1;'
                     f' got {ca.rho}, {ca.gumbel_temperature}, {ca.style_dim}')
  if config.ae.bidirectional:
    raise ValueError('cross_align reads the style through the encoder\'s initial state; set '
                     'config.ae.bidirectional=False.')
  adversarial.check_config(config)
  transfer_lib.check_config(config)


def _decoder(config):
  return make_decoder(config, conditional=True)


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Encoder (+ its style table), decoder (+ its style table), the two discriminators."""
  check_config(config)
  k_enc, k_dec, k_es, k_ds, k_d0, k_d1 = jax.random.split(rng, 6)
  tokens, mask = jnp.asarray(sample_batch['tokens']), jnp.asarray(sample_batch['mask'])
  n, h, ca = tokens.shape[0], config.model.hidden_size, config.cross_align
  enc = autoencoding.make_encoder(config, variational=False).init(k_enc, tokens, mask)['params']
  cond = jnp.zeros((n, ca.style_dim + config.ae.latent_dim))
  dec = _decoder(config).init(k_dec, shift_right(tokens, config.vocab.bos_id), cond)['params']
  normal = lambda k, shape: 0.1 * jax.random.normal(k, shape)
  states = jnp.zeros((1, config.data.max_len, h))
  disc = adversarial.make_discriminator(config)
  d_init = lambda k: disc.init(k, states, method='features')['params']
  params = {'encoder': {'latent': enc, 'style': normal(k_es, (STYLES, 2 * h))},
            'decoder': {'decoder': dec, 'style': normal(k_ds, (STYLES, ca.style_dim))},
            'discriminator': {'d0': d_init(k_d0), 'd1': d_init(k_d1)}}
  tx = {p: make_optimizer(config.optimizer, config.num_train_steps) for p in ('encoder',
                                                                                 'decoder')}
  tx['discriminator'] = adversarial.discriminator_optimizer(config)
  return TrainState.create(params, tx)


def encode(encoder_params, tokens: jax.Array, mask: jax.Array, styles: jax.Array, *, config):
  """z float32 [batch, Z] of sentences read from the initial state of their styles [batch]."""
  c, h = jnp.split(encoder_params['style'][styles], 2, axis=-1)
  z, _ = autoencoding.make_encoder(config, variational=False).apply(
      {'params': encoder_params['latent']}, tokens, mask, state=((c, h),))
  return z


def condition(decoder_params, z: jax.Array, styles: jax.Array) -> jax.Array:
  """The decoder's condition [batch, style_dim + Z]: [style embedding, z]."""
  return jnp.concatenate([decoder_params['style'][styles], z], axis=-1)


def _pad_states(h: jax.Array, length: int) -> jax.Array:
  return jnp.pad(h, ((0, 0), (0, length - h.shape[1]), (0, 0)))


def generator_pass(params, batch, rng: jax.Array, *, config, train: bool = True):
  """(L_rec, real states [B, L, H], fake states [B, L, H]) and (real mask, fake mask),
  L = config.data.max_len: the reconstruction of each sentence in its own style, and its
  free-running Gumbel-softmax transfer into the other style (module docstring)."""
  k_drop, k_gumbel = jax.random.split(rng)
  tokens, mask, styles = batch['tokens'], batch['mask'], jnp.maximum(batch['label'], 0)
  v, length, decoder = config.vocab, config.data.max_len, _decoder(config)
  z = encode(params['encoder'], tokens, mask, styles, config=config)
  dec = params['decoder']
  own, other = condition(dec, z, styles), condition(dec, z, 1 - styles)
  rngs = {'dropout': k_drop} if train else {}
  nll, real = decoder.apply({'params': dec['decoder']}, shift_right(tokens, v.bos_id), tokens,
                            own, train=train, rngs=rngs, method='token_nll', return_hidden=True)
  rec = jnp.where(mask > 0, nll, 0.0).sum(-1)
  soft = relaxed_sample(decoder, {'params': dec['decoder']}, k_gumbel, batch=tokens.shape[0],
                        length=length, bos_id=v.bos_id, eos_id=v.eos_id, pad_id=v.pad_id,
                        gumbel=True, cond=other,
                        inverse_temperature=1.0 / config.cross_align.gumbel_temperature)
  # The free-running states again, teacher-forced on the vectors the unroll fed itself.
  bos = jax.nn.one_hot(jnp.full(tokens.shape[:1], v.bos_id), decoder.vocab_size)
  fed = jnp.concatenate([bos[:, None], soft.probs[:, :-1]], axis=1)
  _, fake = decoder.apply({'params': dec['decoder']}, fed, other, soft_inputs=True,
                          return_hidden=True)
  real_mask = jnp.pad(mask, ((0, 0), (0, length - mask.shape[1])))
  return (rec, _pad_states(real, length), fake), (real_mask, jax.lax.stop_gradient(soft.mask))


def _d_logits(d_params, states, mask, rng, *, config):
  return adversarial.make_discriminator(config).apply(
      {'params': d_params}, states, mask=mask, train=rng is not None,
      rngs={} if rng is None else {'dropout': rng}, method='features')


def discriminator_losses(d_params, real, fake, masks, styles, weight, rng, *, config,
                         axis_name=None):
  """{j: L_D_j} and {j: -log D_j(fake into j)} (the generator's non-saturating loss),
  j = 0, 1, means over the rows of the GLOBAL batch they concern."""
  real_mask, fake_mask = masks
  d_loss, g_loss = {}, {}
  for j in range(STYLES):
    k_r, k_f = jax.random.split(jax.random.fold_in(rng, j))
    p = d_params[f'd{j}']
    is_real = weight * (styles == j)        # sentences of style j
    is_fake = weight * (styles == 1 - j)    # sentences transferred into style j
    n_real = jnp.maximum(global_sum(is_real.sum(), axis_name), 1.0)
    n_fake = jnp.maximum(global_sum(is_fake.sum(), axis_name), 1.0)
    real_logits = _d_logits(p, real, real_mask, k_r, config=config)
    fake_logits = _d_logits(p, fake, fake_mask, k_f, config=config)
    bce = optax.sigmoid_binary_cross_entropy
    d_loss[j] = ((bce(real_logits, 1.0) * is_real).sum() / n_real
                 + (bce(fake_logits, 0.0) * is_fake).sum() / n_fake)
    g_loss[j] = (bce(fake_logits, 1.0) * is_fake).sum() / n_fake
  return d_loss, g_loss


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One step: both discriminators, then encoder and decoder (module docstring).
  Returns (state, {'loss', 'rec_nll', 'adv_loss', 'd0_loss', 'd1_loss', 'adv_on'})."""
  rng = jax.random.fold_in(rng, state.step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  k_g, k_d, k_adv = jax.random.split(rng, 3)
  ca = config.cross_align
  styles, weight = jnp.maximum(batch['label'], 0), batch['weight']
  sentences = global_sum(weight.sum(), axis_name)
  g_params = {p: state.params[p] for p in ('encoder', 'decoder')}
  (rec, real, fake), pullback, masks = jax.vjp(
      lambda p: generator_pass(p, batch, k_g, config=config), g_params, has_aux=True)
  real, fake = jax.lax.stop_gradient(real), jax.lax.stop_gradient(fake)

  def d_objective(d_params):
    d_loss, _ = discriminator_losses(d_params, real, fake, masks, styles, weight, k_d,
                                     config=config, axis_name=axis_name)
    return d_loss[0] + d_loss[1], d_loss

  (_, d_loss), d_grads = jax.value_and_grad(d_objective, has_aux=True)(
      state.params['discriminator'])
  d_grads, d_loss = global_sum((d_grads, d_loss), axis_name)
  state = state.apply_gradients('discriminator', d_grads)
  adv_on = ((d_loss[0] < ca.gate) & (d_loss[1] < ca.gate)).astype(jnp.float32)

  def adv_objective(fake_states):
    _, g_loss = discriminator_losses(state.params['discriminator'], real, fake_states, masks,
                                     styles, weight, k_adv, config=config, axis_name=axis_name)
    return g_loss[0] + g_loss[1]

  adv, d_fake = jax.value_and_grad(adv_objective)(fake)
  adv = global_sum(adv, axis_name)
  # Cotangents of (per-sentence L_rec, real states, fake states): L_rec is a mean over the
  # global batch; the adversarial term enters only while the gate is open.
  grads, = pullback((weight / sentences, jnp.zeros_like(real), ca.rho * adv_on * d_fake))
  grads = global_sum(grads, axis_name)
  for player in ('encoder', 'decoder'):
    state = state.apply_gradients(player, grads[player])
  rec_nll = global_sum((rec * weight).sum(), axis_name) / sentences
  return state.replace(step=state.step + 1), {
      'loss': rec_nll + ca.rho * adv_on * adv, 'rec_nll': rec_nll, 'adv_loss': adv,
      'd0_loss': d_loss[0], 'd1_loss': d_loss[1], 'adv_on': adv_on,
      'tokens': global_sum(batch['mask'].sum(), axis_name)}


def eval_step(state: TrainState, batch, rng: jax.Array, *, config) -> dict:
  """Sums over the batch: reconstruction NLL in the sentence's own style, tokens,
  sentences; the discriminators' correct calls on real and transferred states."""
  (rec, real, fake), masks = generator_pass(
      {p: state.params[p] for p in ('encoder', 'decoder')}, batch, rng, config=config,
      train=False)
  styles, weight = jnp.maximum(batch['label'], 0), batch['weight']
  correct = 0.0
  for j in range(STYLES):
    p = state.params['discriminator'][f'd{j}']
    correct += ((_d_logits(p, real, masks[0], None, config=config) > 0)
                * weight * (styles == j)).sum()
    correct += ((_d_logits(p, fake, masks[1], None, config=config) < 0)
                * weight * (styles == 1 - j)).sum()
  return {'rec_nll_sum': (rec * weight).sum(), 'tokens': batch['mask'].sum(),
          'sentences': weight.sum(), 'd_correct': correct}


def finalize_eval(sums: dict) -> dict:
  """rec_nll (per sentence), rec_nll_per_token, rec_ppl, and d_acc: the fraction of real
  and transferred state sequences the discriminators call right."""
  n, rec = sums['sentences'], sums['rec_nll_sum']
  return {'rec_nll': rec / n, 'rec_nll_per_token': rec / sums['tokens'],
          'rec_ppl': float(np.exp(rec / sums['tokens'])), 'd_acc': sums['d_correct'] / (2 * n),
          'eval_sentences': n}


def transfer(state: TrainState, tokens: jax.Array, mask: jax.Array, to_labels: jax.Array,
             from_labels: jax.Array, *, config) -> jax.Array:
  """Each sentence encoded with its style `from_labels`, decoded from [style `to_labels`,
  z]: int32 [n, max_len] (`steps.transfer`)."""
  z = encode(state.params['encoder'], tokens, mask, from_labels, config=config)
  dec = state.params['decoder']
  return transfer_lib.decode(_decoder(config), dec['decoder'], condition(dec, z, to_labels),
                             config=config)


def evaluate_samples(state: TrainState, rng: jax.Array, *, config, data) -> dict:
  """The transfer metrics of the eval split (`steps.transfer.evaluate_transfer`)."""
  del rng
  return transfer_lib.evaluate_transfer(transfer, state, config=config, data=data)


def sample(state: TrainState, rng: jax.Array, num: int, *, config, **conditions):
  """cross_align has no prior to sample from: always an error naming --mode=transfer."""
  del state, rng, num, conditions
  raise ValueError("config.algorithm='cross_align' rewrites given sentences and has no prior "
                   'to sample from: use --mode=transfer --input=FILE --to_label=L (or '
                   'ctrl_gen, which samples with --mode=sample).')

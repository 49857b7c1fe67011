"""`dae`: a denoising autoencoder: the encoder reads a corrupted sentence, the
decoder must produce the clean one.

Corruptions (`data.noise`, combinable, each off at 0): word drop
(config.ae.drop_prob), <mask> replacement (config.ae.mask_prob) and a local
shuffle that moves no word more than config.ae.shuffle_k places (Shen et al.
2017; Lample et al. 2018). They are drawn on device from the step's key.

Eval: the `ae` metrics on clean inputs, and the same with a `noisy_` prefix
for inputs corrupted as in training (noisy_rec_nll, noisy_bleu, ...).

With config.scst.steps, the run ends in phase 'scst' (`steps.self_critical`): the
decoder samples a reconstruction of each corrupted sentence, rewarded with its sentence
BLEU against the clean one, and encoder and decoder are updated by self-critical policy
gradient; the reconstruction NLL is mixed in at scst.mle_mix. Start it from a trained
dae: scst.init=WORKDIR (configs/dae_ptb.py:scst).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtextgen.data import noise
from jaxtextgen.steps import ae, autoencoding, self_critical
from jaxtextgen.steps.common import TrainState, shift_right

sample = ae.sample
encode_sentences = ae.encode_sentences
reconstruct = ae.reconstruct
homotopy = ae.homotopy
sample_outputs = ae.sample_outputs


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """The `ae` players (or those of config.scst.init), and with scst.steps the
  self-critical optimizer over both."""
  self_critical.check_config(config)
  state = ae.init(rng, config, sample_batch)
  state = state.replace(params=self_critical.init_params(state.params, config))
  return self_critical.add_optimizer(state, config, autoencoding.PLAYERS)


def corrupt(rng: jax.Array, tokens: jax.Array, mask: jax.Array, axis_name=None, *, config):
  """config.ae's corruption of a batch: (tokens, mask) [batch, T] -> the same, noisy.

  The noise is drawn for the global batch and sliced per device (see
  `autoencoding.global_noise`)."""
  a, v = config.ae, config.vocab
  u = autoencoding.global_noise(rng, jax.random.uniform, (tokens.shape[0], 3, tokens.shape[1]),
                                axis_name)
  return noise.corrupt(u.swapaxes(0, 1), tokens, mask, mask_prob=a.mask_prob,
                       drop_prob=a.drop_prob, shuffle_k=a.shuffle_k, mask_id=v.mask_id,
                       eos_id=v.eos_id, pad_id=v.pad_id)


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One step on -log p(x | enc(corrupt(x))) per sentence. Returns (state, {'loss', 'tokens'})."""
  return autoencoding.reconstruction_step(
      state, batch, rng, config=config, axis_name=axis_name,
      corrupt=lambda *args: corrupt(*args, config=config))


def self_critical_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """Phase 'scst': reconstructions of the corrupted batch sampled from the decoder, each
  rewarded with its sentence BLEU against the clean sentence. Returns (state,
  {'loss', 'reward', 'reward_greedy', 'advantage', 'sample_len'})."""
  rng = jax.random.fold_in(rng, state.step)
  k_noise, k_step = jax.random.split(rng)
  tokens, mask = batch['tokens'], batch['mask']
  enc = corrupt(k_noise, tokens, mask, axis_name, config=config)
  code = lambda p: autoencoding.encode(p['encoder'], *enc, config=config)[0]
  bos, eos = config.vocab.bos_id, config.vocab.eos_id
  decoder = autoencoding.make_decoder(config)

  def log_prob(p, toks, m, key):
    return -autoencoding.sentence_nll(p['decoder'], code(p), shift_right(toks, bos),
                                      toks, m, config=config, train=True,
                                      rng=autoencoding.dropout_key(key, axis_name))

  ref_len = jnp.sum((mask > 0) & (tokens != eos), 1).astype(jnp.int32)
  policy = self_critical.Policy(
      players=autoencoding.PLAYERS,
      condition=lambda p: (decoder, {'params': p['decoder']}, code(p)), log_prob=log_prob,
      refs=tokens[:, None, :], ref_len=jnp.maximum(ref_len, 1)[:, None],
      mle_loss=lambda p, key: autoencoding.reconstruction_loss(p, batch, *enc, key,
                                                               config=config,
                                                               axis_name=axis_name))
  return self_critical.step(state, batch, k_step, policy, config=config, axis_name=axis_name)


def schedule(config):
  """One phase of `train_step`, or scst.mle_steps of it and then scst.steps of 'scst'."""
  return self_critical.schedule(config, train_step, self_critical_step, name='train')


def eval_step(state: TrainState, batch, rng: jax.Array, *, config) -> dict:
  """The `ae` sums on clean inputs, and 'noisy_'-prefixed ones on corrupted inputs."""
  tokens, mask = corrupt(rng, batch['tokens'], batch['mask'], config=config)
  noisy = autoencoding.reconstruction_sums(state, batch, config=config, enc_tokens=tokens,
                                           enc_mask=mask)
  return {**ae.eval_step(state, batch, rng, config=config),
          **{f'noisy_{k}': v for k, v in noisy.items()}}


def finalize_eval(sums: dict) -> dict:
  return {**ae.finalize_eval(sums), **autoencoding.finalize_reconstruction(sums, 'noisy_')}

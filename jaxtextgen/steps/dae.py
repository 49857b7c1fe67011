"""`dae`: a denoising autoencoder: the encoder reads a corrupted sentence, the
decoder must produce the clean one.

Corruptions (`data.noise`, combinable, each off at 0): word drop
(config.ae.drop_prob), <mask> replacement (config.ae.mask_prob) and a local
shuffle that moves no word more than config.ae.shuffle_k places (Shen et al.
2017; Lample et al. 2018). They are drawn on device from the step's key.

Eval: the `ae` metrics on clean inputs, and the same with a `noisy_` prefix
for inputs corrupted as in training (noisy_rec_nll, noisy_bleu, ...).
"""

from __future__ import annotations

import jax

from jaxtextgen.data import noise
from jaxtextgen.steps import ae, autoencoding
from jaxtextgen.steps.common import TrainState

init = ae.init
sample = ae.sample
encode_sentences = ae.encode_sentences
reconstruct = ae.reconstruct
homotopy = ae.homotopy
sample_outputs = ae.sample_outputs


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


def eval_step(state: TrainState, batch, rng: jax.Array, *, config) -> dict:
  """The `ae` sums on clean inputs, and 'noisy_'-prefixed ones on corrupted inputs."""
  tokens, mask = corrupt(rng, batch['tokens'], batch['mask'], config=config)
  noisy = autoencoding.reconstruction_sums(state, batch, config=config, enc_tokens=tokens,
                                           enc_mask=mask)
  return {**ae.eval_step(state, batch, rng, config=config),
          **{f'noisy_{k}': v for k, v in noisy.items()}}


def finalize_eval(sums: dict) -> dict:
  return {**ae.finalize_eval(sums), **autoencoding.finalize_reconstruction(sums, 'noisy_')}

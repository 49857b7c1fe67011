"""`ae`: a deterministic LSTM autoencoder trained on reconstruction cross-entropy.

x -> (bi-)LSTM encoder -> code z (no noise, no KL) -> the shared LSTM decoder
conditioned on z -> x. Its encoder can initialise a `vae` (Li et al. 2019):
`config.vae.encoder_init = <this run's workdir>`.

    from jaxtextgen.steps import ae
    state = ae.init(rng, config, batch)
    state, metrics = ae.train_step(state, batch, rng, config=config)

Eval (`finalize_eval`): rec_nll (nats per sentence, z = the code), rec_nll_per_token,
rec_ppl = exp(rec NLL / tokens incl. EOS), bleu (corpus BLEU-4 of the greedy
reconstructions, `metrics.device_bleu`).
"""

from __future__ import annotations

import jax

from jaxtextgen.steps import autoencoding, latent_outputs
from jaxtextgen.steps.common import TrainState

# The sample mode's helpers (see steps.autoencoding).
encode_sentences = autoencoding.encode_sentences
reconstruct = autoencoding.reconstruct
homotopy = autoencoding.homotopy
sample_outputs = latent_outputs.sample_outputs  # --mode=sample: reconstructions, ...


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Players 'encoder' (deterministic head) and 'decoder', one optimizer each."""
  return autoencoding.init(rng, config, sample_batch, variational=False)


def train_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One step on the mean reconstruction NLL per sentence. Returns (state, {'loss', 'tokens'})."""
  return autoencoding.reconstruction_step(state, batch, rng, config=config, axis_name=axis_name)


def eval_step(state: TrainState, batch, rng: jax.Array, *, config) -> dict:
  """Sums over the batch: reconstruction NLL, BLEU statistics, tokens and sentences."""
  del rng  # deterministic
  return {**autoencoding.reconstruction_sums(state, batch, config=config),
          'tokens': batch['mask'].sum(), 'sentences': batch['weight'].sum()}


def finalize_eval(sums: dict) -> dict:
  """Metrics from the summed `eval_step` outputs (module docstring)."""
  return {**autoencoding.finalize_reconstruction(sums), 'eval_sentences': sums['sentences']}


def sample(state: TrainState, rng: jax.Array, num: int, *, config, z=None) -> jax.Array:
  """`num` sentences decoded from codes z ~ N(0, I) (or the given z [num, Z]).

  An ae puts no prior on its codes, so these show what the decoder makes of
  random codes rather than samples of a generative model; use `vae` for that.
  """
  return autoencoding.sample_latent(state, rng, num, config=config, z=z)

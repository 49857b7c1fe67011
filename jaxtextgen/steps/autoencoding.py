"""What `ae`, `dae` and `vae` share: one encoder-decoder and everything around it.

Not an algorithm itself. The model is a `LatentEncoder` (players['encoder'])
and the shared decoder of config.model.decoder conditioned on z (players['decoder']):
the LSTM through its initial state and every input step, the Transformer through
every LayerNorm (SELF-MOD style conditional LayerNorm); two players, each with its own
optimizer, so that a VAE can reset or freeze one of them (Li et al. 2019's
pretrained encoder, He et al. 2019's encoder-only updates).

Losses are per sentence (sums over tokens, mean over sentences), the
normalisation of the VAE literature, so an `ae` trained here pretrains a `vae`
on the same scale. Random draws that touch the data (z noise, corruption, word
dropout) are made for the GLOBAL batch and sliced per device, so pmap, sharded
jit and one device give the same step.

Public helpers that the trainer's sample mode calls (all pure, jittable):
`encode_sentences`, `reconstruct`, `homotopy`, `sample_latent`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.metrics import device_bleu
from jaxtextgen.models.latent import LatentEncoder
from jaxtextgen.models.lstm import LSTMEncoder
from jaxtextgen.models.sampler import rows, sample as sample_tokens
from jaxtextgen.steps import common
from jaxtextgen.steps.common import (TrainState, compute_dtype, global_sum, load_params,
                                     make_optimizer, shift_right)

PLAYERS = ('encoder', 'decoder')


# --- model and state ----------------------------------------------------------------------------

def make_encoder(config, *, variational: bool) -> LatentEncoder:
  """The encoder as configured by config.model and config.ae."""
  lstm = LSTMEncoder(vocab_size=config.vocab.size, emb_dim=config.model.emb_dim,
                     hidden_size=config.model.hidden_size,
                     bidirectional=config.ae.bidirectional, dtype=compute_dtype(config))
  return LatentEncoder(lstm, latent_dim=config.ae.latent_dim, variational=variational)


def make_decoder(config):
  """The lm decoder conditioned on z: the LSTM's initial state and every input (He et
  al. 2019), or every LayerNorm of the Transformer; with config.ae.attention the LSTM
  also attends over the encoder's states (`encode(..., memory=True)`)."""
  return common.make_decoder(config, conditional=True, attention=config.ae.attention)


def is_variational(encoder_params) -> bool:
  return 'logvar' in encoder_params


def init(rng: jax.Array, config, sample_batch, *, variational: bool,
         code_dim: int = 0, attention_ok: bool = False) -> TrainState:
  """Encoder and decoder params and one optimizer each; `sample_batch` fixes shapes.
  `code_dim`: the decoder reads [z, code] with a code of this size (`vae.latent_condition`).
  `attention_ok`: the algorithm feeds the encoder's states to an attending decoder
  (config.ae.attention); the others refuse it."""
  if config.ae.attention and not (attention_ok and config.model.decoder == 'lstm'):
    raise ValueError(f'config.ae.attention=True: only ctrl_gen with ctrl_gen.codes='
                     f"'transfer' and the 'lstm' decoder attends over the encoder (got "
                     f'{config.algorithm!r} with {config.model.decoder!r}); set '
                     'config.ae.attention=False.')
  k_enc, k_dec = jax.random.split(rng)
  tokens, mask = jnp.asarray(sample_batch['tokens']), jnp.asarray(sample_batch['mask'])
  encoder = make_encoder(config, variational=variational)
  enc = encoder.init(k_enc, tokens, mask)['params']
  z = jnp.zeros((tokens.shape[0], config.ae.latent_dim + code_dim), jnp.float32)
  if config.ae.attention:
    z = {'vector': z, **encoder.apply({'params': enc}, tokens, mask, memory=True)[2]}
  dec = make_decoder(config).init(k_dec, shift_right(tokens, config.vocab.bos_id), z)['params']
  tx = {p: make_optimizer(config.optimizer, config.num_train_steps) for p in PLAYERS}
  return TrainState.create({'encoder': enc, 'decoder': dec}, tx)


def apply_gradients(state: TrainState, grads: dict) -> TrainState:
  """One update of every player in `grads`, then step + 1."""
  for player, g in grads.items():
    state = state.apply_gradients(player, g)
  return state.replace(step=state.step + 1)


def load_encoder(workdir: str) -> dict:
  """Encoder params (numpy) of the latest checkpoint of an `ae`/`dae` run in `workdir`
  (`common.load_params`: safe inside a jitted init)."""
  params = load_params(workdir, 'config.vae.encoder_init',
                       'train an ae there first (configs/ae_ptb.py).')
  enc = params.get('encoder', {})
  if 'lstm' not in enc or 'mean' not in enc:
    raise ValueError(f'config.vae.encoder_init={workdir!r} holds no autoencoder encoder; '
                     "point it at the workdir of an 'ae' or 'dae' run.")
  return {'lstm': enc['lstm'], 'mean': enc['mean']}


def with_pretrained_encoder(params: dict, pretrained: dict, source: str) -> dict:
  """`params` (an encoder's) with 'lstm' and 'mean' replaced by `pretrained`'s; the
  log-variance head keeps its fresh init. Shapes must match: the ae must have
  the same corpus and vocabulary settings, model sizes and ae.latent_dim."""
  shapes = lambda tree: jax.tree.map(np.shape, tree)
  expected = shapes({k: params[k] for k in pretrained})
  if shapes(pretrained) != expected:
    raise ValueError(f'the encoder in {source} does not fit this model: its parameter shapes '
                     f'are {shapes(pretrained)}, this model needs {expected}. Train the ae '
                     'with the same corpus, vocabulary, model sizes and ae.latent_dim.')
  return {**params, **jax.tree.map(jnp.asarray, pretrained)}


# --- forward pieces -------------------------------------------------------------------------------

def encode(encoder_params, tokens: jax.Array, mask: jax.Array, *, config, state=None,
           memory: bool = False):
  """(mean [batch, Z], logvar [batch, Z] or None for a deterministic encoder) of token ids
  [batch, T] or token distributions [batch, T, V]; `state`: the LSTM's initial state.
  `memory`: a third value, what an attending decoder reads ({'memory', 'memory_mask'},
  `LatentEncoder`) with config.ae.attention, else None."""
  encoder = make_encoder(config, variational=is_variational(encoder_params))
  attend = memory and config.ae.attention
  out = encoder.apply({'params': encoder_params}, tokens, mask, state=state, memory=attend)
  return out if attend or not memory else (*out, None)


def sentence_nll(decoder_params, z: jax.Array, inputs: jax.Array, targets: jax.Array,
                 mask: jax.Array, *, config, train: bool = False, rng=None) -> jax.Array:
  """-log p(x|z) of each sentence: z [batch, Z], inputs / targets int32 [batch, T]
  (inputs: targets shifted right, maybe with word dropout), mask [batch, T] -> [batch]."""
  rngs = {'dropout': rng} if train else {}
  nll = make_decoder(config).apply({'params': decoder_params}, inputs, targets, z, train=train,
                                   rngs=rngs, method='token_nll')
  return jnp.where(mask > 0, nll, 0.0).sum(axis=-1)


def global_noise(rng: jax.Array, draw: Callable, shape: tuple, axis_name: str | None):
  """`draw(rng, shape)` for this device's rows of the global batch.

  Under pmap every device draws the global batch's noise ([devices * batch, ...])
  and keeps its own slice, so each row gets the noise it gets on one device."""
  if axis_name is None:
    return draw(rng, shape)
  n = jax.lax.axis_size(axis_name)
  full = draw(rng, (n * shape[0],) + tuple(shape[1:]))
  return jax.lax.dynamic_slice_in_dim(full, jax.lax.axis_index(axis_name) * shape[0], shape[0])


def dropout_key(rng: jax.Array, axis_name: str | None) -> jax.Array:
  """Key of flax dropout inside the decoder: different masks on different shards."""
  return rng if axis_name is None else jax.random.fold_in(rng, jax.lax.axis_index(axis_name))


# --- the ae / dae step ----------------------------------------------------------------------------

def reconstruction_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None,
                        corrupt: Callable | None = None):
  """One step of a deterministic autoencoder on -log p(x | z = enc(corrupt(x))) per sentence.

  Args:
    corrupt: optional (key, tokens, mask, axis_name) -> (tokens, mask), the
      encoder's input noise (dae); the decoder's target is always the clean x.

  Returns:
    (state, {'loss': mean NLL per sentence, 'tokens': target tokens}).
  """
  rng = jax.random.fold_in(rng, state.step)
  k_noise, k_drop = jax.random.split(rng)
  tokens, mask = batch['tokens'], batch['mask']
  enc = (tokens, mask) if corrupt is None else corrupt(k_noise, tokens, mask, axis_name)
  loss, grads = jax.value_and_grad(reconstruction_loss)(
      state.params, batch, *enc, k_drop, config=config, axis_name=axis_name)
  grads, loss = global_sum((grads, loss), axis_name)
  return apply_gradients(state, grads), {'loss': loss,
                                         'tokens': global_sum(mask.sum(), axis_name)}


def reconstruction_loss(params, batch, enc_tokens: jax.Array, enc_mask: jax.Array,
                        rng: jax.Array, *, config, axis_name=None) -> jax.Array:
  """-log p(x | z = enc(enc_tokens)) of the batch's clean sentences x, summed over this
  device's sentences and divided by the global batch's (decoder dropout from `rng`)."""
  tokens, mask = batch['tokens'], batch['mask']
  z, _ = encode(params['encoder'], enc_tokens, enc_mask, config=config)
  nll = sentence_nll(params['decoder'], z, shift_right(tokens, config.vocab.bos_id), tokens,
                     mask, config=config, train=True, rng=dropout_key(rng, axis_name))
  return nll.sum() / global_sum(batch['weight'].sum(), axis_name)


# --- evaluation pieces ----------------------------------------------------------------------------

def reconstruction_sums(state: TrainState, batch, *, config, enc_tokens=None,
                        enc_mask=None) -> dict:
  """Sums over a batch for a deterministic reconstruction from the posterior mean
  of (enc_tokens, enc_mask) (default: the clean batch) back to the clean batch:
  'rec_nll_sum' (-log p(x | z = mean)), and the corpus-BLEU statistics of the
  greedy reconstructions (`metrics.device_bleu`)."""
  tokens, mask = batch['tokens'], batch['mask']
  enc_tokens = tokens if enc_tokens is None else enc_tokens
  enc_mask = mask if enc_mask is None else enc_mask
  mean, _ = encode(state.params['encoder'], enc_tokens, enc_mask, config=config)
  nll = sentence_nll(state.params['decoder'], mean, shift_right(tokens, config.vocab.bos_id),
                     tokens, mask, config=config)
  return {'rec_nll_sum': nll.sum(), **greedy_bleu_sums(state, mean, batch, config=config)}


def greedy_bleu_sums(state: TrainState, z: jax.Array, batch, *, config) -> dict:
  """BLEU statistics of greedy decodes from z [batch, Z] against the batch's
  sentences (EOS excluded from both). Decodes are at most the batch's T tokens."""
  tokens, mask = batch['tokens'], batch['mask']
  out = decode_greedy(state, z, tokens.shape[1], config=config)
  eos = config.vocab.eos_id
  ref_len = (mask > 0).sum(-1) - (eos >= 0) * (mask > 0).any(-1)
  hyp_len = (out.mask > 0).sum(-1) - ((out.tokens == eos) & (out.mask > 0)).sum(-1)
  hyp_len = jnp.where(batch['weight'] > 0, hyp_len, 0)
  return device_bleu.bleu_stats(out.tokens, hyp_len, tokens, ref_len)


def finalize_reconstruction(sums: dict, prefix: str = '') -> dict:
  """Per-sentence and per-token reconstruction NLL, its perplexity, and BLEU, from
  `reconstruction_sums` summed over the split (keys prefixed by `prefix`)."""
  p = prefix
  rec = sums[f'{p}rec_nll_sum']
  bleu = {k[len(p):]: v for k, v in sums.items() if k.startswith(f'{p}bleu_')}
  return {f'{p}rec_nll': rec / sums['sentences'], f'{p}rec_nll_per_token': rec / sums['tokens'],
          f'{p}rec_ppl': float(np.exp(rec / sums['tokens'])),
          f'{p}bleu': device_bleu.corpus_bleu(bleu)}


# --- decoding from codes: reconstructions, homotopies, prior samples ------------------------------

def decode_greedy(state: TrainState, z: jax.Array, length: int, *, config):
  """Argmax decoding from codes z [n, Z]: a `sampler.Samples` of [n, length]."""
  v = config.vocab
  return sample_tokens(make_decoder(config), {'params': state.params['decoder']},
                       jax.random.key(0), batch=rows(z), length=length, bos_id=v.bos_id,
                       eos_id=v.eos_id, pad_id=v.pad_id, greedy=True, cond=z)


def encode_sentences(state: TrainState, tokens: jax.Array, mask: jax.Array, *, config):
  """Posterior means (or ae codes) of sentences: tokens / mask [n, T] -> float32 [n, Z]
  (e.g. for a 2-D projection of the latent space coloured by label)."""
  return encode(state.params['encoder'], tokens, mask, config=config)[0]


def reconstruct(state: TrainState, tokens: jax.Array, mask: jax.Array, *, config,
                length: int | None = None) -> jax.Array:
  """Greedy decodes from the posterior mean of each sentence: int32 [n, length]
  (default length: config.data.max_len), PAD after EOS."""
  z = encode_sentences(state, tokens, mask, config=config)
  return decode_greedy(state, z, length or config.data.max_len, config=config).tokens


def homotopy(state: TrainState, tokens: jax.Array, mask: jax.Array, num_steps: int, *, config,
             length: int | None = None) -> jax.Array:
  """Greedy decodes along the line between two sentences' posterior means
  (Bowman et al. 2016, Table 3): tokens / mask [2, T] -> int32 [num_steps, length],
  row i decoded from z = (1 - t_i) z_a + t_i z_b with t_i = i / (num_steps - 1)."""
  z = encode_sentences(state, tokens, mask, config=config)
  t = jnp.linspace(0.0, 1.0, num_steps)[:, None]
  path = (1.0 - t) * z[0] + t * z[1]
  return decode_greedy(state, path, length or config.data.max_len, config=config).tokens


def sample_latent(state: TrainState, rng: jax.Array, num: int, *, config,
                  z: jax.Array | None = None) -> jax.Array:
  """Sentences decoded from z ~ N(0, I) [num, Z] (or the given z) with config.sample's
  temperature / top_k / top_p / greedy: int32 [num, config.data.max_len], PAD after EOS."""
  k_z, k_tok = jax.random.split(rng)
  if z is None:
    z = jax.random.normal(k_z, (num, config.ae.latent_dim))
  s, v = config.sample, config.vocab
  return sample_tokens(make_decoder(config), {'params': state.params['decoder']}, k_tok,
                       batch=num, length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                       pad_id=v.pad_id, temperature=s.temperature, top_k=s.top_k,
                       top_p=s.top_p, greedy=s.greedy, cond=z).tokens

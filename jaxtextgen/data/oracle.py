"""The SeqGAN synthetic oracle: a fixed random LSTM that defines a language.

Exactly SeqGAN's `target_lstm.py` (github.com/LantaoYu/SeqGAN): vocabulary 5,000, embedding 32,
hidden 32, start token 0 (x_0 = emb[0]; 0 is also an ordinary token), h_0 = c_0 = 0, 20 steps,
no EOS, no padding. One step, with x the embedding of the previous token:

    i = σ(x Wi + h Ui + bi)      f = σ(x Wf + h Uf + bf)
    o = σ(x Wog + h Uog + bog)   c̃ = tanh(x Wc + h Uc + bc)
    c = f⊙c + i⊙c̃               h = o⊙tanh(c)             logits = h Wo + bo

The original weights are `target_params.npz` (see ../shared/data/seqgan_oracle/SOURCE.md); on
them the oracle's own entropy rate is ≈ 5.751 nats/token and uniform random tokens score ≈ 11.43.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxtextgen.models.sampler import categorical

OracleParams = dict[str, jax.Array]  # the 15 arrays below, float32

# Gate order of the concatenated [*, 4H] projections: input, forget, output, cell candidate.
_GATES = (("Wi", "Ui", "bi"), ("Wf", "Uf", "bf"), ("Wog", "Uog", "bog"), ("Wc", "Uc", "bc"))
KEYS = ("emb",) + tuple(k for gate in _GATES for k in gate) + ("Wo", "bo")

# The oracle defines a metric, so its value must not depend on the backend's default matmul
# precision (TF32/bf16 passes on GPU/TPU would shift NLL-oracle in the third decimal).
_dot = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)


def _expected_shapes(vocab_size: int, emb_dim: int, hidden_dim: int) -> dict[str, tuple]:
  shapes = {"emb": (vocab_size, emb_dim), "Wo": (hidden_dim, vocab_size), "bo": (vocab_size,)}
  for w, u, b in _GATES:
    shapes.update({w: (emb_dim, hidden_dim), u: (hidden_dim, hidden_dim), b: (hidden_dim,)})
  return shapes


def load_oracle_params(path: str) -> OracleParams:
  """Loads the oracle weights from an `.npz` with the 15 arrays of `KEYS` (extra keys ignored).

  Shapes: emb [V, E]; W* [E, H]; U* [H, H]; b* [H]; Wo [H, V]; bo [V]. Raises FileNotFoundError
  if `path` does not exist and ValueError naming every missing key or wrongly shaped array.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Oracle weights {path!r} not found. SeqGAN's weights are target_params.npz in "
        "shared/data/seqgan_oracle/; or use random_oracle_params(seed) for a random one.")
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = {k: np.asarray(npz[k]) for k in npz.files}
  except Exception as e:  # not a zip / corrupted / pickled object arrays
    raise ValueError(f"Cannot read {path!r} as an .npz of plain arrays: {e}") from e
  missing = [k for k in KEYS if k not in arrays]
  if missing:
    raise ValueError(f"Oracle weights {path!r} lack the keys {missing}; "
                     f"expected all of {list(KEYS)}, found {sorted(arrays)}.")
  if arrays["emb"].ndim != 2 or arrays["Wi"].ndim != 2:
    raise ValueError(f"Oracle weights {path!r}: emb and Wi must be 2-D, got shapes "
                     f"{arrays['emb'].shape} and {arrays['Wi'].shape}.")
  (vocab_size, emb_dim), hidden_dim = arrays["emb"].shape, arrays["Wi"].shape[1]
  expected = _expected_shapes(vocab_size, emb_dim, hidden_dim)
  wrong = [f"{k}: {arrays[k].shape} != {s}" for k, s in expected.items() if arrays[k].shape != s]
  if wrong:
    raise ValueError(f"Oracle weights {path!r} have wrong shapes (vocab {vocab_size}, emb "
                     f"{emb_dim}, hidden {hidden_dim}): " + "; ".join(wrong))
  return {k: jnp.asarray(arrays[k], jnp.float32) for k in KEYS}


def random_oracle_params(seed: int, vocab_size: int = 5000, emb_dim: int = 32,
                         hidden_dim: int = 32) -> OracleParams:
  """A random oracle: every array i.i.d. N(0, 1), as SeqGAN's `init_matrix` (stddev 1.0)."""
  if min(vocab_size, emb_dim, hidden_dim) < 1:
    raise ValueError(f"Oracle sizes must be positive, got vocab_size={vocab_size}, "
                     f"emb_dim={emb_dim}, hidden_dim={hidden_dim}.")
  return _random_params(jax.random.key(seed), vocab_size, emb_dim, hidden_dim)


# Jitted so the 15 draws compile once, not one eager op per distinct shape.
@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _random_params(key: jax.Array, vocab_size: int, emb_dim: int, hidden_dim: int):
  shapes = _expected_shapes(vocab_size, emb_dim, hidden_dim)
  keys = jax.random.split(key, len(KEYS))
  return {k: jax.random.normal(kk, shapes[k], jnp.float32) for k, kk in zip(KEYS, keys)}


def _gate_weights(params: OracleParams) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The four gates side by side: W [E, 4H], U [H, 4H], b [4H], so one matmul serves all four."""
  return tuple(jnp.concatenate([params[g[j]] for g in _GATES], axis=-1) for j in range(3))


def _cell(x_proj: jax.Array, h: jax.Array, c: jax.Array, u: jax.Array):
  """One LSTM step given x_proj = x W + b [B, 4H]; only the recurrent matmul happens here."""
  i, f, o, g = jnp.split(x_proj + _dot(h, u), 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return jax.nn.sigmoid(o) * jnp.tanh(c), c


@jax.jit
def oracle_logits(params: OracleParams, tokens: jax.Array) -> jax.Array:
  """Teacher-forced logits [batch, time, vocab] for tokens int32[batch, time]: input at t is
  tokens[t-1], start token 0 at t=0. Logits at t score tokens[t]. Token ids must be in [0, V)."""
  if tokens.ndim != 2:  # shapes are static, so this check also runs under jit
    raise ValueError(f"tokens must be int [batch, time], got shape {tokens.shape}.")
  w, u, b = _gate_weights(params)
  batch = tokens.shape[0]
  inputs = jnp.concatenate([jnp.zeros((batch, 1), tokens.dtype), tokens[:, :-1]], axis=1)
  x_proj = _dot(params["emb"][inputs.T], w) + b  # [T, B, 4H], time-major for the scan

  def step(carry, xp):
    h, c = _cell(xp, *carry, u)
    return (h, c), h

  zeros = jnp.zeros((batch, u.shape[0]), jnp.float32)
  _, hs = jax.lax.scan(step, (zeros, zeros), x_proj)  # [T, B, H]
  return _dot(jnp.swapaxes(hs, 0, 1), params["Wo"]) + params["bo"]


@jax.jit
def oracle_nll(params: OracleParams, tokens: jax.Array) -> jax.Array:
  """Per-sequence mean per-token NLL float32[batch] (nats) of tokens int32[batch, time]."""
  logits = oracle_logits(params, tokens)
  picked = jnp.take_along_axis(logits, tokens[..., None], axis=-1)[..., 0]
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked, axis=-1)


@functools.partial(jax.jit, static_argnames=("num", "length"))
def oracle_sample(params: OracleParams, rng: jax.Array, num: int, length: int = 20) -> jax.Array:
  """Samples int32[num, length] from the oracle, the whole batch in one `lax.scan` over time.

  Step t draws with the library's exact `categorical(fold_in(rng, t), logits)` (see
  jaxtextgen.models.sampler); `rng` is either key type.
  `num` and `length` are static (one compile per pair). Peak memory is a few [num, vocab]
  float32 buffers (200 MB each at 10k x 5k) for the logits of one step.
  """
  w, u, b = _gate_weights(params)
  # Every step's input is some embedding row, so project the whole table once: [V, 4H]; the
  # per-step input projection becomes a row gather.
  emb_proj = _dot(params["emb"], w) + b

  def step(carry, t):
    h, c, prev = carry
    h, c = _cell(emb_proj[prev], h, c, u)
    logits = _dot(h, params["Wo"]) + params["bo"]
    token = categorical(jax.random.fold_in(rng, t), logits)
    return (h, c, token), token

  zeros = jnp.zeros((num, u.shape[0]), jnp.float32)
  init = (zeros, zeros, jnp.zeros((num,), jnp.int32))  # start token 0
  _, tokens = jax.lax.scan(step, init, jnp.arange(length))
  return tokens.T


def nll_oracle(params: OracleParams, samples, batch_size: int = 1024) -> float:
  """NLL-oracle (SeqGAN): the mean per-token negative log-likelihood, in nats, that the oracle
  assigns to generator samples [n, length]:

      NLL-oracle = -1/(n * length) * Σ_i Σ_t log p(s_i,t | s_i,<t),   s_i,<0 = start token 0.

  Every sample counts all `length` tokens (no EOS, no padding). SeqGAN scores
  int(10000/64)*64 = 9,984 samples; pass that many to reproduce its number exactly (its mean of
  equal-sized batch means equals this mean). Chunks of `batch_size` run jitted, dispatched
  without host syncs; the last chunk is zero-padded so one compiled shape serves all.
  """
  samples = np.asarray(samples)
  vocab_size = params["emb"].shape[0]
  if samples.ndim != 2 or samples.size == 0 or not np.issubdtype(samples.dtype, np.integer):
    raise ValueError(f"samples must be a non-empty integer array [n, length], got "
                     f"{samples.dtype} {samples.shape}.")
  if samples.min() < 0 or samples.max() >= vocab_size:
    raise ValueError(f"sample token ids must lie in [0, {vocab_size}), got "
                     f"[{samples.min()}, {samples.max()}].")
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")
  n = samples.shape[0]
  chunk = min(batch_size, n)
  padded = np.zeros((-(-n // chunk) * chunk, samples.shape[1]), np.int32)
  padded[:n] = samples
  per_seq = [oracle_nll(params, jnp.asarray(padded[s:s + chunk]))
             for s in range(0, len(padded), chunk)]
  per_seq = np.concatenate([np.asarray(x) for x in per_seq])[:n]
  return float(per_seq.astype(np.float64).mean())


def generate_corpus(params: OracleParams, seed: int, num: int = 10_000,
                    length: int = 20) -> np.ndarray:
  """The oracle's training set: int32[num, length] = oracle_sample(params, key(seed), num,
  length), one jitted call; deterministic given seed (and the backend's PRNG implementation)."""
  return np.asarray(oracle_sample(params, jax.random.key(seed), num, length))

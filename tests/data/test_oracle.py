"""Tests for jaxtextgen.data.oracle: the SeqGAN oracle LSTM, its sampler and NLL-oracle."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.data import oracle

# CI keeps the shared data beside the repository: repo_root/../shared/data/...
REAL_WEIGHTS = (pathlib.Path(__file__).resolve().parents[2].parent
                / "shared" / "data" / "seqgan_oracle" / "target_params.npz")


def reference_nll(params, tokens):
  """float64 numpy oracle, written straight from SOURCE.md's equations: per-sequence mean NLL."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))
  batch, time = tokens.shape
  h = np.zeros((batch, p["Ui"].shape[0]))
  c = np.zeros_like(h)
  prev = np.zeros(batch, np.int64)  # start token 0
  nll = np.zeros(batch)
  for t in range(time):
    x = p["emb"][prev]
    i = sigmoid(x @ p["Wi"] + h @ p["Ui"] + p["bi"])
    f = sigmoid(x @ p["Wf"] + h @ p["Uf"] + p["bf"])
    o = sigmoid(x @ p["Wog"] + h @ p["Uog"] + p["bog"])
    c_tilde = np.tanh(x @ p["Wc"] + h @ p["Uc"] + p["bc"])
    c = f * c + i * c_tilde
    h = o * np.tanh(c)
    logits = h @ p["Wo"] + p["bo"]
    m = logits.max(-1, keepdims=True)
    log_z = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[:, 0]
    nll += log_z - logits[np.arange(batch), tokens[:, t]]
    prev = tokens[:, t]
  return nll / time


# One small oracle size (vocab 10, emb 8, hidden 16; E != H so a transposed weight would fail)
# and few distinct array shapes across tests: on CPU, jit compiles dominate the runtime.
VOCAB, NUM, LENGTH = 10, 20_000, 2


@pytest.fixture(scope="module")
def small_params():
  # Halved weights keep the distributions spread out, so every token gets exercised.
  return jax.tree.map(lambda x: 0.5 * x, oracle.random_oracle_params(7, VOCAB, 8, 16))


def test_nll_matches_float64_reference():
  params = oracle.random_oracle_params(3, vocab_size=VOCAB, emb_dim=8, hidden_dim=16)
  tokens = np.random.default_rng(0).integers(0, VOCAB, (6, 9)).astype(np.int32)
  tokens[0, :3] = 0  # token 0 is also an ordinary token, not only the start
  got = oracle.oracle_nll(params, jnp.asarray(tokens))
  assert got.shape == (6,) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), reference_nll(params, tokens), rtol=1e-5)


def test_nll_oracle_is_mean_per_token_over_uneven_chunks():
  params = oracle.random_oracle_params(1, vocab_size=VOCAB, emb_dim=8, hidden_dim=16)
  samples = np.random.default_rng(1).integers(0, VOCAB, (15, 9))  # chunks 6 + 6 + 3 (padded)
  expected = reference_nll(params, samples).mean()
  assert oracle.nll_oracle(params, samples, batch_size=6) == pytest.approx(expected, rel=1e-5)
  with pytest.raises(ValueError, match="lie in"):
    oracle.nll_oracle(params, np.full((2, 9), VOCAB))


@pytest.mark.skipif(not REAL_WEIGHTS.exists(), reason=f"{REAL_WEIGHTS} not present")
def test_real_weights_protocol_numbers():
  params = oracle.load_oracle_params(str(REAL_WEIGHTS))
  assert params["emb"].shape == (5000, 32) and params["Wo"].shape == (32, 5000)
  samples = oracle.generate_corpus(params, seed=0, num=2000)
  assert samples.shape == (2000, 20) and samples.dtype == np.int32
  assert abs(oracle.nll_oracle(params, samples) - 5.751) < 0.1
  uniform = np.random.default_rng(0).integers(0, 5000, (2000, 20))
  assert abs(oracle.nll_oracle(params, uniform) - 11.43) < 0.1


def test_sampling_is_deterministic_per_seed(small_params):
  a = oracle.generate_corpus(small_params, seed=0, num=NUM, length=LENGTH)
  assert a.shape == (NUM, LENGTH) and a.dtype == np.int32
  assert a.min() >= 0 and a.max() < VOCAB
  np.testing.assert_array_equal(
      a, oracle.generate_corpus(small_params, seed=0, num=NUM, length=LENGTH))
  assert not np.array_equal(
      a, oracle.generate_corpus(small_params, seed=1, num=NUM, length=LENGTH))


def test_sample_frequencies_match_oracle_distribution(small_params):
  samples = oracle.generate_corpus(small_params, seed=0, num=NUM, length=LENGTH)
  # Row a scores the prefix [a]: position 0 gives p(first token), position 1 gives p(b | a).
  prefixes = jnp.stack([jnp.arange(VOCAB), jnp.zeros(VOCAB, jnp.int32)], axis=1)
  probs = np.asarray(jax.nn.softmax(oracle.oracle_logits(small_params, prefixes), axis=-1))
  assert probs.shape == (VOCAB, 2, VOCAB)
  p_first, p_next = probs[0, 0], probs[:, 1]
  freq_first = np.bincount(samples[:, 0], minlength=VOCAB) / NUM
  assert 0.5 * np.abs(freq_first - p_first).sum() < 0.05  # total variation
  # Marginal of the second token, Σ_a p(a) p(b | a): checks the sampled token is fed back in.
  freq_second = np.bincount(samples[:, 1], minlength=VOCAB) / NUM
  assert 0.5 * np.abs(freq_second - p_first @ p_next).sum() < 0.05


def test_load_round_trip_and_errors(tmp_path):
  params = oracle.random_oracle_params(0, vocab_size=VOCAB, emb_dim=8, hidden_dim=16)
  arrays = {k: np.asarray(v) for k, v in params.items()}
  good = tmp_path / "good.npz"
  np.savez(good, **arrays)
  loaded = oracle.load_oracle_params(str(good))
  assert sorted(loaded) == sorted(oracle.KEYS)
  for k in oracle.KEYS:
    np.testing.assert_array_equal(np.asarray(loaded[k]), arrays[k])

  with pytest.raises(FileNotFoundError, match="nowhere.npz"):
    oracle.load_oracle_params(str(tmp_path / "nowhere.npz"))

  missing = tmp_path / "missing.npz"
  np.savez(missing, **{k: v for k, v in arrays.items() if k not in ("Uf", "bo")})
  with pytest.raises(ValueError, match=r"\['Uf', 'bo'\]"):
    oracle.load_oracle_params(str(missing))

  wrong = tmp_path / "wrong.npz"
  np.savez(wrong, **{**arrays, "Uc": np.zeros((16, 5), np.float32)})
  with pytest.raises(ValueError, match=r"Uc: \(16, 5\) != \(16, 16\)"):
    oracle.load_oracle_params(str(wrong))

  not_npz = tmp_path / "junk.npz"
  not_npz.write_text("not a zip")
  with pytest.raises(ValueError, match="Cannot read"):
    oracle.load_oracle_params(str(not_npz))

"""MI and active units on synthetic posteriors with known answers; on-device corpus BLEU."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.metrics import device_bleu, latent, projection

mi = jax.jit(latent.mutual_information, static_argnames='chunk_size')


def _posteriors(means, std, seed=0):
  means = jnp.asarray(means, jnp.float32)
  logvar = jnp.full_like(means, 2 * math.log(std))
  z = means + std * jax.random.normal(jax.random.key(seed), means.shape)
  return means, logvar, z


def test_mi_of_separated_clusters_is_log_m():
  # x takes M values with equal probability and q(z|x) do not overlap: I(x; z) = H(x) = log M.
  m, per, std = 4, 50, 0.1
  centres = 20.0 * np.arange(m)[:, None] * np.ones(3)
  mean, logvar, z = _posteriors(np.repeat(centres, per, axis=0), std)
  # With one sample per sentence the estimate is log M plus the Monte-Carlo error of
  # E_q[log q(z|x)] (mean of (|eps|^2 - Z) / 2); remove it to check the rest exactly.
  mc_error = float(jnp.mean(jnp.sum(((z - mean) / std) ** 2, -1) - 3) / 2)
  np.testing.assert_allclose(mi(mean, logvar, z, chunk_size=64) - mc_error, math.log(m),
                             atol=1e-4)


def test_mi_of_identical_posteriors_is_zero():
  mean, logvar, z = _posteriors(np.zeros((2000, 2)), 0.7)
  assert abs(float(mi(mean, logvar, z))) < 0.1


def test_mi_of_a_gaussian_channel():
  # x ~ N(0, 1), q(z|x) = N(x, s^2): I = log(1 + 1 / s^2) / 2.
  s = 0.5
  x = np.random.RandomState(0).randn(3000, 1)
  mean, logvar, z = _posteriors(x, s)
  np.testing.assert_allclose(mi(mean, logvar, z, chunk_size=512), 0.5 * math.log(1 + 1 / s**2),
                             atol=0.05)


def test_mi_ignores_padding_rows():
  mean, logvar, z = _posteriors(np.random.RandomState(1).randn(40, 3), 0.3)
  junk = jnp.full((8, 3), 5.0)
  weight = jnp.concatenate([jnp.ones(40), jnp.zeros(8)])
  padded = [jnp.concatenate([a, junk]) for a in (mean, logvar, z)]
  np.testing.assert_allclose(mi(*padded, weight, chunk_size=16), mi(mean, logvar, z), rtol=1e-5)


def test_active_units_from_batched_sums():
  rs = np.random.RandomState(0)
  stds = np.array([1.0, 0.2, 0.05, 0.0])  # variances 1, 0.04, 0.0025, 0
  means = 3.0 + rs.randn(1000, 4) * stds
  batches = np.array_split(means, 7)
  s1 = sum(b.sum(0) for b in batches)
  s2 = sum((b ** 2).sum(0) for b in batches)
  np.testing.assert_allclose(latent.posterior_mean_variance(s1, s2, 1000),
                             means.var(0, ddof=1), rtol=1e-8, atol=1e-12)
  assert latent.active_units(s1, s2, 1000) == 2
  assert latent.active_units(s1, s2, 1000, threshold=0.001) == 3


def _corpus(seed):
  rs = np.random.RandomState(seed)
  refs, hyps = [], []
  for _ in range(60):
    ref = list(rs.randint(0, 6, size=rs.randint(1, 12)))
    hyp = [t if rs.rand() > 0.2 else int(rs.randint(0, 6)) for t in ref]
    hyp = hyp[:rs.randint(0, len(hyp) + 2)] + list(rs.randint(0, 6, size=rs.randint(0, 2)))
    refs.append(ref)
    hyps.append(hyp)
  return hyps, refs


def _stats(hyps, refs, t=14):
  pad = lambda seqs: np.array([s + [-1] * (t - len(s)) for s in seqs], np.int32)
  lens = lambda seqs: np.array([len(s) for s in seqs], np.int32)
  sums = device_bleu.bleu_stats(pad(hyps), lens(hyps), pad(refs), lens(refs))
  return {k: float(v) for k, v in sums.items()}


@pytest.mark.parametrize('seed', [0, 1])
def test_device_bleu_equals_sacrebleu(seed):
  sacrebleu = pytest.importorskip('sacrebleu')
  hyps, refs = _corpus(seed)
  text = lambda seqs: [' '.join(f'w{t}' for t in s) for s in seqs]
  expect = sacrebleu.corpus_bleu(text(hyps), [text(refs)], tokenize='none',
                                 smooth_method='none', force=True)
  sums = _stats(hyps, refs)
  assert [sums[f'bleu_match_{n}'] for n in range(1, 5)] == expect.counts
  assert [sums[f'bleu_total_{n}'] for n in range(1, 5)] == expect.totals
  assert device_bleu.corpus_bleu(sums) == pytest.approx(expect.score / 100, rel=1e-9)


def test_device_bleu_edge_cases():
  assert device_bleu.corpus_bleu(_stats([[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]])) == 1.0
  assert device_bleu.corpus_bleu(_stats([[]], [[1, 2, 3, 4]])) == 0.0
  assert device_bleu.corpus_bleu(_stats([[1, 2, 3]], [[1, 2, 3]])) == 0.0  # no 4-gram
  # Clipping: a repeated word counts at most as often as in the reference.
  sums = _stats([[7, 7, 7, 7]], [[7, 8, 9, 10]])
  assert sums['bleu_match_1'] == 1 and sums['bleu_total_1'] == 4


def test_latent_projection_png(tmp_path):
  rs = np.random.RandomState(0)
  labels = np.repeat([0, 1, 2], 30)
  points = rs.randn(90, 5) * 0.1 + np.eye(3, 5)[labels] * np.array([[5.0], [2.0], [0.0]])[labels]
  xy = projection.pca_2d(points)
  assert xy.shape == (90, 2) and xy[:, 0].var() > xy[:, 1].var() > 0
  # Against an independent reference: the top two eigenvectors of the covariance (eigh),
  # up to the sign of each axis; and variances equal to those eigenvalues.
  centred = points - points.mean(axis=0)
  values, vectors = np.linalg.eigh(centred.T @ centred / len(points))
  ref = centred @ vectors[:, ::-1][:, :2]
  signs = np.sign((xy * ref).sum(axis=0))
  np.testing.assert_allclose(xy, ref * signs, atol=1e-10)
  np.testing.assert_allclose(xy.var(axis=0), values[::-1][:2], rtol=1e-10)
  path = projection.write_latent_png(points, labels, str(tmp_path / 'z.png'))
  assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'

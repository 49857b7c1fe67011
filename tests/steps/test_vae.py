"""The `vae` algorithm: IW bound vs ELBO, word dropout, free bits, KL weight, multi-device."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.config import base_config
from jaxtextgen.models.latent import reparameterize
from jaxtextgen.objectives.divergences import gaussian_log_density, kl_gaussian
from jaxtextgen.steps import autoencoding, vae
from jaxtextgen.steps.common import shift_right
from jaxtextgen.train import parallel
from fake_batches import padded_batch

pytestmark = pytest.mark.usefixtures('quick_compile')
V, T, B, Z = 17, 7, 8, 4
BOS, EOS, UNK = 1, 2, 3


def _config(**vae_fields):
  c = base_config()
  c.model.emb_dim, c.model.hidden_size = 8, 16
  c.ae.latent_dim = Z
  c.num_train_steps = 100
  c.data.max_len = T
  c.vae.iw_samples, c.vae.iw_chunk = 4, 2
  c.vae.update(vae_fields)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=BOS, eos_id=EOS, pad_id=0, unk_id=UNK, mask_id=4))
  return c


def _batch(seed=0, b=B):
  return padded_batch(seed, b, T, V, first_word=5, eos=EOS)


@functools.lru_cache(maxsize=None)
def _fresh_state():
  return jax.jit(lambda rng: vae.init(rng, _config(), _batch()))(jax.random.key(0))


@functools.lru_cache(maxsize=None)
def _state():
  """A fixed model whose posteriors lie far from the prior: the IW bound then has
  a lot to gain over the ELBO."""
  state = _fresh_state()
  enc = state.params['encoder']
  enc = {**enc, 'mean': {**enc['mean'], 'bias': enc['mean']['bias'] + 3.0}}
  return state.replace(params={**state.params, 'encoder': enc})


def test_iw_bound_k1_is_the_elbo_estimate_and_tightens_with_k():
  batch, state, rng = _batch(), _state(), jax.random.key(7)

  @jax.jit
  def bounds():
    c = _config()
    mean, logvar = autoencoding.encode(state.params['encoder'], batch['tokens'], batch['mask'],
                                       config=c)
    decode = lambda z, n: autoencoding.sentence_nll(
        state.params['decoder'], z.reshape(-1, Z), *(jnp.tile(x, (n, 1)) for x in (
            shift_right(batch['tokens'], BOS), batch['tokens'], batch['mask'])), config=c)
    c.vae.iw_samples = c.vae.iw_chunk = 1
    iw1 = vae.iw_log_marginal(state, batch, rng, mean, logvar, config=c)
    c.vae.iw_samples, c.vae.iw_chunk = 64, 16
    iw64 = vae.iw_log_marginal(state, batch, rng, mean, logvar, config=c)
    # The single-sample ELBO estimate with the noise the bound draws first ...
    z = reparameterize(jax.random.normal(jax.random.fold_in(rng, 0), (1, B, Z)), mean, logvar)[0]
    elbo1 = (-decode(z, 1) + gaussian_log_density(z, 0.0, 0.0).sum(-1)
             - gaussian_log_density(z, mean, logvar).sum(-1))
    # ... and the ELBO itself: analytic KL, reconstruction averaged over 64 samples.
    zs = reparameterize(jax.random.normal(jax.random.key(8), (64, B, Z)), mean, logvar)
    elbo = -decode(zs, 64).reshape(64, B).mean(0) - kl_gaussian(mean, logvar).sum(-1)
    return iw1, elbo1, iw64, elbo

  iw1, elbo1, iw64, elbo = bounds()
  np.testing.assert_allclose(iw1, elbo1, rtol=1e-5)
  assert float(iw64.mean()) > float(iw1.mean())
  assert (np.asarray(iw64) > np.asarray(elbo) + 1.0).all()


def test_word_dropout_replaces_decoder_inputs_in_training_only():
  c = _config(word_dropout=0.4)
  batch = _batch(1, b=400)
  clean = shift_right(batch['tokens'], BOS)
  np.testing.assert_array_equal(vae.decoder_inputs(None, batch, config=c), clean)
  dropped = np.asarray(vae.decoder_inputs(jax.random.key(0), batch, config=c))
  words = np.zeros_like(clean, bool)
  words[:, 1:] = (batch['mask'][:, :-1] > 0) & (batch['tokens'][:, :-1] != EOS)
  changed = dropped != clean
  assert not changed[~words].any()  # never BOS, EOS or padding
  assert (dropped[changed] == UNK).all()
  assert abs(changed.sum() / words.sum() - 0.4) < 0.03

  # Eval is the very same program with and without word dropout.
  batch, state = _batch(), _state()
  program = lambda c: str(jax.make_jaxpr(functools.partial(vae.eval_step, config=c))(
      state, batch, jax.random.key(3)))
  assert program(_config()) == program(_config(word_dropout=0.9))
  # ... while training is not.
  train = lambda c: str(jax.make_jaxpr(functools.partial(vae.train_step, config=c))(
      state, batch, jax.random.key(3)))
  assert train(_config()) != train(_config(word_dropout=0.9))


def test_kl_weight_follows_the_schedule():
  assert float(vae.kl_weight(50, _config(beta=0.5))) == 0.5
  c = _config(kl_schedule='linear', kl_start=0.1, kl_warmup_steps=100)
  assert float(vae.kl_weight(50, c)) == pytest.approx(0.55)
  c = _config(kl_schedule='cyclical', num_cycles=2, cycle_ratio=0.5, beta=2.0)
  assert [float(vae.kl_weight(n, c)) for n in (0, 25, 49, 50, 60)] == pytest.approx(
      [0.0, 2.0, 2.0, 0.0, 0.8])
  with pytest.raises(ValueError, match='kl_schedule'):
    vae.init(jax.random.key(0), _config(kl_schedule='cosine'), _batch())
  with pytest.raises(ValueError, match='multiple of config.vae.iw_chunk'):
    vae.init(jax.random.key(0), _config(iw_samples=500, iw_chunk=30), _batch())


def test_free_bits_step_and_pmap_equal_single_device():
  """The loss is rec + lambda * Z while every dimension's KL is under lambda, and
  the step (z noise, word dropout and free bits included) does not depend on how
  the batch is split over devices."""
  assert jax.device_count() >= 4, 'conftest forces 4 CPU devices'
  c = _config(free_bits=0.5, word_dropout=0.3)
  batch, rng = _batch(2), jax.random.key(3)
  init = _fresh_state  # its init does not depend on free bits or word dropout

  s1, m1 = jax.jit(functools.partial(vae.train_step, config=c))(init(), batch, rng)
  assert float(m1['kl']) < 0.5 * Z
  np.testing.assert_allclose(m1['loss'], m1['rec_nll'] + 0.5 * Z, rtol=1e-6)
  # pmap is the demanding case: each device sees only its rows, yet must draw the
  # noise the single-device step gives them. (Sharded jit sees the global batch.)
  replicated = jax.tree.map(lambda x: jnp.broadcast_to(x, (4,) + x.shape), init())
  sp, mp = parallel.pmap_step(vae.train_step, config=c)(
      replicated, parallel.shard_for_pmap(batch, 4), rng)
  for k in ('loss', 'rec_nll', 'kl'):
    np.testing.assert_allclose(mp[k][0], m1[k], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=2e-5, atol=1e-6),
               sp.params, s1.params)


def test_reconstruct_homotopy_and_prior_samples():
  c, batch, state = _config(), _batch(), _state()
  pair = batch['tokens'][:2], batch['mask'][:2]
  rec = np.asarray(vae.reconstruct(state, *pair, config=c))
  path = np.asarray(vae.homotopy(state, *pair, 5, config=c))
  assert rec.shape == (2, T) and path.shape == (5, T) and rec.dtype == np.int32
  # The homotopy starts and ends at the two reconstructions (greedy, from the posterior means).
  np.testing.assert_array_equal(path[[0, -1]], rec)
  # Prior samples: any z, greedy when configured; given z, greedy decoding is the reconstruction.
  c.sample.greedy = True
  z = vae.encode_sentences(state, *pair, config=c)
  np.testing.assert_array_equal(vae.sample(state, jax.random.key(1), 2, config=c, z=z), rec)
  assert vae.sample(state, jax.random.key(1), 3, config=c).shape == (3, T)


def test_pretrained_encoder_must_fit():
  fresh = {'lstm': {'w': np.zeros((2, 3))}, 'mean': {'b': np.zeros(3)}, 'logvar': {'b': np.ones(3)}}
  ae_encoder = {'lstm': {'w': np.full((2, 3), 7.0)}, 'mean': {'b': np.full(3, 7.0)}}
  got = autoencoding.with_pretrained_encoder(fresh, ae_encoder, 'ae_dir')
  assert float(got['lstm']['w'].sum()) == 42 and float(got['logvar']['b'].sum()) == 3
  with pytest.raises(ValueError, match='same corpus, vocabulary, model sizes'):
    autoencoding.with_pretrained_encoder(
        fresh, {**ae_encoder, 'lstm': {'w': np.zeros((5, 3))}}, 'ae_dir')


def test_aggressive_rounds_update_one_player_at_a_time():
  """He et al. 2019: rounds of k encoder-only steps and one decoder-only step, then both
  players every step. The updated player moves exactly as in the plain step; the other
  stays bit for bit, Adam state included; the fused round equals its steps one by one."""
  c = _config(aggressive_steps=6, aggressive_encoder_updates=2)
  sched = vae.schedule(c).resolve(8)
  assert [(p.name, p.updates, p.batches) for p in sched.phases] == [
      ('aggressive', 2, 3), ('train', 2, 1)]
  enc, dec, both = ('encoder',), ('decoder',), ('encoder', 'decoder')
  step = {players: jax.jit(functools.partial(vae.train_step, config=c, players=players))
          for players in (enc, dec, both)}
  state, rng = _fresh_state(), jax.random.key(5)
  start, batches = state, [_batch(10 + i) for i in range(3)]
  for players, batch in zip((enc, enc, dec), batches):
    ref, _ = step[both](state, batch, rng)
    new, _ = step[players](state, batch, rng)
    for p in ('encoder', 'decoder'):
      if p in players:  # two programs: equal up to float rounding
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                     new.params[p], ref.params[p])
      else:
        jax.tree.map(np.testing.assert_array_equal, new.params[p], state.params[p])
        jax.tree.map(np.testing.assert_array_equal, new.opt_state[p], state.opt_state[p])
    state = new
  stacked = {k: jnp.stack([b[k] for b in batches]) for k in batches[0]}
  fused, metrics = jax.jit(functools.partial(vae.aggressive_round, config=c))(start, stacked, rng)
  assert int(fused.step) == 3
  for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(state)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert {'encoder/loss', 'encoder/kl', 'decoder/loss', 'decoder/rec_nll'} <= set(metrics)
  with pytest.raises(ValueError, match='aggressive_encoder_updates'):
    vae.init(jax.random.key(0), _config(aggressive_steps=4, aggressive_encoder_updates=0),
             _batch())


def test_eval_metrics_obey_their_definitions_over_two_batches():
  """finalize_eval over two batches summed as the trainer sums them: the IW bound is at
  least as tight as the ELBO (up to its noise), KL >= 0 and equals the closed form, 0 <=
  AU <= Z and equals a numpy variance count, and the whole-split MI is mutual_information
  of the collected rows."""
  from jaxtextgen.metrics import latent as latent_metrics  # pylint: disable=g-import-not-at-top
  c = _config(iw_samples=16, iw_chunk=8)
  state = _state()
  outs = [jax.jit(functools.partial(vae.eval_step, config=c))(state, _batch(s), jax.random.key(s))
          for s in (1, 2)]
  rows = [jax.tree.map(np.asarray, o.pop('per_example')) for o in outs]
  sums = jax.tree.map(lambda a, b: np.asarray(a) + np.asarray(b), *outs)
  sums['per_example'] = jax.tree.map(lambda *xs: np.concatenate(xs), *rows)
  m = vae.finalize_eval(sums)
  assert m['eval_sentences'] == 2 * B
  assert m['iw_nll'] <= m['neg_elbo'] + 0.05 * abs(m['neg_elbo'])
  means = np.concatenate([r['mean'] for r in rows]).astype(np.float64)
  logvars = np.concatenate([r['logvar'] for r in rows]).astype(np.float64)
  kl = 0.5 * (np.exp(logvars) + means ** 2 - 1 - logvars).sum(-1).mean()
  assert m['kl'] >= 0 and m['kl'] == pytest.approx(kl, rel=1e-4)
  au = int((means.var(axis=0) > 0.01).sum())
  assert 0 <= m['active_units'] <= Z and m['active_units'] == au
  whole = latent_metrics.mutual_information(*(jnp.asarray(np.concatenate([r[k] for r in rows]))
                                              for k in ('mean', 'logvar', 'z')))
  assert m['mi'] == pytest.approx(float(whole), rel=1e-5)

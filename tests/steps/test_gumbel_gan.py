"""The `gumbel_gan` algorithm: the differentiable Gumbel unroll, gradients into the
generator, the phase schedule with the beta schedule, generator_init; end to end in
tests/test_launch.py. Tiny models, shared jitted functions (compile time dominates)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.models.lstm import LSTMDecoder
from jaxtextgen.models.sampler import relaxed_sample
from jaxtextgen.objectives.discrete import gumbel_inverse_temperature, gumbel_softmax
from jaxtextgen.steps import adversarial, gumbel_gan, lm
from fake_batches import padded_batch, run_schedule, tiny_gan_config

pytestmark = pytest.mark.usefixtures('quick_compile')

V, T, B = 11, 5, 4
BOS, EOS = 1, 2


def _config(**gan):
  return tiny_gan_config(V, T, 11, **{
      'd_two_class': False, 'd_l2': 0.0,
      'mle_steps': 2, 'd_pretrain_steps': 1, 'g_steps': 1, 'd_steps': 2,
      'loss': 'rsgan', 'ema_decay': 0.5, 'mle_every': 2, 'gumbel_beta_max': 10.0, **gan})


def _batch(seed=0):
  return padded_batch(seed, B, T, V, first_word=3, eos=EOS)


def _decoder_params(seed=0):
  dec = lm.make_decoder(_config())
  shapes = jax.eval_shape(lambda: dec.init(jax.random.key(0), jnp.zeros((1, T), jnp.int32)))
  rs = np.random.RandomState(seed)
  return dec, jax.tree.map(lambda s: jnp.asarray(rs.normal(0, 0.5, s.shape), s.dtype), shapes)


def _python_loop(dec, params, rng, beta, hard, length=T):
  """The unroll written out step by step: the reference for relaxed_sample."""
  state = dec.apply(params, B, method='init_cache')
  x = dec.apply(params, jnp.full((B,), BOS), method=LSTMDecoder.embed)
  ys = []
  for t in range(length):
    logits, state = dec.apply(params, x, state, method='step')
    ys.append(gumbel_softmax(jax.random.fold_in(rng, t), logits, 1.0 / beta, hard=hard))
    x = dec.apply(params, ys[-1], method=LSTMDecoder.embed_soft)
  return jnp.stack(ys, 1)


@pytest.mark.parametrize('hard', [False, True])
def test_relaxed_unroll_is_the_step_by_step_gumbel_loop(hard):
  dec, params = _decoder_params()
  rng, beta, length = jax.random.key(3), 2.5, 3
  w = jnp.asarray(np.random.RandomState(1).normal(size=(B, length, V)), jnp.float32)

  def ours(p):
    return relaxed_sample(dec, p, rng, batch=B, length=length, bos_id=BOS, eos_id=-1,
                          inverse_temperature=beta, hard=hard).probs

  @jax.jit
  def both(p):
    f = lambda fn: jax.value_and_grad(lambda q: jnp.sum(w * fn(q)))(p)
    return ours(p), f(ours), f(lambda q: _python_loop(dec, q, rng, beta, hard, length))

  probs, (v1, g1), (v2, g2) = jax.device_get(both(params))
  np.testing.assert_allclose(v1, v2, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g1, g2)
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  if hard:  # forward: exact one-hots; backward: nonzero, the soft vectors' gradient
    assert set(np.unique(probs)) == {0.0, 1.0}
  else:
    assert (probs < 1.0).all()
  assert all(np.abs(g).max() > 0 for g in jax.tree.leaves(g1))


def test_straight_through_gradient_is_the_soft_gradient():
  """One step (no recurrence): hard and soft outputs have the same gradient."""
  dec, params = _decoder_params(1)
  w = jnp.asarray(np.random.RandomState(2).normal(size=(B, 1, V)), jnp.float32)

  @jax.jit
  def grads(p):
    g = lambda hard: jax.grad(lambda q: jnp.sum(w * relaxed_sample(
        dec, q, jax.random.key(5), batch=B, length=1, bos_id=BOS, inverse_temperature=3.0,
        hard=hard).probs))(p)
    return g(True), g(False)

  hard, soft = jax.device_get(grads(params))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), hard, soft)


def test_rows_stop_after_eos_like_the_sampler():
  dec, params = _decoder_params(2)
  params = jax.tree.map(lambda x: x, params)
  bias = params['params']['out']['bias']
  params['params']['out']['bias'] = bias.at[EOS].set(2.0)  # EOS is likely: rows end early
  out = jax.jit(lambda p: relaxed_sample(dec, p, jax.random.key(0), batch=64, length=T,
                                         bos_id=BOS, eos_id=EOS, pad_id=0))(params)
  probs, toks, mask = map(np.asarray, out)
  ended = (toks == EOS).any(1)
  assert ended.any() and not ended.all()
  first = np.where(ended, np.argmax(toks == EOS, 1), T)
  np.testing.assert_array_equal(mask, np.arange(T)[None] <= first[:, None])
  np.testing.assert_array_equal(toks[mask == 0], 0)
  np.testing.assert_array_equal(probs[mask == 0], np.eye(V)[0][None].repeat((mask == 0).sum(), 0))
  np.testing.assert_array_equal(toks[mask > 0], probs.argmax(-1)[mask > 0])


@functools.lru_cache(maxsize=None)
def _state():
  return jax.jit(lambda rng: gumbel_gan.init(rng, _config(), _batch()))(jax.random.key(0))


@pytest.mark.parametrize('loss', ['nonsaturating', 'rsgan'])
def test_gradients_reach_every_generator_parameter_through_the_soft_vectors(loss):
  c, state = _config(loss=loss), _state()
  real = jnp.asarray(_batch()['tokens'])

  @jax.jit
  def grads(gen, d):
    def loss_fn(g):
      fakes = adversarial.soft_fakes(g, jax.random.key(1), B, config=c, gumbel=True, beta=2.0)
      fake_logits = adversarial.discriminator_logits(d, fakes.probs, config=c)
      real_logits = adversarial.discriminator_logits(d, real, config=c)
      return adversarial.generator_loss(real_logits, fake_logits, config=c)
    return jax.grad(loss_fn)(gen)

  g = jax.device_get(grads(state.params['generator'], state.params['discriminator']))
  assert all(np.abs(x).max() > 0 for x in jax.tree.leaves(g))


def test_schedule_of_updates_and_the_temperature_schedule():
  """MLE, MLE, D, then 3 rounds of G, D, D (each one fused update); an MLE step after
  every 2nd G step; beta from the G updates so far."""
  c = _config(rounds=3)
  trace, betas, names = [], [], []
  for name, old, new, m in run_schedule(gumbel_gan, c, _state(), jax.random.key(1), _batch):
    names.append(name)
    changed = lambda p, old=old, new=new: not all(jax.tree.leaves(jax.tree.map(
        np.array_equal, old.params[p], new.params[p])))
    trace.append((changed('generator'), changed('discriminator')))
    gen = new.params['generator']
    if name == 'mle':
      jax.tree.map(np.testing.assert_array_equal, new.ema_params['generator'], gen)
    if name == 'round':  # D updates leave the generator and its EMA as G left them
      betas.append(float(m['g/beta']))
      assert np.isfinite(m['g/loss']) and 0 <= m['d/pair_acc'] <= 1
      assert np.isfinite(m['mle/loss']) == (len(betas) % 2 == 0)
      jax.tree.map(lambda a, b, e: np.testing.assert_allclose(a, 0.5 * b + 0.5 * e, rtol=1e-6),
                   new.ema_params['generator'], old.ema_params['generator'], gen)
      assert int(new.step) == int(old.step) + 3
  assert names == ['mle', 'mle', 'd_pretrain'] + ['round'] * 3
  g, d = (True, False), (False, True)
  assert trace == [g, g, d] + [(True, True)] * 3
  # beta_n = 10 ** (n / N), N = the run's 3 adversarial generator updates.
  np.testing.assert_allclose(betas, gumbel_inverse_temperature(np.arange(3), 'exp', 3, 10.0),
                             rtol=1e-6)


def test_generator_init_loads_the_generator_of_an_lm_run(tmp_path):
  from configs.gumbel_oracle import get_config  # pylint: disable=g-import-not-at-top
  from configs.mle_oracle import get_config as mle_config  # pylint: disable=g-import-not-at-top
  from jaxtextgen.train import trainer  # pylint: disable=g-import-not-at-top
  lm_dir = str(tmp_path / 'lm')
  lm_config = mle_config('smoke')
  lm_config.num_train_steps, lm_config.eval_every = 3, 0
  trainer.train_and_evaluate(lm_config, lm_dir)
  lm_state = trainer.Run(lm_config, lm_dir).restore_or_init(require=True)[0]

  c = get_config('smoke')
  c.gan.generator_init, c.gan.mle_steps = lm_dir, 0
  start = trainer.Run(c, str(tmp_path / 'gan')).initial_state()
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(start.params['generator']),
               jax.device_get(lm_state.params['generator']))

  c.gan.generator_init = str(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match='train an lm there first'):
    trainer.Run(c, str(tmp_path / 'gan2')).initial_state()
  c.gan.generator_init, c.model.hidden_size = lm_dir, 24
  with pytest.raises(ValueError, match='does not fit this model'):
    trainer.Run(c, str(tmp_path / 'gan3')).initial_state()

"""The `seqgan` algorithm: rollouts, rewards, REINFORCE, the phase schedule, end to end.

Compiling anything that draws random numbers costs seconds on a loaded CPU, so
the tests share one init and one jitted train step, and build toy parameters
and tokens with numpy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.steps import adversarial, lm, seqgan
from jaxtextgen.steps.common import TrainState, make_optimizer, shift_right
from fake_batches import padded_batch, tiny_gan_config

# Tiny models: compile time dominates (tests/steps/conftest.py).
pytestmark = pytest.mark.usefixtures('quick_compile')

V, T, B, N = 11, 5, 4, 3
BOS, EOS = 1, 2


def _config(**gan):
  return tiny_gan_config(V, T, 100, **{
      'num_rollouts': N, 'mle_steps': 2, 'd_pretrain_steps': 1, 'g_steps': 1, 'd_steps': 2,
      'baseline': 'value', 'ema_decay': 0.5, 'mle_every': 2, **gan})


def _batch(seed=0):
  return padded_batch(seed, B, T, V, first_word=3, eos=EOS)


@functools.lru_cache(maxsize=None)
def _state():
  return jax.jit(lambda rng: seqgan.init(rng, _config(), _batch()))(jax.random.key(0))


def _generator_params(seed=0):
  """Decoder parameters with numpy draws (no PRNG compilation)."""
  dec = lm.make_decoder(_config())
  shapes = jax.eval_shape(lambda: dec.init(jax.random.key(0), jnp.zeros((1, T), jnp.int32)))
  rs = np.random.RandomState(seed)
  return dec, jax.tree.map(lambda s: jnp.asarray(rs.normal(0, 0.5, s.shape), s.dtype), shapes)


def test_phase_schedule():
  c = _config(mle_steps=3, d_pretrain_steps=2, g_steps=2, d_steps=3)
  names = [adversarial.PHASES[int(p)] for p in adversarial.phase_at(jnp.arange(15), c)]
  assert names == ['mle'] * 3 + ['d_pretrain'] * 2 + (['g'] * 2 + ['d'] * 3) * 2
  updates = adversarial.adversarial_g_updates(jnp.arange(15), c)
  np.testing.assert_array_equal(updates, [0] * 5 + [0, 1, 2, 2, 2, 2, 3, 4, 4, 4])


def test_every_rollout_continues_its_own_prefix():
  dec, params = _generator_params()
  tokens = np.random.RandomState(1).randint(3, V, (B, T)).astype(np.int32)
  tokens[2, 1] = EOS  # sentence 2 ends after two tokens: its rollouts must stop there too
  tokens[2, 2:] = 0
  fn = jax.jit(functools.partial(seqgan.rollouts, dec, num_rollouts=N, first_prefix=0,
                                 bos_id=BOS, eos_id=EOS, pad_id=0))
  out = np.asarray(fn(params, jnp.asarray(tokens), jax.random.key(3)))
  assert out.shape == (B, T, N, T)
  for b in range(B):
    for p in range(T):
      np.testing.assert_array_equal(out[b, p, :, :p], np.broadcast_to(tokens[b, :p], (N, p)))
  # Prefixes past the EOS reproduce the sentence, padding included.
  np.testing.assert_array_equal(out[2, 2:], np.broadcast_to(tokens[2], (T - 2, N, T)))
  # The continuations are sampled: rollouts of the same prefix differ somewhere.
  assert (out[:, 1] != out[:, 1, :1]).any()


def test_rewards_of_a_sentence_come_from_its_own_rollouts():
  dec, params = _generator_params()
  tokens = jnp.asarray(np.random.RandomState(2).randint(3, V, (B, T)), jnp.int32)
  # A "discriminator" that scores a sentence by its tokens 0 and 2.
  score = lambda s: (s[:, 0] * V + s[:, 2]).astype(jnp.float32)
  fn = jax.jit(functools.partial(seqgan.rollout_rewards, score, dec, num_rollouts=4,
                                 num_chunks=2, bos_id=BOS, eos_id=-1, pad_id=0))
  rewards = np.asarray(fn(params, tokens, jax.random.key(4)))
  assert rewards.shape == (B, T, 4)  # [batch, time, rollout]
  first, third = rewards // V, rewards % V
  tokens = np.asarray(tokens)
  np.testing.assert_array_equal(first, np.broadcast_to(tokens[:, :1, None], (B, T, 4)))
  # From the prefix of 3 tokens on (t >= 2) token 2 is fixed too; the last reward is D(y).
  np.testing.assert_array_equal(third[:, 2:], np.broadcast_to(tokens[:, 2:3, None], (B, T - 2, 4)))
  assert (third[:, :2] != tokens[:, None, 2:3]).any()  # before that it is sampled


@pytest.mark.parametrize('baseline', seqgan.BASELINES)
def test_reinforce_raises_the_probability_of_rewarded_samples(baseline):
  c = _config(baseline=baseline)
  c.optimizer.learning_rate = 3e-2
  base = _state()  # its generator optimizer has the default learning rate: replace it
  state = TrainState.create(
      base.params, {**base.tx, 'generator': make_optimizer(c.optimizer, c.num_train_steps)},
      ema_params=base.ema_params, extra={**base.extra, 'baseline': jnp.zeros(())})
  rs = np.random.RandomState(5)
  tokens = rs.randint(3, V, (32, T)).astype(np.int32)
  tokens[::4, 0] = 7  # a quarter of the samples start with the rewarded token
  mask = np.ones((32, T), np.float32)
  good = (tokens[:, 0] == 7).astype(np.float32)
  rewards = np.broadcast_to(good[:, None, None], (32, T, N))
  if baseline == 'rollout_mean':  # plus the empty prefix: V() = the mean reward
    rewards = np.concatenate([np.full((32, 1, N), good.mean()), rewards], axis=1)
  dec = lm.make_decoder(c)

  def first_token_logp(params):  # log G(y_0 = 7), the rewarded choice
    logits = dec.apply({'params': params}, shift_right(jnp.asarray(tokens[:1]), BOS))
    return jax.nn.log_softmax(logits[0, 0])[7]

  @jax.jit
  def train(state):
    def body(s, _):
      s, m = seqgan.policy_gradient_update(s, tokens, mask, jnp.asarray(rewards), config=c)
      return s, m
    return jax.lax.scan(body, state, None, length=10)

  new, metrics = train(state)
  before = first_token_logp(state.params['generator'])
  assert first_token_logp(new.params['generator']) > before + 0.5
  if baseline == 'moving_average':  # updated after use: 0, then 0.1 * mean reward, ...
    np.testing.assert_allclose(metrics['baseline'][:2], [0.0, 0.1 * good.mean()], rtol=1e-5)
  if baseline == 'value':
    assert float(metrics['value_loss'][-1]) < float(metrics['value_loss'][0])


def test_train_step_follows_the_phase_schedule():
  c = _config()  # MLE, MLE, D, then rounds of G, D, D; an MLE step after every 2nd G step
  step = jax.jit(functools.partial(seqgan.train_step, config=c))
  state, batch = _state(), _batch()
  phases, trace = [], []
  for _ in range(7):
    new, m = step(state, batch, jax.random.key(1))
    # Compare on the host: eager device ops would each compile.
    old_np, new_np, m = jax.device_get((state, new, m))
    phases.append(adversarial.PHASES[int(m['phase'])])
    changed = lambda p: not all(jax.tree.leaves(jax.tree.map(
        np.array_equal, old_np.params[p], new_np.params[p])))
    trace.append((changed('generator'), changed('discriminator'), changed('value')))
    gen, old_rollout = new_np.params['generator'], old_np.extra['rollout']
    if phases[-1] == 'mle':  # pretraining: rollout policy and EMA are copies
      jax.tree.map(np.testing.assert_array_equal, new_np.extra['rollout'], gen)
      jax.tree.map(np.testing.assert_array_equal, new_np.ema_params['generator'], gen)
    if phases[-1] == 'g':  # then SeqGAN's delayed copy (embedding copied) and the EMA
      mix = lambda r, g: 0.8 * r + 0.2 * g
      expect = {**jax.tree.map(mix, old_rollout, gen), 'embedding': gen['embedding']}
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                   new_np.extra['rollout'], expect)
      assert np.isfinite(m['reward']) and np.isnan(m['d_loss'])
      assert np.isfinite(m['mle_loss']) == (len([p for p in phases if p == 'g']) == 2)
      jax.tree.map(lambda a, b, e: np.testing.assert_allclose(a, 0.5 * b + 0.5 * e, rtol=1e-6),
                   new_np.ema_params['generator'], old_np.ema_params['generator'], gen)
    if phases[-1] in ('d', 'd_pretrain'):
      assert 0 <= m['d_acc'] <= 1 and np.isnan(m['reward'])
    state = new
  assert phases == ['mle', 'mle', 'd_pretrain', 'g', 'd', 'd', 'g']
  g, d = (True, False, False), (False, True, False)
  assert trace == [g, g, d, (True, False, True), d, d, (True, False, True)]
  assert int(state.step) == 7


def test_smoke_config_end_to_end(tmp_path):
  from configs.seqgan_oracle import get_config  # pylint: disable=g-import-not-at-top
  from jaxtextgen.train import trainer  # pylint: disable=g-import-not-at-top
  c = get_config('smoke')
  workdir = str(tmp_path / 'run')
  final = trainer.train_and_evaluate(c, workdir)
  assert np.isfinite(final['nll_per_token']) and np.isfinite(final['nll_oracle'])
  assert 0 <= final['d_acc_real'] <= 1 and 0 <= final['d_acc_fake'] <= 1
  assert trainer.evaluate_checkpoint(c, workdir) == {'step': 6, **final}
  texts = trainer.sample_checkpoint(c, workdir, num=3)
  assert len(texts) == 3 and all(len(t.split()) == c.data.max_len for t in texts)

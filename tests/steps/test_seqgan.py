"""The `seqgan` algorithm: rollouts, rewards, REINFORCE, the phase schedule, end to end.

Compiling anything that draws random numbers costs seconds on a loaded CPU, so
the tests share one init and one jitted train step, and build toy parameters
and tokens with numpy."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.steps import adversarial, lm, seqgan
from jaxtextgen.steps.common import TrainState, make_optimizer, shift_right
from fake_batches import padded_batch, terminated_at, tiny_gan_config, without_rates

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


def test_schedule_maps_steps_to_phases_and_follows_overrides():
  c = _config(mle_steps=3, d_pretrain_steps=2, g_steps=2, d_steps=3, rounds=2)
  sched = seqgan.schedule(c)
  assert [(p.name, p.updates, p.batches) for p in sched.phases] == [
      ('mle', 3, 1), ('d_pretrain', 2, 1), ('round', 2, 5)]
  assert sched.total_steps == 3 + 2 + 2 * 5
  assert [sched.locate(s) for s in (0, 2, 3, 4, 5, 10)] == [
      (0, 0), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1)]
  with pytest.raises(ValueError, match='inside an update'):
    sched.locate(7)  # mid-round: never a checkpoint of this schedule
  updates = adversarial.adversarial_g_updates(jnp.arange(15), c)
  np.testing.assert_array_equal(updates, [0] * 5 + [0, 1, 2, 2, 2, 2, 3, 4, 4, 4])
  c.gan.d_steps = 7  # a command-line override: the run keeps 2 rounds, now of 9 steps
  assert seqgan.schedule(c).total_steps == 3 + 2 + 2 * 9


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


@pytest.mark.parametrize('decoder', ['lstm', 'transformer'])
def test_rollouts_from_prefix_states_equal_rollouts_that_rerun_the_prefix(decoder):
  """Starting each group's rollouts from the teacher-forced state at its shortest prefix
  gives exactly what re-running the whole prefix through the sampler gives (greedy
  continuations: deterministic), for any grouping, EOS inside prefixes included."""
  from jaxtextgen.models.sampler import sample  # pylint: disable=g-import-not-at-top
  c = _config()
  c.model.decoder, c.model.num_heads, c.model.mlp_dim = decoder, 2, 16
  dec = lm.make_decoder(c)
  shapes = jax.eval_shape(lambda: dec.init(jax.random.key(0), jnp.zeros((1, T), jnp.int32)))
  rs = np.random.RandomState(7)
  params = {'params': jax.tree.map(lambda s: jnp.asarray(rs.normal(0, 0.5, s.shape), s.dtype),
                                   shapes)['params']}
  tokens = rs.randint(3, V, (B, T)).astype(np.int32)
  tokens[2, 1], tokens[2, 2:] = EOS, 0
  tokens[3, 3], tokens[3, 4:] = EOS, 0
  b, p = B, T  # first_prefix 0: prefixes of 0..T-1 tokens
  lengths = np.arange(T)
  forced = np.broadcast_to(tokens[:, None, :], (b, p, T)).reshape(-1, T)
  forced_mask = np.broadcast_to(np.arange(T)[None, None, :] < lengths[None, :, None],
                                (b, p, T)).reshape(-1, T)
  ref = sample(dec, params, jax.random.key(0), batch=b * p, length=T, bos_id=BOS, eos_id=EOS,
               pad_id=0, greedy=True, forced_tokens=jnp.asarray(forced),
               forced_mask=jnp.asarray(forced_mask)).tokens
  ref = np.broadcast_to(np.asarray(ref).reshape(b, p, 1, T), (b, p, 2, T))
  assert (ref[:, 0, 0] != ref[:, 1, 0]).any()  # the prefix changes the continuation
  for groups in (1, 2, T):
    out = seqgan.rollouts(dec, params, jnp.asarray(tokens), jax.random.key(5), num_rollouts=2,
                          first_prefix=0, bos_id=BOS, eos_id=EOS, pad_id=0, num_groups=groups,
                          greedy=True)
    np.testing.assert_array_equal(np.asarray(out), ref, err_msg=f'{decoder}, {groups} groups')


def test_prefix_groups_minimise_the_sampling_work():
  work = lambda gr: sum((e - a) * (20 - a) for a, e in gr)
  assert seqgan.prefix_groups(1, 20, 1) == [(1, 20)]
  assert seqgan.prefix_groups(1, 20, 4) == [(1, 5), (5, 10), (10, 15), (15, 20)]
  assert work(seqgan.prefix_groups(1, 20, 4)) == 226  # 380 when every row runs all T steps
  assert seqgan.prefix_groups(1, 20, 50) == [(a, a + 1) for a in range(1, 20)]
  # No contiguous split into 2 groups does less work than the chosen one.
  assert work(seqgan.prefix_groups(1, 20, 2)) == min(
      work([(1, m), (m, 20)]) for m in range(2, 20))


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


def _changed(old, new, player):
  return not all(jax.tree.leaves(jax.tree.map(np.array_equal, old.params[player],
                                              new.params[player])))


def test_updates_follow_the_schedule_and_the_fused_round_equals_them_one_by_one():
  """MLE, MLE, D, then rounds of G, D, D; an MLE step after every 2nd G step. Each
  update moves only its players; the round (seqgan.train_step, one lax.scan per
  player on stacked batches) gives the state of its updates run one by one."""
  c = _config(rounds=2)
  one = {name: jax.jit(functools.partial(adversarial.counted(fn), config=c))
         for name, fn in (('mle', seqgan.mle_step), ('d', seqgan.discriminator_step),
                          ('g', seqgan.generator_step))}
  state, rng = _state(), jax.random.key(1)
  batches = [_batch(i) for i in range(9)]
  kinds = ['mle', 'mle', 'd', 'g', 'd', 'd', 'g', 'd', 'd']
  trace, states, g_updates = [], [state], 0
  for kind, batch in zip(kinds, batches):
    new, m = one[kind](state, batch, rng)
    # Compare on the host: eager device ops would each compile.
    old_np, new_np, m = jax.device_get((state, new, m))
    trace.append(tuple(_changed(old_np, new_np, p) for p in ('generator', 'discriminator',
                                                            'value')))
    gen, old_rollout = new_np.params['generator'], old_np.extra['rollout']
    if kind == 'mle':  # pretraining: rollout policy and EMA are copies
      jax.tree.map(np.testing.assert_array_equal, new_np.extra['rollout'], gen)
      jax.tree.map(np.testing.assert_array_equal, new_np.ema_params['generator'], gen)
    if kind == 'g':  # then SeqGAN's delayed copy (embedding copied) and the EMA
      g_updates += 1
      mix = lambda r, g: 0.8 * r + 0.2 * g
      expect = {**jax.tree.map(mix, old_rollout, gen), 'embedding': gen['embedding']}
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                   new_np.extra['rollout'], expect)
      assert np.isfinite(m['reward']) and 'acc' not in m
      assert np.isfinite(m['mle/loss']) == (g_updates == 2)  # NaN: no MLE step this time
      jax.tree.map(lambda a, b, e: np.testing.assert_allclose(a, 0.5 * b + 0.5 * e, rtol=1e-6),
                   new_np.ema_params['generator'], old_np.ema_params['generator'], gen)
    if kind == 'd':
      assert 0 <= m['acc'] <= 1 and 'reward' not in m
    assert int(new_np.step) == int(old_np.step) + 1
    state = new
    states.append(new)
  g, d = (True, False, False), (False, True, False)
  assert trace == [g, g, d, (True, False, True), d, d, (True, False, True), d, d]

  stack = lambda bs: {k: jnp.stack([b[k] for b in bs]) for k in bs[0]}
  fused = jax.jit(functools.partial(seqgan.train_step, config=c))
  after_round, m = fused(states[3], stack(batches[3:6]), rng)
  expect = jax.device_get(states[6])
  for a, b in zip(jax.tree.leaves(jax.device_get(after_round)), jax.tree.leaves(expect)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert set(m) >= {'g/loss', 'g/reward', 'd/loss', 'd/acc', 'mle/loss'}
  assert int(after_round.step) == 6


def test_gan_stopped_in_every_phase_resumes_to_the_same_metrics(tmp_path, monkeypatch):
  """seqgan_oracle:smoke with 2 D-pretraining updates: mle 0-1, d_pretrain 2-3, rounds of
  G + D 4-5 and 6-7. Stopped inside each phase (after steps 1, 3 and 6) and resumed, it
  logs the rows of the uninterrupted run: window means, phase names, eval, all equal;
  then eval and sample modes on its workdir."""
  from configs.seqgan_oracle import get_config  # pylint: disable=g-import-not-at-top
  from jaxtextgen.train import trainer  # pylint: disable=g-import-not-at-top
  from jaxtextgen.train.writer import read_metrics  # pylint: disable=g-import-not-at-top
  config = get_config('smoke')
  config.gan.d_pretrain_steps = 2
  config.gan.ema_decay, config.gan.baseline = 0.5, 'moving_average'  # state that must come back
  config.log_every, config.checkpoint_every = 3, 100
  full = trainer.train_and_evaluate(config, str(tmp_path / 'full'))
  workdir = str(tmp_path / 'stopped')
  for batch_index, step in ((0, 1), (1, 3), (1, 6)):  # batch indices from each resume
    with monkeypatch.context() as m:
      m.setattr(trainer.pipeline, 'train_iterator', terminated_at(batch_index))
      with pytest.raises(trainer.Stopped, match=f'stopped at step {step}'):
        trainer.train_and_evaluate(config, workdir)
    assert str(step) in os.listdir(os.path.join(workdir, 'checkpoints'))
  assert trainer.train_and_evaluate(config, workdir) == full
  # every part of the state: params, optimizers, the EMA, the rollout policy, the baseline
  final = [jax.device_get(trainer.Run(config, d).restore_or_init(require=True)[0])
           for d in (workdir, str(tmp_path / 'full'))]
  assert {'rollout', 'baseline'} <= set(final[0].extra) and final[0].ema_params
  leaves = [jax.tree.leaves(s) for s in final]
  assert len(leaves[0]) == len(leaves[1])
  for a, b in zip(*leaves):
    np.testing.assert_array_equal(a, b)
  rows = without_rates(read_metrics(workdir))
  assert rows == without_rates(read_metrics(str(tmp_path / 'full')))
  train_rows = [r for r in rows if 'eval/ppl' not in r]
  assert [r['step'] for r in train_rows] == [3, 6, 8]
  assert set(train_rows[0]) == {'step', 'mle/loss', 'd_pretrain/loss', 'd_pretrain/real',
                                'd_pretrain/fake', 'd_pretrain/acc'}
  assert {'g/reward', 'd/loss', 'd/acc', 'd_pretrain/loss'} <= set(train_rows[1])
  assert np.isfinite(full['nll_oracle']) and np.isfinite(full['nll_per_token'])
  assert 0 <= full['d_acc_real'] <= 1 and 0 <= full['d_acc_fake'] <= 1
  assert trainer.evaluate_checkpoint(config, workdir) == {'step': 8, **full}
  texts = trainer.sample_checkpoint(config, workdir, num=3)
  assert len(texts) == 3 and all(len(t.split()) == config.data.max_len for t in texts)

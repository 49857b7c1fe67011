"""The `wgan` algorithm: softmax fakes, weight clipping after every critic update, n_critic
critic steps per generator step, RMSProp, its config checks; end to end in
tests/test_launch.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxtextgen.steps import adversarial, gumbel_gan, wgan
from fake_batches import padded_batch, run_schedule, tiny_gan_config

pytestmark = pytest.mark.usefixtures('quick_compile')

V, T, B, CLIP = 11, 5, 4, 0.02
BOS, EOS = 1, 2


def _config(**gan):
  return tiny_gan_config(V, T, 9, **{
      'd_two_class': False, 'd_l2': 0.0, 'd_dropout': 0.0,
      'mle_steps': 1, 'd_pretrain_steps': 2, 'g_steps': 1, 'd_steps': 3,
      'loss': 'wgan', 'clip': CLIP, 'latent_std': 1.0,
      'g_optimizer': 'rmsprop', 'd_optimizer': 'rmsprop',
      # big enough to hit the clip in a few steps
      'g_learning_rate': 5e-3, 'd_learning_rate': 5e-3, **gan})


def _batch(seed=0):
  return padded_batch(seed, B, T, V, first_word=3, eos=EOS)


@pytest.mark.parametrize('algo', [wgan, gumbel_gan])
def test_every_critic_update_leaves_the_weights_clipped(algo):
  """MLE, D, D, then 2 rounds of G + 3 critic updates; the clip is the last transform of
  the critic's optax chain, and every weight stays in [-c, c] exactly."""
  c = _config(rounds=2)
  state = jax.jit(lambda rng: algo.init(rng, c, _batch()))(jax.random.key(0))
  names, at_clip = [], 0
  for name, old, new, m in run_schedule(algo, c, state, jax.random.key(1), _batch):
    names.append(name)
    leaves = jax.tree.leaves(new.params['discriminator'])
    assert max(np.abs(x).max() for x in leaves) <= CLIP  # exactly, not up to rounding
    d_changed = not all(jax.tree.leaves(jax.tree.map(
        np.array_equal, old.params['discriminator'], new.params['discriminator'])))
    assert d_changed == (name != 'mle')
    if name != 'mle':
      d = {k.split('/')[-1]: v for k, v in m.items() if not k.startswith('g/')}
      assert d['loss'] == pytest.approx(d['fake'] - d['real'], abs=1e-6)
      assert d['gap'] == pytest.approx(-d['loss'], abs=1e-6)  # a critic reports its W estimate
      assert 'acc' not in d and 'pair_acc' not in d
      at_clip = sum(int((np.abs(x) >= CLIP * (1 - 1e-6)).sum()) for x in leaves)
  assert at_clip > 0  # the clip is active, not vacuous
  assert names == ['mle', 'd_pretrain', 'd_pretrain', 'round', 'round']


def test_fakes_are_softmax_distributions_that_differ_and_carry_gradients():
  c = _config()
  state = jax.jit(lambda rng: wgan.init(rng, c, _batch()))(jax.random.key(0))
  real = jnp.asarray(_batch()['tokens'])

  @jax.jit
  def run(gen, d):
    def loss_fn(g):
      fakes = adversarial.soft_fakes(g, jax.random.key(2), 8, config=c, gumbel=False)
      fake_logits = adversarial.discriminator_logits(d, fakes.probs, config=c)
      return adversarial.generator_loss(real, fake_logits, config=c), fakes.probs
    return jax.grad(loss_fn, has_aux=True)(gen)

  grads, probs = jax.device_get(run(state.params['generator'], state.params['discriminator']))
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  assert (probs.max(-1) < 0.99).all()  # distributions, not one-hots
  assert np.abs(probs[0] - probs[1]).max() > 1e-3  # the random initial state makes them differ
  assert all(np.abs(x).max() > 0 for x in jax.tree.leaves(grads))


def test_rmsprop_for_both_players_in_the_recipe():
  from configs.wgan_oracle import get_config  # pylint: disable=g-import-not-at-top
  c = get_config('smoke')
  assert (c.gan.loss, c.gan.clip, c.gan.d_steps) == ('wgan', 0.01, 1)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=BOS, eos_id=-1, pad_id=0))
  state = jax.eval_shape(lambda: wgan.init(jax.random.key(0), c, _batch()))
  for key in ('discriminator', adversarial.G_ADV):
    kinds = [type(s) for s in jax.tree.leaves(
        state.opt_state[key], is_leaf=lambda x: isinstance(x, optax.ScaleByRmsState))]
    assert optax.ScaleByRmsState in kinds, key


def test_the_configs_own_recipe_n_critic_5_rmsprop_5e5_clip_001():
  """configs/wgan_oracle.py's recipe itself (the smoke preset has d_steps=1): one round of
  5 critic updates and 1 generator update at RMSProp 5e-5. RMSProp moves a weight by at
  most lr / sqrt(1 - decay) per update (its second moment holds (1 - decay) g^2 at least),
  and clipping to [-c, c] moves no weight further, so after the round every critic weight
  lies in [-0.01, 0.01] within 5 such moves of its clipped start, and every generator
  weight within 1."""
  from configs.wgan_oracle import get_config  # pylint: disable=g-import-not-at-top
  g = get_config('').gan
  assert (g.loss, g.clip, g.d_steps, g.g_steps) == ('wgan', 0.01, 5, 1)
  assert (g.d_optimizer, g.d_learning_rate, g.g_optimizer, g.g_learning_rate) == (
      'rmsprop', 5e-5, 'rmsprop', 5e-5)
  c = _config(mle_steps=0, d_pretrain_steps=0, rounds=1, clip=g.clip, d_steps=g.d_steps,
              g_steps=g.g_steps, d_learning_rate=g.d_learning_rate,
              g_learning_rate=g.g_learning_rate)
  c.num_train_steps = 6
  state = jax.jit(lambda rng: wgan.init(rng, c, _batch()))(jax.random.key(0))
  (name, old, new, _), = list(run_schedule(wgan, c, state, jax.random.key(1), _batch))
  assert name == 'round'
  step = g.d_learning_rate / np.sqrt(1 - 0.9)  # optax.rmsprop's decay
  moved = lambda a, b, k: max(np.abs(x - y).max() for x, y in zip(
      jax.tree.leaves(a.params[k]), jax.tree.leaves(b.params[k])))
  start = old.replace(params={**old.params, 'discriminator': jax.tree.map(
      lambda w: np.clip(w, -g.clip, g.clip), old.params['discriminator'])})
  assert max(np.abs(x).max() for x in jax.tree.leaves(new.params['discriminator'])) <= g.clip
  assert 0 < moved(new, start, 'discriminator') <= 5 * step * (1 + 1e-5)
  assert 0 < moved(new, old, 'generator') <= step * (1 + 1e-5)


@pytest.mark.parametrize('algo, loss', [(wgan, 'wgan'), (gumbel_gan, 'rsgan')])
def test_gan_eval_metrics_from_known_logits(algo, loss, monkeypatch):
  """The eval's D metrics from given logits: D scores the real batch, then the fakes; the
  last row has weight 0 (padding). d_acc_real = share of real logits > 0, d_acc_fake =
  share of fake logits < 0 (not reported for a critic), d_gap = mean(real - fake)."""
  c = _config(loss=loss)
  state = jax.jit(lambda rng: algo.init(rng, c, _batch()))(jax.random.key(0))
  calls = iter([jnp.asarray([1.0, -1.0, 2.0, 3.0]), jnp.asarray([-1.0, 1.0, 1.0, 4.0])])
  monkeypatch.setattr(adversarial, 'discriminator_logits', lambda *a, **k: next(calls))
  batch = {**_batch(), 'weight': np.asarray([1, 1, 1, 0], np.float32)}
  m = algo.finalize_eval(jax.device_get(algo.eval_step(state, batch, jax.random.key(2),
                                                       config=c)))
  assert m['d_gap'] == pytest.approx((2.0 - 2.0 + 1.0) / 3)
  if loss == 'wgan':
    assert 'd_acc_real' not in m and 'd_acc_fake' not in m
  else:
    assert (m['d_acc_real'], m['d_acc_fake']) == (pytest.approx(2 / 3), pytest.approx(1 / 3))


@pytest.mark.parametrize('gan, message', [
    (dict(loss='rsgan'), "set config.gan.loss='wgan'"),
    (dict(latent_std=0.0), 'deterministic'),
    (dict(clip=0.0), 'Lipschitz'),
])
def test_config_errors_name_the_fix(gan, message):
  with pytest.raises(ValueError, match=message):
    jax.eval_shape(lambda: wgan.init(jax.random.key(0), _config(**gan), _batch()))

"""Options that had no test of their own (issue 16): instance noise on D's inputs, the LSTM
discriminator in a GAN's D step, D's gradient clipping, straight-through Gumbel fakes in a
gumbel_gan generator step, the optimizer's learning-rate schedules and decoupled weight
decay, the vae's logistic KL schedule, and the dae's eval on corrupted input.

Each test checks a value (against a hand computation or a closed form), not just that
the option runs. Tiny models, shared states and jitted functions (compile time dominates)."""

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxtextgen.config import base_config
from jaxtextgen.models.discriminator import LSTMDiscriminator
from jaxtextgen.steps import adversarial, autoencoding, dae, gumbel_gan, vae
from jaxtextgen.steps.common import make_optimizer
from fake_batches import padded_batch, tiny_gan_config

pytestmark = pytest.mark.usefixtures('quick_compile')

V, T, B = 13, 6, 4
BOS, EOS, UNK, MASK = 1, 2, 3, 4


def _softplus(x):
  return np.logaddexp(0.0, np.asarray(x, np.float64))


def _tree_norm(tree):
  return math.sqrt(sum(float(np.sum(np.square(np.asarray(x, np.float64))))
                       for x in jax.tree.leaves(tree)))


# --- GAN options ----------------------------------------------------------------------------------

def _gan_config(**gan):
  """A tiny gumbel_gan: no dropout, no L2, one logit, so D's loss is a function of its
  inputs alone and can be recomputed by hand."""
  return tiny_gan_config(V, T, 20, **{
      'd_two_class': False, 'd_l2': 0.0, 'd_dropout': 0.0, 'd_hidden_size': 8,
      'loss': 'nonsaturating', 'gumbel_beta_max': 10.0, **gan})


def _gan_batch(seed=0):
  return padded_batch(seed, B, T, V, first_word=5, eos=EOS)


@functools.lru_cache(maxsize=None)
def _gan_state(d_kind='cnn'):
  c = _gan_config(d_kind=d_kind)
  return jax.jit(lambda rng: gumbel_gan.init(rng, c, _gan_batch()))(jax.random.key(0))


def _with_d_optimizer(state, config):
  """`state` with the discriminator optimizer that `config` asks for (a fresh state)."""
  tx = adversarial.discriminator_optimizer(config)
  return state.replace(tx={**state.tx, 'discriminator': tx},
                       opt_state={**state.opt_state,
                                  'discriminator': tx.init(state.params['discriminator'])})


def test_instance_noise_is_added_to_both_d_inputs_of_the_d_loss():
  """d_inputs: ids become one-hots plus std * N(0, 1) (the key's own draw), and nothing
  at std 0; discriminator_loss reads exactly those noisy reals and fakes."""
  state, std = _gan_state(), 0.3
  d_params = state.params['discriminator']
  real = jnp.asarray(_gan_batch()['tokens'])
  fake = jax.nn.softmax(jnp.asarray(np.random.RandomState(1).normal(size=(B, T, V)),
                                    jnp.float32))
  rng = jax.random.key(5)
  noisy, clean = _gan_config(instance_noise=std), _gan_config()

  x = np.asarray(adversarial.d_inputs(real, jax.random.key(9), config=noisy))
  np.testing.assert_allclose(
      x, np.eye(V)[np.asarray(real)] + std * np.asarray(jax.random.normal(
          jax.random.key(9), (B, T, V))), rtol=1e-6, atol=1e-6)
  assert adversarial.d_inputs(real, jax.random.key(9), config=clean) is real

  loss = lambda c, p: jax.jit(lambda q: adversarial.discriminator_loss(
      q, real, fake, rng, config=c)[1]['loss'])(p)
  d = lambda inputs: np.asarray(adversarial.discriminator_logits(d_params, inputs, config=clean))
  by_hand = lambda r, f: 0.5 * (_softplus(-d(r)).mean() + _softplus(d(f)).mean())
  _, _, k_nr, k_nf = jax.random.split(rng, 4)  # discriminator_loss's keys of the two noises
  noise = lambda k: std * jax.random.normal(k, (B, T, V))
  with_noise = float(loss(noisy, d_params))
  without = float(loss(clean, d_params))
  assert with_noise == pytest.approx(
      by_hand(jax.nn.one_hot(real, V) + noise(k_nr), fake + noise(k_nf)), rel=1e-5)
  assert without == pytest.approx(by_hand(real, fake), rel=1e-5)
  assert abs(with_noise - without) > 1e-3


def test_instance_noise_reaches_d_in_the_generator_step():
  """soft_generator_update scores its fakes with noise too: its loss is the
  nonsaturating loss of D on fakes + std * N(0, 1) from the step's noise key."""
  state, std, rng = _gan_state(), 0.5, jax.random.key(3)
  batch = _gan_batch()
  step = lambda c: jax.jit(functools.partial(adversarial.soft_generator_update, config=c,
                                             gumbel=True))(state, batch, rng)[1]['loss']
  noisy, clean = _gan_config(instance_noise=std), _gan_config()
  k_fake, k_noise = jax.random.split(rng)
  _, k_nf = jax.random.split(k_noise)  # soft_generator_update's keys of the fakes, the noise

  @jax.jit
  def by_hand(gen, d):
    fakes = adversarial.soft_fakes(gen, k_fake, B, config=clean, gumbel=True,
                                   beta=adversarial.gumbel_beta(state.step, clean)).probs
    logits = lambda x: adversarial.discriminator_logits(d, x, config=clean)
    return logits(fakes + std * jax.random.normal(k_nf, fakes.shape)), logits(fakes)

  noisy_logits, clean_logits = by_hand(state.params['generator'], state.params['discriminator'])
  with_noise, without = float(step(noisy)), float(step(clean))
  assert with_noise == pytest.approx(_softplus(-noisy_logits).mean(), rel=1e-5)
  assert without == pytest.approx(_softplus(-clean_logits).mean(), rel=1e-5)
  assert abs(with_noise - without) > 1e-3


def test_lstm_discriminator_step_of_gumbel_gan():
  """d_kind='lstm': gumbel_gan's D step trains an LSTMDiscriminator; its reported loss is
  SeqGAN's mixed-batch cross-entropy of that LSTM's logits on the real batch and the
  step's fakes, and repeated steps on the same real batch and fakes lower it."""
  c = _gan_config(d_kind='lstm', d_learning_rate=3e-2)
  state, batch, rng = _with_d_optimizer(_gan_state('lstm'), c), _gan_batch(), jax.random.key(4)
  assert set(state.params['discriminator']) == {'embedding', 'lstm', 'output'}
  step = jax.jit(functools.partial(gumbel_gan.discriminator_step, config=c))
  # The real batch and (the same rng) the same fakes every step.
  k_fake, _ = jax.random.split(rng)
  beta = gumbel_gan.beta_of(state, c, True)
  model = LSTMDiscriminator(vocab_size=V, emb_dim=8, hidden_size=8, dropout=0.0,
                            two_class=False)

  @jax.jit
  def logits(gen, d):
    fakes = adversarial.soft_fakes(gen, k_fake, B, config=c, gumbel=True, beta=beta).probs
    apply = lambda x: model.apply({'params': d}, x)
    return apply(jnp.asarray(batch['tokens'])), apply(fakes)

  losses = []
  for _ in range(8):
    new, metrics = step(state, batch, rng)
    real_logits, fake_logits = map(np.asarray, logits(state.params['generator'],
                                                      state.params['discriminator']))
    by_hand = 0.5 * (_softplus(-real_logits).mean() + _softplus(fake_logits).mean())
    assert float(metrics['loss']) == pytest.approx(by_hand, rel=1e-5)
    assert float(metrics['acc']) == pytest.approx(
        0.5 * ((real_logits > 0).mean() + (fake_logits < 0).mean()))
    jax.tree.map(np.testing.assert_array_equal, new.params['generator'],
                 state.params['generator'])
    losses.append(float(metrics['loss']))
    state = new
  assert all(b < a for a, b in zip(losses, losses[1:])), losses
  assert losses[-1] < losses[0] - 0.05, losses


def test_d_grad_clip_bounds_the_sgd_update_of_the_discriminator():
  """With SGD at rate lr, gan.d_grad_clip=c makes D's update -lr * c * g / ||g|| when
  ||g|| > c (norm exactly lr * c); without it the update is -lr * g."""
  lr, clip = 1.0, 1e-3
  base, rng = _gan_state(), jax.random.key(6)
  real = jnp.asarray(_gan_batch()['tokens'])
  fake = jnp.asarray(_gan_batch(1)['tokens'])
  d0 = base.params['discriminator']
  c = _gan_config(d_optimizer='sgd', d_learning_rate=lr, d_grad_clip=clip)
  state = _with_d_optimizer(base, c)

  @jax.jit
  def grads_and_step(s):
    grads = jax.grad(adversarial.discriminator_loss, has_aux=True)(
        s.params['discriminator'], real, fake, rng, config=c)[0]
    return grads, adversarial.discriminator_update(s, real, fake, rng, config=c)[0]

  grads, stepped = grads_and_step(state)
  g_norm = _tree_norm(grads)
  assert g_norm > 10 * clip  # the clip is active

  def update(**gan):
    """The update of `grads` by the discriminator optimizer of config.gan `gan`."""
    s = _with_d_optimizer(base, _gan_config(d_optimizer='sgd', d_learning_rate=lr, **gan))
    return s.tx['discriminator'].update(grads, s.opt_state['discriminator'], d0)[0]

  clipped, unclipped = update(d_grad_clip=clip), update()
  # D's step applies exactly the clipped update.
  jax.tree.map(lambda n, o, du: np.testing.assert_allclose(n, o + du, rtol=1e-6, atol=1e-7),
               stepped.params['discriminator'], d0, clipped)
  assert _tree_norm(clipped) == pytest.approx(lr * clip, rel=1e-5)
  assert _tree_norm(unclipped) == pytest.approx(lr * g_norm, rel=1e-5)
  jax.tree.map(lambda u, g: np.testing.assert_allclose(u, -lr * clip / g_norm * g, rtol=1e-4,
                                                       atol=1e-9), clipped, grads)
  jax.tree.map(lambda u, g: np.testing.assert_allclose(u, -lr * g, rtol=1e-5, atol=1e-9),
               unclipped, grads)
  # A clip above the gradient's norm changes nothing.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9),
               update(d_grad_clip=10 * g_norm), unclipped)


@pytest.mark.parametrize('hard', [True, False])
def test_gumbel_hard_feeds_d_one_hots_and_still_trains_the_generator(hard, monkeypatch):
  """gan.gumbel_hard in gumbel_gan's generator step: the fakes D reads are exactly
  one-hot (straight-through) and the generator still moves in every parameter; without
  it, D reads soft vectors."""
  seen = []
  original = adversarial.discriminator_logits

  def spy(params, tokens, **kwargs):
    if tokens.ndim == 3:  # the fakes (reals are ids at instance_noise 0)
      jax.debug.callback(lambda x: seen.append(np.asarray(x)), tokens)
    return original(params, tokens, **kwargs)

  monkeypatch.setattr(adversarial, 'discriminator_logits', spy)
  c = _gan_config(gumbel_hard=hard, g_optimizer='sgd', g_learning_rate=1.0)
  state = adversarial.with_adversarial_optimizer(_gan_state(), c)
  new, metrics = jax.jit(functools.partial(gumbel_gan.generator_step, config=c))(
      state, _gan_batch(), jax.random.key(2))
  jax.effects_barrier()
  assert float(metrics['beta']) == 1.0  # step 0: the softest fakes of the schedule
  assert seen
  for probs in seen:
    assert probs.shape == (B, T, V)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    if hard:
      assert set(np.unique(probs)) == {0.0, 1.0}
    else:  # soft everywhere before EOS, e.g. every first token (one-hot PAD after EOS)
      assert (probs[:, 0] < 1.0).all() and (probs[:, 0] > 0).all()
  delta = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(),
                       new.params['generator'], state.params['generator'])
  assert all(x > 0 for x in jax.tree.leaves(delta)), delta


# --- optimizer schedules and weight decay --------------------------------------------------------

def _optimizer(**fields):
  return ml_collections.ConfigDict({**base_config().optimizer.to_dict(), **fields})


def _reference_lr(schedule, t, peak, total, warmup):
  """The closed forms of config.optimizer.schedule, float64."""
  if schedule == 'constant':
    return peak
  if schedule == 'linear':
    return peak * (1.0 - min(t, total) / total)
  w = max(warmup, 1)
  if t < w:
    return peak * t / w
  return peak * 0.5 * (1.0 + math.cos(math.pi * (min(t, total) - w) / (total - w)))


def _learning_rates(tx, params, grads, steps):
  """The updates of `steps` optimizer steps on constant `grads`."""
  opt, out = tx.init(params), []
  update = jax.jit(tx.update)
  for _ in range(steps):
    u, opt = update(grads, opt, params)
    out.append(jax.device_get(u))
  return out


STEPS, TOTAL, WARMUP, PEAK = 26, 20, 4, 0.1


@pytest.mark.parametrize('schedule', ['constant', 'cosine', 'linear'])
def test_sgd_learning_rate_follows_the_closed_form_schedule(schedule):
  """SGD on a unit gradient: update t = -lr(t), lr the warmup + cosine decay (0 after
  the run), the linear decay to 0 at the run's end, or the constant."""
  tx = make_optimizer(_optimizer(name='sgd', schedule=schedule, learning_rate=PEAK,
                                 warmup_steps=WARMUP, grad_clip=0.0), TOTAL)
  updates = _learning_rates(tx, jnp.zeros(()), jnp.ones(()), STEPS)
  expected = [_reference_lr(schedule, t, PEAK, TOTAL, WARMUP) for t in range(STEPS)]
  np.testing.assert_allclose([-float(u) for u in updates], expected, rtol=1e-5, atol=1e-9)
  if schedule == 'cosine':  # spot values: 0 at the start, the peak after warmup, 0 at the end
    assert [-float(updates[t]) for t in (0, 2, WARMUP, TOTAL)] == pytest.approx(
        [0.0, PEAK / 2, PEAK, 0.0], rel=1e-6, abs=1e-9)
    assert -float(updates[(WARMUP + TOTAL) // 2]) == pytest.approx(PEAK / 2, rel=1e-5)


@pytest.mark.parametrize('schedule', ['cosine', 'linear'])
def test_adamw_weight_decay_is_decoupled_and_scheduled(schedule):
  """Adam with weight decay wd: on zero gradients the update is exactly -lr(t) * wd * p
  (Adam's own term vanishes); on real gradients weight decay adds exactly that term to
  the update without it (decoupled: not part of the gradient Adam normalises), as
  optax.adamw does."""
  wd = 0.3
  params = {'w': jnp.asarray(np.random.RandomState(0).normal(size=(3, 5)), jnp.float32),
            'b': jnp.asarray([0.5, -2.0, 4.0], jnp.float32)}
  zeros = jax.tree.map(jnp.zeros_like, params)
  grads = jax.tree.map(lambda p: jnp.asarray(np.random.RandomState(1).normal(size=p.shape) * 3,
                                             jnp.float32), params)
  cfg = lambda w: _optimizer(name='adam', schedule=schedule, learning_rate=PEAK,
                             warmup_steps=WARMUP, weight_decay=w, grad_clip=0.0)
  steps = 12
  lrs = [_reference_lr(schedule, t, PEAK, TOTAL, WARMUP) for t in range(steps)]
  decayed = _learning_rates(make_optimizer(cfg(wd), TOTAL), params, zeros, steps)
  for t, u in enumerate(decayed):
    jax.tree.map(lambda x, p, t=t: np.testing.assert_allclose(x, -lrs[t] * wd * np.asarray(p),
                                                              rtol=1e-5, atol=1e-9), u, params)
  with_wd = _learning_rates(make_optimizer(cfg(wd), TOTAL), params, grads, steps)
  without = _learning_rates(make_optimizer(cfg(0.0), TOTAL), params, grads, steps)
  for t in range(steps):
    jax.tree.map(lambda a, b, p, t=t: np.testing.assert_allclose(
        a - b, -lrs[t] * wd * np.asarray(p), rtol=1e-4, atol=1e-7), with_wd[t], without[t], params)
  # The same as optax.adamw with the same schedule (optax's defaults: eps 1e-8).
  sched = (optax.warmup_cosine_decay_schedule(0.0, PEAK, WARMUP, TOTAL) if schedule == 'cosine'
           else optax.linear_schedule(PEAK, 0.0, TOTAL))
  reference = _learning_rates(optax.adamw(sched, b1=0.9, b2=0.999, weight_decay=wd), params,
                              grads, steps)
  for a, b in zip(with_wd, reference):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9), a, b)


# --- the vae's logistic KL schedule ---------------------------------------------------------------

def _vae_config(**vae_fields):
  c = base_config()
  c.model.emb_dim, c.model.hidden_size = 8, 8
  c.ae.latent_dim = 4
  c.num_train_steps = 100
  c.data.max_len = T
  c.vae.iw_samples, c.vae.iw_chunk = 0, 1
  c.vae.update(vae_fields)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=BOS, eos_id=EOS, pad_id=0, unk_id=UNK, mask_id=MASK))
  return c


def test_logistic_kl_weight_is_beta_times_the_logistic_function():
  """kl_weight(n) = beta / (1 + exp(-k (n - x0))) (config.vae.logistic_k, logistic_x0),
  beta / 2 at x0, for Python and traced steps."""
  steps = np.array([0, 1, 500, 2499, 2500, 2501, 4000, 10_000, 100_000])
  for k, x0, beta in ((0.0025, 2500, 1.0), (0.01, 300, 0.5)):
    c = _vae_config(kl_schedule='logistic', logistic_k=k, logistic_x0=x0, beta=beta)
    expected = beta / (1.0 + np.exp(-k * (steps.astype(np.float64) - x0)))
    got = [float(vae.kl_weight(int(n), c)) for n in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
    traced = jax.jit(lambda n, c=c: vae.kl_weight(n, c))(jnp.asarray(steps, jnp.int32))
    np.testing.assert_allclose(np.asarray(traced), expected, rtol=1e-6, atol=1e-12)
    assert float(vae.kl_weight(x0, c)) == pytest.approx(beta / 2, rel=1e-7)
  # Bowman et al.'s defaults from base_config: 1/(1 + e^{6.25}) at step 0.
  c = _vae_config(kl_schedule='logistic')
  assert float(vae.kl_weight(0, c)) == pytest.approx(1.0 / (1.0 + math.exp(6.25)), rel=1e-6)


def test_logistic_kl_weight_weighs_the_kl_of_the_train_step():
  """The vae step at step n reports kl_weight(n) and minimises rec + kl_weight(n) * KL."""
  c = _vae_config(kl_schedule='logistic', logistic_k=0.01, logistic_x0=40, beta=0.8)
  batch = padded_batch(0, B, T, V, first_word=5, eos=EOS)
  state = jax.jit(lambda rng: vae.init(rng, c, batch))(jax.random.key(0))
  step = jax.jit(functools.partial(vae.train_step, config=c))
  for n in (0, 40, 150):
    _, m = step(state.replace(step=jnp.asarray(n, jnp.int32)), batch, jax.random.key(1))
    w = 0.8 / (1.0 + math.exp(-0.01 * (n - 40)))
    assert float(m['kl_weight']) == pytest.approx(w, rel=1e-6)
    assert float(m['kl']) > 1e-3
    assert float(m['loss']) == pytest.approx(float(m['rec_nll']) + w * float(m['kl']), rel=1e-5)


# --- the dae's eval on corrupted input ------------------------------------------------------------

def _dae_config(**ae_fields):
  c = _vae_config()
  c.algorithm = 'dae'
  c.ae.latent_dim = 8
  c.optimizer.learning_rate = 3e-2
  c.ae.update(ae_fields)
  return c


@functools.lru_cache(maxsize=None)
def _trained_dae():
  """A dae (no corruption in training) fit to one batch: it reconstructs it."""
  c, batch = _dae_config(), padded_batch(0, B, T, V, first_word=5, eos=EOS)
  state = jax.jit(lambda rng: dae.init(rng, c, batch))(jax.random.key(0))
  step = jax.jit(functools.partial(dae.train_step, config=c))
  for _ in range(150):
    state, _ = step(state, batch, jax.random.key(1))
  return jax.device_get(state), batch


def test_dae_eval_reports_clean_and_corrupted_reconstruction():
  """The eval reports the reconstruction from clean input (rec_nll, bleu, ...) and from
  input corrupted as configured (noisy_rec_nll, noisy_bleu, ...): identical with every
  corruption off; with mask_prob=1 that of the encoder reading every word as <mask>
  (built by hand), much worse than clean for a model that reconstructs."""
  state, batch = _trained_dae()
  rng = jax.random.key(3)
  floats = lambda metrics: {k: float(v) for k, v in metrics.items()}
  evaluate = lambda c: floats(dae.finalize_eval(jax.device_get(
      jax.jit(functools.partial(dae.eval_step, config=c))(state, batch, rng))))

  tokens, mask = jnp.asarray(batch['tokens']), jnp.asarray(batch['mask'])
  sentences = float(np.sum(batch['weight']))
  rec_nll_sum = jax.jit(lambda enc_tokens: autoencoding.reconstruction_sums(
      state, batch, config=_dae_config(), enc_tokens=enc_tokens)['rec_nll_sum'])
  rec_nll = lambda enc_tokens: float(rec_nll_sum(enc_tokens)) / sentences

  off = evaluate(_dae_config())
  assert off['rec_nll'] == pytest.approx(rec_nll(tokens), rel=1e-5)
  for key in ('rec_nll', 'rec_nll_per_token', 'rec_ppl', 'bleu'):
    assert off[f'noisy_{key}'] == off[key]
  assert off['rec_nll'] < 0.5 and off['bleu'] > 0.9  # it reconstructs ...

  masked = evaluate(_dae_config(mask_prob=1.0))
  for key in ('rec_nll', 'rec_nll_per_token', 'rec_ppl', 'bleu', 'eval_sentences'):
    assert masked[key] == pytest.approx(off[key], rel=1e-6)  # clean: untouched by the noise
  all_masked = jnp.where((mask > 0) & (tokens != EOS), MASK, tokens)
  assert masked['noisy_rec_nll'] == pytest.approx(rec_nll(all_masked), rel=1e-5)
  assert masked['noisy_rec_nll'] > masked['rec_nll'] + 1.0  # ... and needs its input
  assert masked['noisy_bleu'] < masked['bleu']

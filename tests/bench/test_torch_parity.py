"""The PyTorch benchmark models compute what the library computes: with the Flax
parameters loaded (`bench.convert`), the same loss and gradients at step 0."""

import pytest

torch = pytest.importorskip('torch')

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from fake_batches import padded_batch
from jaxtextgen.bench import convert, harness, torch_steps
from jaxtextgen.config import base_config
from jaxtextgen.steps import adversarial, gumbel_gan, lm, seqgan, vae

V, T, B = 23, 7, 5
TOL = dict(rtol=1e-4, atol=2e-6)


def _config(**model):
  c = base_config()
  c.model.emb_dim, c.model.hidden_size, c.model.dropout = 8, 12, 0.0
  c.model.update(model)
  c.num_train_steps = 10
  c.data.max_len = T
  c.ae.latent_dim = 4
  c.vae.kl_schedule, c.vae.word_dropout, c.vae.iw_samples = 'constant', 0.0, 0
  c.gan.d_emb_dim, c.gan.d_filter_sizes, c.gan.d_num_filters = 6, (1, 2, 3, 9), (4, 5, 3, 2)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=1, eos_id=2, pad_id=0, unk_id=3))
  return c


def _sgd(c):
  """SGD with lr 1 and no clipping: one step moves the params by exactly -grad."""
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.grad_clip = 'sgd', 1.0, 0.0
  return c


def _torch_batch(batch):
  return {'tokens': torch.tensor(batch['tokens'], dtype=torch.long),
          'mask': torch.tensor(batch['mask'])}


def _load(module, state_dict):
  module.load_state_dict(convert.to_torch(state_dict))


def _assert_grads(module, expected: dict):
  """module's .grad against a converted Flax gradient (nn.LSTM's bias_hh is frozen)."""
  for name, p in module.named_parameters():
    assert p.requires_grad != name.startswith('lstm.bias_hh'), name
    if p.requires_grad:
      np.testing.assert_allclose(p.grad.numpy(), expected[name], err_msg=name, **TOL)


def _param_delta(old, new):
  return jax.tree.map(lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64), old,
                      new)


@pytest.mark.parametrize('num_layers', [1, 2])
def test_lm_loss_and_gradients_match(num_layers):
  c = _config(num_layers=num_layers)
  batch = padded_batch(0, B, T, V, first_word=4, eos=2)
  params = lm.init(jax.random.key(0), c, batch).params['generator']
  count = batch['mask'].sum()
  loss, grads = jax.value_and_grad(lambda p: lm.nll(p, batch, config=c)[0] / count)(params)

  step = torch_steps.TorchLM(c, 'cpu')
  _load(step.decoder, convert.decoder_state_dict(params))
  tb = _torch_batch(batch)
  t_loss = step.loss(tb['tokens'], tb['mask'])
  t_loss.backward()
  np.testing.assert_allclose(t_loss.item(), float(loss), rtol=1e-5)
  _assert_grads(step.decoder, convert.decoder_state_dict(grads))


def test_lm_train_step_matches_with_clipping():
  """One whole step: the library's train_step vs TorchLM.step (clipping active)."""
  c = _sgd(_config())
  c.optimizer.learning_rate, c.optimizer.grad_clip = 0.5, 0.05
  batch = padded_batch(1, B, T, V, first_word=4, eos=2)
  state = lm.init(jax.random.key(1), c, batch)
  step = torch_steps.TorchLM(c, 'cpu')
  _load(step.decoder, convert.decoder_state_dict(state.params['generator']))
  new, metrics = lm.train_step(state, batch, jax.random.key(2), config=c)
  t_loss = step.step(_torch_batch(batch))
  np.testing.assert_allclose(t_loss.item(), float(metrics['loss']), rtol=1e-5)
  want = convert.decoder_state_dict(new.params['generator'])
  for name, p in step.decoder.named_parameters():
    np.testing.assert_allclose(p.detach().numpy(), want[name], err_msg=name, **TOL)


def _transformer_config(**model):
  return _config(decoder='transformer', num_heads=4, mlp_dim=20, max_positions=T + 2, **model)


@pytest.mark.parametrize('positions,num_layers', [('learned', 1), ('learned', 2),
                                                  ('sinusoidal', 2)])
def test_transformer_lm_loss_and_gradients_match(positions, num_layers):
  c = _transformer_config(positions=positions, num_layers=num_layers)
  batch = padded_batch(3, B, T, V, first_word=4, eos=2)
  params = lm.init(jax.random.key(0), c, batch).params['generator']
  # Move every weight off its init (LayerNorm scales of 1, zero biases) so each one matters.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  params = jax.tree.unflatten(tree, [x + 0.1 * jax.random.normal(k, x.shape)
                                     for x, k in zip(leaves, keys)])
  count = batch['mask'].sum()
  loss, grads = jax.jit(jax.value_and_grad(
      lambda p: lm.nll(p, batch, config=c)[0] / count))(params)

  step = torch_steps.TorchLM(c, 'cpu')
  assert isinstance(step.decoder, torch_steps.TransformerLM)
  _load(step.decoder, convert.generator_state_dict(params))
  tb = _torch_batch(batch)
  t_loss = step.loss(tb['tokens'], tb['mask'])
  t_loss.backward()
  np.testing.assert_allclose(t_loss.item(), float(loss), rtol=1e-5)
  _assert_grads(step.decoder, convert.transformer_state_dict(grads))


def test_transformer_lm_train_step_matches_with_clipping():
  """One whole Adam step with clipping active: the library's train_step vs TorchLM.step."""
  c = _transformer_config(num_layers=2)
  c.optimizer.learning_rate, c.optimizer.grad_clip = 1e-2, 0.05
  batch = padded_batch(4, B, T, V, first_word=4, eos=2)
  state = lm.init(jax.random.key(1), c, batch)
  step = torch_steps.TorchLM(c, 'cpu')
  _load(step.decoder, convert.generator_state_dict(state.params['generator']))
  new, metrics = jax.jit(lambda s: lm.train_step(s, batch, jax.random.key(2), config=c))(state)
  t_loss = step.step(_torch_batch(batch))
  np.testing.assert_allclose(t_loss.item(), float(metrics['loss']), rtol=1e-5)
  want = convert.generator_state_dict(new.params['generator'])
  for name, p in step.decoder.named_parameters():
    np.testing.assert_allclose(p.detach().numpy(), want[name], err_msg=name, rtol=1e-4,
                               atol=1e-5)


def test_transformer_twin_is_lm_only():
  c = _transformer_config()
  with pytest.raises(NotImplementedError, match="config.algorithm='lm' only"):
    torch_steps.TorchVAE(c, 'cpu')


@pytest.mark.parametrize('bidirectional', [False, True])
def test_vae_loss_and_gradients_match(bidirectional):
  c = _sgd(_config())
  c.ae.bidirectional = bidirectional
  batch = padded_batch(2, B, T, V, first_word=4, eos=2)
  state = vae.init(jax.random.key(3), c, batch)
  rng = jax.random.key(4)
  new, metrics = vae.train_step(state, batch, rng, config=c)
  grads = _param_delta(state.params, new.params)
  # The step's own noise: k_z = split(fold_in(rng, step), 3)[0], eps ~ N(0, I) [B, Z].
  k_z = jax.random.split(jax.random.fold_in(rng, 0), 3)[0]
  eps = np.asarray(jax.random.normal(k_z, (B, c.ae.latent_dim)))

  step = torch_steps.TorchVAE(c, 'cpu')
  _load(step.encoder, convert.encoder_state_dict(state.params['encoder']))
  _load(step.decoder, convert.decoder_state_dict(state.params['decoder']))
  tb = _torch_batch(batch)
  inputs = step.decoder_inputs(tb['tokens'], tb['mask'], train=False)
  loss, rec, kl = step.loss(tb['tokens'], tb['mask'], inputs, torch.tensor(eps),
                            torch_steps.kl_weight(0, c))
  loss.backward()
  np.testing.assert_allclose(loss.item(), float(metrics['loss']), rtol=1e-5)
  np.testing.assert_allclose(rec.item(), float(metrics['rec_nll']), rtol=1e-5)
  np.testing.assert_allclose(kl.item(), float(metrics['kl']), rtol=1e-5, atol=1e-6)
  _assert_grads(step.encoder, convert.encoder_state_dict(grads['encoder']))
  _assert_grads(step.decoder, convert.decoder_state_dict(grads['decoder']))


def test_discriminator_logits_match():
  c = _config()
  d_params, _ = seqgan.adversarial.init_discriminator(jax.random.key(5), c)
  disc = torch_steps.make_discriminator(c).eval()
  _load(disc, convert.discriminator_state_dict(d_params, c.gan.d_filter_sizes))
  for t in (T, 4):  # 4 < the widest filter: padded to it
    tokens = np.asarray(jax.random.randint(jax.random.key(t), (B, t), 0, V))
    probs = np.asarray(jax.nn.softmax(jax.random.normal(jax.random.key(t), (B, t, V))))
    for x, tx in ((tokens, torch.tensor(tokens, dtype=torch.long)), (probs, torch.tensor(probs))):
      want = seqgan.adversarial.discriminator_logits(d_params, jnp.asarray(x), config=c)
      np.testing.assert_allclose(disc(tx).detach().numpy(), want, rtol=1e-5, atol=1e-5)


def test_seqgan_policy_gradient_matches():
  c = _sgd(_config())
  batch = padded_batch(6, B, T, V, first_word=4, eos=2)
  state = seqgan.init(jax.random.key(6), c, batch)
  tokens, mask = batch['tokens'], batch['mask']
  rewards = np.asarray(jax.random.uniform(jax.random.key(7), (B, T, c.gan.num_rollouts)))
  new, metrics = seqgan.policy_gradient_update(state, jnp.asarray(tokens), jnp.asarray(mask),
                                               jnp.asarray(rewards), config=c)
  grads = _param_delta(state.params['generator'], new.params['generator'])

  step = torch_steps.TorchSeqGAN(c, 'cpu')
  _load(step.generator, convert.decoder_state_dict(state.params['generator']))
  tb = _torch_batch(batch)
  loss = step.pg_loss(tb['tokens'], tb['mask'], torch.tensor(rewards.mean(-1)))
  loss.backward()
  np.testing.assert_allclose(loss.item(), float(metrics['loss']), rtol=1e-5)
  _assert_grads(step.generator, convert.decoder_state_dict(grads))


def test_torch_steps_run():
  """Every benchmark step runs and returns a finite loss (tiny sizes)."""
  c = _config()
  c.gan.num_rollouts = 2
  tb = _torch_batch(padded_batch(8, B, T, V, first_word=4, eos=2))
  for cls in (torch_steps.TorchLM, torch_steps.TorchVAE):
    assert np.isfinite(cls(c, 'cpu').step(tb).item())
  gan = torch_steps.TorchSeqGAN(c, 'cpu')
  assert np.isfinite(gan.generator_step(tb).item())
  assert np.isfinite(gan.discriminator_step(tb).item())


def test_inverse_cdf_draws_the_first_token_whose_cumulative_probability_exceeds_u(monkeypatch):
  probs = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]])
  u = torch.tensor([[0.05], [0.5], [0.0], [0.999]])
  monkeypatch.setattr(torch, 'rand', lambda *shape, **kw: u.to(kw.get('dtype')))
  monkeypatch.setattr(torch_steps, 'SAMPLER', 'inverse_cdf')
  # Row 1: u sits on the boundary 0.5 and the zero-probability token 1 is skipped; row 2: u = 0
  # never draws the zero-probability token 0.
  assert torch_steps.draw(probs).tolist() == [0, 2, 1, 2]
  monkeypatch.setattr(torch_steps, 'SAMPLER', 'gumbel')
  with pytest.raises(ValueError, match='use one of'):
    torch_steps.draw(probs)


@pytest.mark.parametrize('sampler', ['multinomial', 'inverse_cdf'])
def test_torch_sampler_flag_chooses_the_pytorch_sampler(sampler, monkeypatch):
  """`python -m jaxtextgen.bench --torch_sampler` sets torch_steps.SAMPLER; the SeqGAN steps
  the benchmark times (samples and rollouts) then draw every token with that sampler."""
  from jaxtextgen.bench import __main__ as bench_main  # pylint: disable=g-import-not-at-top
  assert tuple(bench_main.FLAGS['torch_sampler'].parser.enum_values) == torch_steps.SAMPLERS
  calls = {'multinomial': 0, 'inverse_cdf': 0}
  multinomial, searchsorted = torch.multinomial, torch.searchsorted

  def spy(name, fn):
    def counted(*args, **kwargs):
      calls[name] += 1
      return fn(*args, **kwargs)
    return counted

  monkeypatch.setattr(torch, 'multinomial', spy('multinomial', multinomial))
  monkeypatch.setattr(torch, 'searchsorted', spy('inverse_cdf', searchsorted))
  monkeypatch.setattr(torch_steps, 'SAMPLER', sampler)
  c = _config()
  c.gan.num_rollouts = 2
  tb = _torch_batch(padded_batch(8, B, T, V, first_word=4, eos=2))
  gan = torch_steps.TorchSeqGAN(c, 'cpu')
  gan.discriminator_step(tb)  # T draws of the fakes
  gan.generator_step(tb)  # T draws of the samples, T - 1 of the rollouts (first_free=1)
  other = 'inverse_cdf' if sampler == 'multinomial' else 'multinomial'
  assert calls == {sampler: 3 * T - 1, other: 0}


# --- gumbel_gan -----------------------------------------------------------------------------------

def _gumbel_config(loss='rsgan', hard=False, eos=2):
  """gumbel_gan with SGD lr 1 for both players (one step moves the params by -grad) and a
  constant beta != 1; step 0 is a generator step (d_pretrain_steps=1: a discriminator step)."""
  c = _sgd(_config())
  c.algorithm = 'gumbel_gan'
  g = c.gan
  g.mle_steps, g.d_pretrain_steps, g.g_steps, g.d_steps = 0, 0, 1, 1
  g.loss, g.gumbel_hard, g.clip = loss, hard, (0.05 if loss == 'wgan' else 0.0)
  g.gumbel_schedule, g.gumbel_beta_max = 'const', 2.5
  g.g_optimizer, g.g_learning_rate = 'sgd', 1.0
  g.d_optimizer, g.d_learning_rate, g.d_dropout = 'sgd', 1.0, 0.0
  c.vocab.eos_id = eos
  return c


def _library_fake_key(rng, step: int, *, generator: bool):
  """The key of the fakes that the schedule's `adversarial.counted(gumbel_gan.generator_step)`
  (or discriminator_step) draws at `step`: counted folds in the step; generator_step splits off k_adv and soft_generator_update
  k_fake from it (discriminator_step splits off k_fake directly)."""
  key = jax.random.split(jax.random.fold_in(rng, step))[0]
  return jax.random.split(key)[0] if generator else key


def _library_gumbel_noise(k_fake, num: int, c) -> np.ndarray:
  """The Gumbel variates [T, num, V] of `adversarial.soft_fakes(..., k_fake, num)`: it
  splits k_sample off k_fake; relaxed_sample's step t draws gumbel(fold_in(k_sample, t))."""
  k_sample = jax.random.split(k_fake)[1]
  return np.stack([np.asarray(jax.random.gumbel(jax.random.fold_in(k_sample, t),
                                                (num, c.vocab.size), jnp.float32))
                   for t in range(c.data.max_len)])


def _gumbel_torch(c, state):
  step = torch_steps.TorchGumbelGAN(c, 'cpu')
  _load(step.generator, convert.decoder_state_dict(state.params['generator']))
  _load(step.discriminator, convert.discriminator_state_dict(state.params['discriminator'],
                                                             c.gan.d_filter_sizes))
  return step


def _assert_params(module, expected: dict):
  for name, p in module.named_parameters():
    np.testing.assert_allclose(p.detach().numpy(), expected[name], err_msg=name, **TOL)


@pytest.mark.parametrize('loss,hard', [('nonsaturating', False), ('rsgan', False),
                                       ('wgan', False), ('rsgan', True)])
def test_gumbel_gan_generator_step_matches(loss, hard):
  """Given the library's own Gumbel noise: the relaxed unroll, D's scores, the generator
  loss and its gradients, and the whole step (SGD) match the library's train_step."""
  c = _gumbel_config(loss, hard)
  batch = padded_batch(9, B, T, V, first_word=4, eos=2)
  state = gumbel_gan.init(jax.random.key(9), c, batch)
  rng = jax.random.key(10)
  new, metrics = adversarial.counted(gumbel_gan.generator_step)(state, batch, rng, config=c)
  grads = _param_delta(state.params['generator'], new.params['generator'])
  k_fake = _library_fake_key(rng, 0, generator=True)
  noise = _library_gumbel_noise(k_fake, B, c)
  fakes = adversarial.soft_fakes(state.params['generator'], k_fake, B, config=c, gumbel=True,
                                 beta=c.gan.gumbel_beta_max)
  assert (np.asarray(fakes.mask) == 0).any(), 'no fake row reached EOS: pick another seed'

  step = _gumbel_torch(c, state)
  tb, tnoise = _torch_batch(batch), torch.tensor(noise)
  np.testing.assert_allclose(step.fakes(B, c.gan.gumbel_beta_max, tnoise).detach().numpy(),
                             fakes.probs, **TOL)
  t_loss = step.g_loss(tb['tokens'], torch.tensor(c.gan.gumbel_beta_max), tnoise)
  t_loss.backward()
  np.testing.assert_allclose(t_loss.item(), float(metrics['loss']), rtol=1e-5)
  _assert_grads(step.generator, convert.decoder_state_dict(grads))

  step.generator.zero_grad(set_to_none=True)
  step.discriminator.zero_grad(set_to_none=True)
  t_loss = step.generator_step(tb, noise=tnoise)
  np.testing.assert_allclose(t_loss.item(), float(metrics['loss']), rtol=1e-5)
  _assert_params(step.generator, convert.decoder_state_dict(new.params['generator']))
  assert all(p.requires_grad for p in step.discriminator.parameters())
  assert all(p.grad is None for p in step.discriminator.parameters())  # D was frozen


@pytest.mark.parametrize('loss', ['nonsaturating', 'rsgan', 'wgan'])
def test_gumbel_gan_discriminator_step_matches(loss):
  """A discriminator step (reals vs the library's relaxed fakes, d_l2, WGAN clipping)."""
  c = _gumbel_config(loss)
  c.gan.d_pretrain_steps, c.gan.d_l2 = 1, 0.2
  batch = padded_batch(11, B, T, V, first_word=4, eos=2)
  state = gumbel_gan.init(jax.random.key(11), c, batch)
  rng = jax.random.key(12)
  new, metrics = adversarial.counted(gumbel_gan.discriminator_step)(state, batch, rng,
                                                                    config=c)
  out = state.params['discriminator']['output']
  l2 = 0.5 * (np.square(out['kernel']).sum() + np.square(out['bias']).sum())

  step = _gumbel_torch(c, state)
  noise = torch.tensor(_library_gumbel_noise(_library_fake_key(rng, 0, generator=False), B, c))
  t_loss = step.discriminator_step(_torch_batch(batch), noise=noise)
  np.testing.assert_allclose(t_loss.item(), float(metrics['loss']) + c.gan.d_l2 * l2,
                             rtol=1e-5)
  _assert_params(step.discriminator, convert.discriminator_state_dict(
      new.params['discriminator'], c.gan.d_filter_sizes))


def test_gumbel_beta_matches_library():
  c = _gumbel_config()
  c.gan.gumbel_beta_max, c.gan.rounds = 100.0, 25  # N = 25 adversarial generator updates
  for schedule in ('const', 'lin', 'exp', 'log', 'sigmoid', 'quad', 'sqrt'):
    c.gan.gumbel_schedule = schedule
    for step in (0, 1, 7, 24, 49):  # rounds of 1 G + 1 D step: n = ceil(step / 2)
      n = torch_steps.adversarial_g_updates(step, c)
      assert n == int(adversarial.adversarial_g_updates(step, c))
      np.testing.assert_allclose(torch_steps.gumbel_beta(n, c),
                                 float(adversarial.gumbel_beta(step, c)), rtol=1e-5)


@pytest.mark.parametrize('seqgan_step', ['generator', 'discriminator'])
def test_gumbel_bench_times_the_update_it_names(seqgan_step):
  """The harness times the schedule's own generator or discriminator update."""
  c, _ = harness.bench_config(_gumbel_config(), vocab_size=V, seqgan_step=seqgan_step)
  batch = padded_batch(13, B, T, V, first_word=4, eos=2)
  state = gumbel_gan.init(jax.random.key(13), c, batch)
  new, _ = harness.bench_update(gumbel_gan, seqgan_step)(state, batch, jax.random.key(1),
                                                         config=c)
  moved = {p for p in ('generator', 'discriminator') if not all(jax.tree.leaves(jax.tree.map(
      np.array_equal, jax.device_get(state.params[p]), jax.device_get(new.params[p]))))}
  assert moved == {seqgan_step}
  assert 'gumbel_gan' in torch_steps.STEPS


@pytest.mark.parametrize('eos', [2, -1])
def test_torch_gumbel_gan_steps_run(eos):
  """The Gumbel GAN benchmark steps run with the library's default loss and Adam."""
  c = _config()
  c.algorithm, c.vocab.eos_id = 'gumbel_gan', eos
  c.gan.gumbel_hard = eos < 0
  tb = _torch_batch(padded_batch(13, B, T, V, first_word=4, eos=2))
  gan = torch_steps.TorchGumbelGAN(c, 'cpu')
  before = [p.detach().clone() for p in gan.generator.parameters()]
  for _ in range(2):
    assert np.isfinite(gan.generator_step(tb).item())
    assert np.isfinite(gan.discriminator_step(tb).item())
  assert gan.g_updates == 2
  assert any(not torch.equal(a, p) for a, p in zip(before, gan.generator.parameters()))


def test_round_bench_times_one_whole_round(monkeypatch):
  """--seqgan_step=round: JAX's fused train_step on [g + d, B, T] stacked batches (one
  generator and d discriminator updates), PyTorch the same updates in the same order on the
  same batches."""
  c, _ = harness.bench_config(_gumbel_config(), vocab_size=V, seqgan_step='round',
                              round_d_steps=3)
  assert (c.gan.g_steps, c.gan.d_steps, c.gan.d_pretrain_steps) == (1, 3, 0)
  assert harness.round_batches(c, 'round') == 4 and harness.round_batches(c, 'generator') == 1
  assert harness.model_flops(c, 'gumbel_gan', 'round') == (
      harness.model_flops(c, 'gumbel_gan', 'generator')
      + 3 * harness.model_flops(c, 'gumbel_gan', 'discriminator'))
  stacked = harness.synthetic_batch(c, stack=4)
  assert stacked['tokens'].shape == (4, c.batch_size, T)
  assert len({stacked['tokens'][i].tobytes() for i in range(4)}) == 4  # fresh real batches
  first = jax.tree.map(lambda x: x[0], stacked)
  state = gumbel_gan.init(jax.random.key(13), c, first)
  new, metrics = harness.bench_update(gumbel_gan, 'round')(state, stacked, jax.random.key(1),
                                                           config=c)
  assert int(new.step) - int(state.step) == 4
  assert np.isfinite(float(metrics['g/loss'])) and np.isfinite(float(metrics['d/loss']))

  calls = []
  monkeypatch.setattr(torch_steps.TorchGumbelGAN, 'generator_step',
                      lambda self, b: calls.append(('g', int(b['tokens'].sum()))))
  monkeypatch.setattr(torch_steps.TorchGumbelGAN, 'discriminator_step',
                      lambda self, b: calls.append(('d', int(b['tokens'].sum()))))
  runner = harness.torch_runner('torch', c, stacked, device='cpu', warmup=1, compile_loss=False,
                                seqgan_step='round')
  assert calls == [(k, int(stacked['tokens'][i].sum())) for i, k in enumerate('gddd')]
  runner.step()
  assert len(calls) == 8

"""The PyTorch benchmark models compute what the library computes: with the Flax
parameters loaded (`bench.convert`), the same loss and gradients at step 0."""

import pytest

torch = pytest.importorskip('torch')

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from fake_batches import padded_batch
from jaxtextgen.bench import convert, torch_steps
from jaxtextgen.config import base_config
from jaxtextgen.steps import lm, seqgan, vae

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

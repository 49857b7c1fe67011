"""`vae_gan`: which player gets which gradient (Larsen et al. 2016), and its schedule."""

import functools

import jax
import numpy as np
import pytest

from jaxtextgen.config import base_config
from jaxtextgen.steps import vae_gan
from fake_batches import padded_batch

pytestmark = pytest.mark.usefixtures('quick_compile')

V, T, B, Z = 13, 6, 4, 3
BOS, EOS, UNK = 1, 2, 3


def _config(**vae_gan_fields):
  c = base_config()
  c.algorithm = 'vae_gan'
  c.model.emb_dim, c.model.hidden_size = 8, 8
  c.ae.latent_dim = Z
  c.data.max_len = T
  c.num_train_steps = 10
  g = c.gan
  g.mle_steps, g.d_pretrain_steps, g.rounds, g.g_steps, g.d_steps = 2, 1, 2, 1, 1
  g.d_emb_dim, g.d_filter_sizes, g.d_num_filters = 8, (1, 2, 3), (3, 3, 3)
  g.d_two_class, g.d_l2, g.d_dropout = False, 0.0, 0.0
  c.vae_gan.update(vae_gan_fields)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=BOS, eos_id=EOS, pad_id=0, unk_id=UNK, mask_id=4))
  return c


def _batch(seed=0):
  return padded_batch(seed, B, T, V, first_word=5, eos=EOS)


@functools.lru_cache(maxsize=None)
def _state():
  return jax.jit(lambda rng: vae_gan.init(rng, _config(), _batch()))(jax.random.key(0))


def _generator_update(state, **fields):
  c = _config(**fields)
  step = jax.jit(functools.partial(vae_gan.generator_step, config=c))
  return jax.device_get(step(state, _batch(1), jax.random.key(2)))


def _same(a, b):
  return all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b)))


def test_encoder_gets_no_adversarial_gradient_and_the_decoder_gets_both():
  state = _state()
  blind = state.replace(params={**state.params, 'discriminator': jax.tree.map(
      np.zeros_like, state.params['discriminator'])})  # a constant D: no adversarial gradient
  full, full_m = _generator_update(state)
  vae_only, _ = _generator_update(blind)
  adv_only, _ = _generator_update(state, gamma=0.0)
  nothing, _ = _generator_update(blind, gamma=0.0)
  # The encoder's update is the VAE's, whatever D says.
  jax.tree.map(np.testing.assert_array_equal, full.params['encoder'],
               vae_only.params['encoder'])
  assert not _same(full.params['encoder'], state.params['encoder'])
  # The decoder moves with D's gradient and with the reconstruction's, and with neither
  # (gamma 0, a constant D) it does not move at all: no third gradient reaches it.
  dec = lambda s: s.params['decoder']
  assert not _same(dec(full), dec(vae_only)) and not _same(dec(full), dec(adv_only))
  assert not _same(dec(adv_only), dec(state))
  jax.tree.map(np.testing.assert_array_equal, dec(nothing), dec(jax.device_get(state)))
  # Generator updates never touch the discriminator.
  jax.tree.map(np.testing.assert_array_equal, full.params['discriminator'],
               jax.device_get(state.params['discriminator']))
  assert np.isfinite(full_m['adv_loss']) and np.isfinite(full_m['rec_nll'])


def test_learned_similarity_adds_a_feature_loss_into_the_decoder_only():
  state = _state()
  plain, _ = _generator_update(state)
  feat, m = _generator_update(state, feature_weight=1.0)
  assert m['feature_loss'] > 0
  jax.tree.map(np.testing.assert_array_equal, feat.params['encoder'], plain.params['encoder'])
  assert not _same(feat.params['decoder'], plain.params['decoder'])


def test_discriminator_reads_reals_prior_samples_and_reconstructions():
  c = _config()
  step = jax.jit(functools.partial(vae_gan.discriminator_step, config=c))
  state = _state()
  new, m = jax.device_get(step(state, _batch(3), jax.random.key(4)))
  assert not _same(new.params['discriminator'], jax.device_get(state.params['discriminator']))
  jax.tree.map(np.testing.assert_array_equal, new.params['decoder'],
               jax.device_get(state.params['decoder']))
  assert 0 <= m['acc'] <= 1 and np.isfinite(m['loss'])
  sched = vae_gan.schedule(c)
  assert [(p.name, p.updates, p.batches) for p in sched.phases] == [
      ('vae', 2, 1), ('d_pretrain', 1, 1), ('round', 2, 2)]

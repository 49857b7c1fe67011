"""`cross_align` (Shen et al. 2017): the threshold gate, the generator's gradient through
its one forward pass, and the transfer command end to end."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fake_batches import padded_batch, terminated_at, without_rates
from jaxtextgen.config import base_config
from jaxtextgen.steps import cross_align
from jaxtextgen.train import trainer
from jaxtextgen.train.writer import read_metrics
from test_ctrl_gen import toy_config

pytestmark = pytest.mark.usefixtures('quick_compile')
V, T, B, Z = 13, 6, 4, 5
BOS, EOS, UNK = 1, 2, 3


def _config(**fields):
  c = base_config()
  c.algorithm = 'cross_align'
  c.model.emb_dim, c.model.hidden_size = 8, 8
  c.ae.latent_dim = Z
  c.data.max_len, c.data.num_classes = T, 2
  c.num_train_steps = 10
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.grad_clip = 'sgd', 1.0, 0.0
  g = c.gan
  g.d_filter_sizes, g.d_num_filters, g.d_dropout, g.d_two_class = (1, 2), (3, 3), 0.0, False
  c.cross_align.style_dim = 3
  c.cross_align.update(fields)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=BOS, eos_id=EOS, pad_id=0, unk_id=UNK, mask_id=4))
  return c


def _batch(seed=0):
  b = padded_batch(seed, B, T, V, first_word=5, eos=EOS)
  b['label'] = np.array([0, 1, 0, 1], np.int32)
  return b


@functools.lru_cache(maxsize=None)
def _state():
  return jax.jit(lambda rng: cross_align.init(rng, _config(), _batch()))(jax.random.key(0))


def _step(**fields):
  c = _config(**fields)
  return jax.device_get(jax.jit(functools.partial(cross_align.train_step, config=c))(
      _state(), _batch(1), jax.random.key(5)))


def _g(state):
  return {p: state.params[p] for p in ('encoder', 'decoder')}


def test_the_gate_switches_the_adversarial_update_on_and_off():
  opened, m_open = _step(gate=1e9)
  closed, m_closed = _step(gate=0.0)
  no_rho, _ = _step(gate=1e9, rho=0.0)
  assert m_open['adv_on'] == 1.0 and m_closed['adv_on'] == 0.0
  assert m_open['d0_loss'] == m_closed['d0_loss'] and np.isfinite(m_open['adv_loss'])
  # The discriminators' update does not depend on the gate.
  jax.tree.map(np.testing.assert_array_equal, opened.params['discriminator'],
               closed.params['discriminator'])
  # Closed, the generator's update is the reconstruction's alone (as with rho = 0).
  jax.tree.map(np.testing.assert_allclose, _g(closed), _g(no_rho))
  diff = jax.tree.map(lambda a, b: np.abs(a - b).max(), _g(opened), _g(closed))
  assert max(jax.tree.leaves(diff)) > 0


def test_generator_gradient_is_that_of_rec_plus_rho_adv_against_the_updated_discriminators():
  """The step pulls L_adv's gradient back through its one forward pass (jax.vjp); with
  SGD at learning rate 1 its update must be minus the direct gradient of L_rec + rho *
  L_adv with the discriminators after their update."""
  c = _config(gate=1e9, rho=0.7)
  state, batch = _state(), _batch(1)
  new, _ = _step(gate=1e9, rho=0.7)
  rng = jax.random.fold_in(jax.random.key(5), 0)
  k_g, _, k_adv = jax.random.split(rng, 3)
  styles, weight = jnp.asarray(batch['label']), jnp.asarray(batch['weight'])

  def total(g_params):
    (rec, real, fake), masks = cross_align.generator_pass(g_params, batch, k_g, config=c)
    _, g_loss = cross_align.discriminator_losses(new.params['discriminator'], real, fake, masks,
                                                 styles, weight, k_adv, config=c)
    return (rec * weight).sum() / weight.sum() + 0.7 * (g_loss[0] + g_loss[1])

  grads = jax.jit(jax.grad(total))(_g(state))
  want = jax.tree.map(lambda p, g: p - g, jax.device_get(_g(state)), jax.device_get(grads))
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=2e-4, atol=1e-6), _g(new),
               want)


def test_config_errors_name_the_fix():
  with pytest.raises(ValueError, match=r'num_classes=3: cross_align transfers between two'):
    cross_align.check_config(_three_classes())
  with pytest.raises(ValueError, match=r'has no prior to sample from: use --mode=transfer'):
    cross_align.sample(None, None, 3, config=_config())


def _three_classes():
  c = _config()
  c.data.num_classes = 3
  return c


def test_trains_resumes_and_transfers_end_to_end(tmp_path, monkeypatch):
  c = toy_config(tmp_path, 'cross_align_yelp', **{'num_train_steps': 6, 'eval_every': 0,
                                                   'checkpoint_every': 100})
  final = trainer.train_and_evaluate(c, str(tmp_path / 'full'))
  workdir = str(tmp_path / 'ca')
  with monkeypatch.context() as m:  # stopped after step 2, then resumed
    m.setattr(trainer.pipeline, 'train_iterator', terminated_at(1))
    with pytest.raises(trainer.Stopped, match='stopped at step 2'):
      trainer.train_and_evaluate(c, workdir)
  assert trainer.train_and_evaluate(c, workdir) == final
  assert without_rates(read_metrics(workdir)) == without_rates(
      read_metrics(str(tmp_path / 'full')))
  assert np.isfinite(final['rec_nll']) and 0 <= final['d_acc'] <= 1
  assert 0 <= final['bleu_to_source'] <= 100 and 0 <= final['sentence_bleu_to_source'] <= 100
  src = tmp_path / 'mine.txt'
  src.write_text('food bad\nview good\n')
  lines = trainer.transfer_checkpoint(c, workdir, str(src), 0)
  assert [l.split('\t')[0] for l in lines] == ['food bad', 'view good']

"""`ctrl_gen` (Hu et al. 2017): which player each loss reaches, the sign of the minimum-
entropy term, the wake-sleep schedule, resume in every phase, and --mode=transfer on a toy
two-style corpus."""

import functools
import os
import runpy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fake_batches import padded_batch, terminated_at, without_rates
from jaxtextgen.config import base_config
from jaxtextgen.steps import ctrl_gen
from jaxtextgen.steps import transfer as transfer_lib
from jaxtextgen.train import trainer
from jaxtextgen.train.writer import read_metrics

pytestmark = pytest.mark.usefixtures('quick_compile')
CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
V, T, B, Z, C = 13, 6, 4, 3, 2
BOS, EOS, UNK = 1, 2, 3


def _config(**fields):
  c = base_config()
  c.algorithm = 'ctrl_gen'
  c.model.emb_dim, c.model.hidden_size = 8, 8
  c.ae.latent_dim = Z
  c.data.max_len, c.data.num_classes = T, C
  c.num_train_steps = -1
  g = c.gan
  g.mle_steps, g.d_pretrain_steps, g.rounds, g.g_steps, g.d_steps = 2, 1, 2, 1, 1
  k = c.classifier
  k.emb_dim, k.filter_sizes, k.num_filters, k.dropout = 8, (1, 2), (3, 3), 0.0
  c.ctrl_gen.update(fields)
  with c.unlocked():
    c.vocab.update(dict(size=V, bos_id=BOS, eos_id=EOS, pad_id=0, unk_id=UNK, mask_id=4))
  return c


def _batch(seed=0):
  b = padded_batch(seed, B, T, V, first_word=5, eos=EOS)
  b['label'] = np.array([0, 1, -1, 1], np.int32)  # one unlabelled sentence
  return b


@functools.lru_cache(maxsize=None)
def _state():
  return jax.jit(lambda rng: ctrl_gen.init(rng, _config(), _batch()))(jax.random.key(0))


def _zero(tree):
  return all(not np.any(np.asarray(x)) for x in jax.tree.leaves(tree))


def test_attribute_losses_reach_the_decoder_only():
  """L_attr,c and L_attr,z reach the decoder through the soft sentence; the encoder and
  the classifier, which they read, get no gradient from them."""
  state, c = _state(), _config()
  z = jax.random.normal(jax.random.key(1), (B, Z))
  codes = jnp.array([0, 1, 1, 0])

  def losses(params, which):
    s = state.replace(params=params)
    return ctrl_gen.attribute_losses(params['decoder'], s, z, codes, jax.random.key(2), 2.0,
                                     config=c)[f'attr_{which}']

  for which in ('c', 'z'):
    grads = jax.jit(jax.grad(functools.partial(losses, which=which)))(state.params)
    assert _zero(grads['encoder']) and _zero(grads['classifier']), which
    assert not _zero(grads['decoder']), which


def _same(a, b):
  return all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b)))


def test_generator_step_leaves_the_classifier_and_the_classifier_step_the_vae():
  state, c = jax.device_get(_state()), _config()
  g_new, gm = jax.jit(functools.partial(ctrl_gen.generator_step, config=c))(
      _state(), _batch(1), jax.random.key(3))
  g_new = jax.device_get(g_new)
  assert _same(g_new.params['classifier'], state.params['classifier'])
  assert not _same(g_new.params['decoder'], state.params['decoder'])
  assert not _same(g_new.params['encoder'], state.params['encoder'])
  assert all(np.isfinite(gm[k]) for k in ('attr_c', 'attr_z', 'rec_nll', 'kl'))
  # lambda_c = lambda_z = 0: the encoder's update is the same (it only ever sees L_VAE),
  # and so is the decoder's gradient from the VAE alone.
  plain, _ = jax.jit(functools.partial(ctrl_gen.generator_step,
                                       config=_config(lambda_c=0.0, lambda_z=0.0)))(
      _state(), _batch(1), jax.random.key(3))
  jax.tree.map(np.testing.assert_array_equal, g_new.params['encoder'],
               jax.device_get(plain.params['encoder']))
  assert not _same(g_new.params['decoder'], jax.device_get(plain.params['decoder']))

  d_new, dm = jax.jit(functools.partial(ctrl_gen.classifier_step, config=c))(
      _state(), _batch(1), jax.random.key(4))
  d_new = jax.device_get(d_new)
  for player in ('encoder', 'decoder'):
    assert _same(d_new.params[player], state.params[player])
  assert not _same(d_new.params['classifier'], state.params['classifier'])
  assert 0 <= dm['acc'] <= 1 and 0 <= dm['entropy'] <= np.log(C)


def test_transfer_codes_train_on_real_sentences_moved_to_another_class():
  """ctrl_gen.codes='transfer' (texar's variant): phase 'vae' decodes each sentence with
  its own code, and the attribute losses read z = its posterior mean with the other class."""
  from jaxtextgen.steps import adversarial, vae
  from jaxtextgen.steps.autoencoding import encode
  c, state, batch, rng = _config(codes='transfer'), _state(), _batch(1), jax.random.key(3)
  own = ctrl_gen.real_codes(state, batch, config=c)
  _, gm = jax.jit(functools.partial(ctrl_gen.generator_step, config=c))(state, batch, rng)
  _, k_prior, k_soft = jax.random.split(rng, 3)
  z, _ = encode(state.params['encoder'], batch['tokens'], batch['mask'], config=c)
  moved = ctrl_gen.other_codes(k_prior, own, config=c)
  np.testing.assert_array_equal(moved, 1 - own)  # two classes: the other one
  want = ctrl_gen.attribute_losses(
      state.params['decoder'], state, z, moved, k_soft, adversarial.gumbel_beta(state.step, c),
      config=c)
  np.testing.assert_allclose([gm['attr_c'], gm['attr_z']], [want['attr_c'], want['attr_z']],
                             rtol=1e-4)
  assert 'cycle' not in gm  # lambda_cycle = 0: not computed
  _, vm = jax.jit(functools.partial(ctrl_gen.vae_step, config=c))(state, batch, rng)
  _, want = vae.elbo_grads(state, {**batch, 'code': ctrl_gen.one_hot(own, c)},
                           jax.random.split(rng)[1], config=c)
  np.testing.assert_allclose(vm['rec_nll'], want['rec_nll'], rtol=1e-5)
  # With three classes, the other class is uniform over the two others, never its own.
  c3 = _config()
  c3.data.num_classes = 3
  codes = jnp.arange(3000) % 3
  draws = ctrl_gen.other_codes(jax.random.key(5), codes, config=c3)
  assert not np.any(draws == codes)
  np.testing.assert_allclose(np.mean(draws == (codes + 1) % 3), 0.5, atol=0.03)
  with pytest.raises(ValueError, match=r"codes='posterior'.*\('prior', 'transfer'\)"):
    ctrl_gen.init(jax.random.key(0), _config(codes='posterior'), _batch())


def _attending_config(**fields):
  c = _config(codes='transfer', lambda_u=0.0, **fields)
  c.ae.attention, c.vae.iw_samples = True, 0
  return c


def test_attending_decoder_reads_the_source_and_the_encoder_still_gets_l_vae_only():
  """config.ae.attention (texar's attentional autoencoder): the decoder attends over the
  encoder's states of the source sentence in L_VAE, in the soft sentences of the attribute
  losses and in transfer; the attribute losses train the decoder's attention, never the
  encoder; the classifier sees real sentences only."""
  from jaxtextgen.steps.autoencoding import encode
  c, batch, rng = _attending_config(), _batch(1), jax.random.key(3)
  state = jax.jit(lambda k: ctrl_gen.init(k, c, _batch()))(jax.random.key(0))
  assert {'attn_key', 'attn_state', 'attn_context'} <= set(state.params['decoder'])
  step = lambda cfg: jax.device_get(jax.jit(functools.partial(
      ctrl_gen.generator_step, config=cfg))(state, batch, rng))
  (new, gm), (plain, _) = step(c), step(_attending_config(lambda_c=0.0, lambda_z=0.0))
  jax.tree.map(np.testing.assert_array_equal, new.params['encoder'], plain.params['encoder'])
  assert not _same(new.params['decoder']['attn_key'], plain.params['decoder']['attn_key'])
  assert _same(new.params['classifier'], jax.device_get(state.params['classifier']))
  assert all(np.isfinite(gm[k]) for k in ('attr_c', 'attr_z', 'rec_nll'))
  # The attribute losses read the source: other memories, other losses.
  z, _, memory = encode(state.params['encoder'], batch['tokens'], batch['mask'], config=c,
                        memory=True)
  codes = 1 - ctrl_gen.real_codes(state, batch, config=c)
  attr = lambda m: ctrl_gen.attribute_losses(state.params['decoder'], state, z, codes,
                                             jax.random.key(2), 2.0, config=c,
                                             memory=m)['attr_c']
  assert abs(attr(memory) - attr({**memory, 'memory': memory['memory'] + 1.0})) > 1e-6
  # No prior sentences anywhere: the classifier step draws none, sampling refuses.
  _, dm = jax.jit(functools.partial(ctrl_gen.classifier_step, config=c))(state, batch, rng)
  assert 'unsup_loss' not in dm and np.isfinite(dm['sup_loss'])
  moved = ctrl_gen.transfer(state, batch['tokens'], batch['mask'], codes, 1 - codes, config=c)
  assert moved.shape == (B, T)
  with pytest.raises(ValueError, match=r'has no prior to sample: use --mode=transfer'):
    ctrl_gen.sample(state, rng, 2, config=c, label=1)
  for bad in (dict(codes='prior'), dict(lambda_u=0.1)):
    cfg = _attending_config()
    cfg.ctrl_gen.update(bad)
    with pytest.raises(ValueError, match=r"needs ctrl_gen.codes='transfer' and nothing that"):
      ctrl_gen.init(jax.random.key(0), cfg, _batch())
  from jaxtextgen.steps import vae
  cfg = _attending_config()
  cfg.algorithm = 'vae'
  with pytest.raises(ValueError, match=r'only ctrl_gen .* attends over the encoder .*'
                     r"'vae' with 'lstm'.*config.ae.attention=False"):
    vae.init(jax.random.key(0), cfg, _batch())


def test_attr_to_encoder_adds_the_attribute_gradient_to_the_encoder_only():
  """ctrl_gen.attr_to_encoder (texar's variant): L_attr,c also trains the encoder, through
  the source's z and attention memory; the decoder's update is unchanged (same values),
  and with lambda_c = lambda_z = 0 the encoder gets L_VAE's update alone. Hu et al.'s prior
  codes have no source to train: one clear error."""
  batch, rng = _batch(1), jax.random.key(3)
  state = jax.jit(lambda k: ctrl_gen.init(k, _attending_config(), _batch()))(
      jax.random.key(0))

  def step(**fields):
    cfg = _attending_config(**fields)
    return jax.device_get(jax.jit(functools.partial(
        ctrl_gen.generator_step, config=cfg))(state, batch, rng))[0].params

  hu, texar = step(), step(attr_to_encoder=True)
  assert not _same(texar['encoder'], hu['encoder'])
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-7),
               texar['decoder'], hu['decoder'])
  jax.tree.map(np.testing.assert_array_equal,
               step(attr_to_encoder=True, lambda_c=0.0, lambda_z=0.0)['encoder'],
               step(lambda_c=0.0, lambda_z=0.0)['encoder'])
  with pytest.raises(ValueError, match=r"attr_to_encoder=True .* needs ctrl_gen.codes='transfer'"):
    ctrl_gen.init(jax.random.key(0), _config(attr_to_encoder=True), _batch())


def test_minimum_entropy_term_lowers_the_loss_of_confident_predictions():
  logits = np.array([[2.0, -1.0], [0.1, 0.0], [-3.0, 3.0]])
  labels = np.array([0, 0, 1])
  beta = 0.5
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  want = -np.log(p[np.arange(3), labels]) + beta * -(p * np.log(p)).sum(-1)
  got = ctrl_gen.min_entropy_loss(jnp.asarray(logits, jnp.float32), jnp.asarray(labels), beta)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # With beta > 0, of two predictions equally right about c, the more certain one costs less
  # only through the entropy term; a gradient step on the entropy part sharpens q_D.
  h = lambda l: ctrl_gen.min_entropy_loss(l, jnp.array([0]), 1.0) - ctrl_gen.min_entropy_loss(
      l, jnp.array([0]), 0.0)
  flat = jnp.array([[0.3, 0.0]])
  assert float(h(flat - 0.1 * jax.grad(lambda l: h(l).sum())(flat))[0]) < float(h(flat)[0])


def test_wake_sleep_schedule_follows_the_config():
  sched = ctrl_gen.schedule(_config())
  assert [(p.name, p.updates, p.batches) for p in sched.phases] == [
      ('vae', 2, 1), ('classifier', 1, 1), ('round', 2, 2)]


# --- end to end through the trainer, on a toy two-style corpus ---------------------------------

STYLE_WORD = ('bad', 'good')  # style-0 sentences end in 'bad', style-1 in 'good'
CONTENT = ('food', 'staff', 'room', 'view', 'price', 'menu')


def _corpus(tmp_path):
  d = tmp_path / 'styles'
  if not d.exists():
    d.mkdir()
    rs = np.random.RandomState(0)
    for split, n in (('train', 400), ('validation', 40)):
      lines = []
      for i in range(n):
        label = i % 2
        words = list(rs.choice(CONTENT, rs.randint(1, 4))) + [STYLE_WORD[label]]
        lines.append(f'{" ".join(words)}\t{label}\n')
      (d / f'{split}.txt').write_text(''.join(lines))
  return d


def toy_config(tmp_path, name, **overrides):
  c = runpy.run_path(os.path.join(CONFIGS, f'{name}.py'))['get_config']('smoke')
  c.data.corpus, c.data.corpus_dir = 'text_lines', str(_corpus(tmp_path))
  c.data.cache_dir = str(tmp_path / 'cache')
  c.data.min_count, c.data.max_len, c.data.sort_chunk, c.data.trim_multiple = 1, 6, 0, 0
  for key, value in overrides.items():
    node = c
    *path, leaf = key.split('.')
    for p in path:
      node = node[p]
    node[leaf] = value
  return c


def test_transfer_flips_the_style_of_the_toy_corpus(tmp_path):
  c = toy_config(tmp_path, 'ctrl_gen_yelp', **{
      'gan.mle_steps': 0, 'gan.d_pretrain_steps': 40, 'gan.rounds': 150,
      'optimizer.learning_rate': 1e-2, 'gan.d_learning_rate': 1e-2, 'eval_every': 0,
      'vae.kl_schedule': 'constant', 'vae.word_dropout': 0.0, 'ctrl_gen.lambda_c': 1.0,
      'model.hidden_size': 32,
      'model.emb_dim': 16, 'batch_size': 16})
  workdir = str(tmp_path / 'ctrl')
  final = trainer.train_and_evaluate(c, workdir)
  assert final['classifier_acc'] == 1.0
  assert final['bleu_to_source'] >= 0 and 'transfer_acc' not in final  # no judge given
  assert 0 <= final['classifier_transfer_acc'] <= 1  # q_D's own score of the transfers
  src = tmp_path / 'mine.txt'
  src.write_text('food staff bad\nroom view bad\nprice bad\n')
  lines = trainer.transfer_checkpoint(c, workdir, str(src), 1)
  assert [l.split('\t')[0] for l in lines] == ['food staff bad', 'room view bad', 'price bad']
  outputs = [l.split('\t')[1].split() for l in lines]
  assert all(o and o[-1] == 'good' for o in outputs), lines
  # Written beside the checkpoint by default, or where --output says.
  assert os.path.exists(os.path.join(workdir, f'transfer_{c.gan.d_pretrain_steps + 300}.txt'))
  out = tmp_path / 'out.tsv'
  assert trainer.transfer_checkpoint(c, workdir, str(src), 1, str(out)) == lines
  assert out.read_text().splitlines() == lines
  c.transfer.decode = 'beam'
  beams = trainer.transfer_checkpoint(c, workdir, str(src), 1, str(out))
  assert all(l.split('\t')[1].split()[-1] == 'good' for l in beams), beams
  c.transfer.decode = 'greedy'

  # Bad input: one clear error each.
  with pytest.raises(ValueError, match=r'--to_label=2 is not a class .* 0..1'):
    trainer.transfer_checkpoint(c, workdir, str(src), 2)
  (tmp_path / 'empty.txt').write_text('\n\n')
  with pytest.raises(ValueError, match=r'holds no sentences'):
    trainer.transfer_checkpoint(c, workdir, str(tmp_path / 'empty.txt'), 1)
  lm = toy_config(tmp_path, 'lm_yelp')
  with pytest.raises(ValueError, match=r"'lm' has no attribute code.*ctrl_gen, cross_align"):
    trainer.transfer_checkpoint(lm, workdir, str(src), 1)


def test_stopped_in_every_phase_resumes_to_the_same_metrics(tmp_path, monkeypatch):
  """vae 0-1, classifier 2-3, rounds 4-5 and 6-7: stopped inside each phase and resumed,
  the run logs the rows of the uninterrupted one."""
  c = toy_config(tmp_path, 'ctrl_gen_yelp', **{
      'gan.mle_steps': 2, 'gan.d_pretrain_steps': 2, 'gan.rounds': 2, 'log_every': 3,
      'checkpoint_every': 100, 'eval_every': 0})
  full = trainer.train_and_evaluate(c, str(tmp_path / 'full'))
  workdir = str(tmp_path / 'stopped')
  for batch_index, step in ((0, 1), (1, 3), (1, 6)):  # batch indices from each resume
    with monkeypatch.context() as m:
      m.setattr(trainer.pipeline, 'train_iterator', terminated_at(batch_index))
      with pytest.raises(trainer.Stopped, match=f'stopped at step {step}'):
        trainer.train_and_evaluate(c, workdir)
  assert trainer.train_and_evaluate(c, workdir) == full
  rows = without_rates(read_metrics(workdir))
  assert rows == without_rates(read_metrics(str(tmp_path / 'full')))
  names = set().union(*rows)
  assert {'vae/loss', 'classifier/sup_loss', 'g/attr_c', 'g/attr_z', 'd/unsup_loss'} <= names


@pytest.mark.parametrize('name', ['ctrl_gen_yelp', 'cross_align_yelp'])
def test_smoke_config_on_the_transformer_decoder(tmp_path, name):
  c = toy_config(tmp_path, name, **{'model.decoder': 'transformer', 'model.num_heads': 2,
                                    'model.mlp_dim': 32, 'eval_every': 0})
  final = trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert final and all(np.isfinite(v) for v in final.values()), final


def test_cycle_loss_reconstructs_the_source_from_its_transfer():
  """ctrl_gen.lambda_cycle: L_cycle is -log p(x | the transfer y encoded, x's own code),
  with the decoder attending over y's states. With straight-through one-hots y is a token
  sentence, so L_cycle equals sentence_nll of x given encode(y); it trains the decoder
  only, and Hu et al.'s prior codes refuse it."""
  from jaxtextgen.models.sampler import relaxed_sample
  from jaxtextgen.steps import autoencoding, vae
  from jaxtextgen.steps.autoencoding import encode
  from jaxtextgen.steps.common import shift_right
  c, batch = _attending_config(lambda_cycle=1.0), _batch(1)
  c.gan.gumbel_hard = True
  state = jax.jit(lambda k: ctrl_gen.init(k, c, _batch()))(jax.random.key(0))
  own = ctrl_gen.real_codes(state, batch, config=c)
  z, _, memory = encode(state.params['encoder'], batch['tokens'], batch['mask'], config=c,
                        memory=True)
  source = {'tokens': batch['tokens'], 'mask': batch['mask'], 'code': own}
  k = jax.random.key(2)
  cycle = lambda code: ctrl_gen.attribute_losses(
      state.params['decoder'], state, z, 1 - own, k, 2.0, config=c, memory=memory,
      source={**source, 'code': code})['cycle']
  soft = relaxed_sample(autoencoding.make_decoder(c), {'params': state.params['decoder']}, k,
                        batch=B, length=T, bos_id=BOS, eos_id=EOS, pad_id=0, gumbel=True,
                        inverse_temperature=2.0, hard=True,
                        cond=vae.latent_condition(z, {'code': ctrl_gen.one_hot(1 - own, c)},
                                                  memory))
  y = jnp.argmax(soft.probs, -1)
  mean, _, y_memory = encode(state.params['encoder'], y, soft.mask, config=c, memory=True)
  want = autoencoding.sentence_nll(
      state.params['decoder'], vae.latent_condition(mean, {'code': ctrl_gen.one_hot(own, c)},
                                                    y_memory),
      shift_right(batch['tokens'], BOS), batch['tokens'], batch['mask'], config=c).mean()
  np.testing.assert_allclose(cycle(own), want, rtol=1e-5)
  assert abs(cycle(1 - own) - want) > 1e-4  # the source's own code, not the target's

  def step(**fields):
    cfg = _attending_config(**fields)
    cfg.gan.gumbel_hard = True
    return jax.device_get(jax.jit(functools.partial(
        ctrl_gen.generator_step, config=cfg))(state, batch, jax.random.key(3)))

  (new, gm), (plain, pm) = step(lambda_cycle=1.0), step()
  assert np.isfinite(gm['cycle']) and gm['cycle'] > 0 and 'cycle' not in pm
  jax.tree.map(np.testing.assert_array_equal, new.params['encoder'], plain.params['encoder'])
  assert not _same(new.params['decoder'], plain.params['decoder'])
  with pytest.raises(ValueError, match=r"lambda_cycle=0.5 .* needs ctrl_gen.codes='transfer'"):
    ctrl_gen.init(jax.random.key(0), _config(lambda_cycle=0.5), _batch())


def test_attr_dropout_reads_the_classifier_with_its_training_dropout():
  """ctrl_gen.attr_dropout (texar's classifier in TRAIN mode): L_attr,c reads q_D with
  dropout, so with classifier.dropout 0.5 the loss and the decoder's update change, while
  the encoder and the classifier do not; at dropout 0 nothing changes."""
  batch, rng = _batch(1), jax.random.key(3)

  def step(dropout, **fields):
    cfg = _config(codes='transfer', **fields)
    cfg.classifier.dropout = dropout
    return jax.device_get(jax.jit(functools.partial(
        ctrl_gen.generator_step, config=cfg))(_state(), batch, rng))

  (plain, pm), (noisy, nm) = step(0.5), step(0.5, attr_dropout=True)
  assert abs(pm['attr_c'] - nm['attr_c']) > 1e-4
  assert not _same(noisy.params['decoder'], plain.params['decoder'])
  for player in ('encoder', 'classifier'):
    jax.tree.map(np.testing.assert_array_equal, noisy.params[player], plain.params[player])
  (off, om), (on, onm) = step(0.0), step(0.0, attr_dropout=True)
  np.testing.assert_array_equal(om['attr_c'], onm['attr_c'])
  jax.tree.map(np.testing.assert_array_equal, on.params['decoder'], off.params['decoder'])


def test_rerank_classifier_picks_the_beam_hypothesis_q_d_prefers():
  """transfer.rerank_classifier: beam search's n-best, each scored by its length-normalised
  log-probability + w * log q_D(target | y). A huge w picks q_D's favourite, w = 0 the
  most likely; greedy decoding or a model without a classifier refuse a weight."""
  from jaxtextgen.models.sampler import beam_search
  from jaxtextgen.steps import autoencoding, vae
  from jaxtextgen.steps.autoencoding import encode
  batch, to = _batch(1), jnp.array([1, 0, 1, 0])
  # init key 1: a model whose beams hold hypotheses that q_D ranks otherwise
  state = jax.jit(lambda k: ctrl_gen.init(k, _config(), _batch()))(jax.random.key(1))

  def moved(w):
    c = _config(codes='transfer')
    c.transfer.decode, c.transfer.beam_size, c.transfer.rerank_classifier = 'beam', 3, w
    return np.asarray(ctrl_gen.transfer(state, batch['tokens'], batch['mask'], to, 1 - to,
                                        config=c)), c

  plain, c = moved(0.0)
  mean, _ = encode(state.params['encoder'], batch['tokens'], batch['mask'], config=c)
  hyps, scores = beam_search(
      autoencoding.make_decoder(c), {'params': state.params['decoder']}, batch=B, beam=3,
      length=T, bos_id=BOS, eos_id=EOS, pad_id=0, n_best=True,
      cond=vae.latent_condition(mean, {'code': ctrl_gen.one_hot(to, c)}))
  logq = jax.nn.log_softmax(ctrl_gen.classify_tokens(state, hyps.reshape(B * 3, T), config=c))
  logq = np.asarray(logq).reshape(B, 3, C)[np.arange(B), :, np.asarray(to)]
  hyps, scores = np.asarray(hyps), np.asarray(scores)
  np.testing.assert_array_equal(plain, hyps[np.arange(B), scores.argmax(-1)])
  np.testing.assert_array_equal(moved(1e6)[0], hyps[np.arange(B), logq.argmax(-1)])
  assert not np.array_equal(moved(1e6)[0], plain)  # on this batch, q_D prefers others
  mid = scores + 0.7 * logq
  np.testing.assert_array_equal(moved(0.7)[0], hyps[np.arange(B), mid.argmax(-1)])
  bad = _config(codes='transfer')
  bad.transfer.rerank_classifier = 1.0  # greedy
  with pytest.raises(ValueError, match=r"rerank_classifier=1.0 .*decode='beam' \(got 'greedy'\)"):
    ctrl_gen.init(jax.random.key(0), bad, _batch())
  bad.transfer.decode, bad.algorithm = 'beam', 'cross_align'  # no classifier of its own
  with pytest.raises(ValueError, match=r"a model with a classifier \(ctrl_gen; got 'cross_"):
    transfer_lib.check_config(bad)

"""`ctrl_gen`: controlled generation of text (Hu et al. 2017, "Toward Controlled Generation
of Text", sections 3-4), as published: a VAE whose decoder reads an unstructured latent z
and an attribute code c, and a classifier that judges whether a sentence carries its c.

Players:
  'encoder'     q_E(z|x), the VAE's Gaussian encoder (`vae`, `autoencoding`)
  'decoder'     G(z, c), the shared decoder of config.model.decoder conditioned on
                [z, one-hot c] (`vae.latent_condition`): the LSTM through its initial state
                and every input step, the Transformer through every Conditional LayerNorm
  'classifier'  q_D(c|x), the classifier of config.classifier (Kim's CNN with
                data.num_classes outputs, `classifier.make_encoder`); it reads token ids
                and soft (Gumbel-softmax) sentences alike

Losses (means over sentences; z ~ N(0, I) and c ~ uniform for generated sentences):
  L_VAE     the VAE's annealed negative ELBO (`vae.elbo_grads`: config.vae's KL schedule,
            word dropout, free bits), with the code of a real sentence its label when
            labelled, else q_D's most likely class (no gradient)
  L_attr,c  -log q_D(c | G~_tau(z, c)): the classifier must recover c from the decoder's
            soft sentence, Gumbel-softmax at inverse temperature beta = 1 / tau
            (`adversarial.gumbel_beta`: config.gan.gumbel_* anneal beta from 1 up to
            gumbel_beta_max, i.e. tau towards 0); q_D with its training dropout when
            ctrl_gen.attr_dropout (texar's classifier runs in TRAIN mode there)
  L_attr,z  -log q_E(z | G~_tau(z, c)): the Gaussian density of z under the encoder's
            posterior of the soft sentence (summed over z's dimensions), so z and c stay
            independent
  L_s       -log q_D(c_L | x_L) on the labelled real sentences
  L_u       -log q_D(c | x^) + entropy_beta * H(q_D(. | x^)) on sentences x^ ~ G(z, c)
            sampled at temperature 1: minimising it LOWERS the entropy of q_D's
            prediction (minimum-entropy regularisation; Hu et al.'s eq. 7 maximises the
            negation)
  L_cycle   (ctrl_gen.lambda_cycle > 0, codes 'transfer' only; not in Hu et al.)
            -log p(x | z~, c_x): the soft transfer G~(z, c') of a real sentence x is encoded
            (z~ its posterior mean, and its states for an attending decoder) and decoded,
            teacher-forced, back to x with x's own code: the transfer keeps what
            reconstructs its source (back-translation, as in Lample et al. 2019)
Who is updated by what:
  encoder     L_VAE only (the attribute losses read the encoder, never train it); with
              ctrl_gen.attr_to_encoder (codes 'transfer' only, texar's variant) also
              lambda_c L_attr,c + lambda_z L_attr,z (+ lambda_cycle L_cycle) through the
              real sentence's z and attention memory (the encoder reading the soft
              sentence stays a constant)
  decoder     L_VAE + ctrl_gen.lambda_c * L_attr,c + ctrl_gen.lambda_z * L_attr,z
              (+ ctrl_gen.lambda_cycle * L_cycle, through both of its decoder passes)
  classifier  L_s + ctrl_gen.lambda_u * L_u (its parameters are constants of the
              generator's losses)

Wake-sleep schedule (`adversarial.gan_schedule`, lengths from config.gan at start-up):
  'vae'         gan.mle_steps VAE steps on all sentences, with c ~ p(c) (Hu et al.'s
                Algorithm 1: "initialise the base VAE ... with c sampled from the prior")
  'classifier'  gan.d_pretrain_steps steps of L_s on labelled sentences
  'round'       gan.rounds rounds of g_steps generator updates then d_steps classifier
                updates, one fused update each
Codes (config.ctrl_gen.codes): 'prior' is Hu et al.'s; 'transfer' is texar's simplified
variant (texar-tf's text_style_transfer), an autoencoder trained to move sentences: phase
'vae' decodes each sentence with its own code, and L_attr,c / L_attr,z read G~(z, c') for
z = each real sentence's posterior mean (no gradient to the encoder unless
ctrl_gen.attr_to_encoder) and c' another class than its own, with L_attr,z at unit
variance (configs/ctrl_gen_yelp.py:texar).
Semi-supervised: config.data.label_fraction keeps the labels of that fraction of train
sentences; the others are unlabelled text (L_VAE with q_D's code, no L_s).

    from jaxtextgen.steps import ctrl_gen
    state = ctrl_gen.init(rng, config, batch)
    tokens = ctrl_gen.sample(state, rng, 8, config=config, label=1)
    moved = ctrl_gen.transfer(state, tokens, mask, to_labels, from_labels, config=config)

Eval (on the eval split): the VAE's metrics (`vae.finalize_eval`) with each sentence's true
code; classifier_acc, q_D's accuracy; with config.eval.judge, judge_acc /
judge_acc_class{c}: the judge's accuracy on eval.judge_samples prior sentences per class
(z ~ N(0, I), decoded as config.transfer.decode says: greedy by default); and the transfer
metrics of `steps.transfer` (every eval sentence moved to the other class: z = its
posterior mean, c = the target).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtextgen.models.sampler import relaxed_sample
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.objectives.divergences import entropy, gaussian_log_density
from jaxtextgen.steps import adversarial, autoencoding, classifier, transfer as transfer_lib, vae
from jaxtextgen.steps.autoencoding import encode, global_noise
from jaxtextgen.steps.common import TrainState, global_sum, sample_labels, shift_right


CODES = ('prior', 'transfer')


def _num_classes(config) -> int:
  c = config.data.num_classes
  if c < 2:
    raise ValueError(f'config.data.num_classes={c}: ctrl_gen needs the classes of a labelled '
                     'corpus (at least 2), e.g. 2 for yelp_sentiment')
  return c


def init(rng: jax.Array, config, sample_batch) -> TrainState:
  """Encoder and decoder (`vae.init`, the decoder reading [z, one-hot c]) and the
  classifier (`classifier.init`'s model, config.gan.d_* optimizer)."""
  c = _num_classes(config)
  cg = config.ctrl_gen
  if min(cg.lambda_c, cg.lambda_z, cg.lambda_u, cg.entropy_beta, cg.lambda_cycle) < 0:
    raise ValueError('config.ctrl_gen: need lambda_c, lambda_z, lambda_u, entropy_beta, '
                     f'lambda_cycle >= 0; got {cg.lambda_c}, {cg.lambda_z}, {cg.lambda_u}, '
                     f'{cg.entropy_beta}, {cg.lambda_cycle}')
  if cg.codes not in CODES:
    raise ValueError(f'config.ctrl_gen.codes={cg.codes!r}: expected one of {CODES}')
  if cg.attr_to_encoder and cg.codes != 'transfer':
    raise ValueError("config.ctrl_gen.attr_to_encoder=True trains the encoder through the real "
                     "sentences' z that the attribute losses move, which needs "
                     f"ctrl_gen.codes='transfer' (got {cg.codes!r}); with 'prior' z ~ N(0, I)")
  if cg.lambda_cycle and cg.codes != 'transfer':
    raise ValueError(f'config.ctrl_gen.lambda_cycle={cg.lambda_cycle} reconstructs the real '
                     "sentences that the attribute losses move, which needs ctrl_gen.codes="
                     f"'transfer' (got {cg.codes!r}); set lambda_cycle=0 for Hu et al.'s prior")
  if config.ae.attention and (cg.codes != 'transfer' or cg.lambda_u or config.vae.iw_samples
                              or config.eval.bleu):
    raise ValueError("config.ae.attention=True decodes from a real sentence's encoder states, "
                     "so it needs ctrl_gen.codes='transfer' and nothing that decodes from the "
                     f'prior: got codes={cg.codes!r}, ctrl_gen.lambda_u={cg.lambda_u}, '
                     f'vae.iw_samples={config.vae.iw_samples}, eval.bleu={config.eval.bleu}; '
                     'set the last three to 0 / False (configs/ctrl_gen_yelp.py:texar).')
  adversarial.check_config(config)
  transfer_lib.check_config(config, reranks=True)
  k_vae, k_cls = jax.random.split(rng)
  state = vae.init(k_vae, config, sample_batch, code_dim=c, attention_ok=True)
  cls = classifier.init(k_cls, config, sample_batch).params['classifier']
  return TrainState.create({**state.params, 'classifier': cls},
                           {**state.tx, 'classifier': adversarial.discriminator_optimizer(config)})


def one_hot(labels: jax.Array, config) -> jax.Array:
  return jax.nn.one_hot(labels, _num_classes(config), dtype=jnp.float32)


def classify(params, x: jax.Array, mask: jax.Array, *, config, rng=None) -> jax.Array:
  """q_D's logits [batch, C] of ids [batch, T] or soft sentences [batch, T, V]."""
  return classifier.predict_logits(params, x, config=config, rng=rng, mask=mask)


def real_codes(state: TrainState, batch, *, config) -> jax.Array:
  """int [batch]: each real sentence's label, or q_D's most likely class when it has none."""
  logits = classify(state.params['classifier'], batch['tokens'], batch['mask'], config=config)
  return jnp.where(batch['label'] >= 0, batch['label'], jnp.argmax(logits, -1))


def prior_codes(rng: jax.Array, n: int, *, config, axis_name=None):
  """(z ~ N(0, I) [n, Z], c ~ uniform int [n]) for the GLOBAL batch, this device's rows."""
  k_z, k_c = jax.random.split(rng)
  z = global_noise(k_z, jax.random.normal, (n, config.ae.latent_dim), axis_name)
  draw_c = lambda k, shape: jax.random.randint(k, shape, 0, _num_classes(config))
  return z, global_noise(k_c, draw_c, (n,), axis_name)


def other_codes(rng: jax.Array, codes: jax.Array, *, config, axis_name=None) -> jax.Array:
  """int [batch]: for each code, a class drawn uniformly among the OTHER classes."""
  classes = _num_classes(config)
  draw = lambda k, shape: jax.random.randint(k, shape, 1, classes)
  return (codes + global_noise(rng, draw, codes.shape, axis_name)) % classes


def vae_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """Phase 'vae': one step of encoder and decoder on L_VAE with c ~ p(c) (ctrl_gen.codes
  'prior'), or each sentence's own code ('transfer')."""
  k_c, k_vae = jax.random.split(rng)
  if config.ctrl_gen.codes == 'transfer':
    c = real_codes(state, batch, config=config)
  else:
    _, c = prior_codes(k_c, batch['tokens'].shape[0], config=config, axis_name=axis_name)
  grads, metrics = vae.elbo_grads(state, {**batch, 'code': one_hot(c, config)}, k_vae,
                                  config=config, axis_name=axis_name)
  for player in autoencoding.PLAYERS:
    state = state.apply_gradients(player, grads[player])
  return state, metrics


def attribute_losses(decoder_params, state: TrainState, z: jax.Array, c: jax.Array,
                     rng: jax.Array, beta, *, config, memory: dict | None = None,
                     source: dict | None = None, classifier_rng=None) -> dict:
  """{'attr_c': L_attr,c, 'attr_z': L_attr,z, 'attr_acc': q_D's accuracy on the soft
  sentences} of the decoder's Gumbel-softmax sentences G~(z, c) at inverse temperature
  beta; differentiable in `decoder_params` only (the classifier and the encoder are read
  from `state`). With ctrl_gen.codes 'transfer', L_attr,z is the density at unit variance;
  `memory`: the source sentences' encoder states, for an attending decoder
  (config.ae.attention); `source` ({'tokens', 'mask', 'code' int [batch]}: the sentences
  that z encodes) adds 'cycle': L_cycle = -log p(source | the soft sentence's posterior
  mean and states, the source's code), per sentence, teacher-forced without dropout;
  `classifier_rng`: q_D's dropout key (ctrl_gen.attr_dropout), None: q_D deterministic."""
  v, g = config.vocab, config.gan
  soft = relaxed_sample(autoencoding.make_decoder(config), {'params': decoder_params}, rng,
                        batch=z.shape[0], length=config.data.max_len, bos_id=v.bos_id,
                        eos_id=v.eos_id, pad_id=v.pad_id, gumbel=True,
                        inverse_temperature=beta, hard=g.gumbel_hard,
                        cond=vae.latent_condition(z, {'code': one_hot(c, config)}, memory))
  frozen = jax.lax.stop_gradient(state.params)
  logits = classify(frozen['classifier'], soft.probs, soft.mask, config=config,
                    rng=classifier_rng)
  attr_c = optax.softmax_cross_entropy_with_integer_labels(logits, c).mean()
  mean, logvar, soft_memory = encode(frozen['encoder'], soft.probs, soft.mask, config=config,
                                     memory=True)
  if config.ctrl_gen.codes == 'transfer':
    # An (almost) deterministic autoencoder's variances go to 0, and the density with
    # them: recover z at unit variance, i.e. a squared distance.
    logvar = jnp.zeros_like(logvar)
  out = {'attr_c': attr_c, 'attr_z': -gaussian_log_density(z, mean, logvar).sum(-1).mean(),
         'attr_acc': (jnp.argmax(logits, -1) == c).mean()}
  if source is not None:
    tokens = source['tokens']
    back = vae.latent_condition(mean, {'code': one_hot(source['code'], config)}, soft_memory)
    out['cycle'] = autoencoding.sentence_nll(
        decoder_params, back, shift_right(tokens, v.bos_id), tokens, source['mask'],
        config=config).mean()
  return out


def generator_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """One update of encoder (L_VAE) and decoder (L_VAE + lambda_c L_attr,c + lambda_z
  L_attr,z). Returns (state, the VAE's metrics plus 'attr_c', 'attr_z', 'attr_acc',
  'beta')."""
  k_vae, k_prior, k_soft = jax.random.split(rng, 3)
  cg = config.ctrl_gen
  own = real_codes(state, batch, config=config)
  code = one_hot(own, config)
  grads, metrics = vae.elbo_grads(state, {**batch, 'code': code}, k_vae, config=config,
                                  axis_name=axis_name)
  beta = adversarial.gumbel_beta(state.step, config)
  trained = ('decoder', 'encoder') if cg.attr_to_encoder else ('decoder',)
  k_cls = (autoencoding.dropout_key(jax.random.fold_in(k_soft, 1), axis_name)
           if cg.attr_dropout else None)
  if cg.codes == 'transfer':
    c = other_codes(k_prior, own, config=config, axis_name=axis_name)
  else:
    z, c = prior_codes(k_prior, batch['tokens'].shape[0], config=config, axis_name=axis_name)

  def loss_fn(params):
    source = None
    if cg.codes == 'transfer':  # the real sentences' z and states, moved to c
      encoder = (params['encoder'] if cg.attr_to_encoder
                 else jax.lax.stop_gradient(state.params['encoder']))
      z_in, _, memory = encode(encoder, batch['tokens'], batch['mask'], config=config,
                               memory=True)
      if cg.lambda_cycle:
        source = {'tokens': batch['tokens'], 'mask': batch['mask'], 'code': own}
    else:
      z_in, memory = z, None
    aux = attribute_losses(params['decoder'], state, z_in, c, k_soft, beta, config=config,
                           memory=memory, source=source, classifier_rng=k_cls)
    loss = cg.lambda_c * aux['attr_c'] + cg.lambda_z * aux['attr_z']
    return loss + cg.lambda_cycle * aux.get('cycle', 0.0), aux

  attr_grads, aux = jax.grad(loss_fn, has_aux=True)({k: state.params[k] for k in trained})
  attr_grads, aux = adversarial.pmean((attr_grads, aux), axis_name)
  for player in autoencoding.PLAYERS:
    g = grads[player]
    if player in attr_grads:
      g = jax.tree.map(jnp.add, g, attr_grads[player])
    state = state.apply_gradients(player, g)
  return state, {**metrics, **aux, 'beta': beta}


def min_entropy_loss(logits: jax.Array, labels: jax.Array, beta) -> jax.Array:
  """L_u of each generated sentence [batch]: -log q_D(c | x^) + beta * H(q_D(. | x^)) for
  logits [batch, C] and the codes c [batch] it was generated with; minimising it lowers
  the entropy of the prediction (Hu et al.'s minimum-entropy regulariser)."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels) + beta * entropy(logits)


def classifier_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None,
                    unsupervised: bool = True):
  """One classifier update on L_s (+ lambda_u * L_u on fresh temperature-1 sentences of
  the decoder when `unsupervised` and lambda_u > 0). Returns (state, {'loss', 'sup_loss',
  'acc' (on the labelled real sentences) and 'unsup_loss', 'entropy', 'fake_acc'})."""
  k_prior, k_sample, k_real, k_fake = jax.random.split(rng, 4)
  cg, v = config.ctrl_gen, config.vocab
  unsupervised = unsupervised and cg.lambda_u > 0
  labelled = batch['weight'] * (batch['label'] >= 0)
  count = jnp.maximum(global_sum(labelled.sum(), axis_name), 1.0)
  labels = jnp.maximum(batch['label'], 0)
  n = batch['tokens'].shape[0]
  if unsupervised:
    z, c = prior_codes(k_prior, n, config=config, axis_name=axis_name)
    fake = sample_tokens(autoencoding.make_decoder(config), {'params': state.params['decoder']},
                         k_sample, batch=n, length=config.data.max_len, bos_id=v.bos_id,
                         eos_id=v.eos_id, pad_id=v.pad_id,
                         cond=vae.latent_condition(z, {'code': one_hot(c, config)}))
  n_global = global_sum(jnp.asarray(n, jnp.float32), axis_name)

  def loss_fn(params):
    logits = classify(params, batch['tokens'], batch['mask'], config=config, rng=k_real)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    sup = (nll * labelled).sum() / count
    aux = {'sup_loss': sup, 'acc': ((jnp.argmax(logits, -1) == labels) * labelled).sum() / count}
    loss = sup
    if unsupervised:
      f_logits = classify(params, fake.tokens, fake.mask, config=config, rng=k_fake)
      h = entropy(f_logits)
      unsup = min_entropy_loss(f_logits, c, cg.entropy_beta).sum() / n_global
      loss = loss + cg.lambda_u * unsup
      aux.update(unsup_loss=unsup, entropy=h.sum() / n_global,
                 fake_acc=(jnp.argmax(f_logits, -1) == c).sum() / n_global)
    return loss, aux

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params['classifier'])
  grads, loss, aux = global_sum((grads, loss, aux), axis_name)
  return state.apply_gradients('classifier', grads), {'loss': loss, **aux}


def supervised_step(state: TrainState, batch, rng: jax.Array, *, config, axis_name=None):
  """Phase 'classifier': `classifier_step` on L_s alone."""
  return classifier_step(state, batch, rng, config=config, axis_name=axis_name,
                         unsupervised=False)


def train_step(state: TrainState, batches, rng: jax.Array, *, config, axis_name=None):
  """One wake-sleep round (`adversarial.round_step`) on batches stacked
  [g_steps + d_steps, B, T]: g_steps `generator_step`s, then d_steps `classifier_step`s."""
  return adversarial.round_step(state, batches, rng, config=config, axis_name=axis_name,
                                generator=generator_step, discriminator=classifier_step)


def schedule(config):
  """vae (gan.mle_steps), classifier (gan.d_pretrain_steps), round (gan.rounds)."""
  return adversarial.gan_schedule(config, mle=vae_step, discriminator=classifier_step,
                                  generator=generator_step, pretrain='vae',
                                  d_pretrain=supervised_step, d_pretrain_name='classifier')


# --- eval, sampling, transfer -------------------------------------------------------------------

def _eval_batch(state: TrainState, batch, *, config):
  return {**batch, 'code': one_hot(real_codes(state, batch, config=config), config)}


def eval_step(state: TrainState, batch, rng: jax.Array, *, config) -> dict:
  """`vae.eval_step` with each sentence's code (its label, else q_D's class), and q_D's
  correct predictions on the labelled sentences."""
  sums = vae.eval_step(state, _eval_batch(state, batch, config=config), rng, config=config)
  logits = classify(state.params['classifier'], batch['tokens'], batch['mask'], config=config)
  labelled = batch['weight'] * (batch['label'] >= 0)
  sums['cls_correct'] = ((jnp.argmax(logits, -1) == batch['label']) * labelled).sum()
  sums['cls_count'] = labelled.sum()
  return sums


def finalize_eval(sums: dict) -> dict:
  """The VAE's metrics and classifier_acc (q_D on the labelled eval sentences)."""
  sums = dict(sums)
  correct, count = sums.pop('cls_correct'), sums.pop('cls_count')
  return {**vae.finalize_eval(sums),
          'classifier_acc': float(correct / count) if count else float('nan')}


def generate(state: TrainState, rng: jax.Array, labels: jax.Array, *, config,
             knobs: str = 'transfer') -> jax.Array:
  """Sentences int32 [n, max_len] from z ~ N(0, I) and the codes of `labels` [n]: decoded as
  config.transfer.decode says (knobs='transfer'), or with config.sample's knobs. A
  decoder that attends over a source sentence (config.ae.attention) has no prior."""
  if config.ae.attention:
    raise ValueError('this ctrl_gen model (config.ae.attention=True) decodes from a source '
                     "sentence's encoder states and has no prior to sample: use "
                     '--mode=transfer --input=FILE --to_label=L.')
  k_z, k_tok = jax.random.split(rng)
  z = jax.random.normal(k_z, (labels.shape[0], config.ae.latent_dim))
  cond = vae.latent_condition(z, {'code': one_hot(labels, config)})
  if knobs == 'sample':
    return autoencoding.sample_latent(state, k_tok, labels.shape[0], config=config, z=cond)
  return transfer_lib.decode(autoencoding.make_decoder(config), state.params['decoder'], cond,
                             k_tok, config=config, rerank=target_log_prob(state, labels, config))


def sample(state: TrainState, rng: jax.Array, num: int, *, config, label: int | None = None,
           **conditions) -> jax.Array:
  """`num` prior sentences with code `label` (default config.sample.label; -1: classes in
  turn), int32 [num, max_len], config.sample's temperature / top_k / top_p / greedy."""
  del conditions
  label = config.sample.label if label is None else label
  labels = sample_labels(label, num, _num_classes(config))
  return generate(state, rng, labels, config=config, knobs='sample')


def transfer(state: TrainState, tokens: jax.Array, mask: jax.Array, to_labels: jax.Array,
             from_labels: jax.Array, *, config) -> jax.Array:
  """Each sentence decoded from z = its posterior mean and the code of `to_labels`:
  int32 [n, max_len] (`steps.transfer`; the source class is not needed)."""
  del from_labels
  mean, _, memory = encode(state.params['encoder'], tokens, mask, config=config, memory=True)
  cond = vae.latent_condition(mean, {'code': one_hot(to_labels, config)}, memory)
  return transfer_lib.decode(autoencoding.make_decoder(config), state.params['decoder'], cond,
                             config=config, rerank=target_log_prob(state, to_labels, config))


def target_log_prob(state: TrainState, labels: jax.Array, config):
  """hypotheses int32 [n, beam, T] -> log q_D(labels | each) [n, beam]: the reranker of
  config.transfer.rerank_classifier."""
  def rerank(hyps):
    n, k, length = hyps.shape
    logits = classify_tokens(state, hyps.reshape(n * k, length), config=config)
    logq = jax.nn.log_softmax(logits).reshape(n, k, -1)
    return jnp.take_along_axis(logq, labels[:, None, None], axis=-1)[..., 0]
  return rerank


def classify_tokens(state: TrainState, tokens: jax.Array, *, config) -> jax.Array:
  """q_D's logits [n, C] of sentences int32 [n, T] (PAD after each)."""
  return classify(state.params['classifier'], tokens, None, config=config)


def evaluate_samples(state: TrainState, rng: jax.Array, *, config, data) -> dict:
  """judge_acc of eval.judge_samples prior sentences per class (with config.eval.judge;
  none with config.ae.attention, which has no prior), and the transfer metrics of the
  eval split (`steps.transfer.evaluate_transfer`), with classifier_transfer_acc: q_D's
  accuracy on the transfers."""
  out = {}
  n = config.eval.judge_samples
  if config.eval.judge and n > 0 and not config.ae.attention:
    labels = np.repeat(np.arange(_num_classes(config), dtype=np.int32), n)
    tokens = jax.jit(lambda s, k, l: generate(s, k, l, config=config))(state, rng, labels)
    texts = [data.vocab.decode(row) for row in np.asarray(tokens)]
    out.update(classifier.judge_accuracy(classifier.cached_judge(config.eval.judge), texts,
                                         labels))
  out.update(transfer_lib.evaluate_transfer(transfer, state, config=config, data=data,
                                            own_classifier=classify_tokens))
  return out

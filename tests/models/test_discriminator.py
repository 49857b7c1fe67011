"""The discriminators: input forms, SeqGAN's architecture, padding, masking, dropout, and
their multi-class heads (the text classifiers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtextgen.models.discriminator import (SEQGAN_FILTER_SIZES, SEQGAN_NUM_FILTERS,
                                             CNNDiscriminator, LSTMDiscriminator,
                                             TransformerDiscriminator, ValueHead, conv1d)

V, T, B = 13, 7, 4
_SMALL_CNN = dict(emb_dim=8, filter_sizes=(1, 2, 3, 9), num_filters=(3, 4, 5, 2))


def _apply(model, *args, **kwargs):
  """model.apply, jitted: one compilation instead of one per primitive (eager)."""
  return jax.jit(model.apply, static_argnames=('method', 'train'))(*args, **kwargs)


def _init(model, *args, **kwargs):
  """Random variables of the module's shapes, drawn with numpy: compiling the
  PRNG into an init takes seconds on a loaded CPU, and no test here depends on
  the initialisers."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(1), *args, **kwargs))
  rs = np.random.RandomState(0)
  return jax.tree.map(lambda s: jnp.asarray(rs.normal(0, 0.3, s.shape), s.dtype), shapes)


def _tokens(seed=0, t=T):
  return jnp.asarray(np.random.RandomState(seed).randint(0, V, (B, t)), jnp.int32)


def _models():
  return [CNNDiscriminator(V, **_SMALL_CNN), CNNDiscriminator(V, two_class=False, **_SMALL_CNN),
          LSTMDiscriminator(V, emb_dim=8, hidden_size=6)]


@pytest.mark.parametrize('model', _models(), ids=['cnn', 'cnn_one_logit', 'lstm'])
def test_one_hot_distributions_read_exactly_as_token_ids(model):
  toks = _tokens()
  v = _init(model, toks)
  logits = _apply(model, v, toks)
  assert logits.shape == (B,) and logits.dtype == jnp.float32
  np.testing.assert_allclose(_apply(model, v, jax.nn.one_hot(toks, V)), logits, atol=1e-5)
  # A soft distribution reads as its expected embedding, probs @ E.
  probs = jax.nn.softmax(np.random.RandomState(2).normal(size=(B, T, V)).astype(np.float32))
  emb = v['params']['embedding']['embedding']
  np.testing.assert_allclose(_apply(model, v, probs),
                             _apply(model, v, probs @ emb, method=type(model).features), atol=1e-5)


def test_seqgan_architecture_and_length_independent_parameters():
  d = CNNDiscriminator(5000)
  shapes = {t: jax.eval_shape(d.init, jax.random.key(0), jnp.zeros((2, t), jnp.int32))
            for t in (20, 3)}
  # Short sentences are padded to the widest filter: same parameters at every length.
  assert jax.tree.map(lambda s: s.shape, shapes[20]) == jax.tree.map(lambda s: s.shape, shapes[3])
  p = shapes[20]['params']
  for k, n in zip(SEQGAN_FILTER_SIZES, SEQGAN_NUM_FILTERS):
    assert p[f'conv{k}']['kernel'].shape == (k, 64, n)
  total = sum(SEQGAN_NUM_FILTERS)
  assert total == 1720
  assert p['highway']['gate']['kernel'].shape == (total, total)
  assert p['output']['kernel'].shape == (total, 2)


def test_short_sentences_are_padded_with_zero_vectors():
  d = CNNDiscriminator(V, **_SMALL_CNN)
  toks = _tokens(t=4)
  v = _init(d, toks)
  emb = v['params']['embedding']['embedding'][toks]
  padded = jnp.pad(emb, ((0, 0), (0, 9 - 4), (0, 0)))
  np.testing.assert_allclose(_apply(d, v, toks),
                             _apply(d, v, padded, method=CNNDiscriminator.features), atol=1e-6)


def test_features_of_another_width_and_a_clear_error_for_ambiguous_input():
  d = CNNDiscriminator(V, **_SMALL_CNN)
  hidden = np.random.RandomState(0).normal(size=(B, T, 12)).astype(np.float32)  # e.g. LSTM states
  v = _init(d, hidden, method=CNNDiscriminator.features)
  assert v['params']['conv2']['kernel'].shape == (2, 12, 4)
  assert _apply(d, v, hidden, method=CNNDiscriminator.features).shape == (B,)
  with pytest.raises(ValueError, match='features'):
    _init(d, hidden)


@pytest.mark.parametrize('model', _models()[::2], ids=['cnn', 'lstm'])
def test_masked_positions_are_ignored(model):
  toks = _tokens()
  mask = (jnp.arange(T)[None] < jnp.array([2, 7, 4, 5])[:, None]).astype(jnp.float32)
  other = jnp.where(mask > 0, toks, (toks + 3) % V)
  v = _init(model, toks)
  np.testing.assert_allclose(_apply(model, v, toks, mask=mask),
                             _apply(model, v, other, mask=mask),
                             atol=1e-6)
  assert np.abs(_apply(model, v, toks) - _apply(model, v, other)).max() > 1e-6


def test_dropout_only_in_training():
  d = CNNDiscriminator(V, dropout=0.5, **_SMALL_CNN)
  toks = _tokens()
  v = _init(d, toks)
  np.testing.assert_array_equal(_apply(d, v, toks), _apply(d, v, toks))
  a = _apply(d, v, toks, train=True, rngs={'dropout': jax.random.key(0)})
  b = _apply(d, v, toks, train=True, rngs={'dropout': jax.random.key(1)})
  assert np.abs(a - b).max() > 1e-6


@pytest.mark.parametrize('width', [1, 3, 7])
def test_conv1d_and_its_gradients_equal_lax_autodiff(width):
  rs = np.random.RandomState(width)
  x = rs.normal(size=(3, 7, 4)).astype(np.float32)
  k = rs.normal(size=(width, 4, 5)).astype(np.float32)
  g = rs.normal(size=(3, 8 - width, 5)).astype(np.float32)
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, (1,), 'VALID',
                                                  dimension_numbers=('NWC', 'WIO', 'NWC'))
  fns = jax.jit(lambda x, k: [jax.vjp(f, x, k)[0] for f in (conv1d, ref)]
                + [jax.vjp(f, x, k)[1](g) for f in (conv1d, ref)])
  out, want, grads, want_grads = fns(x, k)
  np.testing.assert_allclose(out, want, atol=1e-5)
  for a, b in zip(grads, want_grads):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_conv1d_second_order_gradients_equal_lax_autodiff():
  """Reverse over reverse, as a gradient penalty takes it: d/dk ||d/dx <conv(x, k), g>||^2."""
  rs = np.random.RandomState(0)
  x, k = rs.normal(size=(3, 7, 4)).astype(np.float32), rs.normal(size=(3, 4, 5)).astype(np.float32)
  g = rs.normal(size=(3, 5, 5)).astype(np.float32)
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, (1,), 'VALID',
                                                  dimension_numbers=('NWC', 'WIO', 'NWC'))
  def penalty(conv):
    dx = lambda x, k: jax.grad(lambda x: jnp.sum(conv(x, k) * g))(x)
    return jax.grad(lambda x, k: jnp.sum(jnp.square(dx(x, k) * x)), argnums=(0, 1))
  got, want = jax.jit(lambda x, k: (penalty(conv1d)(x, k), penalty(ref)(x, k)))(x, k)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _reference_cnn_logits(params, x, mask, *, filter_sizes, masked_pooling):
  """The CNN discriminator written out with one plain `lax.conv_general_dilated` per width
  (autodiff gradients): x [batch, time, E] embeddings -> two-class logits [batch]."""
  if mask is not None:
    x = x * mask[..., None]
  widest = max(filter_sizes)
  if x.shape[1] < widest:
    x = jnp.pad(x, ((0, 0), (0, widest - x.shape[1]), (0, 0)))
  pooled = []
  for width in filter_sizes:
    conv = params[f'conv{width}']
    h = jax.nn.relu(jax.lax.conv_general_dilated(x, conv['kernel'], (1,), 'VALID',
                                                 dimension_numbers=('NWC', 'WIO', 'NWC'))
                    + conv['bias'])
    if masked_pooling:
      own = jnp.arange(h.shape[1])[None] < jnp.maximum(mask.sum(1) - width + 1, 1)[:, None]
      h = h * own[..., None]
    pooled.append(h.max(axis=1))
  f = jnp.concatenate(pooled, axis=-1)
  dense = lambda p, h: h @ p['kernel'] + p['bias']
  gate = jax.nn.sigmoid(dense(params['highway']['gate'], f))
  f = gate * jax.nn.relu(dense(params['highway']['transform'], f)) + (1 - gate) * f
  scores = dense(params['output'], f)
  return scores[:, 1] - scores[:, 0]


@pytest.mark.parametrize('masked', [False, True], ids=['all_windows', 'masked_pooling'])
@pytest.mark.parametrize('form', ['ids', 'distributions'])
def test_cnn_logits_and_gradients_equal_float64_per_width_convolutions(form, masked):
  """The module (conv1d forward, im2col gradients) against plain per-width convolutions with
  autodiff in float64: logits, every parameter's gradient and, for distributions, the input's;
  in float64 to rounding, in float32 to float32 tolerance. With masked pooling the padded
  batch gives the same logits and parameter gradients."""
  lengths = [1, 3, 7, 5]  # 1 and 3 are shorter than the widest filter (9)
  mask = _lengths_mask(lengths, T) if masked else None
  toks = jnp.where(_lengths_mask(lengths, T) > 0, _tokens(), 0)
  inputs = toks if form == 'ids' else jax.nn.softmax(
      np.random.RandomState(3).normal(size=(B, T, V)) * 3).astype(np.float32)
  # float32 values: the module's logits are float32 whatever its dtype, so a float64 module's
  # gradients are exact only for an upstream gradient that float32 holds exactly.
  cotangent = np.random.RandomState(4).normal(size=(B,)).astype(np.float32)
  model = CNNDiscriminator(V, masked_pooling=masked, **_SMALL_CNN)
  params = _init(model, inputs, mask=mask)['params']

  def module_loss(params, inputs, mask, model=model):
    return jnp.sum(model.apply({'params': params}, inputs, mask=mask) * cotangent)

  def reference_loss(params, inputs, mask):
    emb = params['embedding']['embedding']
    x = emb[inputs] if form == 'ids' else inputs @ emb
    return jnp.sum(_reference_cnn_logits(params, x, mask, filter_sizes=_SMALL_CNN['filter_sizes'],
                                         masked_pooling=masked) * cotangent)

  argnums = (0,) if form == 'ids' else (0, 1)
  grad = lambda loss: jax.jit(jax.value_and_grad(loss, argnums=argnums))
  with jax.enable_x64(True):
    as64 = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)
    inputs64 = inputs if form == 'ids' else as64(inputs)
    mask64 = None if mask is None else as64(mask)
    want = grad(reference_loss)(as64(params), inputs64, mask64)
    exact = grad(lambda *a: module_loss(*a, model=model.clone(dtype=jnp.float64)))(
        as64(params), inputs64, mask64)
  got = grad(module_loss)(params, inputs, mask)
  assert jax.tree.map(np.shape, got) == jax.tree.map(np.shape, want)
  np.testing.assert_allclose(exact[0], want[0], rtol=1e-6, atol=1e-6)  # float32 logits
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
  for e, g, w in zip(jax.tree.leaves(exact[1]), jax.tree.leaves(got[1]), jax.tree.leaves(want[1])):
    assert e.dtype == np.float64 and g.dtype == np.float32
    np.testing.assert_allclose(e, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
  if masked:
    padded = jnp.pad(inputs, ((0, 0), (0, 12 - T)) + ((0, 0),) * (inputs.ndim - 2))
    value, grads = grad(module_loss)(params, padded, _lengths_mask(lengths, 12))
    np.testing.assert_allclose(value, got[0], rtol=1e-5)
    for g, w in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(got[1][0])):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def _dot_and_conv_dtypes(fn, *args):
  """The operand dtypes of every matmul and convolution in fn's lowered program."""
  text = jax.jit(fn).lower(*args).as_text()
  ops = [l for l in text.splitlines() if 'stablehlo.dot_general' in l or 'stablehlo.convolution' in l]
  return {l.rsplit(':', 1)[1].split('->')[0].strip() for l in ops}, len(ops)


def test_cnn_bfloat16_computes_in_bfloat16_with_float32_params_and_logits():
  toks = _tokens()
  model = CNNDiscriminator(V, **_SMALL_CNN)
  bf16 = model.clone(dtype=jnp.bfloat16)
  v = _init(model, toks)
  logits = _apply(bf16, v, toks)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, _apply(model, v, toks), rtol=0.05, atol=0.05)
  grad = lambda v, x: jax.grad(lambda v: bf16.apply(v, x).sum())(v)
  grads = jax.jit(grad)(v, toks)
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
  probs = jax.nn.one_hot(toks, V)
  for x in (toks, probs):
    types, count = _dot_and_conv_dtypes(grad, v, x)
    assert count >= 3 * len(_SMALL_CNN['filter_sizes'])  # forward, d kernel, d windows
    assert all('f32' not in t and 'bf16' in t for t in types), types


def test_value_head_is_a_relu_mlp_of_each_state():
  """values [B, T] = relu(h W1 + b1) w2 + b2, per position, against numpy in float64."""
  h = np.random.RandomState(0).normal(size=(B, T, 6)).astype(np.float32)
  head = ValueHead(5)
  v = _init(head, jnp.asarray(h))
  p = jax.tree.map(lambda x: np.asarray(x, np.float64), v['params'])
  hidden = np.maximum(h @ p['hidden']['kernel'] + p['hidden']['bias'], 0.0)
  want = (hidden @ p['value']['kernel'] + p['value']['bias'])[..., 0]
  np.testing.assert_allclose(_apply(head, v, jnp.asarray(h)), want, rtol=1e-5, atol=1e-6)


# --- multi-class heads (text classifiers) ---------------------------------------------------------

def _classifiers(num_classes=3):
  return [CNNDiscriminator(V, num_classes=num_classes, masked_pooling=True, **_SMALL_CNN),
          LSTMDiscriminator(V, emb_dim=8, hidden_size=6, num_classes=num_classes),
          TransformerDiscriminator(V, hidden_size=8, num_layers=1, num_heads=2, mlp_dim=16,
                                   max_positions=32, num_classes=num_classes)]


def _lengths_mask(lengths, t):
  return (jnp.arange(t)[None] < jnp.asarray(lengths)[:, None]).astype(jnp.float32)


@pytest.mark.parametrize('model', _classifiers(), ids=['cnn', 'lstm', 'transformer'])
def test_multi_class_logits_ignore_the_batch_padding(model):
  """[batch, C] float32 logits; a sentence's logits are the same whatever the batch's
  padded length (CNN: only each sentence's own windows are pooled)."""
  lengths = [1, 3, 7, 5]  # 1 and 3 are shorter than the widest filter (9)
  toks = jnp.where(_lengths_mask(lengths, T) > 0, _tokens(), 0)
  v = _init(model, toks, mask=_lengths_mask(lengths, T))
  logits = _apply(model, v, toks, mask=_lengths_mask(lengths, T))
  assert logits.shape == (B, 3) and logits.dtype == jnp.float32
  for t in (12, 20):
    padded = jnp.pad(toks, ((0, 0), (0, t - T)))
    np.testing.assert_allclose(_apply(model, v, padded, mask=_lengths_mask(lengths, t)), logits,
                               atol=1e-5)
  # Alone in its batch, trimmed to its own length, a sentence reads the same.
  np.testing.assert_allclose(_apply(model, v, toks[1:2, :3], mask=_lengths_mask([3], 3)),
                             logits[1:2], atol=1e-5)


def test_unmasked_pooling_reads_padding_windows_as_before():
  """Without masked_pooling (the GANs) padding windows count: a reason the classifier needs it."""
  d = CNNDiscriminator(V, num_classes=2, **_SMALL_CNN)
  toks = jnp.where(_lengths_mask([2, 3, 4, 5], T) > 0, _tokens(), 0)
  v = _init(d, toks)
  assert _apply(d, v, toks).shape == (B, 2)
  with pytest.raises(ValueError, match='needs the mask'):
    _apply(CNNDiscriminator(V, num_classes=2, masked_pooling=True, **_SMALL_CNN), v, toks)


@pytest.mark.parametrize('model', _models(), ids=['cnn', 'cnn_one_logit', 'lstm'])
def test_num_classes_zero_is_the_gan_discriminator(model):
  """num_classes=0 (the default) has the same parameters and logits as before: one output
  unit (two with two_class), float32 [batch]."""
  toks = _tokens()
  v = _init(model, toks)
  width = 2 if model.two_class else 1
  assert v['params']['output']['kernel'].shape[-1] == width
  pooled_width = v['params']['output']['kernel'].shape[0]
  x = np.random.RandomState(0).normal(size=(B, pooled_width)).astype(np.float32)
  scores = x @ v['params']['output']['kernel'] + v['params']['output']['bias']
  want = scores[:, 1] - scores[:, 0] if model.two_class else scores[:, 0]
  got = _apply(model, v, jnp.asarray(x), method=lambda m, h: m._logit(h, train=False))
  np.testing.assert_allclose(got, want, atol=1e-5)
  with pytest.raises(ValueError, match='num_classes=1'):
    _init(model.clone(num_classes=1), toks)

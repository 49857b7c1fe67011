"""PyTorch training steps matching the library's `steps/` (same losses, optimizers, sizes).

Each `Torch*` class builds its models from a jaxtextgen config and exposes
`step(batch) -> loss tensor` (one full update, no host sync inside) and the
pieces the parity test calls; the GANs also have `discriminator_step(batch)`.
Register a new algorithm in `STEPS`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from jaxtextgen.bench.torch_models import CNNDiscriminator, Decoder, Encoder, TransformerLM


# --- config -> optimizer, models ------------------------------------------------------------------

def make_optimizer(params, cfg, total_steps: int):
  """`steps.common.make_optimizer` in torch: (optimizer, scheduler or None, grad_clip).

  optax's adamw with weight_decay 0 is Adam; its clipping is torch's
  clip_grad_norm_ (which adds 1e-6 to the norm)."""
  params = list(params)
  fused = dict(foreach=True)  # the multi-tensor kernels, torch's fast default path
  if cfg.name == 'adam':
    cls = torch.optim.AdamW if cfg.weight_decay else torch.optim.Adam
    opt = cls(params, lr=cfg.learning_rate, betas=(cfg.b1, cfg.b2), eps=1e-8,
              weight_decay=cfg.weight_decay, **fused)
  elif cfg.name == 'rmsprop':
    opt = torch.optim.RMSprop(params, lr=cfg.learning_rate, alpha=0.9, eps=1e-8, **fused)
  elif cfg.name == 'sgd':
    opt = torch.optim.SGD(params, lr=cfg.learning_rate, **fused)
  else:
    raise ValueError(f'config.optimizer.name={cfg.name!r}: use adam, rmsprop or sgd')
  schedule = getattr(cfg, 'schedule', 'constant')
  sched = None
  if schedule == 'cosine':
    warm, total = max(cfg.warmup_steps, 1), max(total_steps, cfg.warmup_steps + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda n: n / warm if n < warm else
                                              0.5 * (1 + math.cos(math.pi * (n - warm) /
                                                                  (total - warm))))
  elif schedule == 'linear':
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda n: max(0.0, 1 - n / max(total_steps, 1)))
  return opt, sched, cfg.grad_clip


def _update(loss, params, opt, sched, clip):
  loss.backward()
  if clip:
    torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
  opt.step()
  if sched is not None:
    sched.step()
  opt.zero_grad(set_to_none=True)


def make_decoder(config, cond_dim: int = 0) -> Decoder:
  """The LSTM decoder twin (every algorithm's; see `make_lm_decoder` for the Transformer)."""
  m = config.model
  if m.get('decoder', 'lstm') != 'lstm':
    raise NotImplementedError(f'the PyTorch benchmark has a config.model.decoder={m.decoder!r} '
                              f"twin for config.algorithm='lm' only")
  return Decoder(config.vocab.size, m.emb_dim, m.hidden_size, m.num_layers, m.dropout, cond_dim)


def make_lm_decoder(config) -> torch.nn.Module:
  """The twin of the language model's decoder, config.model.decoder: `Decoder` (LSTM) or
  `TransformerLM`."""
  m = config.model
  if m.get('decoder', 'lstm') == 'transformer':
    return TransformerLM(config.vocab.size, m.hidden_size, m.num_layers, m.num_heads, m.mlp_dim,
                         m.dropout, m.positions, m.max_positions)
  return make_decoder(config)


def make_encoder(config) -> Encoder:
  return Encoder(config.vocab.size, config.model.emb_dim, config.model.hidden_size,
                 config.ae.latent_dim, config.ae.bidirectional)


def make_d_optimizer(params, config):
  """The discriminator's optimizer (`adversarial.init_discriminator`): config.gan's
  d_optimizer, d_learning_rate and d_grad_clip, config.optimizer's betas."""
  g = config.gan
  d_cfg = dict(name=g.d_optimizer, learning_rate=g.d_learning_rate, b1=config.optimizer.b1,
               b2=config.optimizer.b2, weight_decay=0.0, grad_clip=g.d_grad_clip,
               schedule='constant', warmup_steps=0)
  return make_optimizer(params, _Cfg(d_cfg), 0)


def make_discriminator(config) -> CNNDiscriminator:
  g = config.gan
  if g.d_kind != 'cnn':
    raise NotImplementedError(f'the torch benchmark has the CNN discriminator only, not '
                              f'config.gan.d_kind={g.d_kind!r}')
  return CNNDiscriminator(config.vocab.size, g.d_emb_dim, g.d_filter_sizes, g.d_num_filters,
                          g.d_dropout, g.d_two_class)


def shift_right(tokens: torch.Tensor, bos_id: int) -> torch.Tensor:
  return torch.cat([torch.full_like(tokens[:, :1], bos_id), tokens[:, :-1]], dim=1)


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
  """[B, T, V], [B, T] -> [B, T] negative log-likelihoods."""
  return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='none').view(
      targets.shape)


def _autocast(config, device):
  dtype = {'float32': None, 'bfloat16': torch.bfloat16}[config.model.dtype]
  return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


class _Step:
  """Common plumbing: device, torch.compile of the loss, autocast."""
  players: tuple = ()

  def __init__(self, config, device, compile_loss: bool = False):
    self.config, self.device = config, torch.device(device)
    self.compile_loss = compile_loss

  def _maybe_compile(self, fn):
    return torch.compile(fn) if self.compile_loss else fn


# --- lm -------------------------------------------------------------------------------------------

class TorchLM(_Step):
  """`steps.lm.train_step`: Adam on the per-token mean NLL (padding masked), of the LSTM or
  the Transformer (config.model.decoder)."""

  def __init__(self, config, device, compile_loss: bool = False):
    super().__init__(config, device, compile_loss)
    self.decoder = make_lm_decoder(config).to(self.device)
    self.params = list(self.decoder.parameters())
    self.opt, self.sched, self.clip = make_optimizer(self.params, config.optimizer,
                                                     config.num_train_steps)
    self.loss_fn = self._maybe_compile(self.loss)

  def loss(self, tokens, mask):
    logits = self.decoder(shift_right(tokens, self.config.vocab.bos_id))
    return (token_nll(logits.float(), tokens) * mask).sum() / mask.sum()

  def step(self, batch):
    self.decoder.train()
    with _autocast(self.config, self.device):
      loss = self.loss_fn(batch['tokens'], batch['mask'])
    _update(loss, self.params, self.opt, self.sched, self.clip)
    return loss.detach()


# --- vae ------------------------------------------------------------------------------------------

def kl_weight(step: int, config) -> float:
  """`steps.vae.kl_weight` in plain Python."""
  v = config.vae
  if v.kl_schedule == 'linear':
    w = v.kl_start + (1 - v.kl_start) * min(max(step / max(v.kl_warmup_steps, 1), 0.0), 1.0)
  elif v.kl_schedule == 'logistic':
    w = 1 / (1 + math.exp(-v.logistic_k * (step - v.logistic_x0)))
  elif v.kl_schedule == 'cyclical':
    period = config.num_train_steps / v.num_cycles
    w = min(1.0, (step % period) / period / v.cycle_ratio)
  else:
    w = 1.0
  return v.beta * w


class TorchVAE(_Step):
  """`steps.vae.train_step`: encoder LSTM + Gaussian head, z = mean + exp(logvar/2) eps
  to the decoder's initial state and every input, analytic KL, loss per sentence
  (rec.sum() + w * KL.sum()) / sentences, free bits and <unk> word dropout as configured.
  Encoder and decoder have one optimizer each, as in the library."""

  def __init__(self, config, device, compile_loss: bool = False):
    super().__init__(config, device, compile_loss)
    self.encoder = make_encoder(config).to(self.device)
    self.decoder = make_decoder(config, cond_dim=config.ae.latent_dim).to(self.device)
    self.opts = [make_optimizer(m.parameters(), config.optimizer, config.num_train_steps)
                 for m in (self.encoder, self.decoder)]
    self.num_steps = 0
    self.loss_fn = self._maybe_compile(self.loss)

  def decoder_inputs(self, tokens, mask, train: bool = True):
    v = self.config.vocab
    inputs = shift_right(tokens, v.bos_id)
    p = self.config.vae.word_dropout
    if not train or not p:
      return inputs
    words = (shift_right(mask, 0) > 0) & (inputs != v.eos_id)
    drop = words & (torch.rand(inputs.shape, device=inputs.device) < p)
    return torch.where(drop, torch.full_like(inputs, v.unk_id), inputs)

  def loss(self, tokens, mask, inputs, eps, w):
    """(loss, rec per sentence, kl per sentence) of `steps.vae.train_step` (weights all 1)."""
    mean, logvar = self.encoder(tokens, mask)
    z = mean + torch.exp(0.5 * logvar) * eps
    logits = self.decoder(inputs, z)
    rec = (token_nll(logits.float(), tokens) * mask).sum(-1)
    kl = 0.5 * (torch.exp(logvar) + mean ** 2 - 1.0 - logvar)  # [B, Z]
    n = tokens.shape[0]
    free_bits = self.config.vae.free_bits
    if free_bits:
      above = kl.detach().mean(0) > free_bits
      kl_term = torch.where(above[None], kl, torch.full_like(kl, free_bits)).sum(-1)
    else:
      kl_term = kl.sum(-1)
    loss = (rec.sum() + w * kl_term.sum()) / n
    return loss, rec.sum() / n, kl.sum() / n

  def step(self, batch, eps=None):
    self.encoder.train()
    self.decoder.train()
    tokens, mask = batch['tokens'], batch['mask']
    if eps is None:
      eps = torch.randn(tokens.shape[0], self.config.ae.latent_dim, device=tokens.device)
    w = kl_weight(self.num_steps, self.config)
    with _autocast(self.config, self.device):
      loss, _, _ = self.loss_fn(tokens, mask, self.decoder_inputs(tokens, mask), eps, w)
    loss.backward()
    for model, (opt, sched, clip) in zip((self.encoder, self.decoder), self.opts):
      if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip, foreach=True)
      opt.step()
      if sched is not None:
        sched.step()
      opt.zero_grad(set_to_none=True)
    self.num_steps += 1
    return loss.detach()


# --- seqgan ---------------------------------------------------------------------------------------

# How `sample` draws a token (python -m jaxtextgen.bench --torch_sampler): 'multinomial'
# (torch.multinomial, the usual PyTorch call; on CPU it draws one exponential variate per
# vocabulary entry) or 'inverse_cdf' (cumsum + searchsorted: one uniform per row, like the
# library's two-level sampler).
SAMPLERS = ('multinomial', 'inverse_cdf')
SAMPLER = 'multinomial'


def draw(probs: torch.Tensor) -> torch.Tensor:
  """One token per row of probs [B, V] -> int64 [B], by `SAMPLER`. inverse_cdf: the
  first token whose cumulative probability exceeds u * total, u ~ U[0, 1)."""
  if SAMPLER == 'inverse_cdf':
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    # right=True: strictly above u, so a zero-probability token is never drawn.
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp(max=probs.shape[1] - 1)
  if SAMPLER != 'multinomial':
    raise ValueError(f'torch_steps.SAMPLER={SAMPLER!r}: use one of {SAMPLERS}')
  return torch.multinomial(probs, 1)[:, 0]


@torch.no_grad()
def sample(decoder: Decoder, batch: int, length: int, *, bos_id: int, eos_id: int, pad_id: int,
           device, forced=None, forced_mask=None, first_free: int = 0):
  """Ancestral sampling, a Python loop over time (one nn.LSTM call per step), each
  token drawn by `draw` (the sampler `SAMPLER` names).

  forced / forced_mask: int [batch, length] / bool: where set, the token is taken
  from `forced` (rollouts continue given prefixes). Steps before `first_free` are
  forced in every row and skip the draw. Returns (tokens [batch, length] with PAD
  after EOS, mask [batch, length] float, 1 up to and including EOS).
  """
  tok = torch.full((batch,), bos_id, dtype=torch.long, device=device)
  done = torch.zeros(batch, dtype=torch.bool, device=device)
  state, toks, alive = None, [], []
  for t in range(length):
    logits, state = decoder.step(tok, state)
    if t < first_free:
      tok = forced[:, t]
    else:
      tok = draw(torch.softmax(logits.float(), -1))
      if forced is not None:
        tok = torch.where(forced_mask[:, t], forced[:, t], tok)
    alive.append(~done)
    if eos_id >= 0:
      tok = torch.where(done, torch.full_like(tok, pad_id), tok)
      done = done | (tok == eos_id)
    toks.append(tok)
  return torch.stack(toks, 1), torch.stack(alive, 1).float()


class TorchSeqGAN(_Step):
  """`steps.seqgan.generator_step` (SeqGAN's adversarial generator update, baseline
  'none') and `discriminator_step`.

  Generator step: B samples; for every prefix length 1..T-1, N rollouts by the
  rollout policy, all B * (T-1) * N rows as ONE batch sampled over T steps with
  the prefix positions forced (the library's scheme, the same work); the CNN
  discriminator scores every rollout and the samples themselves; REINFORCE with
  Q = mean D(rollout) per token; Adam; rollout <- 0.8 rollout + 0.2 generator
  (embedding copied).
  """

  def __init__(self, config, device, compile_loss: bool = False):
    super().__init__(config, device, compile_loss)
    g = config.gan
    if g.baseline != 'none' or g.mle_every or g.ema_decay:
      raise NotImplementedError('the torch SeqGAN benchmark mirrors baseline none, no '
                                'interleaved MLE and no EMA (SeqGAN)')
    self.generator = make_decoder(config).to(self.device)
    self.rollout = make_decoder(config).to(self.device)
    self.rollout.load_state_dict(self.generator.state_dict())
    self.discriminator = make_discriminator(config).to(self.device)
    self.g_opt = make_optimizer(self.generator.parameters(), config.optimizer,
                                config.num_train_steps)
    self.d_opt = make_d_optimizer(self.discriminator.parameters(), config)
    self.pg_loss_fn = self._maybe_compile(self.pg_loss)
    self.score_fn = self._maybe_compile(self.score)
    self.d_loss_fn = self._maybe_compile(self.d_loss)

  def _sample(self, decoder, n, **kw):
    v = self.config.vocab
    return sample(decoder, n, self.config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                  pad_id=v.pad_id, device=self.device, **kw)

  def score(self, sents):
    """D's probability of 'real', [M] for int [M, T]."""
    return torch.sigmoid(self.discriminator(sents))

  @torch.no_grad()
  def rewards(self, tokens):
    """[B, T] rewards: mean over N rollouts of D for prefixes 1..T-1, D(tokens) at T."""
    b, t = tokens.shape
    n = self.config.gan.num_rollouts
    p = t - 1
    forced = tokens[:, None, None, :].expand(b, p, n, t).reshape(-1, t)
    lengths = torch.arange(1, t, device=self.device)
    forced_mask = (torch.arange(t, device=self.device)[None, :] < lengths[:, None])
    forced_mask = forced_mask[None, :, None, :].expand(b, p, n, t).reshape(-1, t)
    self.rollout.eval()
    self.discriminator.eval()
    sents, _ = self._sample(self.rollout, b * p * n, forced=forced, forced_mask=forced_mask,
                            first_free=1)
    q = self.score_fn(sents).view(b, p, n).mean(-1)
    return torch.cat([q, self.score_fn(tokens)[:, None]], dim=1)

  def pg_loss(self, tokens, mask, q):
    """REINFORCE: -sum mask * Q * log G(y_t | y_<t) / sum mask."""
    logits = self.generator(shift_right(tokens, self.config.vocab.bos_id))
    logp = -token_nll(logits.float(), tokens)
    return -(mask * q * logp).sum() / mask.sum().clamp(min=1.0)

  def generator_step(self, batch):
    self.generator.eval()  # the library's policy-gradient pass runs without dropout
    with _autocast(self.config, self.device):
      tokens, mask = self._sample(self.generator, batch['tokens'].shape[0])
      q = self.rewards(tokens)
      loss = self.pg_loss_fn(tokens, mask, q)
    _update(loss, list(self.generator.parameters()), *self.g_opt)
    with torch.no_grad():
      rate = self.config.gan.rollout_update_rate
      pairs = [(r, g) for (name, r), g in zip(self.rollout.named_parameters(),
                                              self.generator.parameters())
               if not name.startswith('embedding')]
      torch._foreach_lerp_([r for r, _ in pairs], [g for _, g in pairs], 1.0 - rate)
      self.rollout.embedding.weight.copy_(self.generator.embedding.weight)
    return loss.detach()

  def d_loss(self, real, fake):
    """SeqGAN's: 0.5 (mean softplus(-D(real)) + mean softplus(D(fake))) + l2 * ||out||^2 / 2."""
    real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
    loss = 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
    out = self.discriminator.output
    l2 = 0.5 * (out.weight.square().sum() + out.bias.square().sum())
    return loss + self.config.gan.d_l2 * l2

  def discriminator_step(self, batch):
    real = batch['tokens']
    self.generator.eval()
    self.discriminator.train()
    with _autocast(self.config, self.device):
      fake, _ = self._sample(self.generator, real.shape[0])
      loss = self.d_loss_fn(real, fake)
    _update(loss, list(self.discriminator.parameters()), *self.d_opt)
    return loss.detach()

  step = generator_step


# --- gumbel_gan -----------------------------------------------------------------------------------

def adversarial_g_updates(step: int, config) -> int:
  """`adversarial.adversarial_g_updates` in plain Python: adversarial generator updates
  before trainer step `step`."""
  g = config.gan
  rounds, in_round = divmod(max(step - g.mle_steps - g.d_pretrain_steps, 0),
                            g.g_steps + g.d_steps)
  return rounds * g.g_steps + min(in_round, g.g_steps)


def gumbel_beta(n: int, config) -> float:
  """`adversarial.gumbel_beta` in plain Python: RelGAN's inverse temperature after n
  adversarial generator updates (`objectives.discrete.gumbel_inverse_temperature`)."""
  g = config.gan
  big_n = float(max(g.gumbel_anneal_steps or g.rounds * g.g_steps, 2))
  b, rise = g.gumbel_beta_max, g.gumbel_beta_max - 1.0
  schedules = {
      'const': lambda: b,
      'lin': lambda: 1.0 + rise * n / (big_n - 1.0),
      'exp': lambda: b ** (n / big_n),
      'log': lambda: 1.0 + rise * math.log1p(n) / math.log(big_n),
      'sigmoid': lambda: 1.0 + rise / (1.0 + math.exp(-(n - big_n / 2.0) * 20.0 / big_n)),
      'quad': lambda: 1.0 + rise * (n / (big_n - 1.0)) ** 2,
      'sqrt': lambda: 1.0 + rise * math.sqrt(n / (big_n - 1.0)),
  }
  return schedules[g.gumbel_schedule]()


def _requires_grad(module: torch.nn.Module, flag: bool) -> None:
  for p in module.parameters():
    p.requires_grad_(flag)


class TorchGumbelGAN(_Step):
  """`steps.gumbel_gan`'s adversarial generator step and its discriminator step
  (RelGAN-style Gumbel-softmax GAN), as a PyTorch user writes them.

  Generator step: the generator free-runs T steps (nn.LSTM one step at a time, as
  in `sample`), emitting y_t = softmax(beta * (logits_t + g_t)), g ~ Gumbel(0, 1)
  (straight-through one-hots with config.gan.gumbel_hard), and reading y_t @ E next;
  rows emit one-hot PAD after an EOS argmax. The CNN discriminator (eval mode, its
  parameters frozen for this backward, the usual `set_requires_grad(D, False)`)
  scores the soft fakes, and the real batch for rsgan; config.gan.loss's generator
  loss; one step of the adversarial generator optimizer (gan.g_optimizer,
  g_learning_rate; config.optimizer's clipping and betas). beta follows
  gan.gumbel_schedule over the generator updates, as in the library.

  Discriminator step: the real batch vs as many fresh relaxed fakes (no gradient to
  the generator), D with dropout, config.gan.loss's discriminator loss + d_l2 * the
  output layer's squared norm / 2, D's optimizer, WGAN's weight clipping when
  gan.clip > 0.
  """

  def __init__(self, config, device, compile_loss: bool = False):
    super().__init__(config, device, compile_loss)
    g = config.gan
    off = [k for k in ('mle_every', 'ema_decay', 'latent_std', 'instance_noise') if g[k]]
    if off:
      raise NotImplementedError(f'the torch Gumbel GAN benchmark mirrors config.gan.{off} = 0')
    self.generator = make_decoder(config).to(self.device)
    self.discriminator = make_discriminator(config).to(self.device)
    self.clip_weights()
    g_cfg = dict(config.optimizer.to_dict(), name=g.g_optimizer, learning_rate=g.g_learning_rate,
                 schedule='constant', weight_decay=0.0)
    self.g_opt = make_optimizer(self.generator.parameters(), _Cfg(g_cfg), config.num_train_steps)
    self.d_opt = make_d_optimizer(self.discriminator.parameters(), config)
    v = config.vocab
    self.pad = torch.zeros(v.size, device=self.device)  # what a row emits after its EOS
    if v.pad_id >= 0:
      self.pad[v.pad_id] = 1.0
    # beta lives on the device (filled each step): a tensor, so torch.compile does not
    # specialise (and recompile) on its changing value.
    self.beta = torch.ones((), device=self.device)
    self.g_updates = 0
    self.hard, self.loss_kind = g.gumbel_hard, g.loss  # plain values for torch.compile
    self.g_loss_fn = self._maybe_compile(self.g_loss)
    self.fakes_fn = self._maybe_compile(self.fakes)
    self.d_loss_fn = self._maybe_compile(self.d_loss)

  def clip_weights(self):
    """WGAN's clipping of every discriminator weight into [-clip, clip] (off when 0)."""
    c = self.config.gan.clip
    if c:
      with torch.no_grad():
        for p in self.discriminator.parameters():
          p.clamp_(-c, c)

  def fakes(self, num: int, beta, noise=None):
    """`models.sampler.relaxed_sample` (gumbel=True): [num, T, V] relaxed one-hots.

    noise: optional [T, num, V] Gumbel variates (the parity test passes the library's);
    by default drawn as F.gumbel_softmax draws them."""
    v, length = self.config.vocab, self.config.data.max_len
    dec = self.generator
    x = dec.embedding(torch.full((num,), v.bos_id, dtype=torch.long, device=self.device))
    state, done, ys = None, torch.zeros(num, dtype=torch.bool, device=self.device), []
    for t in range(length):
      logits, state = dec.step(x, state)
      perturbed = logits.float() + (noise[t] if noise is not None else
                                    -torch.empty_like(logits, dtype=torch.float).exponential_()
                                    .log())
      y = torch.softmax(perturbed * beta, dim=-1)
      if self.hard:  # straight-through: one-hot forward, soft gradient
        y = F.one_hot(perturbed.argmax(-1), v.size).to(y.dtype) + (y - y.detach())
      x = y @ dec.embedding.weight  # the next input: y's expected embedding
      if v.eos_id >= 0:  # rows emit PAD after their EOS (no gradient there)
        tok = y.argmax(-1)
        y = torch.where(done[:, None], self.pad, y)
        done = done | (tok == v.eos_id)
      ys.append(y)
    return torch.stack(ys, dim=1)

  def g_loss(self, real, beta, noise=None):
    """config.gan.loss's generator loss on D's logits for fresh soft fakes (and reals)."""
    fake_logits = self.discriminator(self.fakes(real.shape[0], beta, noise)).float()
    kind = self.loss_kind
    if kind == 'rsgan':  # RelGAN: softplus(-(D(fake) - D(real)))
      return F.softplus(self.discriminator(real).float() - fake_logits).mean()
    if kind == 'wgan':
      return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()  # nonsaturating: -log D(fake)

  def generator_step(self, batch, noise=None):
    self.generator.eval()  # the library's relaxed unroll and D run without dropout here
    self.discriminator.eval()
    self.beta.fill_(gumbel_beta(self.g_updates, self.config))
    _requires_grad(self.discriminator, False)
    with _autocast(self.config, self.device):
      loss = self.g_loss_fn(batch['tokens'], self.beta, noise)
    _update(loss, list(self.generator.parameters()), *self.g_opt)
    _requires_grad(self.discriminator, True)
    self.g_updates += 1
    return loss.detach()

  def d_loss(self, real, fake):
    """config.gan.loss's discriminator loss + d_l2 * ||output layer||^2 / 2."""
    real_logits, fake_logits = self.discriminator(real).float(), self.discriminator(fake).float()
    kind = self.loss_kind
    if kind == 'rsgan':
      loss = F.softplus(fake_logits - real_logits).mean()
    elif kind == 'wgan':
      loss = fake_logits.mean() - real_logits.mean()
    else:  # SeqGAN's cross-entropy over the mixed batch
      loss = 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
    out = self.discriminator.output
    l2 = 0.5 * (out.weight.square().sum() + out.bias.square().sum())
    return loss + self.config.gan.d_l2 * l2

  def discriminator_step(self, batch, noise=None):
    real = batch['tokens']
    self.generator.eval()
    self.discriminator.train()
    self.beta.fill_(gumbel_beta(self.g_updates, self.config))
    with _autocast(self.config, self.device):
      with torch.no_grad():
        fake = self.fakes_fn(real.shape[0], self.beta, noise)
      loss = self.d_loss_fn(real, fake)
    _update(loss, list(self.discriminator.parameters()), *self.d_opt)
    self.clip_weights()
    return loss.detach()

  step = generator_step


class _Cfg(dict):
  __getattr__ = dict.__getitem__


# What `python -m jaxtextgen.bench` can run, by config.algorithm.
STEPS = {'lm': TorchLM, 'vae': TorchVAE, 'seqgan': TorchSeqGAN, 'gumbel_gan': TorchGumbelGAN}

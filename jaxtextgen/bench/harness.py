"""The side-by-side harness: the library's jitted train step vs the PyTorch step.

Both run in one process on the same synthetic batch, alternating in blocks of
steps after a warm-up, so load on the machine hits both alike. The JAX side is the
library's own `train_step`, jitted by `train.parallel.jit_step` (explicit
shardings, donated state) exactly as the trainer does; nothing here is a
special benchmark model.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxtextgen import steps
from jaxtextgen.train import parallel

# Vocabulary sizes of corpora whose vocabulary the benchmark does not build (PTB, Mikolov
# split: 10,000 word types including <unk>, which maps onto our UNK, plus 4 more specials).
KNOWN_VOCAB = {'ptb': 10_004}
SEQGAN_STEPS = ('generator', 'discriminator', 'round')


# --- config and data ------------------------------------------------------------------------------

def bench_config(config, *, batch: int = 0, vocab_size: int = 0, seqgan_step: str = 'generator',
                 round_d_steps: int = 0) -> tuple[ml_collections.ConfigDict, str]:
  """The config with the vocabulary filled in (as the trainer would) and, for the GANs
  (seqgan, gumbel_gan), a phase schedule that makes every train_step the update being
  measured (`seqgan_step`: the adversarial generator or the discriminator update, or
  'round': one whole adversarial round, gan.g_steps generator and gan.d_steps (or
  `round_d_steps`) discriminator updates).
  Returns (config, a note on where the vocabulary size came from)."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    if batch:
      c.batch_size = batch
    if c.num_train_steps <= 0:  # schedules need a length; the trainer derives it from epochs
      c.num_train_steps = 100_000
    d = c.data
    if vocab_size:
      size, note = vocab_size, 'from --vocab_size'
    elif d.corpus == 'oracle':
      size, note = d.oracle_vocab_size, 'the oracle vocabulary'
      if d.oracle_path and os.path.exists(d.oracle_path):
        with np.load(d.oracle_path) as npz:
          size = int(npz['emb'].shape[0])
    elif d.corpus in KNOWN_VOCAB:
      size, note = KNOWN_VOCAB[d.corpus], f'the {d.corpus} vocabulary'
    else:
      raise ValueError(f'the benchmark does not know the vocabulary size of corpus '
                       f'{d.corpus!r}; pass --vocab_size')
    if d.corpus == 'oracle':  # Vocab.identity: no specials, BOS = token 0
      c.vocab.update(dict(size=size, bos_id=0, eos_id=-1, pad_id=0, unk_id=-1, mask_id=-1))
    else:
      c.vocab.update(dict(size=size, bos_id=1, eos_id=2, pad_id=0, unk_id=3, mask_id=4))
    if c.algorithm in ('seqgan', 'gumbel_gan'):
      if seqgan_step not in SEQGAN_STEPS:
        raise ValueError(f'--seqgan_step={seqgan_step!r}: use one of {SEQGAN_STEPS}')
      g = c.gan
      g.mle_steps, g.g_steps = 0, 1
      if seqgan_step == 'round':  # the config's round: g_steps G, d_steps D updates
        g.d_pretrain_steps = 0
        g.g_steps = config.gan.g_steps
        g.d_steps = round_d_steps or g.d_steps
      elif seqgan_step == 'generator':  # every step an adversarial generator step
        g.d_pretrain_steps, g.d_steps = 0, 0
      else:  # every step a discriminator step (real batch vs fresh samples)
        g.d_pretrain_steps, g.d_steps = 10**9, 1
  return c, note


def round_batches(config, seqgan_step: str) -> int:
  """Real batches one timed step consumes: g_steps + d_steps for a round, else 1."""
  if seqgan_step == 'round' and config.algorithm in ('seqgan', 'gumbel_gan'):
    return config.gan.g_steps + config.gan.d_steps
  return 1


def synthetic_batch(config, seed: int = 0, stack: int = 0) -> dict:
  """B x max_len random words, EOS last when the vocabulary has one; every position is
  a real token (no padding), so tokens per step = B * max_len. `stack` > 0: that many
  different batches stacked [stack, B, max_len] (a round's input)."""
  v, b, t = config.vocab, config.batch_size, config.data.max_len
  lead = (stack,) if stack else ()
  first = 5 if v.eos_id >= 0 else 0
  rs = np.random.RandomState(seed)
  tokens = rs.randint(first, v.size, size=lead + (b, t)).astype(np.int32)
  if v.eos_id >= 0:
    tokens[..., -1] = v.eos_id
  return {'tokens': tokens, 'mask': np.ones(lead + (b, t), np.float32),
          'label': np.zeros(lead + (b,), np.int32), 'weight': np.ones(lead + (b,), np.float32)}


# --- model FLOPs ----------------------------------------------------------------------------------

def _lstm_flops(config, in_dim: int) -> int:
  """Forward matmul FLOPs of one token through config.model's LSTM stack."""
  h = config.model.hidden_size
  total, x = 0, in_dim
  for _ in range(config.model.num_layers):
    total += 2 * (x * 4 * h + h * 4 * h)
    x = h
  return total


def _transformer_flops(config, length: int) -> int:
  """Forward matmul FLOPs of one token through config.model's Transformer blocks in a
  sentence of `length`: the projections (qkv, output, MLP) and causal attention, which
  scores and mixes (length + 1) / 2 positions on average."""
  m = config.model
  h = m.hidden_size
  per_layer = 2 * (3 * h * h + h * h + 2 * h * m.mlp_dim) + 2 * 2 * h * (length + 1) / 2
  return int(m.num_layers * per_layer)


def _cnn_flops(config, length: int) -> int:
  """Forward FLOPs of one sentence through the CNN discriminator."""
  g = config.gan
  t = max(length, max(g.d_filter_sizes))
  conv = sum(2 * (t - k + 1) * k * g.d_emb_dim * n for k, n in zip(g.d_filter_sizes,
                                                                    g.d_num_filters))
  f = sum(g.d_num_filters)
  return conv + 2 * 2 * f * f + 2 * f * 2


def model_flops(config, algorithm: str, seqgan_step: str = 'generator') -> int:
  """Analytic matmul / convolution FLOPs of one train step (a multiply-add = 2; backward =
  2x forward). XLA's cost_analysis counts a scan body once, so it undercounts RNNs."""
  if seqgan_step == 'round':
    g = config.gan
    return (g.g_steps * model_flops(config, algorithm, 'generator')
            + g.d_steps * model_flops(config, algorithm, 'discriminator'))
  m, b, t, v = config.model, config.batch_size, config.data.max_len, config.vocab.size
  body = (_transformer_flops(config, t) if m.get('decoder', 'lstm') == 'transformer'
          else _lstm_flops(config, m.emb_dim))
  dec_token = body + 2 * m.hidden_size * v
  if algorithm == 'lm':
    return 3 * b * t * dec_token
  if algorithm == 'vae':
    z, h, dirs = config.ae.latent_dim, m.hidden_size, 2 if config.ae.bidirectional else 1
    enc = dirs * 2 * (m.emb_dim * 4 * h + h * 4 * h) * b * t + 2 * 2 * dirs * h * z * b
    dec = b * t * dec_token + b * (2 * z * 4 * h + 2 * z * 2 * h * m.num_layers)
    return 3 * (enc + dec)
  if algorithm == 'seqgan':
    if seqgan_step == 'discriminator':
      return b * t * dec_token + 3 * 2 * b * _cnn_flops(config, t)
    from jaxtextgen.steps import seqgan  # pylint: disable=g-import-not-at-top
    n = config.gan.num_rollouts
    rows = b * (t - 1) * n
    # Rollouts: one teacher-forced pass, then each prefix group from its first state.
    roll_steps = b * t + b * n * sum((e - a) * (t - a) for a, e in seqgan.prefix_groups(
        1, t, config.gan.rollout_groups))
    return (b * t * dec_token + roll_steps * dec_token + (rows + b) * _cnn_flops(config, t)
            + 3 * b * t * dec_token)
  if algorithm == 'gumbel_gan':
    # The relaxed unroll: every token also feeds y_t @ E [V, emb] back; D reads a fake
    # through y @ E_D [V, d_emb].
    unroll = b * t * (dec_token + 2 * v * m.emb_dim)
    d_fake = b * (_cnn_flops(config, t) + 2 * t * v * config.gan.d_emb_dim)
    d_real = b * _cnn_flops(config, t)
    if seqgan_step == 'discriminator':  # fakes without gradient; D forward + backward
      return unroll + 3 * (d_fake + d_real)
    # Generator step: forward + backward through the unroll and D's fake path (D's own
    # weights get no gradient: its backward is ~1x its forward); reals scored for rsgan.
    return 3 * unroll + 2 * d_fake + (d_real if config.gan.loss == 'rsgan' else 0)
  raise ValueError(f'no FLOP count for {algorithm!r}')


def matmul_peak(dtype, n: int, reps: int = 5) -> float:
  """Measured FLOP/s of a large jnp.dot (n x n @ n x n) of `dtype` on the default device."""
  k1, k2 = jax.random.split(jax.random.key(0))
  a = jax.random.normal(k1, (n, n), dtype)
  b = jax.random.normal(k2, (n, n), dtype)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    dot(a, b).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 2 * n ** 3 / statistics.median(times)


# --- memory ---------------------------------------------------------------------------------------

def _rss() -> int:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


RSS_NOTE = 'host RSS growth from model creation to the warm-up peak'


class RssPeak:
  """Peak resident set size over the `with` block, sampled every `interval` s by a
  thread (used during the untimed warm-up only)."""

  def __init__(self, interval: float = 0.001):
    self.interval, self.peak, self._stop = interval, 0, threading.Event()

  def __enter__(self):
    self.start = _rss()
    self.peak = self.start
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()
    return self

  def _run(self):
    while not self._stop.is_set():
      self.peak = max(self.peak, _rss())
      time.sleep(self.interval)

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, _rss())

  @property
  def delta(self) -> int:
    return self.peak - self.start


# --- the two frameworks ---------------------------------------------------------------------------

@dataclasses.dataclass
class Runner:
  """One framework's step: `step()` runs one update and waits for it to finish."""
  name: str
  step: Callable[[], None]
  warmup_s: float = 0.0
  compile_s: float = 0.0
  times: list = dataclasses.field(default_factory=list)
  error: str = ''
  memory: tuple = (None, '')


def bench_update(algo, seqgan_step: str = 'generator'):
  """The update the benchmark times: the algorithm's train_step, or for the GANs one
  adversarial generator or discriminator update as the schedule runs it
  (`adversarial.counted`: keys from the step, step + 1), or ('round') the fused
  round `train_step` on stacked batches."""
  if not hasattr(algo, 'generator_step') or seqgan_step == 'round':
    return algo.train_step
  from jaxtextgen.steps import adversarial  # pylint: disable=g-import-not-at-top
  return adversarial.counted(algo.generator_step if seqgan_step == 'generator'
                             else algo.discriminator_step)


def jax_runner(config, np_batch, *, warmup: int,
               seqgan_step: str = 'generator') -> tuple[Runner, dict]:
  """The library's update (`bench_update`), jitted with donation by train.parallel as
  the trainer does."""
  base = _rss()
  algo = steps.get(config.algorithm)
  mesh = parallel.make_mesh()
  parallel.check_divisible(config.batch_size, mesh)
  stacked = np_batch['tokens'].ndim == 3
  batch = parallel.to_global(np_batch, mesh, stacked=stacked)
  first = jax.tree.map(lambda x: x[0], np_batch) if stacked else np_batch
  rng = jax.random.key(config.seed)
  state = jax.jit(lambda r: algo.init(r, config, first),
                  out_shardings=parallel.replicated(mesh))(rng)
  t0 = time.perf_counter()
  compiled = parallel.jit_step(bench_update(algo, seqgan_step), mesh, config=config,
                               stacked=stacked).lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis() or {}
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  box = {'state': state}

  def step():
    box['state'], metrics = compiled(box['state'], batch, rng)
    jax.block_until_ready((box['state'], metrics))

  runner = Runner('jax', step, compile_s=compile_s)
  t0 = time.perf_counter()
  with RssPeak() as rss:
    for _ in range(warmup):
      step()
  runner.warmup_s = compile_s + time.perf_counter() - t0
  stats = jax.devices()[0].memory_stats()
  if stats and 'peak_bytes_in_use' in stats:
    runner.memory = (stats['peak_bytes_in_use'], 'JAX device peak_bytes_in_use')
  else:
    runner.memory = (rss.peak - base, RSS_NOTE)
  return runner, {'xla_cost_analysis_flops': float(cost.get('flops', float('nan')))}


def torch_runner(name, config, np_batch, *, device, warmup: int, compile_loss: bool,
                 seqgan_step: str = 'generator') -> Runner:
  """The PyTorch step of `torch_steps.STEPS[config.algorithm]` (its loss under
  torch.compile when `compile_loss`)."""
  import torch  # pylint: disable=g-import-not-at-top
  from jaxtextgen.bench import torch_steps  # pylint: disable=g-import-not-at-top
  base = _rss()
  dev = torch.device(device)
  torch.manual_seed(config.seed)
  impl = torch_steps.STEPS[config.algorithm](config, dev, compile_loss=compile_loss)
  tokens = torch.tensor(np_batch['tokens'], dtype=torch.long, device=dev)
  mask = torch.tensor(np_batch['mask'], device=dev)
  if tokens.dim() == 3:  # a round: g_steps generator steps, then d_steps D steps, as JAX's
    g = config.gan
    fns = [impl.generator_step] * g.g_steps + [impl.discriminator_step] * g.d_steps
    batches = [{'tokens': tokens[i], 'mask': mask[i]} for i in range(len(fns))]
  else:
    fns = [impl.step]
    if seqgan_step == 'discriminator' and hasattr(impl, 'discriminator_step'):  # the GANs
      fns = [impl.discriminator_step]
    batches = [{'tokens': tokens, 'mask': mask}]
  cuda = dev.type == 'cuda'

  def step():
    for fn, batch in zip(fns, batches):
      fn(batch)
    if cuda:
      torch.cuda.synchronize()

  runner = Runner(name, step)
  if cuda:
    torch.cuda.reset_peak_memory_stats()
  t0 = time.perf_counter()
  try:
    with RssPeak() as rss:
      for _ in range(warmup):
        step()
  except Exception as e:  # pylint: disable=broad-except  (torch.compile fails in many ways)
    if not compile_loss:
      raise
    runner.error = f'{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}'
  runner.warmup_s = time.perf_counter() - t0
  if cuda:
    runner.memory = (torch.cuda.max_memory_allocated(), 'torch.cuda.max_memory_allocated')
  else:
    runner.memory = (rss.peak - base, RSS_NOTE)
  return runner


def alternate(runners, num_steps: int, block: int = 5) -> None:
  """num_steps timed steps per runner, in blocks of `block` consecutive steps of one
  runner, the order rotating every round (block 1: step by step; block 0 or >=
  num_steps: all of one runner's steps, then the next's). Blocks let each
  framework's thread pool settle, while the rotation spreads drifting machine load
  over all runners."""
  block = num_steps if block <= 0 else min(block, num_steps)
  for i, start in enumerate(range(0, num_steps, block)):
    k = i % len(runners)
    for r in runners[k:] + runners[:k]:
      for _ in range(min(block, num_steps - start)):
        t0 = time.perf_counter()
        r.step()
        r.times.append(time.perf_counter() - t0)

"""The one generic loop: every algorithm trains, evaluates and samples through it.

`train_and_evaluate(config, workdir)` builds the data and the algorithm named by
the config, jits its step over a data-parallel mesh, evaluates periodically,
checkpoints every N steps, at the end and on SIGTERM, and resumes exactly from
the latest checkpoint in `workdir`: same seed, same data order from that step,
same per-step keys (folded from the step), so an interrupted run reproduces an
uninterrupted one bit for bit.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxtextgen import steps
from jaxtextgen.data import pipeline
from jaxtextgen.train import parallel
from jaxtextgen.train.checkpoint import Checkpointer
from jaxtextgen.train.writer import MetricWriter


class Run:
  """Data, algorithm, mesh, jitted functions and RNG streams of one experiment."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self.workdir = workdir
    self.is_chief = jax.process_index() == 0
    self.algo = steps.get(config.algorithm)
    self.mesh = parallel.make_mesh()
    parallel.check_divisible(config.batch_size, self.mesh)
    parallel.check_divisible(config.eval_batch_size, self.mesh, 'config.eval_batch_size')
    self.data = pipeline.build_data(config, os.path.join(workdir, 'vocab.json'),
                                    save_vocab=self.is_chief)
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.vocab.update(self.data.spec)
      if config.num_train_steps <= 0:
        config.num_train_steps = max(
            1, int(config.num_epochs * len(self.data.train) // config.batch_size))
    self.config = config
    self._write_config()
    root = jax.random.key(config.seed)
    self.init_rng, self.train_rng, self.eval_rng = jax.random.split(root, 3)
    self.checkpointer = Checkpointer(workdir, config.keep_checkpoints)
    self.repl = parallel.replicated(self.mesh)

  def _write_config(self) -> None:
    if not self.is_chief:
      return
    path = os.path.join(self.workdir, 'config.json')
    text = self.config.to_json_best_effort(indent=2, sort_keys=True)
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        if f.read() != text:
          logging.warning('%s differs from the config of this run; the checkpoint in this '
                          'workdir may not match it.', path)
      return
    with open(path, 'w', encoding='utf-8') as f:
      f.write(text)

  def initial_state(self):
    sample = self.data.train.gather(np.arange(self.config.batch_size) % len(self.data.train))
    init = jax.jit(lambda rng: self.algo.init(rng, self.config, sample), out_shardings=self.repl)
    return init(self.init_rng)

  def restore_or_init(self, *, require: bool = False):
    """(state, step) from the latest checkpoint, else fresh (unless `require`)."""
    state = self.initial_state()
    step = self.checkpointer.latest_step()
    if step is None:
      if require:
        raise FileNotFoundError(f'no checkpoint in {self.workdir}/checkpoints; train first '
                                f'with --mode=train --workdir={self.workdir}')
      return state, 0
    logging.info('restoring the checkpoint of step %d from %s', step, self.workdir)
    return jax.device_put(self.checkpointer.restore(state, step), self.repl), step

  # --- evaluation ------------------------------------------------------------------------
  def evaluate(self, state, step: int) -> dict:
    """Eval-split metrics (sums over the whole split, then finalised), for the
    synthetic oracle NLL-oracle of config.eval.num_samples generator samples, and
    whatever the algorithm's optional `evaluate_samples(state, rng, *, config, vocab)`
    measures on samples of its own (e.g. a judge's accuracy on conditional samples)."""
    cfg, rng = self.config, jax.random.fold_in(self.eval_rng, step)
    metrics = {}
    if self.data.eval is not None:
      if not hasattr(self, '_eval_fn'):
        self._eval_fn = parallel.jit_step(self.algo.eval_step, self.mesh, config=cfg,
                                          donate=False)
      batches = pipeline.eval_batches(
          self.data.eval, batch_size=cfg.eval_batch_size, process_index=jax.process_index(),
          process_count=jax.process_count())
      sums, rows = None, []
      for i, batch in enumerate(itertools.islice(batches, cfg.eval.max_batches or None)):
        batch = parallel.to_global(batch, self.mesh)
        out = dict(self._eval_fn(state, batch, jax.random.fold_in(rng, 2 * i + 2)))
        # Statistics that do not add up over batches (e.g. a VAE's mutual information,
        # whose aggregate posterior spans the whole split) come back as rows.
        per_example = out.pop('per_example', None)
        if per_example is not None:
          real = _to_host(batch['weight']) > 0
          rows.append(jax.tree.map(lambda x: _to_host(x)[real], per_example))
        sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
      sums = jax.tree.map(np.asarray, jax.device_get(sums))
      if rows:
        sums['per_example'] = jax.tree.map(lambda *xs: np.concatenate(xs), *rows)
      metrics.update(self.algo.finalize_eval(sums))
    if self.data.oracle_params is not None and cfg.eval.num_samples:
      from jaxtextgen.data import oracle  # pylint: disable=g-import-not-at-top
      samples = self.algo.sample(state, jax.random.fold_in(rng, 1), cfg.eval.num_samples,
                                 config=cfg)
      metrics['nll_oracle'] = oracle.nll_oracle(self.data.oracle_params, _to_host(samples))
    if hasattr(self.algo, 'evaluate_samples'):  # metrics of the algorithm's own samples
      metrics.update(self.algo.evaluate_samples(state, jax.random.fold_in(rng, 3), config=cfg,
                                                vocab=self.data.vocab))
    return {k: float(v) for k, v in metrics.items()}

  def write_eval(self, step: int, metrics: dict) -> str:
    path = os.path.join(self.workdir, f'eval_{step}.json')
    if self.is_chief:
      with open(path, 'w', encoding='utf-8') as f:
        json.dump({'step': step, **metrics}, f, indent=2, sort_keys=True)
    return path

  def write_text(self, name: str, lines: list[str]) -> str:
    """WORKDIR/name with one line per entry (chief only); returns the path."""
    path = os.path.join(self.workdir, name)
    if self.is_chief:
      with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return path


class _StopFlag:
  """Turns SIGTERM (pre-emption, `kill`) into a clean stop after the current step."""

  def __init__(self):
    self.requested = False
    self._old = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM: saving a checkpoint and stopping after this step')
    self.requested = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._old)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config.algorithm` in `workdir` (resuming if it holds a checkpoint) and
  returns the final eval metrics."""
  run = Run(config, workdir)
  cfg = run.config
  state, start = run.restore_or_init()
  total = cfg.num_train_steps
  writer = MetricWriter(workdir, resume_step=start, enabled=run.is_chief)
  train_fn = parallel.jit_step(run.algo.train_step, run.mesh, config=cfg)
  batches = pipeline.train_iterator(
      run.data.train, start_step=start, batch_size=cfg.batch_size, seed=cfg.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      sort_chunk=cfg.data.sort_chunk, trim_multiple=cfg.data.trim_multiple)
  logging.info('%s on %d device(s): steps %d -> %d, global batch %d, %d train sentences',
               cfg.algorithm, run.mesh.size, start, total, cfg.batch_size, len(run.data.train))
  stop = _StopFlag()
  metrics, eval_metrics = None, {}
  if cfg.eval.at_start and start == 0:  # the starting point, e.g. of a pretrained generator
    start_metrics = run.evaluate(state, 0)
    writer.write(0, start_metrics, prefix='eval/')
    logging.info('eval at step 0: %s', _fmt(start_metrics))
  t0, last_t, last_step, tokens = time.time(), time.time(), start, 0.0
  try:
    for step in range(start, total):
      batch = next(batches)
      tokens += float(batch['mask'].sum()) * jax.process_count()  # host numpy: no device sync
      state, metrics = train_fn(state, parallel.to_global(batch, run.mesh), run.train_rng)
      done = step + 1
      if done % cfg.log_every == 0 or done == total:
        m = jax.device_get(metrics)  # the only host sync of the loop
        now = time.time()
        rate = (done - last_step) / max(now - last_t, 1e-9)
        tokens_per_s = tokens / max(now - last_t, 1e-9)
        writer.write(done, {**m, 'steps_per_s': rate, 'tokens_per_s': tokens_per_s})
        eta = (total - done) / max(rate, 1e-9)
        logging.info('step %d/%d  loss %.4f  %.1f steps/s  %.0f tokens/s  ETA %s', done, total,
                     float(m.get('loss', math.nan)), rate, tokens_per_s, _hms(eta))
        last_t, last_step, tokens = now, done, 0.0
      if cfg.eval_every and done % cfg.eval_every == 0 and done != total:
        eval_metrics = run.evaluate(state, done)
        writer.write(done, eval_metrics, prefix='eval/')
        logging.info('eval at step %d: %s', done, _fmt(eval_metrics))
        last_t, last_step, tokens = time.time(), done, 0.0  # rates measure training only
      if done % cfg.checkpoint_every == 0 or done == total or stop.requested:
        run.checkpointer.save(done, state)
      if stop.requested:
        logging.warning('stopped at step %d; run again with the same --workdir to resume', done)
        return {}
    if start < total or not eval_metrics:
      eval_metrics = run.evaluate(state, total)
      writer.write(total, eval_metrics, prefix='eval/')
      run.write_eval(total, eval_metrics)
      logging.info('final eval at step %d: %s (%.1f s)', total, _fmt(eval_metrics),
                   time.time() - t0)
    return eval_metrics
  finally:
    stop.restore()
    run.checkpointer.wait()
    run.checkpointer.close()
    writer.close()


def evaluate_checkpoint(config, workdir: str) -> dict:
  """--mode=eval: metrics of the latest checkpoint, also written to eval_<step>.json."""
  run = Run(config, workdir)
  state, step = run.restore_or_init(require=True)
  metrics = run.evaluate(state, step)
  run.write_eval(step, metrics)
  return {'step': step, **metrics}


def sample_checkpoint(config, workdir: str, num: int | None = None) -> list[str]:
  """--mode=sample: `num` decoded samples of the latest checkpoint (written to
  samples_<step>.txt) and, for autoencoders, what config.sample asks for:
  reconstructions of sentences from a file or stdin, a homotopy between two
  sentences, a PNG of the latent space. Returns the lines to print."""
  run = Run(config, workdir)
  _check_latent_request(run)
  state, step = run.restore_or_init(require=True)
  num = run.config.sample.num if num is None else num
  lines = []
  if num > 0:
    tokens = run.algo.sample(state, jax.random.fold_in(run.eval_rng, 2 * step + 1), num,
                             config=run.config)
    lines = [run.data.vocab.decode(t) for t in _to_host(tokens)]
    run.write_text(f'samples_{step}.txt', lines)
  return lines + _latent_outputs(run, state, step)


def _check_latent_request(run: Run) -> bool:
  """Whether config.sample asks for autoencoder outputs; an error if the algorithm
  has no encoder to give them."""
  s = run.config.sample
  wanted = [f'config.sample.{k}' for k in ('reconstruct_file', 'homotopy', 'latent_png')
            if s[k]]
  if wanted and not hasattr(run.algo, 'encode_sentences'):
    raise ValueError(f'{", ".join(wanted)}: the algorithm {run.config.algorithm!r} has no '
                     'encoder; these need an autoencoder (ae, dae or vae). Unset them.')
  return bool(wanted)


def _latent_outputs(run: Run, state, step: int) -> list[str]:
  """The autoencoder-only outputs of --mode=sample (config.sample)."""
  cfg, s, vocab = run.config, run.config.sample, run.data.vocab
  if not _check_latent_request(run):
    return []
  batch = cfg.eval_batch_size

  def run_chunked(fn, split):  # fn(state, tokens, mask) over eval-batch-sized chunks
    fn = jax.jit(functools.partial(fn, config=cfg))
    return _in_chunks(lambda t, m: _to_host(fn(state, t, m)), (split.tokens, split.mask), batch)

  def tokenize(texts, name):
    return pipeline.tokenize(texts, None, vocab, cfg.data.max_len, name=name)

  out = []
  if s.reconstruct_file:
    texts = read_sentences(s.reconstruct_file, 'config.sample.reconstruct_file')
    decoded = run_chunked(run.algo.reconstruct, tokenize(texts, s.reconstruct_file))
    rows = [f'{a}\t{vocab.decode(b)}' for a, b in zip(texts, decoded)]
    path = run.write_text(f'reconstructions_{step}.txt', rows)
    out += [f'# reconstructions (input TAB greedy decode of its code), also in {path}'] + rows
  if s.homotopy:
    ends = [t.strip() for t in s.homotopy.split('|||')]
    if len(ends) != 2 or not all(ends):
      raise ValueError(f"config.sample.homotopy={s.homotopy!r}: give two sentences separated "
                       "by '|||', e.g. 'the market fell . ||| he said yes .'")
    if s.homotopy_steps < 2:
      raise ValueError(f'config.sample.homotopy_steps={s.homotopy_steps}: need at least 2.')
    split = tokenize(ends, 'config.sample.homotopy')
    path_tokens = _to_host(run.algo.homotopy(state, jnp.asarray(split.tokens),
                                             jnp.asarray(split.mask), s.homotopy_steps,
                                             config=cfg))
    rows = [vocab.decode(t) for t in path_tokens]
    path = run.write_text(f'homotopy_{step}.txt', rows)
    out += [f'# homotopy, {s.homotopy_steps} points from a to b, also in {path}'] + rows
  if s.latent_png:
    if run.data.eval is None:
      raise ValueError('config.sample.latent_png needs an eval split (config.data.eval_split).')
    n = min(len(run.data.eval), s.latent_max_sentences)
    split = run.data.eval
    codes = run_chunked(run.algo.encode_sentences,
                        pipeline.TokenizedSplit(split.tokens[:n], split.mask[:n],
                                                split.labels[:n], 0))
    path = os.path.join(run.workdir, f'latent_{step}.png')
    if run.is_chief:
      from jaxtextgen.metrics import projection  # pylint: disable=g-import-not-at-top
      projection.write_latent_png(codes, split.labels[:n], path, title=(
          f'{cfg.algorithm} posterior means, {n} {cfg.data.eval_split} sentences, step {step}'))
    out.append(f'# latent PNG ({n} {cfg.data.eval_split} sentences, PCA): {path}')
  return out


def _in_chunks(fn, arrays: tuple[np.ndarray, ...], size: int) -> np.ndarray:
  """fn over rows of `arrays` in chunks of exactly `size` rows (the last one padded
  with zeros, its padding dropped from the output): one compiled shape."""
  outs = []
  for i in range(0, len(arrays[0]), size):
    part = [a[i:i + size] for a in arrays]
    pad = size - len(part[0])
    part = [np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) for a in part]
    outs.append(np.asarray(fn(*part))[:size - pad])
  return np.concatenate(outs)


def read_sentences(path: str, what: str) -> list[str]:
  """Non-empty lines of a UTF-8 text file ('-': stdin), stripped."""
  try:
    raw = sys.stdin.buffer.read() if path == '-' else open(path, 'rb').read()
  except FileNotFoundError:
    raise FileNotFoundError(f'{what}={path!r}: no such file; give a text file with one '
                            "sentence per line, or '-' to read stdin.") from None
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b'\n') + 1
    raise ValueError(f'{what}={path!r}: line {line} is not UTF-8 (byte offset {e.start}); '
                     're-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).') from None
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  if not lines:
    raise ValueError(f'{what}={path!r} holds no sentences; give one sentence per line.')
  return lines


def _to_host(x) -> np.ndarray:
  """A (possibly multi-host, sharded) array as one numpy array on every process."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def _hms(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _fmt(metrics: dict) -> str:
  return '  '.join(f'{k} {v:.4g}' for k, v in sorted(metrics.items()))

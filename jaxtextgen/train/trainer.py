"""The one generic loop: every algorithm trains, evaluates and samples through it.

`train_and_evaluate(config, workdir)` builds the data and the algorithm named by
the config, runs its schedule of named updates (`steps.schedule`: one phase of
`train_step` unless the algorithm declares `schedule(config)`), each update jitted
once over a data-parallel mesh, evaluates periodically, checkpoints every N steps,
at the end and on SIGTERM, and resumes exactly from the latest checkpoint in
`workdir`: same seed, same data order from that step, same per-step keys (folded
from the step), so an interrupted run reproduces an uninterrupted one bit for bit.

A step is one real batch consumed; an update of k stacked batches (an adversarial
round) advances it by k, and every cadence (log_every, eval_every,
checkpoint_every) fires at the first update boundary at or after each multiple.
Train rows hold each metric's mean over the updates of the log window (NaNs, which an
update reports for what it did not measure this time, skipped), under
'<phase>/<key>' when the schedule has several phases.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxtextgen import steps
from jaxtextgen.data import pipeline
from jaxtextgen.steps import common
from jaxtextgen.steps import schedule as schedule_lib
from jaxtextgen.train import parallel
from jaxtextgen.train.checkpoint import CheckpointError, Checkpointer  # pylint: disable=unused-import
from jaxtextgen.train.writer import MetricWriter


class Run:
  """Data, algorithm, mesh, jitted functions and RNG streams of one experiment."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    check_values(config)  # before anything is written
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
      config.data.provenance = self.data.provenance
      self.schedule = self._resolve_schedule(config)
    self.config = config
    self._write_config()
    root = jax.random.key(config.seed)
    self.init_rng, self.train_rng, self.eval_rng = jax.random.split(root, 3)
    self.checkpointer = Checkpointer(workdir, config.keep_checkpoints, is_chief=self.is_chief)
    self.repl = parallel.replicated(self.mesh)

  def _resolve_schedule(self, config) -> schedule_lib.Schedule:
    """The algorithm's schedule with its lengths; sets config.num_train_steps to the
    run's length (from num_epochs when <= 0 and the schedule follows it)."""
    if hasattr(self.algo, 'schedule'):
      sched = self.algo.schedule(config)
    else:
      sched = schedule_lib.single(self.algo.train_step)
    if sched.open:
      if config.num_train_steps <= 0:
        config.num_train_steps = max(
            1, int(config.num_epochs * len(self.data.train) // config.batch_size))
      return sched.resolve(config.num_train_steps)
    if 0 < config.num_train_steps != sched.total_steps:
      raise ValueError(f'config.num_train_steps={config.num_train_steps}: a {config.algorithm} '
                       f'run is as long as its schedule, {sched.describe()} = '
                       f'{sched.total_steps} steps (real batches); change its phases instead '
                       '(e.g. config.gan.rounds) and leave config.num_train_steps at -1.')
    config.num_train_steps = sched.total_steps
    return sched

  def _write_config(self) -> None:
    """Writes WORKDIR/config.json; beside a checkpoint, a config whose model, data or
    vocabulary settings differ from it is an error that lists them (`resume_conflicts`)."""
    path = os.path.join(self.workdir, 'config.json')
    text = self.config.to_json_best_effort(indent=2, sort_keys=True)
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        old = f.read()
      if old != text:
        ckpt = os.path.join(self.workdir, 'checkpoints')
        trained = os.path.isdir(ckpt) and any(d.isdigit() for d in os.listdir(ckpt))
        conflicts = resume_conflicts(json.loads(old), json.loads(text))
        other_data = [c for c in conflicts if c.startswith('data.provenance:')]
        if other_data and not trained:  # its vocab.json belongs to that other corpus
          raise ValueError(
              f'{path} and vocab.json in this workdir belong to other data ({other_data[0]}); '
              'use a new --workdir, or delete them to build this corpus\'s vocabulary here.')
        if conflicts and trained:
          raise ValueError(
              f'{path} was trained with other model / data / vocabulary settings than this run: '
              f'{"; ".join(conflicts)}. Set them back to resume this checkpoint, or use a new '
              '--workdir (log, eval, sample and length settings may change on resume).')
        logging.warning('%s differs from the config of this run in settings that may change on '
                        'resume; it keeps the first run\'s.', path)
      return
    if not self.is_chief:
      return
    with open(path, 'w', encoding='utf-8') as f:
      f.write(text)

  def __enter__(self) -> 'Run':
    return self

  def __exit__(self, *exc) -> None:
    """Closes the checkpoint manager (its background threads): eval, sample, transfer and
    generate open a Run this way."""
    self.checkpointer.close()

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
  def evaluate(self, state, step: int, should_stop=lambda: False) -> dict:
    """Eval-split metrics (sums over the whole split, then finalised), and whatever the
    algorithm's optional hook `evaluate_samples(state, rng, *, config, data)` measures
    on samples of its own (NLL-oracle, a judge's accuracy on conditional samples).
    Raises `EvalAbandoned` between batches once `should_stop()` (a stop request)."""
    cfg, rng = self.config, jax.random.fold_in(self.eval_rng, step)
    metrics = {}
    if self.data.eval is not None:
      if not hasattr(self, '_eval_fn'):
        self._eval_fn = parallel.jit_step(self.algo.eval_step, self.mesh, config=cfg,
                                          donate=False)
      limit = cfg.eval.max_batches * cfg.eval_batch_size if cfg.eval.max_batches else None
      batches = pipeline.eval_batches(
          self.data.eval, batch_size=cfg.eval_batch_size, process_index=jax.process_index(),
          process_count=jax.process_count(), limit=limit, base_len=cfg.data.max_len,
          multiple=jax.device_count())
      sums, rows, order = None, [], []
      for i, batch in enumerate(batches):
        if should_stop():
          raise EvalAbandoned(step)
        index = batch.pop('index')
        batch = parallel.to_global(batch, self.mesh)
        out = dict(self._eval_fn(state, batch, jax.random.fold_in(rng, 2 * i + 2)))
        # Statistics that do not add up over batches (e.g. a VAE's mutual information,
        # whose aggregate posterior spans the whole split) come back as rows.
        per_example = out.pop('per_example', None)
        if per_example is not None:
          real = parallel.to_host(batch['weight']) > 0
          rows.append(jax.tree.map(lambda x: parallel.to_host(x)[real], per_example))
          order.append(index[real])
        sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
      sums = jax.tree.map(np.asarray, jax.device_get(sums))
      if rows:
        sums['per_example'] = split_order_rows(rows, np.concatenate(order))
      metrics.update(self.algo.finalize_eval(sums))
    if should_stop():
      raise EvalAbandoned(step)
    if hasattr(self.algo, 'evaluate_samples'):  # metrics of the algorithm's own samples
      metrics.update(self.algo.evaluate_samples(state, jax.random.fold_in(rng, 3), config=cfg,
                                                data=self.data))
    return {k: float(v) for k, v in metrics.items()}

  def write_eval(self, step: int, metrics: dict) -> str:
    return self.write_text(f'eval_{step}.json', [json.dumps({'step': step, **metrics},
                                                            indent=2, sort_keys=True)])

  # --- what sample_outputs hooks write through (`outputs`) ------------------------------------
  def path(self, name: str) -> str:
    """WORKDIR/name (write it on the chief only: `is_chief`)."""
    return os.path.join(self.workdir, name)

  def write_text(self, name: str, lines: list[str]) -> str:
    """WORKDIR/name with one line per entry (chief only); returns the path."""
    path = os.path.join(self.workdir, name)
    if self.is_chief:
      try:
        with open(path, 'w', encoding='utf-8') as f:
          f.write('\n'.join(lines) + '\n')
      except OSError as e:  # e.g. a read-only workdir: the caller still prints its results
        logging.warning('could not write %s (%s); the results are only printed', path, e)
    return path


# What a checkpoint was built for: differences here make it another model or other data.
_STRICT = ('algorithm', 'seed', 'model.', 'vocab.', 'ae.latent_dim', 'ae.bidirectional',
           'ae.attention', 'classifier.encoder', 'classifier.emb_dim', 'classifier.filter_sizes',
           'classifier.num_filters', 'classifier.hidden_size', 'data.corpus', 'data.tokenizer',
           'data.min_count', 'data.max_vocab', 'data.num_classes', 'data.train_split',
           'data.label_fraction', 'data.oracle_', 'data.provenance', 'd2t.planner', 'd2t.copy',
           'd2t.delex', 'd2t.max_records', 'd2t.max_oov')


def resume_conflicts(old: dict, new: dict) -> list[str]:
  """'key: old -> new' for every model / data / vocabulary setting (`_STRICT`) in which
  two configs (as config.json holds them) differ; a key that `old` lacks (written by an
  older version) is not a difference."""
  def flat(d, prefix=''):
    out = {}
    for k, v in d.items():
      if isinstance(v, dict):
        out.update(flat(v, f'{prefix}{k}.'))
      else:
        out[f'{prefix}{k}'] = v
    return out
  a, b = flat(old), flat(new)
  keys = sorted(k for k in a
                if any(k == s or (s.endswith(('.', '_')) and k.startswith(s)) for s in _STRICT))
  return [f'{k}: {a.get(k)!r} -> {b.get(k)!r}' for k in keys if a.get(k) != b.get(k)]


def check_values(config) -> None:
  """Rejects settings that are certainly wrong, with the fix, before a run writes anything."""
  bad = []
  if not config.optimizer.learning_rate > 0:
    bad.append(f'config.optimizer.learning_rate={config.optimizer.learning_rate} must be > 0')
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] <= 0:
      bad.append(f'config.{key}={config[key]} must be a positive number of sentences')
  if config.data.max_len < 2:
    bad.append(f'config.data.max_len={config.data.max_len} must be >= 2 (tokens and EOS)')
  if config.nan_policy not in NAN_POLICIES:
    bad.append(f'config.nan_policy={config.nan_policy!r} must be one of {NAN_POLICIES}')
  if bad:
    raise ValueError('; '.join(bad))


NAN_POLICIES = ('stop', 'skip')


def skip_non_finite(update):
  """`update` that keeps the old parameters and optimizer state (but advances the step,
  so the data moves on) when its new parameters are not all finite; its metrics gain
  'nan_skipped', 1.0 for a skipped update (config.nan_policy='skip')."""
  def guarded(state, batch, rng, *, config, axis_name=None):
    new, metrics = update(state, batch, rng, config=config, axis_name=axis_name)
    ok = _all_finite(new.params)
    kept = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state).replace(step=new.step)
    return kept, {**metrics, 'nan_skipped': 1.0 - ok.astype(jnp.float32)}
  return guarded


class NonFiniteError(FloatingPointError):
  """The parameters became NaN or infinite: the run stops without checkpointing them."""


_all_finite = jax.jit(lambda tree: jnp.all(jnp.stack(
    [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)
     if jnp.issubdtype(x.dtype, jnp.inexact)] or [jnp.bool_(True)])))


def _check_finite(run: 'Run', state, step: int) -> None:
  """Never checkpoint non-finite parameters: stop with the step and the last good
  checkpoint, which rotation has not touched."""
  if bool(jax.device_get(_all_finite(state.params))):
    return
  good = run.checkpointer.latest_step()
  where = (f'the last good checkpoint, step {good}, is kept in {run.workdir}/checkpoints'
           if good is not None else 'no checkpoint was written')
  raise NonFiniteError(
      f'non-finite parameters at step {step} (loss NaN or inf): not checkpointed; {where}. '
      f'Lower config.optimizer.learning_rate (now {run.config.optimizer.learning_rate:g}) or '
      'set config.optimizer.grad_clip, then resume from that checkpoint.')


class Stopped(Exception):
  """A stop request (SIGTERM, SIGINT) ended the run early, after checkpointing the step it
  finished: resume it with the same workdir. `launch.py` exits with `EXIT_STOPPED`."""

  def __init__(self, step: int, workdir: str):
    super().__init__(f'stopped at step {step}; run again with the same --workdir={workdir} to '
                     'resume')
    self.step = step


EXIT_STOPPED = 75  # EX_TEMPFAIL: a pre-empted run, to be requeued


class _StopFlag:
  """Turns SIGTERM (pre-emption, `kill`) and a first SIGINT (Ctrl-C) into a clean stop after
  the current step; a second SIGINT aborts at once."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

  def _handle(self, signum, frame):
    del frame
    name = signal.Signals(signum).name
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    logging.warning('%s: saving a checkpoint and stopping after this step%s', name,
                    ' (Ctrl-C again aborts at once)' if signum == signal.SIGINT else '')
    self.requested = True

  def restore(self):
    for s, old in self._old.items():
      signal.signal(s, old)


_EVAL_PENDING = 'eval_pending'  # WORKDIR file: the step of an abandoned eval


def split_order_rows(rows: list[dict], order: np.ndarray) -> dict:
  """Per-example eval rows of length-grouped batches, concatenated and put back in split
  order (`order`: each row's split position); rows of different widths (token ids of
  different buckets) are right-padded with zeros to the widest."""
  def cat(*xs):
    width = max(x.shape[1] for x in xs) if xs[0].ndim > 1 else None
    pad = lambda x: np.pad(x, [(0, 0), (0, width - x.shape[1])] + [(0, 0)] * (x.ndim - 2))
    return np.concatenate([pad(x) for x in xs] if width else xs)[np.argsort(order, kind='stable')]
  return jax.tree.map(cat, *rows)


class EvalAbandoned(Exception):
  """A stop request arrived during an eval, which is dropped (the run resumes with it)."""


class WorkdirInUse(RuntimeError):
  """Another process is training in this workdir."""


class _WorkdirLock:
  """WORKDIR/train.lock, held (flock) by the one process that trains there: a second
  trainer on the same workdir fails at once; eval and sample do not take it. Released
  by the OS when the process dies, so a killed run leaves no stale lock."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._file = None
    if not enabled:
      return
    import fcntl  # pylint: disable=g-import-not-at-top
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, 'train.lock')
    self._file = open(path, 'a+', encoding='utf-8')  # pylint: disable=consider-using-with
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      self._file.seek(0)
      holder = self._file.read().strip() or 'another process'
      self._file.close()
      raise WorkdirInUse(f'{workdir} is in use: {holder} is training there ({path}). Stop '
                         'it, or give this run another --workdir.') from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f'pid {os.getpid()} on {os.uname().nodename}\n')
    self._file.flush()

  def release(self):
    if self._file is not None:
      self._file.close()  # closing drops the flock
      self._file = None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config.algorithm` in `workdir` (resuming if it holds a checkpoint) and
  returns the final eval metrics."""
  check_values(config)
  lock = _WorkdirLock(workdir, enabled=jax.process_index() == 0)
  try:
    return _train(config, workdir)
  finally:
    lock.release()


def _train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  run = Run(config, workdir)
  cfg, sched = run.config, run.schedule
  state, start = run.restore_or_init()
  total = cfg.num_train_steps
  if start < total:
    sched.locate(start)  # a checkpoint of another schedule: say so before any work
  writer = MetricWriter(workdir, resume_step=start, enabled=run.is_chief)
  updates = _PhaseUpdates(run)
  batches = pipeline.train_iterator(
      run.data.train, start_step=start, batch_size=cfg.batch_size, seed=cfg.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      sort_chunk=cfg.data.sort_chunk, trim_multiple=cfg.data.trim_multiple)
  logging.info('%s on %d device(s): steps %d -> %d (%s), global batch %d, %d train sentences',
               cfg.algorithm, run.mesh.size, start, total, sched.describe(), cfg.batch_size,
               len(run.data.train))
  stop = _StopFlag()
  eval_metrics = {}
  if cfg.eval.at_start and start == 0:  # the starting point, e.g. of a pretrained generator
    start_metrics = run.evaluate(state, 0)
    writer.write(0, start_metrics, prefix='eval/')
    logging.info('eval at step 0: %s', _fmt(start_metrics))
  pending = os.path.join(workdir, _EVAL_PENDING)
  if os.path.exists(pending):  # an eval a stop request abandoned at this step
    with open(pending, encoding='utf-8') as f:
      due = f.read().strip() == str(start)
    if due and start < total:
      eval_metrics = run.evaluate(state, start, lambda: stop.requested)
      writer.write(start, eval_metrics, prefix='eval/')
      logging.info('eval at step %d: %s', start, _fmt(eval_metrics))
    if run.is_chief:
      os.remove(pending)
  t0, last_t, last_step, tokens = time.time(), time.time(), start, 0.0
  window = _load_window(workdir, start)  # the log window a stopped run left open
  step = start
  try:
    while step < total:
      index, done_updates = sched.locate(step)
      phase = sched.phases[index]
      batch, local_tokens = _next_batch(batches, phase.batches, run)
      tokens += local_tokens * jax.process_count()
      state, metrics = updates(index)(state, batch, run.train_rng)
      window.append(schedule_lib.metric_names(phase, metrics, prefixed=len(sched.phases) > 1))
      prev, step = step, step + phase.batches
      if _crossed(prev, step, cfg.log_every) or step == total:
        m = window_mean(jax.device_get(window))  # the only host sync of the loop
        now = time.time()
        rate = (step - last_step) / max(now - last_t, 1e-9)
        tokens_per_s = tokens / max(now - last_t, 1e-9)
        writer.write(step, {**m, 'steps_per_s': rate, 'tokens_per_s': tokens_per_s})
        where = (f'  [{phase.name} {done_updates + 1}/{phase.updates}]'
                 if len(sched.phases) > 1 else '')
        losses = '  '.join(f'{k} {v:.4f}' for k, v in sorted(m.items())
                           if k == 'loss' or k.endswith('/loss'))
        logging.info('step %d/%d%s  %s  %.1f steps/s  %.0f tokens/s  ETA %s', step, total,
                     where, losses, rate, tokens_per_s, _hms((total - step) / max(rate, 1e-9)))
        last_t, last_step, tokens, window = now, step, 0.0, []
      if _crossed(prev, step, cfg.eval_every) and step != total:
        try:
          eval_metrics = run.evaluate(state, step, lambda: stop.requested)
          writer.write(step, eval_metrics, prefix='eval/')
          logging.info('eval at step %d: %s', step, _fmt(eval_metrics))
        except EvalAbandoned:  # the resumed run evaluates this step first
          logging.warning('stop requested: the eval at step %d is abandoned', step)
          if run.is_chief:
            with open(os.path.join(workdir, _EVAL_PENDING), 'w', encoding='utf-8') as f:
              f.write(str(step))
        last_t, last_step, tokens = time.time(), step, 0.0  # rates measure training only
      if _crossed(prev, step, cfg.checkpoint_every) or step == total or stop.requested:
        _check_finite(run, state, step)
        run.checkpointer.save(step, state)
        window = jax.device_get(window)
        if run.is_chief:
          _save_window(workdir, step, window)
      if stop.requested:
        raise Stopped(step, workdir)
    if start < total or not eval_metrics:
      try:
        eval_metrics = run.evaluate(state, total, lambda: stop.requested)
      except EvalAbandoned:  # the checkpoint at `total` is saved: a resume runs this eval
        raise Stopped(total, workdir) from None
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


class _PhaseUpdates:
  """Each phase's update, jitted once (on first use) with its batch layout."""

  def __init__(self, run: Run):
    self._run, self._fns = run, {}

  def __call__(self, index: int):
    if index not in self._fns:
      phase, config = self._run.schedule.phases[index], self._run.config
      update = skip_non_finite(phase.update) if config.nan_policy == 'skip' else phase.update
      self._fns[index] = parallel.jit_step(update, self._run.mesh, config=config,
                                           stacked=phase.batches > 1)
    return self._fns[index]


def _next_batch(batches, k: int, run: Run) -> tuple[dict, float]:
  """(the next real batch as global arrays, or the next k stacked [k, B, max_len];
  this process's target tokens in it, counted on the host: no device sync)."""
  if k == 1:
    batch = next(batches)
  else:
    batch = pipeline.stack_batches([next(batches) for _ in range(k)], run.config.data.max_len,
                                   run.config.vocab.pad_id)
  return parallel.to_global(batch, run.mesh, stacked=k > 1), float(batch['mask'].sum())


def _save_window(workdir: str, step: int, rows: list[dict]) -> None:
  """The metrics of the open log window at checkpoint `step` (window.json), so that a
  run resumed from that checkpoint logs the rows of an uninterrupted one."""
  path = os.path.join(workdir, 'window.json')
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump({'step': step, 'rows': [{k: float(v) for k, v in r.items()} for r in rows]}, f)
  os.replace(path + '.tmp', path)


def _load_window(workdir: str, step: int) -> list[dict]:
  """The open window saved with the checkpoint of `step`; none if it belongs to another."""
  path = os.path.join(workdir, 'window.json')
  try:
    with open(path, encoding='utf-8') as f:
      saved = json.load(f)
  except (FileNotFoundError, json.JSONDecodeError):
    return []
  return saved['rows'] if saved.get('step') == step else []


def _crossed(prev: int, step: int, every: int) -> bool:
  """Whether (prev, step] holds a multiple of `every` (0: never)."""
  return every > 0 and step // every > prev // every


def window_mean(rows: list[dict]) -> dict:
  """Each metric's mean over the rows (updates) that report it, NaNs skipped; a metric
  that is NaN in every row is left out."""
  out = {}
  for key in sorted({k for row in rows for k in row}):
    values = np.asarray([float(row[key]) for row in rows if key in row], np.float64)
    values = values[~np.isnan(values)]
    if values.size:
      out[key] = float(values.mean())
  return out


def _require_checkpoint(workdir: str) -> None:
  """eval and sample read a trained workdir; on a missing or misspelt one they create
  nothing."""
  ckpt = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(ckpt) or not any(d.isdigit() for d in os.listdir(ckpt)):
    raise FileNotFoundError(f'no checkpoint in {ckpt}; train first with --mode=train '
                            f'--workdir={workdir} (or check the --workdir spelling)')


def evaluate_checkpoint(config, workdir: str) -> dict:
  """--mode=eval: metrics of the latest checkpoint, also written to eval_<step>.json."""
  _require_checkpoint(workdir)
  with Run(config, workdir) as run:
    state, step = run.restore_or_init(require=True)
    metrics = run.evaluate(state, step)
    run.write_eval(step, metrics)
  return {'step': step, **metrics}


def sample_checkpoint(config, workdir: str, num: int | None = None) -> list[str]:
  """--mode=sample: `num` decoded samples of the latest checkpoint (written to
  samples_<step>.txt), then whatever the algorithm's optional hook
  `sample_outputs(state, rng, step, *, config, data, outputs)` adds (the autoencoders:
  reconstructions of a file, a homotopy, a latent PNG). Returns the lines to print."""
  hook = getattr(steps.get(config.algorithm), 'sample_outputs', None)
  if hook is None:  # a config error comes first, before the workdir is looked at
    common.reject_sample_requests(config)
  _require_checkpoint(workdir)
  with Run(config, workdir) as run:
    state, step = run.restore_or_init(require=True)
    num = run.config.sample.num if num is None else num
    lines = []
    if num > 0:
      tokens = run.algo.sample(state, jax.random.fold_in(run.eval_rng, 2 * step + 1), num,
                               config=run.config)
      lines = [run.data.vocab.decode(t) for t in parallel.to_host(tokens)]
      run.write_text(f'samples_{step}.txt', lines)
    if hook is not None:
      lines += hook(state, jax.random.fold_in(run.eval_rng, 2 * step + 2), step,
                    config=run.config, data=run.data, outputs=run)
  return lines


def transfer_checkpoint(config, workdir: str, input_path: str, to_label: int,
                        output: str = '') -> list[str]:
  """--mode=transfer: the sentences of `input_path` (one per line, '-': stdin), each moved
  to class `to_label` by the algorithm's `transfer` hook (`steps.transfer`) with the latest
  checkpoint, written as `input<TAB>output` lines to `output` (default
  WORKDIR/transfer_<step>.txt). Returns the lines to print."""
  from jaxtextgen.steps import transfer as transfer_lib  # pylint: disable=g-import-not-at-top
  fn = getattr(steps.get(config.algorithm), 'transfer', None)
  if fn is None:
    raise ValueError(f'config.algorithm={config.algorithm!r} has no attribute code to set: '
                     '--mode=transfer needs a model with one (ctrl_gen, cross_align).')
  transfer_lib.check_label(to_label, config)
  texts = pipeline.read_sentences(input_path, '--input')
  _require_checkpoint(workdir)
  with Run(config, workdir) as run:
    state, step = run.restore_or_init(require=True)
    cfg = run.config
    split = pipeline.tokenize(texts, None, run.data.vocab, cfg.data.max_len, name='--input',
                              fix='the model reads its first max_len tokens')
    n = len(texts)
    # The source class: the other one of two (what a user transferring "to L" means);
    # with more classes, models that read it (cross_align) need two.
    source = np.full(n, (to_label + 1) % cfg.data.num_classes, np.int32)
    out = transfer_lib.run_transfer(fn, state, split.tokens, split.mask,
                                    np.full(n, to_label, np.int32), source, config=cfg)
    lines = [f'{t}\t{run.data.vocab.decode(o)}' for t, o in zip(texts, out)]
    return _write_outputs(run, lines, output, f'transfer_{step}.txt')


def _write_outputs(run: Run, lines: list[str], output: str, default: str) -> list[str]:
  """`lines` to the user's --output path, else to WORKDIR/default; returns them."""
  if output:
    try:
      with open(output, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    except OSError as e:
      raise FileNotFoundError(f'--output={output!r}: cannot write it ({e})') from None
  else:
    run.write_text(default, lines)
  return lines


def generate_checkpoint(config, workdir: str, input_path: str, output: str = '',
                        show_plan: bool = False) -> list[str]:
  """--mode=generate: one output per input line of `input_path` ('-': stdin) from the
  algorithm's `generate_outputs` hook (d2t: records -> text, with `show_plan` its plan)
  with the latest checkpoint, written to `output` (default WORKDIR/generate_<step>.txt).
  Returns the lines to print."""
  hook = getattr(steps.get(config.algorithm), 'generate_outputs', None)
  if hook is None:
    raise ValueError(f'config.algorithm={config.algorithm!r} reads no structured input: '
                     '--mode=generate is for data-to-text models (d2t).')
  lines = pipeline.read_sentences(input_path, '--input')
  _require_checkpoint(workdir)
  with Run(config, workdir) as run:
    state, step = run.restore_or_init(require=True)
    out = hook(state, lines, config=run.config, data=run.data, show_plan=show_plan)
    return _write_outputs(run, out, output, f'generate_{step}.txt')


def _hms(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _fmt(metrics: dict) -> str:
  return '  '.join(f'{k} {v:.4g}' for k, v in sorted(metrics.items()))

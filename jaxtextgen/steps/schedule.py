"""Training as a schedule of named updates: what the trainer runs, in which order, how long.

An algorithm's optional `schedule(config) -> Schedule` lists its phases; without one, its
training is one phase of `train_step` (`single`). A `Phase` is a named pure update

    update(state, batch, rng, *, config, axis_name=None) -> (state, metrics)

run `updates` times, each run consuming `batches` real batches: one batch dict as the
data gives it when `batches` == 1, else the next `batches` batches stacked into arrays
[batches, B, T] (each padded to config.data.max_len), which a fused update scans over
(an adversarial round: k discriminator updates and a generator update in one call).

The run's step counts the real batches consumed (state.step, the data position and every
cadence of the config: log_every, eval_every, checkpoint_every), so the phase and the
position inside it are a pure function of the step (`Schedule.locate`) and a run resumes
at the boundary of any update. Lengths are computed from the config when the run starts,
after command-line overrides; config files never precompute them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Phase:
  """One named update of a schedule.

  Attributes:
    name: the prefix of its metrics in logs ('mle' -> 'mle/loss'); metric keys that
      already hold a '/' (a fused update's 'd/loss') are written as they are.
    update: (state, batch, rng, *, config, axis_name=None) -> (state, metrics); advances
      state.step by `batches`.
    updates: how many times it runs; None for the last phase of a schedule whose length
      is config.num_train_steps (`Schedule.resolve` fills in the rest of the run).
    batches: real batches one run consumes (> 1: stacked [batches, B, T]).
  """
  name: str
  update: Callable
  updates: int | None
  batches: int = 1

  @property
  def steps(self) -> int:
    return (self.updates or 0) * self.batches


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Phases in the order they run; empty phases are dropped."""
  phases: tuple[Phase, ...]

  def __post_init__(self):
    for i, p in enumerate(self.phases):
      if p.batches < 1:
        raise ValueError(f'phase {p.name!r}: batches={p.batches}, need >= 1')
      if p.updates is None and i != len(self.phases) - 1:
        raise ValueError(f'phase {p.name!r}: only the last phase may run for the rest of the run')
    object.__setattr__(self, 'phases',
                       tuple(p for p in self.phases if p.updates is None or p.updates > 0))

  @property
  def open(self) -> bool:
    """Whether the last phase runs for the rest of config.num_train_steps."""
    return bool(self.phases) and self.phases[-1].updates is None

  def resolve(self, num_steps: int, what: str = 'config.num_train_steps') -> 'Schedule':
    """This schedule with an open last phase filled up to `num_steps` steps."""
    if not self.open:
      return self
    fixed, last = self.total_steps, self.phases[-1]
    rest = num_steps - fixed
    if rest < 0 or rest % last.batches:
      raise ValueError(f'{what}={num_steps} leaves {rest} steps for phase {last.name!r} after '
                       f'{fixed} steps of {self.describe()}; give a run of at least {fixed} '
                       f'steps{f", {fixed} plus a multiple of {last.batches}" if last.batches > 1 else ""}.')
    return Schedule(self.phases[:-1] + (dataclasses.replace(last, updates=rest // last.batches),))

  @property
  def total_steps(self) -> int:
    return sum(p.steps for p in self.phases)

  def starts(self) -> list[int]:
    """The step at which each phase begins."""
    out, s = [], 0
    for p in self.phases:
      out.append(s)
      s += p.steps
    return out

  def locate(self, step: int) -> tuple[int, int]:
    """(phase index, updates of that phase already done) of the update that begins at
    `step`; `step` must lie on an update boundary (where checkpoints are written)."""
    for i, (p, start) in enumerate(zip(self.phases, self.starts())):
      if step < start + p.steps:
        done, rest = divmod(step - start, p.batches)
        if rest:
          raise ValueError(f'step {step} lies inside an update of phase {p.name!r} (updates '
                           f'of {p.batches} batches from step {start}); this checkpoint was '
                           'written by another schedule: start a new workdir, or restore the '
                           'config it was trained with.')
        return i, done
    raise ValueError(f'step {step} is past the end of the schedule ({self.total_steps} steps)')

  def describe(self) -> str:
    """'mle 100 x 1 -> round 30 x 157' (updates x batches per update)."""
    return ' -> '.join(f'{p.name} {"rest" if p.updates is None else p.updates} x {p.batches}'
                       for p in self.phases)


def single(train_step: Callable, num_steps: int | None = None, name: str = 'train') -> Schedule:
  """The schedule of a one-phase algorithm: `num_steps` runs of its train_step (None:
  config.num_train_steps, filled in by `Schedule.resolve`)."""
  return Schedule((Phase(name, train_step, num_steps),))


def metric_names(phase: Phase, metrics: dict, *, prefixed: bool) -> dict:
  """Metrics of one update under their logged names: 'phase/key' when `prefixed`
  (schedules of several phases), keys holding a '/' as they are."""
  if not prefixed:
    return dict(metrics)
  return {k if '/' in k else f'{phase.name}/{k}': v for k, v in metrics.items()}

"""Algorithms, each a module of pure functions with one interface (DESIGN.md):

    init(rng, config, sample_batch) -> TrainState
    train_step(state, batch, rng, *, config, axis_name=None) -> (TrainState, metrics)
    eval_step(state, batch, rng, *, config) -> dict of sums over the batch
    finalize_eval(sums) -> dict of metrics
    sample(state, rng, num, *, config, **conditions) -> int32 [num, time]
"""

import importlib
import types

ALGORITHMS = ('lm', 'ae', 'dae', 'vae', 'seqgan', 'gumbel_gan', 'wgan', 'classifier', 'cln_lm')


def get(name: str) -> types.ModuleType:
  """The algorithm module registered under `config.algorithm`."""
  if name not in ALGORITHMS:
    raise ValueError(f'config.algorithm={name!r} is not an algorithm; choose one of {ALGORITHMS}')
  return importlib.import_module(f'jaxtextgen.steps.{name}')

"""Algorithms, each a module of pure functions with one interface (DESIGN.md):

    init(rng, config, sample_batch) -> TrainState
    train_step(state, batch, rng, *, config, axis_name=None) -> (TrainState, metrics)
    eval_step(state, batch, rng, *, config) -> dict of sums over the batch
    finalize_eval(sums) -> dict of metrics
    sample(state, rng, num, *, config, **conditions) -> int32 [num, time]

and, optionally, the hooks through which the generic trainer runs and reports it
without knowing the algorithm:

    schedule(config) -> steps.schedule.Schedule
        its phases, each a named update with its length (default: one phase of
        train_step for config.num_train_steps steps)
    evaluate_samples(state, rng, *, config, data) -> dict of metrics
        measured at every eval on samples of its own (NLL-oracle, a judge's accuracy)
    transfer(state, tokens, mask, to_labels, from_labels, *, config) -> int32 [n, max_len]
        models with an attribute code: each sentence rewritten with another class's
        code (--mode=transfer, `steps.transfer`)
    sample_outputs(state, rng, step, *, config, data, outputs) -> lines to print
        what --mode=sample adds to the samples (reconstructions, homotopies, PNGs);
        `outputs` writes files: write_text(name, lines) -> path, path(name), is_chief
    generate_outputs(state, lines, *, config, data, show_plan) -> output lines
        conditional models that read a structured input (d2t): one output per input
        line (--mode=generate)

`data` is the run's `data.pipeline.Data` (vocab, train / eval splits, oracle_params).
"""

import importlib
import types

ALGORITHMS = ('lm', 'ae', 'dae', 'vae', 'seqgan', 'gumbel_gan', 'wgan', 'vae_gan', 'classifier',
              'cln_lm', 'ctrl_gen', 'cross_align', 'd2t')


def get(name: str) -> types.ModuleType:
  """The algorithm module registered under `config.algorithm`."""
  if name not in ALGORITHMS:
    raise ValueError(f'config.algorithm={name!r} is not an algorithm; choose one of {ALGORITHMS}')
  return importlib.import_module(f'jaxtextgen.steps.{name}')

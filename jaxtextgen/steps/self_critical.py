"""Self-critical sequence training (Rennie et al. 2017) on sentence BLEU: the phase 'scst'
that any conditional model adds to its schedule (`d2t`, `dae`).

One step, for a batch with references:
  - draw a sample and the greedy decode from the model's decoder and condition (the shared
    sampler: `models.sampler.sample`, max_len tokens);
  - reward each with its sentence BLEU against the row's references
    (`metrics.device_bleu.sentence_bleu`: BLEU-4, nltk's method2 smoothing, on device),
    plus the model's optional bonus term;
  - loss = scst.weight x -(r_sample - r_greedy) log p(sample), mean over sentences
    (`objectives.sequence.self_critical_loss`: the greedy reward is the baseline)
    + scst.mle_mix x the model's own MLE loss (MIXER-style mixing);
  - one update of every player the policy names with the phase's own Adam
    (scst.learning_rate, gradients clipped at optimizer.grad_clip), kept in
    `opt_state['rl']`.

Start it from a converged MLE run (scst.init=WORKDIR: its latest params replace the fresh
ones): the reference implementations report that rewards drop when RL starts early.
config.scst: init, mle_steps (MLE steps before 'scst' in the same run), steps, weight,
mle_mix, learning_rate.

A model provides a `Policy` for each batch; see `steps.d2t` and `steps.dae`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtextgen.metrics.device_bleu import sentence_bleu
from jaxtextgen.models.sampler import sample as sample_tokens
from jaxtextgen.objectives.sequence import self_critical_loss
from jaxtextgen.steps import schedule as schedule_lib
from jaxtextgen.steps.common import TrainState, global_sum, load_params

RL = 'rl'  # opt_state / tx key of the self-critical optimizer


@dataclasses.dataclass(frozen=True)
class Policy:
  """What the self-critical step needs of a model, for one batch.

  Attributes:
    players: the params keys the step updates (e.g. ('model',) or ('encoder', 'decoder')).
    condition: params -> (decoder, decoder variables, cond): the decoder of the protocol
      and its condition, to sample from (no gradient flows through it).
    log_prob: (params, tokens, mask, rng) -> float [batch], the differentiable log p of
      given token rows (rng: dropout).
    refs, ref_len: int [batch, R, T] references and [batch, R] their lengths in tokens
      (EOS excluded; 0 for an absent reference).
    mle_loss: (params, rng) -> scalar, the model's own MLE loss (for scst.mle_mix).
    bonus: optional tokens int [batch, max_len] (PAD after EOS) -> float [batch], a
      model-specific term added to the BLEU reward of every decode (d2t: entity coverage).
  """
  players: tuple[str, ...]
  condition: Callable
  log_prob: Callable
  refs: jax.Array
  ref_len: jax.Array
  mle_loss: Callable | None = None
  bonus: Callable | None = None


def check_config(config) -> None:
  s = config.scst
  if s.steps < 0 or s.mle_steps < 0:
    raise ValueError(f'config.scst.steps={s.steps} and config.scst.mle_steps={s.mle_steps} '
                     'must be >= 0')
  if s.steps and not s.learning_rate > 0:
    raise ValueError(f'config.scst.learning_rate={s.learning_rate} must be > 0')


def schedule(config, train_step: Callable, scst_step: Callable,
             name: str = 'mle') -> schedule_lib.Schedule:
  """One phase of `train_step` for the whole run when scst.steps == 0; else scst.mle_steps
  of it, then scst.steps of 'scst'."""
  s = config.scst
  if s.steps <= 0:
    return schedule_lib.single(train_step, name=name)
  return schedule_lib.Schedule((schedule_lib.Phase(name, train_step, s.mle_steps),
                                schedule_lib.Phase('scst', scst_step, s.steps)))


def init_params(params: dict, config) -> dict:
  """`params` ({player: tree}), or those of scst.init's latest checkpoint, which must have
  the same players and shapes."""
  if not config.scst.init:
    return params
  field = 'config.scst.init'
  loaded = load_params(config.scst.init, field, 'train one first with the same config '
                       'and no scst preset')
  shapes = lambda tree: jax.tree.map(np.shape, tree)
  if shapes({k: loaded.get(k) for k in params}) != shapes(params):
    raise ValueError(f'{field}={config.scst.init!r} holds a model of other players or sizes; '
                     f'start from a {config.algorithm} run with the same corpus, vocabulary '
                     'and model sizes')
  return {k: jax.tree.map(jnp.asarray, loaded[k]) for k in params}


def add_optimizer(state: TrainState, config, players: tuple[str, ...]) -> TrainState:
  """`state` with the self-critical Adam over `players` (when scst.steps > 0)."""
  if not config.scst.steps:
    return state
  tx = optax.chain(optax.clip_by_global_norm(config.optimizer.grad_clip or 1e9),
                   optax.adam(config.scst.learning_rate))
  sub = {p: state.params[p] for p in players}
  return state.replace(opt_state={**state.opt_state, RL: tx.init(sub)},
                       tx={**state.tx, RL: tx})


def words(samples, eos_id: int) -> jax.Array:
  """Tokens before EOS per row of a `sampler.Samples` (what BLEU counts): int32 [batch]."""
  return jnp.sum((samples.mask > 0) & (samples.tokens != eos_id), 1).astype(jnp.int32)


def step(state: TrainState, batch, rng: jax.Array, policy: Policy, *, config,
         axis_name=None) -> tuple[TrainState, dict[str, Any]]:
  """One self-critical update (module docstring); `rng` is the step's key (folded with the
  step; each device folds in its index here, so that devices draw different samples).
  Returns (state, {'loss', 'reward', 'reward_greedy', 'advantage', 'sample_len'}), means
  over the global batch's sentences."""
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  k_sample, k_drop = jax.random.split(rng)
  s, v = config.scst, config.vocab
  params = state.params
  decoder, variables, cond = policy.condition(params)
  n = batch['tokens'].shape[0]
  draw = functools.partial(sample_tokens, decoder, variables, batch=n,
                           length=config.data.max_len, bos_id=v.bos_id, eos_id=v.eos_id,
                           pad_id=v.pad_id, cond=cond)
  sampled, greedy = draw(k_sample), draw(k_sample, greedy=True)
  def reward(x):
    r = sentence_bleu(x.tokens, words(x, v.eos_id), policy.refs, policy.ref_len)
    return r if policy.bonus is None else r + policy.bonus(x.tokens)
  r_sample, r_greedy = reward(sampled), reward(greedy)
  rows = global_sum(batch['weight'].sum(), axis_name)

  def loss_fn(sub):
    p = {**params, **sub}
    logp = policy.log_prob(p, sampled.tokens, sampled.mask, k_drop)
    loss = s.weight * self_critical_loss(logp, r_sample, r_greedy, batch['weight']) / rows
    if s.mle_mix:
      loss = loss + s.mle_mix * policy.mle_loss(p, k_drop)
    return loss

  sub = {k: params[k] for k in policy.players}
  loss, grads = jax.value_and_grad(loss_fn)(sub)
  grads, loss = global_sum((grads, loss), axis_name)
  updates, opt = state.tx[RL].update(grads, state.opt_state[RL], sub)
  state = state.replace(params={**params, **optax.apply_updates(sub, updates)},
                        opt_state={**state.opt_state, RL: opt}, step=state.step + 1)
  mean = lambda x: global_sum((x * batch['weight']).sum(), axis_name) / rows
  return state, {'loss': loss, 'reward': mean(r_sample), 'reward_greedy': mean(r_greedy),
                 'advantage': mean(r_sample - r_greedy),
                 'sample_len': mean(words(sampled, v.eos_id).astype(jnp.float32))}

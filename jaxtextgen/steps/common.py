"""What every algorithm shares: the train state, optimizers, cross-device reductions."""

from __future__ import annotations

import json
import os
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from jaxtextgen.data.vocab import Vocab
from jaxtextgen.models import decoder as decoder_lib


@flax.struct.dataclass
class TrainState:
  """One pytree holding every player of an algorithm.

  Attributes:
    step: int32 scalar, number of completed train steps.
    params: {player: params}, e.g. {'generator': ..., 'discriminator': ...}.
    opt_state: {player: optax state}, same keys as the optimizers in `tx`.
    ema_params: {player: params} exponential moving averages (empty when unused).
    extra: algorithm-specific arrays (a reward baseline, a rollout policy, ...).
    tx: {player: optax.GradientTransformation}; static, not saved in checkpoints.
  """
  step: jax.Array
  params: dict[str, Any]
  opt_state: dict[str, Any]
  ema_params: dict[str, Any] = flax.struct.field(default_factory=dict)
  extra: dict[str, Any] = flax.struct.field(default_factory=dict)
  tx: dict[str, optax.GradientTransformation] = flax.struct.field(
      pytree_node=False, default_factory=dict)

  @classmethod
  def create(cls, params: dict[str, Any], tx: dict[str, optax.GradientTransformation],
             **kwargs) -> 'TrainState':
    opt_state = {k: t.init(params[k]) for k, t in tx.items()}
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, tx=tx,
               **kwargs)

  def apply_gradients(self, player: str, grads) -> 'TrainState':
    """One optimizer update of `player` (does not advance `step`)."""
    updates, opt = self.tx[player].update(grads, self.opt_state[player], self.params[player])
    params = optax.apply_updates(self.params[player], updates)
    return self.replace(params={**self.params, player: params},
                        opt_state={**self.opt_state, player: opt})


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
  """optax chain from config.optimizer: global-norm clipping, then the optimizer
  with a constant / warmup-cosine / linear-decay learning rate."""
  lr: Any = cfg.learning_rate
  if cfg.schedule == 'cosine':
    lr = optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, max(cfg.warmup_steps, 1),
                                            max(total_steps, cfg.warmup_steps + 1))
  elif cfg.schedule == 'linear':
    lr = optax.linear_schedule(cfg.learning_rate, 0.0, max(total_steps, 1))
  elif cfg.schedule != 'constant':
    raise ValueError(f"config.optimizer.schedule={cfg.schedule!r}: use 'constant', 'cosine' "
                     "or 'linear'")
  if cfg.name == 'adam':
    opt = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay)
  elif cfg.name == 'rmsprop':
    opt = optax.rmsprop(lr)
  elif cfg.name == 'sgd':
    opt = optax.sgd(lr)
  else:
    raise ValueError(f"config.optimizer.name={cfg.name!r}: use 'adam', 'rmsprop' or 'sgd'")
  if cfg.grad_clip:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt)
  return opt


def global_sum(x, axis_name: str | None):
  """Sum over devices under pmap/shard_map; identity under jit (XLA already sees
  the global batch)."""
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def compute_dtype(config):
  return {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[config.model.dtype]


def make_decoder(config, *, conditional: bool = False, attention: bool = False):
  """The decoder of config.model.decoder ('lstm' or 'transformer'), sized by config.model,
  with the vocabulary of config.vocab; `conditional`: it reads a condition vector (a VAE
  latent, a label embedding) through its state and inputs (LSTM) or every LayerNorm
  (Transformer); `attention`: the LSTM also attends over a memory in its condition. Any
  decoder implements the protocol of `models.decoder`."""
  m = config.model
  return decoder_lib.make(
      m.decoder, vocab_size=config.vocab.size, emb_dim=m.emb_dim, hidden_size=m.hidden_size,
      num_layers=m.num_layers, dropout=m.dropout, dtype=compute_dtype(config),
      conditional=conditional, num_heads=m.num_heads, mlp_dim=m.mlp_dim,
      positions=m.positions, max_positions=m.max_positions, cln_hidden=m.cln_hidden,
      attention=attention)


def shift_right(tokens: jax.Array, bos_id: int) -> jax.Array:
  """Decoder inputs from targets: [BOS, t_0, ..., t_{T-2}]."""
  return jnp.concatenate([jnp.full_like(tokens[:, :1], bos_id), tokens[:, :-1]], axis=1)


def load_params(workdir: str, field: str, hint: str) -> dict:
  """Params (numpy, {player: tree}) of the latest checkpoint of the run in `workdir`,
  for config `field` (e.g. 'config.vae.encoder_init'); `hint` says how to make one.

  Safe to call while an init is being traced by jit: the arrays are read eagerly
  and become constants of the trace.
  """
  directory = f'{workdir.rstrip("/")}/checkpoints'
  with jax.ensure_compile_time_eval():
    try:
      with ocp.CheckpointManager(directory) as manager:
        step = manager.latest_step()
        if step is None:
          raise FileNotFoundError(f'no checkpoint in {directory}')
        params = manager.restore(step, args=ocp.args.StandardRestore())['params']
    except FileNotFoundError as e:
      raise FileNotFoundError(f'{field}={workdir!r}: {e}; {hint}') from e
  return jax.tree.map(np.asarray, params) if isinstance(params, dict) else {}


def load_run(workdir: str, *, field: str, algorithm: str, config_file: str):
  """(config, vocabulary, params) of the trained `algorithm` run in `workdir` (its
  config.json, vocab.json and latest checkpoint), for the setting `field` (e.g.
  'config.eval.judge'); errors name `config_file`, the config that trains one."""
  hint = f'train one first: python launch.py --config={config_file} --workdir={workdir}'
  what = f'a trained {algorithm} run'
  path = os.path.join(workdir, 'config.json')
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'{field}={workdir!r}: no such directory; point it at the workdir '
                            f'of {what}, or {hint}')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{field}={workdir!r} holds no config.json, so it is no run of '
                            f'launch.py; point it at {what}, or {hint}')
  with open(path, encoding='utf-8') as f:
    config = ml_collections.ConfigDict(json.load(f))
  if config.get('algorithm') != algorithm:
    raise ValueError(f'{field}={workdir!r} is a run of algorithm {config.get("algorithm")!r}, '
                     f'not {algorithm!r}; point it at {what}, or {hint}')
  vocab = Vocab.load(os.path.join(workdir, 'vocab.json'))
  return config, vocab, load_params(workdir, field, hint)


def sample_labels(label: int, num: int, num_classes: int) -> jax.Array:
  """int32 [num] classes of conditional samples: `label`, or classes in turn (0, 1, ...,
  0, 1, ...) for -1; any other value is an error naming config.sample.label."""
  if not -1 <= label < num_classes:
    raise ValueError(f'config.sample.label={label} is not a class of this model: use '
                     f'0..{num_classes - 1}, or -1 for every class in turn.')
  if label < 0:
    return jnp.arange(num, dtype=jnp.int32) % num_classes
  return jnp.full((num,), label, jnp.int32)


def pad_time(tokens: jax.Array, length: int, pad_id: int) -> jax.Array:
  """int [batch, t] -> [batch, length] with pad_id appended (t <= length), so that
  trimmed real batches and full-length fakes look alike to the discriminator."""
  if tokens.shape[1] > length:
    raise ValueError(f'sentences of {tokens.shape[1]} tokens exceed config.data.max_len={length}')
  return jnp.pad(tokens, ((0, 0), (0, length - tokens.shape[1])), constant_values=pad_id)


def in_chunks(fn, arrays: tuple[np.ndarray, ...], size: int) -> np.ndarray:
  """fn over rows of `arrays` in chunks of exactly `size` rows (the last one padded
  with zeros, its padding dropped from the output): one compiled shape."""
  outs = []
  for i in range(0, len(arrays[0]), size):
    part = [a[i:i + size] for a in arrays]
    pad = size - len(part[0])
    part = [np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) for a in part]
    outs.append(np.asarray(fn(*part))[:size - pad])
  return np.concatenate(outs)


SAMPLE_OUTPUTS = ('reconstruct_file', 'homotopy', 'latent_png')  # config.sample: autoencoders'


def reject_sample_requests(config) -> None:
  """An error naming the fix when config.sample asks an algorithm without a
  `sample_outputs` hook for the autoencoders' outputs."""
  wanted = [f'config.sample.{k}' for k in SAMPLE_OUTPUTS if config.sample[k]]
  if wanted:
    raise ValueError(f'{", ".join(wanted)}: the algorithm {config.algorithm!r} has no '
                     'encoder; these need an autoencoder (ae, dae or vae). Unset them.')

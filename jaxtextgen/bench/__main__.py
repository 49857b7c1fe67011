"""Benchmark the library's train step against the same model in PyTorch.

    python -m jaxtextgen.bench --config=configs/lm_ptb.py
    python -m jaxtextgen.bench --config=configs/lm_ptb.py --config.model.decoder=transformer
    python -m jaxtextgen.bench --config=configs/vae_ptb.py --steps=20 --json=/tmp/vae.json
    python -m jaxtextgen.bench --config=configs/seqgan_oracle.py --steps=5 --batch=16
    python -m jaxtextgen.bench --config=configs/seqgan_oracle.py --seqgan_step=discriminator
    python -m jaxtextgen.bench --config=configs/gumbel_oracle.py

The algorithm is config.algorithm (lm, vae, seqgan, gumbel_gan), its decoder
config.model.decoder (the Transformer for lm only); sizes, vocabulary,
max_len, optimizer and dropout come from the config. Batches are synthetic: random
tokens of shape [batch, max_len], every position real. For seqgan one step is
one adversarial generator step (samples, 16 rollouts of every prefix, CNN
discriminator scores, REINFORCE update); for gumbel_gan one adversarial generator
step (the relaxed Gumbel-softmax unroll, CNN scores, config.gan.loss, backprop
through both). With --seqgan_step=discriminator, either GAN's step is a
discriminator update on the real batch vs fresh fakes (gumbel_gan: relaxed ones);
with --seqgan_step=round, one whole adversarial round (JAX: the fused
`train_step` on [g_steps + d_steps, B, T] stacked batches; PyTorch: the same
updates one after another). Tokens/s then counts every batch of the round.
Prints a table and `speedup <x>` (PyTorch step time / JAX step time); --json writes
the same numbers.
"""

import os

# Both frameworks share the GPU: JAX must not grab 75% of it up front.
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')

import json  # pylint: disable=g-import-not-at-top,wrong-import-position
import statistics
import sys

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file('config', None, 'Config file, optionally with a preset: '
                                'configs/X.py[:preset].', lock_config=True)
flags.DEFINE_integer('steps', 20, 'Timed steps per framework (after the warm-up).')
flags.DEFINE_integer('warmup', 3, 'Untimed steps per framework first (JAX: after compiling).')
flags.DEFINE_integer('batch', 0, 'Batch size (0: config.batch_size).')
flags.DEFINE_integer('vocab_size', 0, 'Vocabulary size (0: from the config; oracle or PTB).')
flags.DEFINE_enum('seqgan_step', 'generator', ['generator', 'discriminator', 'round'],
                  'The GANs (seqgan, gumbel_gan): which update one step is, the adversarial '
                  'generator update, a discriminator update on real vs fresh fakes, or a '
                  "whole round (the config's gan.g_steps G + gan.d_steps D updates; JAX: the "
                  'fused train_step on stacked batches).')
flags.DEFINE_integer('round_d_steps', 0, '--seqgan_step=round: discriminator updates per round '
                     '(0: config.gan.d_steps; seqgan_oracle: 2,340).')
flags.DEFINE_integer('block', 5, 'Alternate the frameworks in blocks of this many steps (1: step '
                     "by step; 0: all of one framework's steps, then the next's).")
flags.DEFINE_bool('torch', True, 'Time the PyTorch twin (--notorch: the JAX step only, e.g. to '
                  'compare two settings of the library).')
flags.DEFINE_bool('torch_compile', True, 'Also time the PyTorch step with torch.compile.')
flags.DEFINE_enum('torch_sampler', 'multinomial', ['multinomial', 'inverse_cdf'],
                  'How PyTorch draws tokens (seqgan): torch.multinomial or cumsum + searchsorted.')
flags.DEFINE_bool('tf32', True, 'On CUDA, let PyTorch use TF32 for float32 matmuls, as JAX does '
                  'by default on GPUs.')
flags.DEFINE_integer('peak_n', 0, 'Size n of the n x n matmul that measures the peak '
                     '(0: 2048 on CPU, 8192 on accelerators).')
flags.DEFINE_string('json', '', 'Write the results to this JSON file.')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS


def _fmt_mem(b):
  return 'n/a' if b is None else f'{b / 2**20:,.0f} MiB'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  import jax  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from jaxtextgen.bench import harness, torch_steps  # pylint: disable=g-import-not-at-top
  from jaxtextgen.steps import common  # pylint: disable=g-import-not-at-top

  config, vocab_note = harness.bench_config(FLAGS.config, batch=FLAGS.batch,
                                            vocab_size=FLAGS.vocab_size,
                                            seqgan_step=FLAGS.seqgan_step,
                                            round_d_steps=FLAGS.round_d_steps)
  algo = config.algorithm
  if algo not in torch_steps.STEPS:
    sys.exit(f'error: no PyTorch benchmark for config.algorithm={algo!r} yet; available: '
             f'{sorted(torch_steps.STEPS)} (add one to jaxtextgen/bench/torch_steps.py)')
  decoder = config.model.get('decoder', 'lstm')
  if decoder != 'lstm' and algo != 'lm':
    sys.exit(f'error: the PyTorch benchmark has a config.model.decoder={decoder!r} twin for '
             f"config.algorithm='lm' only (jaxtextgen/bench/torch_models.py)")
  what = f'{algo} {FLAGS.seqgan_step} step' if algo in ('seqgan', 'gumbel_gan') else algo
  if decoder != 'lstm':
    what += f' ({decoder})'
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  torch_steps.SAMPLER = FLAGS.torch_sampler
  if device == 'cuda' and FLAGS.tf32:
    torch.set_float32_matmul_precision('high')
  k = harness.round_batches(config, FLAGS.seqgan_step)
  np_batch = harness.synthetic_batch(config, stack=k if k > 1 else 0)
  b, t = np_batch['tokens'].shape[-2:]
  tokens_per_step = k * b * t

  jax_r, xla = harness.jax_runner(config, np_batch, warmup=FLAGS.warmup,
                                  seqgan_step=FLAGS.seqgan_step)
  runners = [jax_r]
  if FLAGS.torch:
    runners.append(harness.torch_runner('torch', config, np_batch, device=device,
                                        warmup=FLAGS.warmup, compile_loss=False,
                                        seqgan_step=FLAGS.seqgan_step))
  if FLAGS.torch and FLAGS.torch_compile:
    runners.append(harness.torch_runner('torch.compile', config, np_batch, device=device,
                                        warmup=FLAGS.warmup, compile_loss=True,
                                        seqgan_step=FLAGS.seqgan_step))
  ok = [r for r in runners if not r.error]
  harness.alternate(ok, FLAGS.steps, block=FLAGS.block)

  dtype = common.compute_dtype(config)
  peak_n = FLAGS.peak_n or (2048 if jax.default_backend() == 'cpu' else 8192)
  peak = harness.matmul_peak(dtype, peak_n)
  flops = harness.model_flops(config, algo, FLAGS.seqgan_step)

  rows = {}
  for r in runners:
    med = statistics.median(r.times) if r.times else None
    rows[r.name] = {
        'median_step_s': med, 'min_step_s': min(r.times) if r.times else None,
        'tokens_per_s': tokens_per_step / med if med else None,
        'warmup_s': r.warmup_s, 'compile_s': r.compile_s if r.name == 'jax' else None,
        'peak_memory_bytes': r.memory[0], 'memory_kind': r.memory[1],
        'flops_fraction_of_peak': flops / med / peak if med else None,
        'error': r.error or None, 'step_times_s': r.times}
  jax_s = rows['jax']['median_step_s']
  speedup = {name: (row['median_step_s'] / jax_s if row['median_step_s'] else None)
             for name, row in rows.items() if name != 'jax'}

  cfg_arg = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--config=')), '?')
  print(f'\njaxtextgen benchmark: {what} | {cfg_arg} | batch {b} x {t} tokens, vocab '
        f'{config.vocab.size} ({vocab_note}) | dtype {config.model.dtype}')
  print(f'data: SYNTHETIC random token batches of shape [{b}, {t}], every position real '
        f'(tokens/s counts {tokens_per_step} tokens per step)')
  print(f'devices: JAX {jax.__version__} on {jax.devices()[0].device_kind} '
        f'({jax.default_backend()}); torch {torch.__version__} on {device} '
        f'({torch.get_num_threads()} threads){", TF32 on" if device == "cuda" and FLAGS.tf32 else ""}')
  if algo == 'seqgan':
    print(f'torch sampler: {FLAGS.torch_sampler}')
  if algo == 'gumbel_gan':
    print(f'gan loss: {config.gan.loss}; beta schedule: {config.gan.gumbel_schedule} to '
          f'{config.gan.gumbel_beta_max:g}')
  print(f'timing: {FLAGS.warmup} warm-up steps each, then {FLAGS.steps} steps each, '
        f'alternating in blocks of {FLAGS.block or FLAGS.steps} steps')
  print()
  header = (f'{"framework":<14} {"warm-up s":>21} {"median ms":>10} {"tokens/s":>11} '
            f'{"peak mem":>11} {"% of peak":>9}  memory measured as')
  print(header)
  print('-' * len(header))
  for name, row in rows.items():
    if row['error']:
      print(f'{name:<14} n/a  ({row["error"]})')
      continue
    warm = f'{row["warmup_s"]:.1f}'
    if row['compile_s'] is not None:
      warm += f' ({row["compile_s"]:.1f} compile)'
    print(f'{name:<14} {warm:>21} {1e3 * row["median_step_s"]:>10.1f} '
          f'{row["tokens_per_s"]:>11,.0f} {_fmt_mem(row["peak_memory_bytes"]):>11} '
          f'{100 * row["flops_fraction_of_peak"]:>8.1f}%  {row["memory_kind"]}')
  print()
  print(f'model FLOPs per step: {flops / 1e9:.2f} GFLOP (analytic matmul/conv count; XLA '
        f'cost_analysis says {xla["xla_cost_analysis_flops"] / 1e9:.2f} but counts a loop body '
        f'once)')
  print(f'device matmul peak: {peak / 1e9:.1f} GFLOP/s (measured: jnp.dot {peak_n}x{peak_n} '
        f'{jax.numpy.dtype(dtype).name})')
  print(f'speedup {_fmt_speedup(speedup.get("torch"))}   (PyTorch eager step time / JAX step '
        f'time; > 1: JAX faster)')
  if FLAGS.torch and FLAGS.torch_compile:
    print(f'speedup vs torch.compile {_fmt_speedup(speedup.get("torch.compile"))}')
  if FLAGS.json:
    out = {'what': what, 'config': cfg_arg, 'batch': b, 'max_len': t,
           'vocab_size': config.vocab.size, 'dtype': config.model.dtype,
           'synthetic_data': True, 'tokens_per_step': tokens_per_step,
           'jax_version': jax.__version__, 'jax_backend': jax.default_backend(),
           'torch_version': torch.__version__, 'torch_device': device,
           'torch_threads': torch.get_num_threads(), 'torch_sampler': FLAGS.torch_sampler, 'steps': FLAGS.steps,
           'warmup': FLAGS.warmup, 'block': FLAGS.block, 'model_flops_per_step': flops, 'flops_source': 'analytic',
           **xla, 'matmul_peak_flops': peak, 'matmul_peak_n': peak_n,
           'results': rows, 'speedup': speedup}
    with open(FLAGS.json, 'w', encoding='utf-8') as f:
      json.dump(out, f, indent=2)
    print(f'wrote {FLAGS.json}')


def _fmt_speedup(x):
  return 'n/a' if x is None else f'{x:.2f}'


if __name__ == '__main__':
  app.run(main)

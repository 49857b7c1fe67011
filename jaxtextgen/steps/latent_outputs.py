"""--mode=sample outputs of the autoencoders (ae, dae, vae): the `sample_outputs` hook.

What config.sample asks for, each also written to the workdir:
  reconstruct_file  greedy decodes of each sentence's code (a file, or '-' for stdin):
                    reconstructions_<step>.txt, one 'input TAB decode' per line
  homotopy          'sentence a ||| sentence b': homotopy_steps greedy decodes along the
                    line between their codes (Bowman et al. 2016): homotopy_<step>.txt
  latent_png        a PCA scatter of the eval split's codes coloured by label:
                    latent_<step>.png
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxtextgen.data import pipeline
from jaxtextgen.steps import autoencoding
from jaxtextgen.steps.common import in_chunks
from jaxtextgen.train.parallel import to_host


def sample_outputs(state, rng, step: int, *, config, data, outputs) -> list[str]:
  """The lines config.sample asks for (module docstring), also written through
  `outputs` (write_text(name, lines) -> path, path(name), is_chief)."""
  del rng  # greedy decodes
  s, vocab = config.sample, data.vocab
  batch = config.eval_batch_size

  def run_chunked(fn, split):  # fn(state, tokens, mask) over eval-batch-sized chunks
    fn = jax.jit(functools.partial(fn, config=config))
    return in_chunks(lambda t, m: to_host(fn(state, t, m)), (split.tokens, split.mask), batch)

  def tokenize(texts, name):
    return pipeline.tokenize(texts, None, vocab, config.data.max_len, name=name)

  out = []
  if s.reconstruct_file:
    texts = pipeline.read_sentences(s.reconstruct_file, 'config.sample.reconstruct_file')
    decoded = run_chunked(autoencoding.reconstruct, tokenize(texts, s.reconstruct_file))
    rows = [f'{a}\t{vocab.decode(b)}' for a, b in zip(texts, decoded)]
    path = outputs.write_text(f'reconstructions_{step}.txt', rows)
    out += [f'# reconstructions (input TAB greedy decode of its code), also in {path}'] + rows
  if s.homotopy:
    ends = [t.strip() for t in s.homotopy.split('|||')]
    if len(ends) != 2 or not all(ends):
      raise ValueError(f"config.sample.homotopy={s.homotopy!r}: give two sentences separated "
                       "by '|||', e.g. 'the market fell . ||| he said yes .'")
    if s.homotopy_steps < 2:
      raise ValueError(f'config.sample.homotopy_steps={s.homotopy_steps}: need at least 2.')
    split = tokenize(ends, 'config.sample.homotopy')
    path_tokens = to_host(autoencoding.homotopy(state, jnp.asarray(split.tokens),
                                                jnp.asarray(split.mask), s.homotopy_steps,
                                                config=config))
    rows = [vocab.decode(t) for t in path_tokens]
    path = outputs.write_text(f'homotopy_{step}.txt', rows)
    out += [f'# homotopy, {s.homotopy_steps} points from a to b, also in {path}'] + rows
  if s.latent_png:
    if data.eval is None:
      raise ValueError('config.sample.latent_png needs an eval split (config.data.eval_split).')
    n = min(len(data.eval), s.latent_max_sentences)
    split = data.eval
    codes = run_chunked(autoencoding.encode_sentences,
                        pipeline.TokenizedSplit(split.tokens[:n], split.mask[:n],
                                                split.labels[:n], 0))
    path = outputs.path(f'latent_{step}.png')
    if outputs.is_chief:
      from jaxtextgen.metrics import projection  # pylint: disable=g-import-not-at-top
      projection.write_latent_png(codes, split.labels[:n], path, title=(
          f'{config.algorithm} posterior means, {n} {config.data.eval_split} sentences, '
          f'step {step}'))
    out.append(f'# latent PNG ({n} {config.data.eval_split} sentences, PCA): {path}')
  return out

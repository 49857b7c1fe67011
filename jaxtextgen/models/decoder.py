"""The decoder protocol: what the samplers, the token NLL and every algorithm call.

Any flax module with these methods is a decoder of this library (`LSTMDecoder`,
`TransformerDecoder`); nothing outside `models/` knows which one it drives. The idea is
flax `lm1b`'s `tokens_to_logits` with a cache, written as methods so that one set of
parameters serves teacher forcing and step-by-step decoding:

    vocab_size: int                 V, output classes
    hidden_size: int                H, width of the hidden states `return_hidden` gives

    embed(tokens int [...]) -> [..., E]
        token embeddings, the input space of `step`
    embed_soft(probs [..., V]) -> [..., E]
        expected embeddings under token distributions (Gumbel-softmax, softmax inputs);
        exactly `embed` for one-hot vectors
    init_cache(batch, cond=None, length=0) -> cache
        the decoding state before the first input: the LSTM's (c, h) per layer
        (computed from cond when conditioned through the state), the Transformer's
        key/value cache for `length` positions and its write index
    step(inputs, cache, cond=None, *, train=False) -> (logits float32 [batch, V], cache)
        one position: inputs are int32 token ids [batch] or embeddings [batch, E]
    __call__(inputs, cond=None, *, train=False, soft_inputs=False, return_hidden=False)
        teacher forcing: int32 [batch, T] inputs (targets shifted right, BOS first), or
        [batch, T, V] distributions with `soft_inputs` -> logits float32 [batch, T, V]
        (and the top hidden states [batch, T, H] with `return_hidden`); position t
        sees inputs 0..t only, and equals the t-th `step` from `init_cache`
    token_nll(inputs, targets, cond=None, *, train=False, soft_inputs=False,
              return_hidden=False)
        -log p(targets[b, t] | inputs[b, :t+1]) float32 [batch, T]: the likelihood
        loss of every algorithm (the LSTM's has a hand-written fused gradient)

`cond` is an optional float [batch, C] condition vector (a VAE latent, a label
embedding, any vector a user passes); a decoder built without conditioning ignores it.
Decoders that read more than a vector take a dict of arrays with a leading batch axis
(`D2TModel`'s encoded source; an attending `LSTMDecoder`'s {'vector', 'memory',
'memory_mask'}): the samplers treat `cond` as a pytree.
Methods are called by name through `module.apply(variables, ..., method='step')`, so
the caller needs no import of the decoder's class.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

METHODS = ('embed', 'embed_soft', 'init_cache', 'step', '__call__', 'token_nll')

DECODERS = ('lstm', 'transformer')


def make(kind: str, *, vocab_size: int, emb_dim: int, hidden_size: int, num_layers: int,
         dropout: float, dtype: Any, conditional: bool = False, num_heads: int = 4,
         mlp_dim: int = 1024, positions: str = 'learned', max_positions: int = 512,
         cln_hidden: int = 0, attention: bool = False) -> nn.Module:
  """A decoder by name. `conditional`: the decoder reads a condition vector (LSTM:
  into its initial state and every input step, He et al. 2019; Transformer: into
  every LayerNorm, through `ConditionalLayerNorm`). `attention` (LSTM only): it also
  attends over the memory of a dict condition."""
  if attention and kind != 'lstm':
    raise ValueError(f'attention over an encoder memory needs the lstm decoder, not {kind!r}')
  if kind == 'lstm':
    from jaxtextgen.models.lstm import LSTMDecoder  # pylint: disable=g-import-not-at-top
    return LSTMDecoder(vocab_size=vocab_size, emb_dim=emb_dim, hidden_size=hidden_size,
                       num_layers=num_layers, dropout=dropout, cond_to_state=conditional,
                       cond_to_input=conditional, attention=attention, dtype=dtype)
  if kind == 'transformer':
    from jaxtextgen.models.transformer import TransformerDecoder  # pylint: disable=g-import-not-at-top
    if hidden_size % num_heads:
      raise ValueError(f'config.model.hidden_size={hidden_size} does not divide by '
                       f'config.model.num_heads={num_heads}; pick sizes that divide.')
    return TransformerDecoder(vocab_size=vocab_size, hidden_size=hidden_size,
                              num_layers=num_layers, num_heads=num_heads, mlp_dim=mlp_dim,
                              dropout=dropout, positions=positions,
                              max_positions=max_positions, conditional=conditional,
                              cln_hidden=cln_hidden, dtype=dtype)
  raise ValueError(f'config.model.decoder={kind!r}: use one of {DECODERS}')

"""Flax parameters -> state dicts of the PyTorch modules in `torch_models`.

The conversions are linear re-layouts, so they also map gradients: the
gradient of a Flax parameter tree, converted, is the PyTorch gradient,
except for nn.LSTM's `bias_hh`, which Flax does not have: it is set to zero and
the torch models keep it frozen.

    sd = convert.decoder_state_dict(state.params['generator'])
    torch_decoder.load_state_dict(convert.to_torch(sd))

`generator_state_dict` picks the LSTM's or the Transformer's conversion by the params.
"""

from __future__ import annotations

import numpy as np


def _lstm(prefix: str, layer: dict, w_h, suffix: str = '', extra_x=None) -> dict:
  """One Flax LSTM layer ({'layer{l}_x': Dense}, 'layer{l}_h') -> nn.LSTM weights.

  Flax: gates = x @ kernel + bias + h @ w_h, kernel [in, 4H], w_h [H, 4H].
  torch: gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh.
  Both split the gates i, f, g, o. `extra_x` [C, 4H] are weights of inputs
  concatenated after x (the VAE decoder's z)."""
  kernel = np.asarray(layer['kernel'])
  if extra_x is not None:
    kernel = np.concatenate([kernel, np.asarray(extra_x)], axis=0)
  bias = np.asarray(layer['bias'])
  return {f'{prefix}weight_ih_{suffix}': kernel.T, f'{prefix}weight_hh_{suffix}': np.asarray(w_h).T,
          f'{prefix}bias_ih_{suffix}': bias, f'{prefix}bias_hh_{suffix}': np.zeros_like(bias)}


def _dense(prefix: str, p: dict) -> dict:
  out = {f'{prefix}weight': np.asarray(p['kernel']).T}
  if 'bias' in p:
    out[f'{prefix}bias'] = np.asarray(p['bias'])
  return out


def decoder_state_dict(params: dict) -> dict:
  """`LSTMDecoder` params -> `torch_models.Decoder` state dict (numpy arrays)."""
  lstm = params['lstm']
  num_layers = sum(1 for k in lstm if k.endswith('_h'))
  sd = {'embedding.weight': np.asarray(params['embedding']['embedding'])}
  for l in range(num_layers):
    extra = params['cond_gates']['kernel'] if (l == 0 and 'cond_gates' in params) else None
    sd.update(_lstm('lstm.', lstm[f'layer{l}_x'], lstm[f'layer{l}_h'], f'l{l}', extra))
  sd.update(_dense('out.', params['out']))
  if 'cond_state' in params:
    sd.update(_dense('cond_state.', params['cond_state']))
  return sd


def _layer_norm(prefix: str, p: dict) -> dict:
  if any(k.startswith('cond_') for k in p):
    raise NotImplementedError('the PyTorch twin has plain LayerNorms; a conditional '
                              'TransformerDecoder has no twin yet')
  return {f'{prefix}weight': np.asarray(p['scale']), f'{prefix}bias': np.asarray(p['bias'])}


def transformer_state_dict(params: dict) -> dict:
  """`TransformerDecoder` params (unconditional) -> `torch_models.TransformerLM` state dict.

  Dense kernels [in, out] are nn.Linear weights [out, in] transposed; the fused `qkv`
  keeps its feature order (q|k|v, head, head_dim) in both; LayerNorm 'scale' is 'weight'."""
  sd = {'embedding.weight': np.asarray(params['embedding']['embedding'])}
  if 'pos_embedding' in params:
    sd['pos_embedding'] = np.asarray(params['pos_embedding'])
  num_layers = sum(1 for k in params if k.startswith('block'))
  for l in range(num_layers):
    block, prefix = params[f'block{l}'], f'blocks.{l}.'
    for ln in ('ln1', 'ln2'):
      sd.update(_layer_norm(f'{prefix}{ln}.', block[ln]))
    for dense in ('qkv', 'attn_out', 'mlp_in', 'mlp_out'):
      sd.update(_dense(f'{prefix}{dense}.', block[dense]))
  sd.update(_layer_norm('ln_f.', params['ln_f']))
  sd.update(_dense('out.', params['out']))
  return sd


def encoder_state_dict(params: dict) -> dict:
  """`LatentEncoder` params -> `torch_models.Encoder` state dict (numpy arrays)."""
  enc = params['lstm']
  sd = {'embedding.weight': np.asarray(enc['Embed_0']['embedding'])}
  for direction, suffix in (('fwd', 'l0'), ('bwd', 'l0_reverse')):
    if f'lstm_{direction}' in enc:
      layer = enc[f'lstm_{direction}']
      sd.update(_lstm('lstm.', layer['layer0_x'], layer['layer0_h'], suffix))
  for head in ('mean', 'logvar'):
    if head in params:
      sd.update(_dense(f'{head}.', params[head]))
  return sd


def discriminator_state_dict(params: dict, filter_sizes=None) -> dict:
  """`CNNDiscriminator` params -> `torch_models.CNNDiscriminator` state dict.

  Flax conv kernels are [width, in, out]; nn.Conv1d's are [out, in, width]; both
  cross-correlate. The i-th torch conv has the i-th width of `filter_sizes`
  (config.gan.d_filter_sizes; default: increasing widths)."""
  widths = filter_sizes or sorted(int(k[4:]) for k in params if k.startswith('conv'))
  sd = {'embedding.weight': np.asarray(params['embedding']['embedding'])}
  for i, k in enumerate(widths):
    conv = params[f'conv{k}']
    sd[f'convs.{i}.weight'] = np.transpose(np.asarray(conv['kernel']), (2, 1, 0))
    sd[f'convs.{i}.bias'] = np.asarray(conv['bias'])
  sd.update(_dense('transform.', params['highway']['transform']))
  sd.update(_dense('gate.', params['highway']['gate']))
  sd.update(_dense('output.', params['output']))
  return sd


def generator_state_dict(params: dict) -> dict:
  """An `LSTMDecoder`'s or an (unconditional) `TransformerDecoder`'s params -> the state dict
  of the twin `torch_steps.make_decoder` builds for it."""
  return transformer_state_dict(params) if 'ln_f' in params else decoder_state_dict(params)


def to_torch(state_dict: dict, device=None) -> dict:
  """numpy state dict -> float32 torch tensors (contiguous), ready for load_state_dict."""
  import torch  # pylint: disable=g-import-not-at-top
  return {k: torch.tensor(np.ascontiguousarray(v), dtype=torch.float32, device=device)
          for k, v in state_dict.items()}

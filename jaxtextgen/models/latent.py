"""Latent-variable pieces of the text autoencoders (ae, dae, vae).

The encoder is the shared `LSTMEncoder` followed by a linear head: the
posterior mean and log-variance of a diagonal Gaussian q(z|x) (vae), or a
deterministic code (ae, dae: the mean alone). The decoder is the shared
`LSTMDecoder` built with `cond_to_state` and `cond_to_input`, so z both
initialises the LSTM state and is concatenated to every input step, as in
He et al. 2019 ("Lagging inference networks"); no second LSTM exists here.
"""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtextgen.models.lstm import LSTMEncoder


class LatentEncoder(nn.Module):
  """Sentence -> latent code: a sentence encoder's summary, then a linear Gaussian head.

  Attributes:
    lstm: the sentence encoder, an `LSTMEncoder` (uni- or bi-directional).
    latent_dim: Z, the size of z.
    variational: also predict a log-variance (vae); without it the code is
      deterministic (ae, dae) and the parameters hold no log-variance head, so
      an ae checkpoint's 'lstm' and 'mean' initialise a vae encoder.

  Parameters: {'lstm': LSTMEncoder's, 'mean': Dense, 'logvar': Dense (vae only)}.
  The head computes in the encoder's dtype and returns float32, because the KL
  and the importance weights are computed from it.
  """
  lstm: LSTMEncoder
  latent_dim: int = 32
  variational: bool = True

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array, *, train: bool = False, state=None,
               memory: bool = False):
    """tokens int32 [batch, time] (or token distributions [batch, time, V]), mask
    [batch, time] -> (mean float32 [batch, Z], logvar float32 [batch, Z] or None when not
    variational). `state`: the LSTM's initial state (`LSTMEncoder`). `memory`: a third
    output, {'memory': the LSTM's states [batch, time, H], 'memory_mask': mask}, what an
    attending decoder reads (`LSTMDecoder`'s `attention`)."""
    summary = self.lstm(tokens, mask, train=train, state=state, return_states=memory)
    if memory:
      summary, states = summary
    dense = lambda name: nn.Dense(self.latent_dim, dtype=self.lstm.dtype, name=name)
    mean = dense('mean')(summary).astype(jnp.float32)
    chex.assert_shape(mean, (tokens.shape[0], self.latent_dim))
    logvar = dense('logvar')(summary).astype(jnp.float32) if self.variational else None
    if memory:
      return mean, logvar, {'memory': states, 'memory_mask': mask}
    return mean, logvar


def reparameterize(eps: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mean + exp(logvar / 2) * eps: a sample of N(mean, exp(logvar)) that is a
  differentiable function of (mean, logvar) (Kingma & Welling 2014).

  The noise is an argument, not drawn here, so that the caller controls it: the
  same eps gives the same z in the ELBO and in the importance-weighted bound
  (a test relies on it), and global-batch noise can be sliced per device.

  Args:
    eps: [..., batch, Z] standard normal noise (leading sample axes allowed).
    mean, logvar: [batch, Z].

  Returns:
    z, the shape of eps.
  """
  return mean + jnp.exp(0.5 * logvar) * eps

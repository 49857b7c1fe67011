"""Training objectives: divergences, sequence likelihoods, GAN losses,
gradient estimators through discrete tokens, and the latent-variable pieces
(KL annealing, free bits, the importance-weighted bound)."""

from jaxtextgen.objectives.discrete import gumbel_inverse_temperature
from jaxtextgen.objectives.discrete import gumbel_softmax
from jaxtextgen.objectives.discrete import gumbel_temperature
from jaxtextgen.objectives.discrete import moving_average_baseline
from jaxtextgen.objectives.discrete import reinforce_loss
from jaxtextgen.objectives.divergences import cross_entropy
from jaxtextgen.objectives.divergences import entropy
from jaxtextgen.objectives.divergences import gaussian_log_density
from jaxtextgen.objectives.divergences import js_divergence
from jaxtextgen.objectives.divergences import kl_divergence
from jaxtextgen.objectives.divergences import kl_gaussian
from jaxtextgen.objectives.gan import apply_updates_and_clip
from jaxtextgen.objectives.gan import clip_weights
from jaxtextgen.objectives.gan import clip_weights_transform
from jaxtextgen.objectives.gan import gradient_penalty
from jaxtextgen.objectives.gan import instance_noise
from jaxtextgen.objectives.gan import linear_decay
from jaxtextgen.objectives.gan import minimax_d_loss
from jaxtextgen.objectives.gan import minimax_g_loss
from jaxtextgen.objectives.gan import nonsaturating_g_loss
from jaxtextgen.objectives.gan import rsgan_d_loss
from jaxtextgen.objectives.gan import rsgan_g_loss
from jaxtextgen.objectives.gan import wgan_critic_loss
from jaxtextgen.objectives.gan import wgan_g_loss
from jaxtextgen.objectives.latent import cyclical_annealing
from jaxtextgen.objectives.latent import free_bits_kl
from jaxtextgen.objectives.latent import iw_log_marginal
from jaxtextgen.objectives.latent import linear_annealing
from jaxtextgen.objectives.latent import logistic_annealing
from jaxtextgen.objectives.sequence import linear_token_nll
from jaxtextgen.objectives.sequence import masked_sum
from jaxtextgen.objectives.sequence import sequence_cross_entropy
from jaxtextgen.objectives.sequence import token_nll

__all__ = (
    "apply_updates_and_clip",
    "clip_weights",
    "clip_weights_transform",
    "cross_entropy",
    "cyclical_annealing",
    "entropy",
    "free_bits_kl",
    "gaussian_log_density",
    "gradient_penalty",
    "gumbel_inverse_temperature",
    "gumbel_softmax",
    "gumbel_temperature",
    "instance_noise",
    "iw_log_marginal",
    "js_divergence",
    "kl_divergence",
    "kl_gaussian",
    "linear_annealing",
    "linear_decay",
    "linear_token_nll",
    "logistic_annealing",
    "masked_sum",
    "minimax_d_loss",
    "minimax_g_loss",
    "moving_average_baseline",
    "nonsaturating_g_loss",
    "reinforce_loss",
    "rsgan_d_loss",
    "rsgan_g_loss",
    "sequence_cross_entropy",
    "token_nll",
    "wgan_critic_loss",
    "wgan_g_loss",
)

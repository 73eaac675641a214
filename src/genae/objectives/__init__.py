"""Pure objective functions (no ``nn.Module`` state). Each module states its reduction convention:
likelihood terms sum over data/latent dimensions and are returned per example (the caller takes the
batch mean); GAN terms are batch means."""
from .elbo import (LIKELIHOODS, bernoulli_nll, categorical_kl_uniform, gaussian_kl, gumbel_softmax, gaussian_nll,
                   gaussian_nll_optimal_variance, lsr_latent_nll, reconstruction_nll, reparameterize)
from .gan import (gradient_penalty, js_discriminator_loss, ns_generator_loss, wgan_critic_loss,
                  wgan_generator_loss, wgan_gp_critic_loss)
from .information import (aggregate_log_densities, categorical_mi_bound, dimension_kl_surrogate,
                          empirical_mutual_information, frozen_batchnorm_stats, learned_prior_loss, mmd,
                          total_correlation, uniform_gaussian_mi_bound, vat_loss)
from .qmm import bias_alignment, em_responsibilities, tangential_offset
from .rate_reduction import (class_compression, coding_rate, ctrl_binary_objective,
                             ctrl_multi_objective, delta_r, pair_delta_r)

__all__ = ["LIKELIHOODS", "bernoulli_nll", "categorical_kl_uniform", "gaussian_kl", "gumbel_softmax", "gaussian_nll", "gaussian_nll_optimal_variance",
           "gradient_penalty", "js_discriminator_loss", "ns_generator_loss", "reconstruction_nll",
           "reparameterize", "wgan_critic_loss", "wgan_generator_loss", "wgan_gp_critic_loss",
           "class_compression", "coding_rate", "ctrl_binary_objective", "ctrl_multi_objective",
           "delta_r", "pair_delta_r", "categorical_mi_bound", "learned_prior_loss", "uniform_gaussian_mi_bound",
           "bias_alignment", "em_responsibilities", "tangential_offset", "lsr_latent_nll",
           "aggregate_log_densities", "dimension_kl_surrogate", "empirical_mutual_information",
           "frozen_batchnorm_stats", "mmd", "total_correlation", "vat_loss"]

"""Pure loss functions: arrays in, arrays out; JAX and numpy only.

Usable from any JAX project: `import disentangle_jax.losses` loads neither Flax, TensorFlow
Datasets nor ml_collections. Shapes and reductions are stated in each docstring; the leading axis
is always the batch.

  Primitives (common):     gaussian_kl, gaussian_log_density, reparameterize,
                           bernoulli_nll_logits, gaussian_nll, mse, batch_cov
  Autoencoder:             reconstruction_loss, autoencoder_loss
  VAE family:              vae_loss, beta_vae_loss (+ normalized_beta, raw_beta),
                           annealed_vae_loss, factor_vae_loss (+ permute_dims, tc_estimate,
                           discriminator_loss), beta_tcvae_loss (+ total_correlation,
                           importance_weight_matrix), dip_vae_loss (+ dip_covariance,
                           dip_regularizer)
  Schedules:               `disentangle_jax.losses.schedules` (β warm-up, cyclical, sigmoid,
                           cosine, AnnealedVAE capacity)
"""

from disentangle_jax.losses import schedules
from disentangle_jax.losses.betatcvae import (
    MinibatchDensities,
    beta_tcvae_loss,
    importance_weight_matrix,
    log_importance_weight_matrix,
    minibatch_log_densities,
    total_correlation,
)
from disentangle_jax.losses.common import (
    batch_cov,
    bernoulli_entropy,
    bernoulli_nll_logits,
    clipped_log,
    gaussian_kl,
    gaussian_log_density,
    gaussian_nll,
    mse,
    reduce_batch,
    reduce_events,
    reparameterize,
)
from disentangle_jax.losses.dipvae import dip_covariance, dip_regularizer, dip_vae_loss
from disentangle_jax.losses.factorvae import (
    discriminator_accuracy,
    discriminator_loss,
    factor_vae_loss,
    permute_dims,
    tc_estimate,
)
from disentangle_jax.losses.reconstruction import autoencoder_loss, reconstruction_loss
from disentangle_jax.losses.schedules import make_schedule
from disentangle_jax.losses.vae import (
    add_batch_term,
    annealed_vae_loss,
    beta_vae_loss,
    input_size,
    normalized_beta,
    raw_beta,
    vae_loss,
)

__all__ = [
    'MinibatchDensities',
    'add_batch_term',
    'annealed_vae_loss',
    'autoencoder_loss',
    'batch_cov',
    'bernoulli_entropy',
    'bernoulli_nll_logits',
    'beta_tcvae_loss',
    'beta_vae_loss',
    'clipped_log',
    'dip_covariance',
    'dip_regularizer',
    'dip_vae_loss',
    'discriminator_accuracy',
    'discriminator_loss',
    'factor_vae_loss',
    'gaussian_kl',
    'gaussian_log_density',
    'gaussian_nll',
    'importance_weight_matrix',
    'input_size',
    'log_importance_weight_matrix',
    'make_schedule',
    'minibatch_log_densities',
    'mse',
    'normalized_beta',
    'permute_dims',
    'raw_beta',
    'reconstruction_loss',
    'reduce_batch',
    'reduce_events',
    'reparameterize',
    'schedules',
    'tc_estimate',
    'total_correlation',
    'vae_loss',
]

# The mixing autoencoder (Hu et al. 2018).
from disentangle_jax.losses.mixing import (  # noqa: E402
    MixingPass,
    chunk_classifier_loss,
    chunk_origin_labels,
    expand_chunk_mask,
    gan_discriminator_loss,
    gan_generator_loss,
    mix_and_unmix,
    mix_codes,
    mixing_loss,
    sample_chunk_mask,
    unmix_codes,
)

__all__ += [
    'MixingPass',
    'chunk_classifier_loss',
    'chunk_origin_labels',
    'expand_chunk_mask',
    'gan_discriminator_loss',
    'gan_generator_loss',
    'mix_and_unmix',
    'mix_codes',
    'mixing_loss',
    'sample_chunk_mask',
    'unmix_codes',
]

# The PCA-like autoencoder (Ladjal, Newson, Pham 2019; Pham et al. 2022).
from disentangle_jax.losses.pcaae import pcaae_covariance_loss  # noqa: E402

__all__ += ['pcaae_covariance_loss']

# Latent regularisers for autoencoders (Newson et al. 2020).
from disentangle_jax.losses.regularizers import (  # noqa: E402
    corrupt,
    denoising_loss,
    distance_preservation_loss,
    pairwise_squared_distances,
    weight_decay,
)

__all__ += [
    'corrupt',
    'denoising_loss',
    'distance_preservation_loss',
    'pairwise_squared_distances',
    'weight_decay',
]

# Maximum mean discrepancy, InfoVAE and MMD-VAE (Gretton et al. 2012; Zhao et al. 2019).
from disentangle_jax.losses.mmd import info_vae_loss, kernel_matrix, mmd, mmd_vae_loss  # noqa: E402

__all__ += ['info_vae_loss', 'kernel_matrix', 'mmd', 'mmd_vae_loss']

# The VAE on aggregated image features (Seitzer et al. 2020).
from disentangle_jax.losses.featvae import feature_vae_loss  # noqa: E402

__all__ += ['feature_vae_loss']

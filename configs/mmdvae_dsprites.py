r"""python launch/main.py --config=configs/mmdvae_dsprites.py --workdir=workdirs/mmdvae_dsprites
python launch/main.py --config=configs/mmdvae_dsprites.py:runlocal --workdir=workdirs/mmdvae_local

MMD-VAE (Zhao, Song, Ermon, "InfoVAE", AAAI 2019) on the procedural dSprites: reconstruction plus
λ · MMD²(q(z), N(0, I)), no KL term (InfoVAE at α = 1). The MMD² is the unbiased estimate with an
RBF kernel of scale σ² = 10 (the code dimension) between the batch's posterior samples and as many
prior samples; λ = 1000 against the summed per-pixel nats.

Training as disentanglement_lib's VAEs: 10 latents, batch 64, 300k steps, Adam(1e-4, 0.9, 0.999),
Bernoulli likelihood with logits, conv encoder 'conv_k2' and deconv decoder 'conv'.

Variants:
  --config.objective.name=infovae --config.objective.alpha=0 --config.objective.lambda_mmd=1000
                                        InfoVAE: the KL kept with weight 1 − α
  --config.objective.kernel=imq         the inverse multiquadratic kernel (Tolstikhin et al. 2018)
  --config.objective.bandwidth=2.0      another kernel scale σ
  --config.data.name=dsprites           the real dSprites (prepared once with TFDS)
`runlocal` trains on the small procedural dSprites for a few CPU minutes with a larger learning rate.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'mmdvae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.alpha = ml_collections.config_dict.placeholder(float)  # 'infovae' only
  c.objective.lambda_mmd = 1000.0
  c.objective.kernel = 'rbf'
  c.objective.bandwidth = ml_collections.config_dict.placeholder(float)  # None: sqrt(latent_dim)
  c.objective.estimator = 'unbiased'

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  c.evaluators = common.standard_evaluators(c.runlocal)

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
    c.total_steps = 2_000
    c.image_every = 1_000
    c.checkpoint_every = 500
    c.eval_every = 2_000
  return c

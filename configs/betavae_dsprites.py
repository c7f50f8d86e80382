r"""python launch/main.py --config=configs/betavae_dsprites.py --workdir=workdirs/betavae_dsprites
python launch/main.py --config=configs/betavae_dsprites.py:runlocal --workdir=workdirs/betavae_dsprites_local

β-VAE on dSprites with disentanglement_lib's defaults (Higgins et al., ICLR 2017; Locatello et al., ICML 2019).

dlib `unsupervised_study_v1`: 10 latents, batch 64, 300k steps, Adam(1e-4, 0.9, 0.999, 1e-8),
Bernoulli likelihood with logits, sums over pixels and latents, β = 4 (study: 1, 2, 4, 6, 8, 16).
Networks: dlib's conv encoder (4×4 then 2×2 kernels, 'conv_k2') and deconv decoder ('conv').

Variants:
  --config.objective.beta=8                         another β
  --config.objective.beta_mode=normalized --config.objective.beta=0.009765625
                                                    β_norm = β·M/N with mean reductions (the seed's
                                                    normalised β; 0.009765625 = 4·10/4096)
  --config.data.name=dsprites                       the real dSprites (prepared once with TFDS)
`runlocal` trains on the small procedural dSprites for a few CPU minutes (2,000 steps) with a larger
learning rate and β warmed up linearly from 0 to 4 over the run: the reconstructions then follow
the inputs' position, scale and (for ellipses) orientation; telling squares and hearts from
ellipses takes longer runs.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config(arg)

  c.objective.name = 'betavae'
  c.objective.latent_dim = 10
  c.objective.likelihood = 'bernoulli'
  c.objective.beta = 4.0
  c.objective.beta_mode = 'raw'
  # e.g. --config.objective.beta_schedule=linear_warmup,warmup_steps=10000 (or a dict in a config
  # file); see disentangle_jax.losses.schedules for the schedules and their arguments.
  c.objective.beta_schedule = ml_collections.config_dict.placeholder(str)

  c.model.encoder = 'conv_k2'
  c.model.decoder = 'conv'

  c.evaluators = common.standard_evaluators(c.runlocal)

  if c.runlocal:
    c.optimizer.learning_rate = 1e-3
    c.total_steps = 2_000
    c.image_every = 1_000
    c.checkpoint_every = 500
    c.eval_every = 2_000
    c.objective.beta_schedule = 'linear_warmup,warmup_steps=2000'
  return c

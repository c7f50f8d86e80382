"""What the feature-aggregation VAE's pipeline configs share (Seitzer, Foltyn, Kemeth, NeurIPS
2019 Disentanglement Challenge report, arXiv 2002.12356, and the authors' released configs).

`pipeline_config(arg, data_name, builder_config)` returns one config with a run config per trained
step ('finetune', 'featvae'), the step-2 options ('features') and the table's metric settings
('table'); `disentangle_jax.pipelines.featvae.run_pipeline` reads it. Arguments after ':':
  runlocal           the CPU version: the narrow VGG-style extractor (1/8 width, aggregation to
                     128/256/512 channels) trained from scratch, short runs, small metric samples
  widths=paper       the VAE as published: MLPs 4 × 1024, C = 16, 100 epochs, β cosine 0.001 → 0.4
                     over epochs 10-49
  widths=released    the released stage-2 config: encoder [4096], decoder [4096] × 4 (default init),
                     18 latents, 120 epochs, β cosine 0.005 → 0.4 over epochs 10-79
  variant=stage1     the stage-1 submission (arXiv 2002.10003; its released config): no
                     finetuning, ImageNet VGG19-BN at 224 px with R-MAC '1-3-5-G'
                     (--config.imagenet_backbone=<.npz from launch/convert_vgg19_bn.py>), MLPs
                     [256, 128, 64] / [64, 128, 256], linear mean, sums not divided by B, KL ÷ C,
                     18 latents, Adam(1e-3, β1 0.5), 20 epochs, β cosine 1e-4 → 0.12 over epochs
                     1-19
  seed=N
"""

import ml_collections

from configs import common

placeholder = ml_collections.config_dict.placeholder

WIDTHS = {
    'paper': dict(model='feature_mlp', latent_dim=16, epochs=100,
                  beta=dict(start_value=0.001, end_value=0.4, start_step=10, end_step=49)),
    'released': dict(model='feature_mlp_released', latent_dim=18, epochs=120,
                     beta=dict(start_value=0.005, end_value=0.4, start_step=10, end_step=79)),
}


def _run_config(args, data_name, builder_config):
  arg = ('runlocal,' if args.runlocal else '') + f'seed={args.seed}'
  c = common.base_config(arg)
  c.data.name = data_name
  if builder_config is not None:
    c.data.builder_config = builder_config
  c.evaluators = ml_collections.ConfigDict()
  c.optimizer.name = 'radam'
  c.optimizer.learning_rate = 1e-3
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  if args.runlocal:
    c.model.extractor = 'vgg_extractor_narrow'
    c.model.extractor_kwargs = ml_collections.ConfigDict(
        {'aggregation_features': (128, 256, 512)})
  else:
    c.model.extractor = 'vgg_extractor'  # VGG19-BN, 1024 / 2048 / 512 aggregation
    c.model.extractor_kwargs = ml_collections.ConfigDict({'aggregation_features': (1024, 2048, 512)})
  return c


def pipeline_config(arg, data_name: str, builder_config=None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, runlocal=False, seed=0, widths='paper', variant='stage2')
  if args.variant not in ('stage1', 'stage2'):
    raise KeyError(f"unknown variant={args.variant!r}; known: 'stage1', 'stage2'")
  if args.widths not in WIDTHS:
    raise KeyError(f'unknown widths={args.widths!r}; known: {", ".join(WIDTHS)}')
  widths = WIDTHS[args.widths]
  c = ml_collections.ConfigDict()
  c.seed = args.seed
  c.runlocal = args.runlocal
  c.widths = args.widths
  c.variant = args.variant
  c.imagenet_backbone = placeholder(str)  # the stage-1 variant's ImageNet VGG19-BN .npz

  # Step 1 (§2.1): 5 epochs of the training split's first 80 % (records are in a hashed order, so
  # this is a random 80/20 split), RAdam 1e-3 with weight decay 0.01, batch 512.
  c.finetune_epochs = 5.0
  c.finetune_validation_split = 'train[80%:]'
  f = c.finetune = _run_config(args, data_name, builder_config)
  f.data.split = 'train[:80%]'
  f.batch_size = 512
  f.objective.name = 'factor_heads'
  f.objective.pretrained_backbone = placeholder(str)  # ImageNet VGG19-BN .npz (as published)
  f.optimizer.weight_decay = 0.01
  f.checkpoint_every = 1_000
  f.image_every = 10**9

  # Step 2: the frozen extractor over the whole training split.
  c.features = ml_collections.ConfigDict({'batch_size': 256})

  # Step 3 (§2.2-2.3): the VAE on the stored features, RAdam 1e-3, batch 256, β per epoch.
  c.featvae_epochs = float(widths['epochs'])
  v = c.featvae = _run_config(args, data_name, builder_config)
  v.batch_size = 256
  v.objective.name = 'featvae'
  v.objective.latent_dim = widths['latent_dim']
  v.objective.extractor = placeholder(str)  # set by the pipeline: step 1's extractor.npz
  v.objective.steps_per_epoch = placeholder(int)  # set by the pipeline from the store's size
  v.objective.beta_schedule = ml_collections.ConfigDict(widths['beta'])
  v.objective.output = 'sigmoid'
  v.objective.reduction = 'mean'
  v.objective.kl_per_latent = True
  v.model.encoder = widths['model']
  v.model.decoder = widths['model']
  v.checkpoint_every = 1_000
  v.image_every = 10**9

  # The table (FactorVAE, DCI, SAP, IRS, MIG) at dlib's sample sizes; small ones under runlocal.
  c.table = ml_collections.ConfigDict({m: {} for m in ('factorvae', 'dci', 'sap', 'irs', 'mig')})

  if args.variant == 'stage1':
    c.finetune_epochs = 0.0  # no finetuning: the extractor file is ImageNet VGG19-BN + R-MAC
    c.featvae_epochs = 20.0
    v.model.extractor = 'vgg_extractor'
    v.model.extractor_kwargs = ml_collections.ConfigDict({'aggregation': 'rmac', 'resize_to': 224})
    v.model.encoder = v.model.decoder = 'feature_mlp_stage1'
    v.objective.latent_dim = 18
    v.objective.output = 'linear'
    v.objective.reduction = 'sum'
    v.objective.beta_schedule = ml_collections.ConfigDict(
        dict(start_value=1e-4, end_value=0.12, start_step=1, end_step=19))
    v.optimizer.name = 'adam'
    v.optimizer.b1 = 0.5

  if args.runlocal:
    c.finetune_epochs = 2.0 if args.variant == 'stage2' else 0.0
    c.featvae_epochs = 20.0
    f.batch_size = 64
    if args.variant == 'stage1':
      v.model.extractor_kwargs.resize_to = 64  # VGG19-BN at 64 px (a 2×2 map) on a CPU
    v.batch_size = 64
    f.log_every = v.log_every = 20
    f.checkpoint_every = v.checkpoint_every = 200
    # β ramps over the short run's epochs (the released stage-1 config's 20-epoch shape).
    if args.variant == 'stage2':
      v.objective.beta_schedule = ml_collections.ConfigDict(
          dict(widths['beta'], start_step=1, end_step=12))
    small = {'num_train': 2_000, 'num_test': 1_000}
    c.table = ml_collections.ConfigDict({
        'factorvae': {'num_variance_estimate': 2_000, 'num_train': 500, 'num_eval': 250},
        'dci': dict(small), 'sap': dict(small), 'irs': {'num_train': 2_000},
        'mig': {'num_train': 2_000},
    })
  return c

r"""python launch/sweep.py --sweep=configs/sweeps/betavae_findings.py --sweep_dir=sweeps/betavae_findings
python launch/sweep.py --sweep=configs/sweeps/betavae_findings.py:budget=tiny --sweep_dir=/tmp/bvae_tiny

β-VAE findings of Higgins et al. (ICLR 2017, §4 and Fig. 6) on the procedural dSprites-equivalent:
the BetaVAE score (Higgins et al. 2017, §3), MIG (Chen et al. 2018) and the FactorVAE score (Kim &
Mnih 2018) against the normalised β, β_norm = β·M/N (M latents, N = 64·64 pixels; the runs use
`beta_mode=normalized`, per-pixel and per-latent means, so the raw β is β_norm·N/M), one line per
latent size M, mean ± std over seeds. The paper's claims: larger latents need a larger β; for one
M the score is an inverted U in β; β > 1 (β_norm > M/N, the dashed lines) is needed.

Networks: the paper's dSprites row (Table 1), fully connected 1200-1200 encoder and
1200-1200-1200 decoder (`fc`), Adam 1e-3, batch 64, β warmed up over the first fifth of the run.

`budget=` (the arg after ':'):
  cpu   (default) 5 β_norm × M ∈ {5, 10, 20} × 2 seeds = 30 runs of 500 steps on the `small`
        dSprites grid; metrics on 500/250 BetaVAE points (32 pairs each), 300/150 FactorVAE
        votes, 4,000 MIG samples. Each M has raw β below and above 1 (raw β = β_norm·4096/M:
        M=20 0.1…7, M=10 0.2…14, M=5 0.4…29). About 35 minutes on 2 cores (measured: runs of
        35-170 s, then about 8 s of scoring each; the sweep's log gives each run's time and the
        time left after each run).
  tiny  2 β_norm × M = 10 × 1 seed, 40 steps, small samples: proves the pipeline in minutes.
  gpu   9 β_norm × M ∈ {5, 10, 20, 50} × 3 seeds, 30,000 steps on the full grid, dlib's metric
        sample sizes (10,000/5,000).
Further `key=value` args: steps=, seeds=, data= (builder config), e.g. `budget=cpu,steps=3000,seeds=3`.
Narrow the grid from the command line: `--axis=objective.latent_dim=10`; add fixed overrides
with `--set=data.data_dir=/data/tfds`.
"""

NUM_PIXELS = 64 * 64

BUDGETS = {
    'cpu': dict(
        betas=[0.0005, 0.0015, 0.004, 0.012, 0.035], latents=[5, 10, 20], seeds=2,
        steps=500, data='small', log_every=50,
        metric_settings={
            'betavae': {'num_train': 500, 'num_eval': 250, 'batch_size': 32},
            'factorvae': {'num_variance_estimate': 2_000, 'num_train': 300, 'num_eval': 150},
            'mig': {'num_train': 4_000},
        },
    ),
    'tiny': dict(
        betas=[0.001, 0.01], latents=[10], seeds=1, steps=40, data='small', log_every=10,
        metric_settings={
            'betavae': {'num_train': 100, 'num_eval': 50, 'batch_size': 16},
            'factorvae': {'num_variance_estimate': 500, 'num_train': 100, 'num_eval': 50},
            'mig': {'num_train': 500},
        },
    ),
    'gpu': dict(
        betas=[0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064],
        latents=[5, 10, 20, 50], seeds=3, steps=30_000, data='full', log_every=500,
        metric_settings={'betavae': {}, 'factorvae': {}, 'mig': {}},
    ),
}


def _parse(arg):
  """'budget=cpu,steps=3000' -> {'budget': 'cpu', 'steps': 3000, ...}."""
  out = {'budget': 'cpu', 'steps': 0, 'seeds': 0, 'data': ''}
  for word in (arg or '').split(','):
    key, _, value = word.strip().partition('=')
    if not key:
      continue
    if key not in out:
      raise KeyError(f'unknown argument {key!r}; known: {", ".join(out)}')
    out[key] = type(out[key])(value)
  if out['budget'] not in BUDGETS:
    raise ValueError(f'unknown budget {out["budget"]!r}; known: {", ".join(BUDGETS)}')
  return out


def get_sweep(arg=None):
  args = _parse(arg)
  b = dict(BUDGETS[args['budget']])
  steps = args['steps'] or b['steps']
  seeds = args['seeds'] or b['seeds']
  data = args['data'] or b['data']
  return {
      'name': f'β-VAE on procedural dSprites ({args["budget"]} budget, {steps} steps)',
      'config': 'configs/betavae_dsprites.py:runlocal',
      'axes': {
          'objective.latent_dim': b['latents'],
          'objective.beta': b['betas'],
          'seed': list(range(seeds)),
      },
      'fixed': {
          'objective.beta_mode': 'normalized',
          'objective.beta_schedule': f'linear_warmup,warmup_steps={max(1, steps // 5)}',
          'model.encoder': 'fc',
          'model.decoder': 'fc',
          'optimizer.learning_rate': 1e-3,
          'batch_size': 64,
          'data.builder_config': data,
          'total_steps': steps,
          'log_every': b['log_every'],
          'checkpoint_every': max(1, steps // 2),
          'image_every': steps,
          'eval_every': 0,  # scored once at collection, on the metrics below
      },
      'metrics': ['betavae', 'mig', 'factorvae'],
      'metric_settings': b['metric_settings'],
      'plot': {
          'x': 'objective.beta', 'lines': 'objective.latent_dim', 'over': 'seed',
          'y': ['betavae/eval_accuracy', 'mig/discrete_mig', 'factorvae/eval_accuracy'],
          'x_label': 'β_norm = β·M/N',
          'vlines': {m: m / NUM_PIXELS for m in b['latents']},
          'vline_label': 'raw β = 1',
          'vline_ratio_label': 'raw β at best',
      },
  }

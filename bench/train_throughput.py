"""Images/s of the β-VAE train step on this CPU: the project's step vs plain flax vs PyTorch.

    python bench/train_throughput.py                 # all variants, interleaved rounds
    python bench/train_throughput.py --rounds=8 --steps=10

The model: 64×64×1 images, dlib's conv encoder with 4×4 kernels everywhere ('conv': 32, 32, 64, 64
channels, dense 256, 2·10 outputs) and its deconv decoder, z = 10, batch 64, Adam(1e-4), Bernoulli
log-likelihood (sum over pixels) + β·KL with β = 4, mean over the batch. Variants:

  (a)  the project's step: `objectives.get_objective('betavae')`, `training.make_train_step`, jitted
       with the state donated, as the trainer runs it, networks with conv_impl='fast';
  (a') the project's networks (conv_impl='fast') in a minimal jitted step (no metrics), to tell
       the networks' speed from the trainer's bookkeeping;
  (b)  the same model written with plain `flax.linen` `nn.Conv` / `nn.ConvTranspose`;
  (c)  the same model and loss in plain PyTorch (CPU; `pip install -e '.[bench]'`), if installed.

Each variant is compiled and warmed up first; then `--rounds` rounds each time `--steps` steps of
every variant in turn (blocking on the last result), so that a change of the machine's load hits
every variant alike. The best round is the figure (the median is shown too), with the load average
before and after: on a shared machine, other processes take cores from every variant.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np

from _timing import add_memory_flag, apply_memory_flag, interleaved_rounds, report  # bench/, the script's folder

BATCH, SIZE, LATENTS, BETA, LR = 64, 64, 10, 4.0, 1e-4
ENC = (32, 32, 64, 64)
DEC = (64, 32, 32, 1)


def _images(seed=0):
  rng = np.random.default_rng(seed)
  return (rng.random((BATCH, SIZE, SIZE, 1)) < 0.2).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# JAX variants


def _project_step(images):
  """(a): the objective and train step the trainer runs."""
  import jax
  import ml_collections

  from disentangle_jax.objectives import get_objective
  from disentangle_jax.training.step import make_train_step
  from disentangle_jax.training.train_state import create_train_state

  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = BATCH
  c.objective = ml_collections.ConfigDict(dict(
      name='betavae', latent_dim=LATENTS, likelihood='bernoulli', beta=BETA, beta_mode='raw',
      beta_schedule=None))
  c.model = ml_collections.ConfigDict(dict(encoder='conv', decoder='conv', conv_impl='fast'))
  c.optimizer = ml_collections.ConfigDict(dict(name='adam', learning_rate=LR, b1=0.9, b2=0.999,
                                               eps=1e-8))
  objective = get_objective('betavae')(c, (SIZE, SIZE, 1))
  batch = {'image': jax.numpy.asarray(images)}
  state = create_train_state(objective, jax.random.key(0), batch)
  step = jax.jit(make_train_step(objective), donate_argnums=0)
  rng = jax.random.key(1)
  holder = [state]

  def run(n):
    state = holder[0]
    for _ in range(n):
      state, metrics = step(state, batch, rng)
    jax.block_until_ready(metrics)
    holder[0] = state

  return run


def _minimal_step(encoder, decoder, images):
  """A jitted β-VAE step of two Flax modules: Adam, Bernoulli NLL + β·KL."""
  import jax
  import jax.numpy as jnp
  import optax

  x = jnp.asarray(images)
  k1, k2 = jax.random.split(jax.random.key(0))
  params = {'encoder': jax.jit(encoder.init)(k1, x)['params'],
            'decoder': jax.jit(decoder.init)(k2, jnp.zeros((BATCH, LATENTS)))['params']}
  tx = optax.adam(LR)

  def loss_fn(params, x, rng):
    h = encoder.apply({'params': params['encoder']}, x)
    mean, logvar = jnp.split(h, 2, axis=-1)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape)
    logits = decoder.apply({'params': params['decoder']}, z)
    nll = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=(1, 2, 3))
    kl = 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(logvar) - logvar - 1.0, axis=-1)
    return jnp.mean(nll + BETA * kl)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, opt_state, x, rng, i):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, jax.random.fold_in(rng, i))
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  holder = [params, tx.init(params), 0]
  rng = jax.random.key(1)

  def run(n):
    params, opt_state, i = holder
    for _ in range(n):
      params, opt_state, loss = step(params, opt_state, x, rng, i)
      i += 1
    jax.block_until_ready(loss)
    holder[:] = [params, opt_state, i]

  return run


def _project_networks(images):
  """(a'): the project's 'conv' networks with conv_impl='fast' in a minimal step."""
  from disentangle_jax import networks

  return _minimal_step(
      networks.get_encoder('conv', num_outputs=2 * LATENTS, conv_impl='fast'),
      networks.get_decoder('conv', output_shape=(SIZE, SIZE, 1), conv_impl='fast'), images)


def _plain_flax(images):
  """(b): the same model with flax.linen's own Conv and ConvTranspose."""
  import flax.linen as nn

  class Encoder(nn.Module):
    @nn.compact
    def __call__(self, x):
      for features in ENC:
        x = nn.relu(nn.Conv(features, (4, 4), (2, 2), padding='SAME')(x))
      x = nn.relu(nn.Dense(256)(x.reshape(x.shape[0], -1)))
      return nn.Dense(2 * LATENTS)(x)

  class Decoder(nn.Module):
    @nn.compact
    def __call__(self, z):
      z = nn.relu(nn.Dense(256)(z))
      x = nn.relu(nn.Dense(4 * 4 * 64)(z)).reshape(z.shape[0], 4, 4, 64)
      for i, features in enumerate(DEC):
        x = nn.ConvTranspose(features, (4, 4), (2, 2), padding='SAME')(x)
        x = nn.relu(x) if i < len(DEC) - 1 else x
      return x

  return _minimal_step(Encoder(), Decoder(), images)


# ---------------------------------------------------------------------------------------------
# PyTorch


def _pytorch(images):
  """(c): the same model and loss in PyTorch (NCHW, its CPU defaults, all cores)."""
  import torch
  from torch import nn

  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count())

  class VAE(nn.Module):
    def __init__(self):
      super().__init__()
      layers, cin = [], 1
      for features in ENC:
        layers += [nn.Conv2d(cin, features, 4, 2, 1), nn.ReLU()]
        cin = features
      self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(),
                                   nn.Linear(256, 2 * LATENTS))
      self.fc = nn.Sequential(nn.Linear(LATENTS, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU())
      layers, cin = [], 64
      for i, features in enumerate(DEC):
        layers.append(nn.ConvTranspose2d(cin, features, 4, 2, 1))
        if i < len(DEC) - 1:
          layers.append(nn.ReLU())
        cin = features
      self.decoder = nn.Sequential(*layers)

    def forward(self, x):
      mean, logvar = self.encoder(x).chunk(2, dim=-1)
      z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
      return self.decoder(self.fc(z).view(-1, 64, 4, 4)), mean, logvar

  model = VAE()
  opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
  x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

  def step():
    opt.zero_grad(set_to_none=True)
    logits, mean, logvar = model(x)
    nll = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction='none')
    kl = 0.5 * (mean.square() + logvar.exp() - logvar - 1).sum(-1)
    loss = (nll.sum((1, 2, 3)) + BETA * kl).mean()
    loss.backward()
    opt.step()
    return loss

  def run(n):
    for _ in range(n):
      loss = step()
    loss.item()

  return run, torch.__version__


# ---------------------------------------------------------------------------------------------


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=6)
  parser.add_argument('--steps', type=int, default=10, help='steps per variant per round')
  parser.add_argument('--warmup', type=int, default=3)
  add_memory_flag(parser)
  parser.add_argument('--skip', default='', help="comma-separated variants to skip: a,a',b,c")
  args = parser.parse_args(argv)
  memory = apply_memory_flag(args)  # before JAX and PyTorch start their threads
  skip = set(filter(None, args.skip.split(',')))

  import jax

  images = _images()
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores; '
        f'batch {BATCH}, {SIZE}×{SIZE}×1, z = {LATENTS}; {memory}')
  variants = {}
  builders = [('a', "(a)  project step, conv_impl='fast'", _project_step),
              ("a'", "(a') project networks, minimal step", _project_networks),
              ('b', '(b)  plain flax nn.Conv/ConvTranspose', _plain_flax)]
  for key, label, build in builders:
    if key in skip:
      continue
    try:
      variants[key] = (label, build(images))
    except Exception as e:  # noqa: BLE001 - a missing piece skips its variant, not the bench
      print(f'{label}: skipped ({type(e).__name__}: {e})')
  if 'c' not in skip:
    try:
      run, version = _pytorch(images)
      variants['c'] = (f'(c)  PyTorch {version}', run)
    except ImportError:
      print("(c)  PyTorch: not installed (pip install -e '.[bench]')")

  times = interleaved_rounds(variants, rounds=args.rounds, steps=args.steps, warmup=args.warmup)
  report(variants, times, BATCH, [('a', 'c'), ("a'", 'c'), ('b', 'c'), ('a', 'b'), ("a'", 'b')])


if __name__ == '__main__':
  sys.exit(main())

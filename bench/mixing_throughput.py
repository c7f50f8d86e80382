"""Images/s of the mixing autoencoder's train step on this CPU: the project's step vs PyTorch.

    python bench/mixing_throughput.py                # 3 interleaved rounds of 2 steps each
    python bench/mixing_throughput.py --rounds=5 --steps=3 --pairs=32

The step of Hu et al. (CVPR 2018) as `configs/mixing_sprites.py` (variant MIX+C+G) trains it:
64×64×3 images, 64 pairs per step (x1 and x2, batch 128), 8 chunks of 64; three groups updated
one after another on the same batch, each with its own Adam(2e-4, β1 0.5): the generator
(DCGAN encoder and decoder with instance norm; λ_AE·(L_AE(x1) + L_AE(x2)) + λ_M·L_M + λ_G·L_G +
λ_C·L_C, its gradient through the classifier and the discriminator), then the AlexNet-BN chunk
classifier on (x1, x2, x3) stacked along channels, then the batch-norm DCGAN discriminator on x1
against x3. Each later update recomputes x3 with the generator just updated.

  (a) the project's step: `objectives.get_objective('mixing')`, `training.make_train_step`,
      jitted with the state donated, as the trainer runs it;
  (c) the same networks, losses and update order in PyTorch (NCHW, its CPU defaults, all cores),
      if installed (`pip install -e '.[bench]'`).

Both are warmed up first; then `--rounds` rounds each time `--steps` steps of every variant in
turn, so that a change of the machine's load hits both alike. The best round is the figure (the
median is shown too), with the load average before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np

from _timing import add_memory_flag, apply_memory_flag, interleaved_rounds, report  # bench/, the script's folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SIZE, CHUNKS, CHUNK_SIZE = 64, 8, 64
LR, B1 = 2e-4, 0.5
LAMBDA_AE, LAMBDA_M, LAMBDA_G, LAMBDA_C = 10.0, 10.0, 1.0, 1.0


def _images(pairs: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).random((2 * pairs, SIZE, SIZE, 3)).astype(np.float32)


def _project_step(images: np.ndarray):
  """(a): the objective and train step the trainer runs."""
  import jax

  from disentangle_jax.objectives import get_objective
  from disentangle_jax.training.step import make_train_step
  from disentangle_jax.training.train_state import create_train_state

  spec = importlib.util.spec_from_file_location(
      'mixing_sprites', os.path.join(ROOT, 'configs', 'mixing_sprites.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('variant=mix_c_g')
  config.batch_size = len(images)
  objective = get_objective('mixing')(config, images.shape[1:])
  batch = {'image': jax.numpy.asarray(images)}
  state = create_train_state(objective, jax.random.key(0), batch)
  step = jax.jit(make_train_step(objective), donate_argnums=0)
  holder = [state, 0]

  def run(n):
    state, i = holder
    for _ in range(n):
      state, metrics = step(state, batch, jax.random.key(i))
      i += 1
    jax.block_until_ready(metrics)
    holder[:] = [state, i]

  return run


def _pytorch(images: np.ndarray):
  """(c): the same step in PyTorch."""
  import torch
  from torch import nn
  from torch.nn import functional as F

  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count())

  def encoder():
    layers, cin = [], 3
    for level, features in enumerate((64, 128, 256, 512, 512)):  # 64 → 2 px
      kernel = 4 if level < 3 else 2
      layers += [nn.Conv2d(cin, features, kernel, 2, 1 if kernel == 4 else 0),
                 nn.InstanceNorm2d(features), nn.LeakyReLU(0.2)]
      cin = features
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * 2 * 512, CHUNKS * CHUNK_SIZE),
                         nn.LeakyReLU(0.2))

  def decoder():
    layers = [nn.Unflatten(1, (CHUNKS * CHUNK_SIZE, 1, 1)),
              nn.ConvTranspose2d(CHUNKS * CHUNK_SIZE, 512, 4, 1, 0, bias=False), nn.ReLU()]
    cin = 512
    for step, features in enumerate((512, 256, 128, 3)):  # 4 → 64 px
      kernel = 3 if step == 0 else 4
      layers.append(nn.ConvTranspose2d(cin, features, kernel, 2, 1, output_padding=int(kernel == 3),
                                       bias=False))
      if step < 3:
        layers += [nn.InstanceNorm2d(features), nn.ReLU()]
      cin = features
    return nn.Sequential(*layers, nn.Tanh())

  def discriminator():
    layers, cin = [], 3
    for features, kernel, stride in ((64, 3, 2), (128, 3, 2), (256, 3, 2), (512, 1, 1)):
      layers += [nn.Conv2d(cin, features, kernel, stride, kernel // 2),
                 nn.BatchNorm2d(features, momentum=0.01, eps=1e-5), nn.LeakyReLU(0.2)]
      cin = features
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(8 * 8 * 512, 1))

  def classifier():
    def block(cin, cout, kernel, stride, padding, groups):
      return [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups), nn.ReLU(),
              nn.BatchNorm2d(cout, momentum=0.01, eps=1e-5)]
    return nn.Sequential(
        *block(9, 96, 8, 2, 0, 1), nn.MaxPool2d(3, 2),
        *block(96, 256, 5, 1, 2, 2), nn.MaxPool2d(3, 2),
        *block(256, 384, 3, 1, 1, 1), *block(384, 384, 3, 1, 1, 2),
        *block(384, 256, 3, 1, 1, 2), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(2 * 2 * 256, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, CHUNKS))

  enc, dec, disc, cls = encoder(), decoder(), discriminator(), classifier()
  adam = lambda params: torch.optim.Adam(params, lr=LR, betas=(B1, 0.999), eps=1e-8)
  gen_opt = adam(list(enc.parameters()) + list(dec.parameters()))
  cls_opt, disc_opt = adam(cls.parameters()), adam(disc.parameters())
  x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))) * 2 - 1
  x1, x2 = x[:len(x) // 2], x[len(x) // 2:]
  chunked = lambda m: m.repeat_interleave(CHUNK_SIZE, dim=1)

  def forward(mask):
    f1, f2 = enc(x1), enc(x2)
    m = chunked(mask)
    x3 = dec(m * f1 + (1 - m) * f2)
    x4 = dec(m * enc(x3) + (1 - m) * f1)
    return dec(f1), dec(f2), x3, x4

  def step():
    mask = (torch.rand(1, CHUNKS) < 0.5).float().expand(len(x1), CHUNKS)
    labels = 1 - mask
    gen_opt.zero_grad(set_to_none=True)
    r1, r2, x3, x4 = forward(mask)
    fake = disc(x3)
    gen_loss = (LAMBDA_AE * (F.mse_loss(r1, x1) + F.mse_loss(r2, x2))
                + LAMBDA_M * F.mse_loss(x4, x1)
                + LAMBDA_G * F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
                + LAMBDA_C * F.binary_cross_entropy_with_logits(
                    cls(torch.cat([x1, x2, x3], 1)), labels))
    gen_loss.backward()
    gen_opt.step()
    with torch.no_grad():  # the classifier's and the discriminator's x3: the updated generator's
      x3 = dec(chunked(mask) * enc(x1) + (1 - chunked(mask)) * enc(x2))
    cls_opt.zero_grad(set_to_none=True)
    F.binary_cross_entropy_with_logits(cls(torch.cat([x1, x2, x3], 1)), labels).backward()
    cls_opt.step()
    disc_opt.zero_grad(set_to_none=True)
    real, fake = disc(x1), disc(x3)
    (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
     + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))).backward()
    disc_opt.step()
    return gen_loss

  def run(n):
    for _ in range(n):
      loss = step()
    loss.item()

  return run, torch.__version__


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--steps', type=int, default=2, help='steps per variant per round')
  parser.add_argument('--warmup', type=int, default=1)
  add_memory_flag(parser)
  parser.add_argument('--pairs', type=int, default=64, help='image pairs per step (x1 and x2)')
  args = parser.parse_args(argv)
  memory = apply_memory_flag(args)  # before JAX and PyTorch start their threads

  import jax

  images = _images(args.pairs)
  batch = len(images)
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores; '
        f'{args.pairs} pairs ({batch} images) of {SIZE}×{SIZE}×3 per step, MIX+C+G; {memory}')
  variants = {'a': ('(a)  project step', _project_step(images))}
  try:
    run, version = _pytorch(images)
    variants['c'] = (f'(c)  PyTorch {version}', run)
  except ImportError:
    print("(c)  PyTorch: not installed (pip install -e '.[bench]')")

  times = interleaved_rounds(variants, rounds=args.rounds, steps=args.steps, warmup=args.warmup)
  report(variants, times, batch, [('a', 'c')])


if __name__ == '__main__':
  sys.exit(main())

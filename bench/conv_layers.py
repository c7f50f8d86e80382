"""Where the β-VAE step's time goes: each convolution's three parts, ours against PyTorch's.

    python bench/conv_layers.py                  # the plans' formulations vs PyTorch (oneDNN)
    python bench/conv_layers.py --all            # every formulation of every part, best marked
    python bench/conv_layers.py --gemm           # plus the kernel gradients' matmuls alone

The layers are those of `bench/train_throughput.py`'s model, read off the project's 'conv'
encoder and decoder (batch 64 of 64×64×1: four 4×4 stride-2 convs, four 4×4 stride-2 transposed
convs). For each layer, the forward pass, the input gradient and the kernel gradient are timed
alone (jitted; the input gradient of the first layer is shown but not summed, since a train step
never computes it): ours with `conv_impl='fast'` as its `Plan` computes each part (`fast_conv.plan_conv`, `plan_conv_transpose`), and PyTorch's
`aten.convolution` / `aten.convolution_backward` (NCHW, its CPU defaults, all cores). Each figure
is the best of three rounds, a round being the median of `--repeats` calls of each variant in turn
(blocks, not single calls alternating: PyTorch's worker threads keep spinning for a while after
each of its ops), so that a change of the machine's load hits both alike.

`--gemm` times, for each layer, the matmul at the heart of its kernel gradient with im2col
columns already built, a contraction over all B·H'·W' output positions, [M, K]·[K, N] with K
major in both operands, in XLA (as `jnp.dot` lowers it, and split into two batch halves summed
afterwards) and in PyTorch: the operand shape that convolution gradients produce.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from _timing import load_average  # bench/, the script's folder
from train_throughput import BATCH, LATENTS, SIZE


def layers():
  """(kind, x shape NHWC, kernel shape HWIO) of the benchmark model's convolutions, in order.

  Read off the project's own networks (traced, not run): every call they make to
  `fast_conv.conv2d` / `conv_transpose2d` while initialising.
  """
  import jax
  import jax.numpy as jnp

  from disentangle_jax import networks
  from disentangle_jax.networks import fast_conv

  calls = []
  originals = {'conv': fast_conv.conv2d, 'conv_transpose': fast_conv.conv_transpose2d}

  def recording(kind):
    def op(x, kernel, strides=(1, 1), padding='SAME', **kw):
      if tuple(strides) != (2, 2) or padding != 'SAME' or kernel.shape[:2] != (4, 4):
        raise ValueError(f'{kind} {kernel.shape} strides {strides} padding {padding}: this bench '
                         "times 4x4 stride-2 'SAME' layers only")
      calls.append((kind, tuple(x.shape), tuple(kernel.shape)))
      return originals[kind](x, kernel, strides, padding, **kw)
    return op

  encoder = networks.get_encoder('conv', num_outputs=2 * LATENTS, conv_impl='fast')
  decoder = networks.get_decoder('conv', output_shape=(SIZE, SIZE, 1), conv_impl='fast')
  fast_conv.conv2d, fast_conv.conv_transpose2d = recording('conv'), recording('conv_transpose')
  try:
    key = jax.random.key(0)
    jax.eval_shape(encoder.init, key, jnp.zeros((BATCH, SIZE, SIZE, 1)))
    jax.eval_shape(decoder.init, key, jnp.zeros((BATCH, LATENTS)))
  finally:
    fast_conv.conv2d, fast_conv.conv_transpose2d = originals['conv'], originals['conv_transpose']
  return calls


PARTS = ('forward', 'input_grad', 'kernel_grad')
# Blocks of calls per variant: alternating single calls would time each library while the other's
# worker threads still spin (PyTorch's OpenMP threads wait actively after each op).
ROUNDS = 3


def _median_ms(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _ours(kind, x_shape, w_shape, formulation_names):
  """({part: {formulation: zero-argument timed call}}, the planned `Plan`), conv_impl='fast'."""
  import jax
  import jax.numpy as jnp

  from disentangle_jax.networks import fast_conv

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal(w_shape), jnp.float32)
  op = fast_conv.conv2d if kind == 'conv' else fast_conv.conv_transpose2d
  plan_of = fast_conv.plan_conv if kind == 'conv' else fast_conv.plan_conv_transpose
  planned = plan_of(x_shape, w_shape)
  dy = jnp.asarray(rng.standard_normal(jax.eval_shape(
      lambda: op(x, w, (2, 2), 'SAME', impl='xla')).shape), jnp.float32)
  calls = {}
  for part in PARTS:
    names = formulation_names(kind) if formulation_names else [getattr(planned, part)]
    calls[part] = {}
    for name in names:
      plan = fast_conv.Plan(**{**vars(planned), part: name})
      conv = lambda x_, w_, plan=plan: op(x_, w_, (2, 2), 'SAME', impl='fast', plan=plan)
      if part == 'forward':
        fn = jax.jit(conv)
      elif part == 'input_grad':
        fn = jax.jit(lambda x_, w_, dy_, conv=conv: jax.vjp(lambda a: conv(a, w_), x_)[1](dy_)[0])
      else:
        fn = jax.jit(lambda x_, w_, dy_, conv=conv: jax.vjp(lambda b: conv(x_, b), w_)[1](dy_)[0])
      args = (x, w) if part == 'forward' else (x, w, dy)
      jax.block_until_ready(fn(*args))  # compile
      calls[part][name] = lambda fn=fn, args=args: jax.block_until_ready(fn(*args))
  return calls, planned


def _pytorch(kind, x_shape, w_shape):
  """{part: zero-argument timed call} of the same layer in PyTorch (NCHW, padding 1 = 'SAME')."""
  import torch

  transposed = kind == 'conv_transpose'
  b, h, w, ci = x_shape
  co = w_shape[3]
  x = torch.randn(b, ci, h, w)
  weight = torch.randn(ci, co, 4, 4) if transposed else torch.randn(co, ci, 4, 4)
  geometry = ([2, 2], [1, 1], [1, 1], transposed, [0, 0], 1)
  conv = torch.ops.aten.convolution
  dy = torch.randn_like(conv(x, weight, None, *geometry))
  backward = torch.ops.aten.convolution_backward

  def grad(mask):
    with torch.no_grad():
      return backward(dy, x, weight, None, *geometry, mask)

  def forward():
    with torch.no_grad():
      return conv(x, weight, None, *geometry)

  return {'forward': forward, 'input_grad': lambda: grad([True, False, False]),
          'kernel_grad': lambda: grad([False, True, False])}


def conv_table(args, model_layers):
  from disentangle_jax.networks import fast_conv

  names = fast_conv.formulations if args.all else None
  totals = {'ours': 0.0, 'pytorch': 0.0}
  print(f'{"layer":34s} {"part":11s} {"ours ms":>8s} {"pytorch ms":>10s} {"ratio":>6s}  '
        'our formulation' + ('  (every formulation, ms)' if args.all else ''))
  for index, (kind, x_shape, w_shape) in enumerate(model_layers):
    ours, plan = _ours(kind, x_shape, w_shape, names)
    theirs = _pytorch(kind, x_shape, w_shape) if args.pytorch else {}
    label = (f'{index} {"conv" if kind == "conv" else "conv_t"} {x_shape[1]}x{x_shape[2]}x'
             f'{x_shape[3]} -> {w_shape[3]}')
    for part in PARTS:
      planned = getattr(plan, part)
      for fn in list(ours[part].values()) + ([theirs[part]] if theirs else []):
        fn()  # warm up (PyTorch picks its kernels on the first calls)
      times = {name: [] for name in ours[part]}
      torch_times = []
      for _ in range(ROUNDS):
        for name, fn in ours[part].items():
          times[name].append(_median_ms(fn, args.repeats))
        if theirs:
          torch_times.append(_median_ms(theirs[part], args.repeats))
      ms = {name: min(t) for name, t in times.items()}
      mine = ms[planned]
      ref = min(torch_times) if theirs else float('nan')
      counted = not (index == 0 and part == 'input_grad')  # a train step never needs it
      if counted:
        totals['ours'] += mine
        totals['pytorch'] += ref
      extra = ''
      if args.all:
        best = min(ms, key=ms.get)
        extra = '  ' + ', '.join(f'{n}{"*" if n == best else ""} {t:.2f}'
                                 for n, t in sorted(ms.items(), key=lambda kv: kv[1]))
      print(f'{label if part == "forward" else "":34s} {part:11s} {mine:8.2f} {ref:10.2f} '
            f'{mine / ref:6.2f}  {planned}{"" if counted else " (not in a step)"}{extra}',
            flush=True)
  print(f'{"sum (what a step computes)":46s} {totals["ours"]:8.2f} {totals["pytorch"]:10.2f} '
        f'{totals["ours"] / totals["pytorch"]:6.2f}')


def gemm_table(args, model_layers):
  """The kernel gradients' im2col matmuls alone: XLA (plain, split in two) vs PyTorch."""
  import jax
  import jax.numpy as jnp

  print('\nkernel-gradient matmuls [M, K]·[K, N], K = B·H\'·W\' major in both operands (GFLOP/s)')
  print(f'{"layer":8s} {"M x K x N":>20s} {"xla":>8s} {"xla split":>10s} {"pytorch":>8s}')
  rng = np.random.default_rng(0)
  plain = jax.jit(lambda a, b: a.T @ b)
  # The contraction as two batch halves summed: XLA:CPU runs such a batched matmul several times
  # faster than one long contraction.
  split = jax.jit(lambda a, b: jnp.einsum('pkm,pkn->pnm', a.reshape(2, -1, a.shape[1]),
                                          b.reshape(2, -1, b.shape[1])).sum(0).T)
  for index, (kind, x_shape, w_shape) in enumerate(model_layers):
    b, h, w, ci = x_shape
    co = w_shape[3]
    # Output positions of a conv; input positions of a transposed conv (each meets all 16 taps).
    positions = b * h * w // 4 if kind == 'conv' else b * h * w
    m, n = 16 * ci, co
    a = rng.standard_normal((positions, m)).astype(np.float32)
    g = rng.standard_normal((positions, n)).astype(np.float32)
    flops = 2 * positions * m * n / 1e6  # MFLOP, so MFLOP/ms = GFLOP/s
    ja, jg = jnp.asarray(a), jnp.asarray(g)
    row = []
    for fn in (plain, split):
      call = lambda fn=fn: jax.block_until_ready(fn(ja, jg))
      call()
      row.append(flops / _median_ms(call, args.repeats))
    if args.pytorch:
      import torch

      ta, tg = torch.from_numpy(a), torch.from_numpy(g)
      call = lambda: ta.T @ tg
      call()
      row.append(flops / _median_ms(call, args.repeats))
    else:
      row.append(float('nan'))
    print(f'{index:<8d} {f"{m} x {positions} x {n}":>20s} {row[0]:8.0f} {row[1]:10.0f} '
          f'{row[2]:8.0f}')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--repeats', type=int, default=10, help='calls per round and variant')
  parser.add_argument('--all', action='store_true', help='time every formulation of every part')
  parser.add_argument('--gemm', action='store_true', help="also the kernel gradients' matmuls")
  args = parser.parse_args(argv)
  import jax

  try:
    import torch

    torch.set_num_threads(os.cpu_count())
    args.pytorch = True
    version = f'PyTorch {torch.__version__}'
  except ImportError:
    args.pytorch = False
    version = "PyTorch not installed (pip install -e '.[bench]'): its columns are nan"
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}; {version}; {load_average()}')
  model_layers = layers()
  conv_table(args, model_layers)
  if args.gemm:
    gemm_table(args, model_layers)
  print(f'after: {load_average()}')


if __name__ == '__main__':
  sys.exit(main())

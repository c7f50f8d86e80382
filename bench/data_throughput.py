"""Loader throughput, builder build times and the reader's memory, on the full procedural datasets.

    python bench/data_throughput.py --data_dir=/tmp/bench_tfds            # everything (minutes)
    python bench/data_throughput.py --data_dir=/tmp/bench_tfds --builders=procedural_dsprites

1. Builds each builder's full config into `--data_dir` (timed; `--rebuild` deletes it first,
   otherwise an existing build is reused and reported as such).
2. For `procedural_dsprites` and `procedural_shapes3d`, starts a fresh process that reads the
   dataset through `pipeline.make_train_iterator` (shuffled, batch 64, float32 images) for
   `--seconds`, for each loader variant, and reports images/s (wall clock and per CPU-second of
   the reading process) and its resident memory (current and peak).

Targets on 2 cores: >= 20,000 images/s on dSprites, >= 5,000 on 64×64×3, full dSprites built in
< 10 minutes, the reader < 1 GiB resident. The machine's load average is printed with each figure:
other processes on a shared machine take cores from the loader.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

BUILDERS = ('procedural_dsprites', 'procedural_shapes3d', 'disks', 'ellipses',
            'procedural_sprites')
READ = ('procedural_dsprites', 'procedural_shapes3d')
#: (label, read_threads, worker_processes)
VARIANTS = (('1 thread', 1, 0), ('2 threads', 2, 0), ('2 worker processes', 1, 2))


def _load() -> str:
  one, five, _ = os.getloadavg()
  return f'load {one:.1f}/{five:.1f} (1/5 min) on {os.cpu_count()} cores'


def _status_mib(key: str) -> float:
  """VmRSS (resident now) or VmHWM (peak resident) of this process, from /proc.

  Not `getrusage`: its ru_maxrss survives `exec`, so a reader started by a process that had
  just built a dataset (TFDS buffers up to 1 GiB of examples) would report the builder's peak.
  """
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(key + ':'):
        return int(line.split()[1]) / 1024
  return float('nan')


def build(name: str, config: str, data_dir: str, rebuild: bool) -> None:
  import tensorflow_datasets as tfds

  import disentangle_jax  # noqa: F401
  from disentangle_jax.data import datasets

  builder = tfds.builder(name, config=config, data_dir=data_dir)
  if rebuild and os.path.isdir(builder.data_dir):
    shutil.rmtree(os.path.dirname(builder.data_dir))
  if builder.is_prepared():
    print(f'build {name}/{config}: already built in {builder.data_dir} (use --rebuild to time)',
          flush=True)
    return
  load = _load()
  start, cpu = time.perf_counter(), time.process_time()
  reader = datasets.open_dataset(name, builder_config=config, data_dir=data_dir)
  seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
  size = sum(os.path.getsize(os.path.join(builder.data_dir, f))
             for f in os.listdir(builder.data_dir))
  print(f'build {name}/{config}: {len(reader):,} images in {seconds:.1f} s '
        f'({len(reader) / seconds:,.0f} images/s; {cpu:.0f} CPU-s in this process), '
        f'{size / 2**20:.0f} MiB on disk; {load} before', flush=True)


def read(name: str, config: str, data_dir: str, seconds: float, threads: int, workers: int
         ) -> dict:
  """Runs in a fresh process: loader throughput and this process's memory."""
  from absl import flags

  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags
  from disentangle_jax.data import pipeline

  data = pipeline.default_data_config()
  data.update(name=name, builder_config=config, data_dir=data_dir, build_if_missing=False,
              read_threads=threads, worker_processes=workers)
  iterator = pipeline.make_train_iterator(data, global_batch_size=64, seed=0, process_index=0,
                                          process_count=1)
  for _ in range(20):  # warm up: open the shards, fill the prefetch buffer, start workers
    batch = next(iterator)
  assert batch['image'].dtype.name == 'float32' and batch['image'].shape[0] == 64
  load = _load()
  start, cpu, n = time.perf_counter(), time.process_time(), 0
  while time.perf_counter() - start < seconds:
    n += len(next(iterator)['image'])
  wall, cpu = time.perf_counter() - start, time.process_time() - cpu
  return {
      'images_per_s': n / wall,
      'images_per_cpu_s': n / cpu if cpu else float('nan'),
      'rss_mib': _status_mib('VmRSS'),
      'peak_rss_mib': _status_mib('VmHWM'),
      'load': load,
      'shape': list(batch['image'].shape[1:]),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join('/tmp', 'disentangle_jax_bench_tfds'))
  parser.add_argument('--builders', default=','.join(BUILDERS))
  parser.add_argument('--config', default='full', help="builder config ('full' or 'small')")
  parser.add_argument('--seconds', type=float, default=20.0, help='reading time per variant')
  parser.add_argument('--rebuild', action='store_true', help='delete and rebuild (to time it)')
  parser.add_argument('--antialiased', action='store_true',
                      help='also build procedural_dsprites/antialiased')
  parser.add_argument('--_read', help=argparse.SUPPRESS)  # internal: name,threads,workers
  args = parser.parse_args()

  if args._read:
    name, threads, workers = args._read.split(',')
    result = read(name, args.config, args.data_dir, args.seconds, int(threads), int(workers))
    print(json.dumps(result))
    return

  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  names = [n for n in args.builders.split(',') if n]
  print(f'disentangle_jax data bench: data_dir={args.data_dir}; {_load()}', flush=True)
  for name in names:
    build(name, args.config, args.data_dir, args.rebuild)
  if args.antialiased:
    build('procedural_dsprites', 'antialiased', args.data_dir, args.rebuild)
  for name in [n for n in names if n in READ]:
    for label, threads, workers in VARIANTS:
      cmd = [sys.executable, __file__, f'--data_dir={args.data_dir}', f'--config={args.config}',
             f'--seconds={args.seconds}', f'--_read={name},{threads},{workers}']
      out = subprocess.run(cmd, capture_output=True, text=True)
      if out.returncode:
        print(f'read {name}: failed\n{out.stderr[-3000:]}', flush=True)
        continue
      r = json.loads(out.stdout.strip().splitlines()[-1])
      print(f'read {name}/{args.config} {tuple(r["shape"])}, shuffled, batch 64, float32, '
            f'{label}: {r["images_per_s"]:,.0f} images/s '
            f'({r["images_per_cpu_s"]:,.0f} per CPU-s of the reading process); '
            f'RSS {r["rss_mib"]:.0f} MiB (peak {r["peak_rss_mib"]:.0f} MiB); {r["load"]}',
            flush=True)


if __name__ == '__main__':
  main()

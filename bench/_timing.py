"""What the throughput benchmarks share: the load average, interleaved timing rounds and the
report of images per second and ratios."""

from __future__ import annotations

import argparse
import os
import sys
import statistics
import time
from typing import Callable, Mapping, Sequence

#: {key: (label, run)}: `run(n)` runs n steps and blocks on the last.
Variants = Mapping[str, tuple[str, Callable[[int], None]]]


def add_memory_flag(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      '--keep_freed_memory', action=argparse.BooleanOptionalAction, default=True,
      help="glibc's malloc keeps freed memory for the whole process, every variant alike, as "
           "launch/main.py does (training.host_memory); --no-keep_freed_memory: glibc's defaults")


def apply_memory_flag(args: argparse.Namespace) -> str:
  """Applies --keep_freed_memory (call it before JAX or PyTorch start threads); says what it did."""
  if not args.keep_freed_memory:
    return "malloc: glibc's defaults"
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from disentangle_jax.training import host_memory  # pylint: disable=g-import-not-at-top

  return 'malloc: keeps freed memory' if host_memory.keep_freed_memory() else 'malloc: not glibc'


def load_average() -> str:
  one, five, _ = os.getloadavg()
  return f'load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores'


def interleaved_rounds(variants: Variants, *, rounds: int, steps: int,
                       warmup: int) -> dict[str, list[float]]:
  """Seconds per step of each variant's run, per round.

  Every run is warmed up (compiled) first; then each round times `steps` steps of every run in
  turn, so that a change of the machine's load hits all of them alike. The load average is
  printed before and after.
  """
  for _, run in variants.values():
    run(warmup)
  print(f'before: {load_average()}')
  times = {key: [] for key in variants}
  for _ in range(rounds):
    for key, (_, run) in variants.items():
      start = time.perf_counter()
      run(steps)
      times[key].append((time.perf_counter() - start) / steps)
  print(f'after:  {load_average()}')
  return times


def report(variants: Variants, times: Mapping[str, Sequence[float]], images_per_step: int,
           ratios: Sequence[tuple[str, str]]) -> dict[str, float]:
  """Prints each variant's images/s (its best round; the median too) and the ratios (num, den)
  of the variants measured; returns {key: images/s}."""
  rate = {key: images_per_step / min(t) for key, t in times.items()}
  width = max(len(label) for label, _ in variants.values()) + 2
  for key, (label, _) in variants.items():
    median = images_per_step / statistics.median(times[key])
    print(f'{label:{width}s} {rate[key]:8.1f} images/s  ({1e3 * min(times[key]):7.1f} ms/step; '
          f'median {median:.1f} images/s)')
  for num, den in ratios:
    if num in rate and den in rate:
      print(f'ratio ({num})/({den}) = {rate[num] / rate[den]:.2f}')
  return rate

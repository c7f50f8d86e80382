"""What the throughput benchmarks share: the load average and interleaved timing rounds."""

from __future__ import annotations

import os
import time
from typing import Callable, Mapping


def load_average() -> str:
  one, five, _ = os.getloadavg()
  return f'load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores'


def interleaved_rounds(runs: Mapping[str, Callable[[int], None]], *, rounds: int, steps: int,
                       warmup: int) -> dict[str, list[float]]:
  """Seconds per step of each `run(n)` (which runs n steps and blocks on the last), per round.

  Every run is warmed up (compiled) first; then each round times `steps` steps of every run in
  turn, so that a change of the machine's load hits all of them alike. The load average is
  printed before and after.
  """
  for run in runs.values():
    run(warmup)
  print(f'before: {load_average()}')
  times = {key: [] for key in runs}
  for _ in range(rounds):
    for key, run in runs.items():
      start = time.perf_counter()
      run(steps)
      times[key].append((time.perf_counter() - start) / steps)
  print(f'after:  {load_average()}')
  return times

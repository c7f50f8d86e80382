r"""Sweeps: a grid of config overrides run as ordinary training runs, then collected.

A sweep is a base config (`configs/x.py:arg`), fixed overrides, and axes of `--config.*` values
(e.g. β × latent size × seed). Its cross product is a list of runs; each run is one ordinary
`launch/main.py` command with its own workdir, `<sweep_dir>/runs/<name>`, named from its axis
values (`beta=0.005_latent_dim=10_seed=0`). So:

- on one machine `run_sweep` starts the runs one after another as subprocesses. Rerunning it
  skips finished runs (a final checkpoint at `config.total_steps`), resumes interrupted ones (a
  rerun of `launch/main.py` resumes) and retries failed ones; a failed run is reported (its
  `error:` line) and the sweep goes on. A run's output goes to `<sweep_dir>/logs/<name>.log`.
  If the sweep process is killed, its current run is killed with it (Linux: the parent-death
  signal), so the rerun finds the workdir unlocked;
- on a cluster `commands` lists the same commands, one per run, for a scheduler to start;
- `collect` reads what the runs left behind, whoever ran them: each finished run's final
  in-training evaluations (`eval/*` in `metrics.jsonl` at the last step) and final training
  scalars, and, when the sweep names `metrics`, scores the final checkpoint with
  `reports.evaluate_workdir` (cached in the run's `sweep_eval_<step>.json`). It writes
  `results.csv` / `results.md` (one row per run), `summary.csv` / `summary.md` (mean ± std over
  the `over` axis, usually the seed), `peaks.md` (for each line of the plot, the x with the best
  mean score and whether it is interior) and `plot.png` (each metric against the plot's x axis,
  one line per value of the `lines` axis, mean ± std over `over`).

The sweep's definition is saved as `<sweep_dir>/sweep.json` when it runs, so `collect` needs only
the directory. A definition file (`configs/sweeps/*.py`) has `get_sweep(arg) -> dict` with the keys
of `SweepSpec`.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import itertools
import json
import logging
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

from disentangle_jax.errors import UserError, one_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, 'launch', 'main.py')
SPEC_FILE = 'sweep.json'
FINISHED, FAILED, INCOMPLETE, NOT_STARTED, RUNNING = (
    'finished', 'failed', 'incomplete', 'not started', 'running')


@dataclasses.dataclass
class SweepSpec:
  """What a sweep runs and how it is collected.

  Attributes:
    config: the base config, `file.py` or `file.py:arg` (a path relative to the repository root
      or absolute).
    axes: `{config key: [values]}`, in order; the runs are their cross product (the last axis
      varies fastest). The key `seed` is `--config.seed`.
    fixed: `{config key: value}` overrides every run gets.
    metrics: metrics to score each final checkpoint with at collection (`reports.evaluate_workdir`);
      empty: only the in-training evaluations are collected.
    metric_settings: `{metric: keyword arguments}` for those metrics (sample sizes).
    num_train, num_test: the shared sample sizes of those metrics (None: dlib's).
    eval_seed: the seed of their sampling.
    plot: `{'x': axis key, 'lines': axis key or None, 'over': axis key or None, 'y': [metric
      columns], 'vlines': {line value: x} drawn dashed (e.g. where raw β = 1), 'vline_label': str}`.
    name: a title for the table and the plot.
  """

  config: str
  axes: dict[str, list]
  fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
  metrics: list[str] = dataclasses.field(default_factory=list)
  metric_settings: dict[str, dict] = dataclasses.field(default_factory=dict)
  num_train: int | None = None
  num_test: int | None = None
  eval_seed: int = 0
  plot: dict = dataclasses.field(default_factory=dict)
  name: str = 'sweep'

  def __post_init__(self):
    if not self.axes:
      raise UserError('a sweep needs at least one axis: give axes (or --axis=key=v1,v2)')
    for key, values in self.axes.items():
      if not isinstance(values, (list, tuple)) or not values:
        raise UserError(f'sweep axis {key!r} has no values: give a non-empty list')
    self.axes = {k: list(v) for k, v in self.axes.items()}
    for key in ('x', 'lines', 'over'):
      axis = self.plot.get(key)
      if axis is not None and axis not in self.axes:
        raise UserError(f'plot {key}={axis!r} is not an axis of the sweep; axes: {list(self.axes)}')

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> 'SweepSpec':
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise UserError(f'unknown sweep keys {unknown}; known: '
                      f'{", ".join(f.name for f in dataclasses.fields(cls))}')
    return cls(**d)


@dataclasses.dataclass(frozen=True)
class Run:
  """One point of the grid: its name (= its workdir's name) and its axis values."""

  name: str
  values: tuple[tuple[str, Any], ...]

  def overrides(self, spec: SweepSpec) -> list[tuple[str, Any]]:
    return [*spec.fixed.items(), *self.values]


# Definitions.


def load_spec_file(path_and_arg: str) -> SweepSpec:
  """`get_sweep(arg)` of a sweep definition file `file.py[:arg]`."""
  path, _, arg = path_and_arg.partition(':')
  resolved = _resolve(path)
  if not os.path.isfile(resolved):
    raise UserError(f'sweep file {path!r} not found: pass an existing file, e.g. '
                    '--sweep=configs/sweeps/betavae_findings.py')
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # sweep files may import configs.common
  module_spec = importlib.util.spec_from_file_location('_sweep_definition', resolved)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, 'get_sweep'):
    raise UserError(f'sweep file {path!r} has no get_sweep(arg) function: define one returning a '
                    'dict of SweepSpec keys')
  try:
    d = module.get_sweep(arg or None)
  except (KeyError, ValueError) as e:
    raise UserError(f'bad sweep argument {arg!r} for {path}: {e}') from None
  return SweepSpec.from_dict(d)


def parse_value(text: str) -> Any:
  """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else stays a string."""
  low = text.strip().lower()
  if low in ('true', 'false'):
    return low == 'true'
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def parse_assignment(text: str, *, many: bool) -> tuple[str, Any]:
  """'key=v' (or 'key=v1,v2' with many) -> (key, value or [values])."""
  key, sep, value = text.partition('=')
  key = key.strip().removeprefix('--').removeprefix('config.')
  if not sep or not key or not value:
    form = 'key=v1,v2,...' if many else 'key=value'
    raise UserError(f'cannot read {text!r}: write {form}, e.g. objective.beta=1,4,8')
  if many:
    return key, [parse_value(v) for v in value.split(',') if v.strip()]
  return key, parse_value(value)


def with_overrides(spec: SweepSpec, *, config: str | None = None, axes: Sequence[str] = (),
                   fixed: Sequence[str] = ()) -> SweepSpec:
  """`spec` with the command line's `--config`, `--axis=key=v1,v2` and `--set=key=value`."""
  d = spec.to_json() if spec is not None else {'config': None, 'axes': {}}
  if config:
    d['config'] = config
  d['axes'] = dict(d['axes'])
  for text in axes:
    key, values = parse_assignment(text, many=True)
    d['axes'][key] = values
  d['fixed'] = dict(d.get('fixed', {}))
  for text in fixed:
    key, value = parse_assignment(text, many=False)
    d['fixed'][key] = value
    d['axes'].pop(key, None)
  if not d['config']:
    raise UserError('no base config: pass --sweep=configs/sweeps/FILE.py or --config=FILE.py[:arg]')
  if spec is None and d['axes']:
    first = next(iter(d['axes']))
    d.setdefault('plot', {'x': first})
  return SweepSpec.from_dict(d)


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:g}'
  return str(value)


def _slug(text: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.=+-]', '-', text)


def runs(spec: SweepSpec) -> list[Run]:
  """The grid's runs, the last axis varying fastest; names from the last key components (the
  full key where two axes share a last component)."""
  keys = list(spec.axes)
  short = [k.split('.')[-1] for k in keys]
  labels = [s if short.count(s) == 1 else k for s, k in zip(short, keys)]
  out = []
  for combo in itertools.product(*(spec.axes[k] for k in keys)):
    name = '_'.join(f'{label}={_format(v)}' for label, v in zip(labels, combo))
    out.append(Run(name=_slug(name), values=tuple(zip(keys, combo))))
  names = [r.name for r in out]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise UserError(f'two runs would share the workdir name {duplicates[0]!r}: make the axis '
                    'values distinct')
  return out


def _resolve(path: str) -> str:
  if os.path.isabs(path) or os.path.exists(path):
    return os.path.abspath(path)
  return os.path.join(ROOT, path)


def workdir_of(sweep_dir: str, run: Run) -> str:
  return os.path.join(os.path.abspath(sweep_dir), 'runs', run.name)


def command(spec: SweepSpec, run: Run, sweep_dir: str, *, python: str | None = None) -> list[str]:
  """The `launch/main.py` command of one run (absolute paths: it runs from any directory)."""
  path, sep, arg = spec.config.partition(':')
  config = _resolve(path) + (sep + arg if sep else '')
  cmd = [python or sys.executable, MAIN, f'--config={config}',
         f'--workdir={workdir_of(sweep_dir, run)}']
  cmd += [f'--config.{key}={_format(value) if isinstance(value, float) else value}'
          for key, value in run.overrides(spec)]
  return cmd


def commands(spec: SweepSpec, sweep_dir: str, *, python: str | None = None) -> list[str]:
  """One shell line per run, for a scheduler (collect with `collect` once they are done)."""
  return [shlex.join(command(spec, run, sweep_dir, python=python)) for run in runs(spec)]


# Status, from the files alone (works the same for runs a cluster ran).


def total_steps(workdir: str) -> int | None:
  """`total_steps` of the run's resolved config (`config.json`), None before it is written."""
  path = os.path.join(workdir, 'config.json')
  try:
    with open(path) as f:
      return int(json.load(f)['total_steps'])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def is_finished(workdir: str) -> bool:
  """Whether the run's final checkpoint (at `config.total_steps`) was committed."""
  steps = total_steps(workdir)
  if steps is None:
    return False
  final = os.path.join(workdir, 'checkpoints', str(steps))
  return os.path.exists(os.path.join(final, 'commit_success.txt')) or (
      os.path.isdir(final) and os.path.exists(os.path.join(final, 'checksums.json')))


def _failure_file(sweep_dir: str, run: Run) -> str:
  return os.path.join(os.path.abspath(sweep_dir), 'status', f'{run.name}.json')


def is_locked(workdir: str) -> bool:
  """Whether a live process holds the run's workdir lock (`run.lock`, an flock)."""
  import fcntl  # noqa: PLC0415 - POSIX only

  path = os.path.join(workdir, 'run.lock')
  if not os.path.exists(path):
    return False
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return True
  except OSError:
    return False
  finally:
    os.close(fd)  # also releases the lock if we took it
  return False


def run_status(sweep_dir: str, run: Run) -> tuple[str, str]:
  """`(status, detail)`: finished, running, failed (detail: its error line), incomplete, not
  started."""
  workdir = workdir_of(sweep_dir, run)
  if is_finished(workdir):
    return FINISHED, ''
  if os.path.isdir(workdir) and is_locked(workdir):
    return RUNNING, ''
  failure = _failure_file(sweep_dir, run)
  if os.path.exists(failure):
    with open(failure) as f:
      return FAILED, json.load(f).get('error', '')
  if os.path.isdir(workdir):
    return INCOMPLETE, ''
  return NOT_STARTED, ''


# Running.


def _die_with_parent():
  """In the child: ask Linux to send SIGTERM when the sweep process dies (even by SIGKILL), so an
  orphaned run never holds its workdir's lock against the sweep's rerun."""
  try:
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL('libc.so.6', use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass


def _error_line(log_path: str, offset: int) -> str:
  """The run's `error:` line in its log (from `offset`), else its last line."""
  try:
    with open(log_path, errors='replace') as f:
      f.seek(offset)
      lines = [line.strip() for line in f if line.strip()]
  except OSError:
    return ''
  errors = [line for line in lines if line.startswith('error:')]
  if errors:
    return errors[-1]
  return lines[-1][-300:] if lines else ''


def save_spec(spec: SweepSpec, sweep_dir: str):
  os.makedirs(sweep_dir, exist_ok=True)
  path = os.path.join(sweep_dir, SPEC_FILE)
  with open(path + '.tmp', 'w') as f:
    json.dump(spec.to_json(), f, indent=2)
  os.replace(path + '.tmp', path)


def load_saved_spec(sweep_dir: str) -> SweepSpec:
  path = os.path.join(sweep_dir, SPEC_FILE)
  if not os.path.exists(path):
    raise UserError(f'{path} not found: pass the sweep definition (--sweep=... or --config and '
                    '--axis), or a --sweep_dir a sweep has run in')
  with open(path) as f:
    return SweepSpec.from_dict(json.load(f))


def run_sweep(spec: SweepSpec, sweep_dir: str, *, env: Mapping[str, str] | None = None,
              lock_wait_s: float = 60.0, python: str | None = None) -> dict[str, tuple[str, str]]:
  """Runs every unfinished run of the grid, one after another; returns `{name: (status, detail)}`.

  A finished run is skipped; an interrupted one resumes; a failed one is reported and the sweep
  goes on. A run whose workdir another process holds is waited for up to `lock_wait_s`, then
  reported as running and left alone.
  """
  sweep_dir = os.path.abspath(sweep_dir)
  save_spec(spec, sweep_dir)
  os.makedirs(os.path.join(sweep_dir, 'logs'), exist_ok=True)
  grid = runs(spec)
  outcome, durations = {}, []
  for i, run in enumerate(grid, 1):
    workdir = workdir_of(sweep_dir, run)
    prefix = f'[{i}/{len(grid)}] {run.name}'
    if is_finished(workdir):
      logging.info('%s: finished before, skipped', prefix)
      outcome[run.name] = (FINISHED, 'skipped')
      continue
    deadline = time.monotonic() + lock_wait_s
    while os.path.isdir(workdir) and is_locked(workdir) and time.monotonic() < deadline:
      time.sleep(1.0)
    if os.path.isdir(workdir) and is_locked(workdir):
      logging.warning('%s: another process holds its workdir; left to it', prefix)
      outcome[run.name] = (RUNNING, 'held by another process')
      continue
    cmd = command(spec, run, sweep_dir, python=python)
    log_path = os.path.join(sweep_dir, 'logs', f'{run.name}.log')
    resumed = os.path.isdir(workdir)
    logging.info('%s: %s (log: %s)', prefix, 'resuming' if resumed else 'starting', log_path)
    start = time.monotonic()
    with open(log_path, 'a') as log:
      log.write(f'\n=== {time.strftime("%Y-%m-%d %H:%M:%S")} {shlex.join(cmd)}\n')
      log.flush()
      offset = log.tell()
      process = subprocess.Popen(
          cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})},
          preexec_fn=_die_with_parent if sys.platform.startswith('linux') else None,
      )
      try:
        code = process.wait()
      except BaseException:
        process.terminate()
        process.wait()
        raise
    seconds = time.monotonic() - start
    failure = _failure_file(sweep_dir, run)
    if code == 0 and is_finished(workdir):
      if os.path.exists(failure):
        os.remove(failure)
      durations.append(seconds)
      left = sum(1 for r in grid[i:] if not is_finished(workdir_of(sweep_dir, r)))
      logging.info('%s: finished in %.0f s; %d runs left, about %.0f min at this pace', prefix,
                   seconds, left, left * sum(durations) / len(durations) / 60)
      outcome[run.name] = (FINISHED, f'{seconds:.0f} s')
      continue
    error = _error_line(log_path, offset)
    if code == 0:
      error = f'exited 0 without a checkpoint at config.total_steps ({error})'
    os.makedirs(os.path.dirname(failure), exist_ok=True)
    with open(failure, 'w') as f:
      json.dump({'exit_status': code, 'error': error, 'log': log_path}, f)
    logging.error('%s: failed (exit status %d): %s', prefix, code, error)
    outcome[run.name] = (FAILED, error)
  return outcome


# Collecting.


def final_scalars(workdir: str, step: int) -> dict[str, float]:
  """The last value at `step` of each `eval/*` scalar in metrics.jsonl (as `metric/key`), and
  the last training scalars at or before it (as `final/<name>`; throughput and per-dimension
  values left out)."""
  from disentangle_jax.training import writers  # noqa: PLC0415 - keeps `import sweeps` light

  path = os.path.join(workdir, writers.METRICS_FILE)
  if not os.path.exists(path):
    return {}
  out, train = {}, {}
  for row in writers.read_metrics(path):
    if row.get('step', -1) > step:
      continue
    for key, value in row.items():
      if key == 'step' or not isinstance(value, (int, float)):
        continue
      if key.startswith('eval/'):
        if row['step'] == step:
          out[key[len('eval/'):]] = float(value)
      elif not key.startswith('perf/') and '_per_dim/' not in key:
        train[f'final/{key}'] = float(value)
  return {**train, **out}


def _evaluate(spec: SweepSpec, workdir: str, step: int) -> dict[str, float]:
  """The sweep's `metrics` on the checkpoint at `step`, cached with their settings."""
  cache = os.path.join(workdir, f'sweep_eval_{step}.json')
  key = {'metrics': list(spec.metrics), 'settings': spec.metric_settings,
         'num_train': spec.num_train, 'num_test': spec.num_test, 'seed': spec.eval_seed}
  if os.path.exists(cache):
    with open(cache) as f:
      saved = json.load(f)
    if saved.get('key') == json.loads(json.dumps(key)):
      return saved['scalars']
  from disentangle_jax.training import reports  # noqa: PLC0415 - imports JAX

  _, results, _ = reports.evaluate_workdir(
      workdir, spec.metrics, step=step, seed=spec.eval_seed, settings=spec.metric_settings,
      num_train=spec.num_train, num_test=spec.num_test,
  )
  scalars = {k: float(v) for k, v in reports.scalars_of(results).items()}
  with open(cache + '.tmp', 'w') as f:
    json.dump({'key': key, 'scalars': scalars}, f, indent=2)
  os.replace(cache + '.tmp', cache)
  return scalars


def collect_rows(spec: SweepSpec, sweep_dir: str) -> list[dict]:
  """One dict per run: its axis values, `status`, `error`, and its final scalars."""
  rows = []
  for run in runs(spec):
    workdir = workdir_of(sweep_dir, run)
    status, detail = run_status(sweep_dir, run)
    row = {'run': run.name, **{k: v for k, v in run.values}, 'status': status, 'error': detail}
    if status == FINISHED:
      step = total_steps(workdir)
      row.update(final_scalars(workdir, step))
      if spec.metrics:
        logging.info('scoring %s at step %d: %s', run.name, step, ', '.join(spec.metrics))
        try:
          row.update(_evaluate(spec, workdir, step))
        except Exception as e:  # noqa: BLE001 - one run's scoring must not stop the collection
          row['error'] = f'scoring failed: {one_line(f"{type(e).__name__}: {e}")}'
          logging.exception('scoring %s failed', run.name)
    rows.append(row)
  return rows


def _value_columns(spec: SweepSpec, rows: Sequence[Mapping]) -> list[str]:
  fixed = {'run', 'status', 'error', *spec.axes}
  columns = sorted({k for row in rows for k in row if k not in fixed})
  first = [c for c in columns if not c.startswith('final/')]
  return first + [c for c in columns if c.startswith('final/')]


def _cell(value) -> str:
  if value is None or value == '':
    return ''
  if isinstance(value, float):
    return f'{value:.4g}' if not math.isnan(value) else 'nan'
  return str(value)


def results_tables(spec: SweepSpec, rows: Sequence[Mapping]) -> tuple[str, str]:
  """CSV and Markdown, one row per run: axis values, status, every collected scalar."""
  columns = ['run', *spec.axes, 'status', *_value_columns(spec, rows), 'error']
  buffer = io.StringIO()
  writer = csv.writer(buffer)
  writer.writerow(columns)
  for row in rows:
    writer.writerow([row.get(c, '') for c in columns])
  md_columns = [c for c in columns if c != 'run']
  md = ['| ' + ' | '.join(md_columns) + ' |', '|---' * len(md_columns) + '|']
  md += ['| ' + ' | '.join(_cell(row.get(c)).replace('|', '/') for c in md_columns) + ' |'
         for row in rows]
  return buffer.getvalue(), '\n'.join(md) + '\n'


def summarize(spec: SweepSpec, rows: Sequence[Mapping]) -> list[dict]:
  """Finished runs grouped by every axis but `plot.over`: `n`, and mean and std (ddof 0) of each
  scalar, as `<column>` and `<column>/std`."""
  import numpy as np  # noqa: PLC0415

  over = spec.plot.get('over')
  keys = [k for k in spec.axes if k != over]
  columns = _value_columns(spec, rows)
  groups: dict[tuple, list] = {}
  for row in rows:
    if row['status'] == FINISHED:
      groups.setdefault(tuple(row[k] for k in keys), []).append(row)
  out = []
  for combo in itertools.product(*(spec.axes[k] for k in keys)):
    members = groups.get(tuple(combo), [])
    entry = {**dict(zip(keys, combo)), 'n': len(members)}
    for column in columns:
      values = [m[column] for m in members if isinstance(m.get(column), (int, float))]
      if values:
        entry[column] = float(np.mean(values))
        entry[f'{column}/std'] = float(np.std(values))
    out.append(entry)
  return out


def summary_tables(spec: SweepSpec, summary: Sequence[Mapping], rows) -> tuple[str, str]:
  over = spec.plot.get('over')
  keys = [k for k in spec.axes if k != over]
  columns = _value_columns(spec, rows)
  buffer = io.StringIO()
  writer = csv.writer(buffer)
  header = [*keys, 'n']
  for c in columns:
    header += [c, f'{c}/std']
  writer.writerow(header)
  for entry in summary:
    writer.writerow([entry.get(c, '') for c in header])

  def mean_std(entry, c):
    if c not in entry:
      return ''
    return f'{entry[c]:.3g} ± {entry[c + "/std"]:.2g}' if entry['n'] > 1 else f'{entry[c]:.3g}'

  shown = [c for c in columns if c in set(spec.plot.get('y', []))] or columns
  md = ['| ' + ' | '.join([*keys, 'n', *shown]) + ' |', '|---' * (len(keys) + 1 + len(shown)) + '|']
  md += ['| ' + ' | '.join([*(_cell(e[k]) for k in keys), str(e['n']),
                            *(mean_std(e, c) for c in shown)]) + ' |' for e in summary]
  return buffer.getvalue(), '\n'.join(md) + '\n'


def _lines(spec: SweepSpec, summary: Sequence[Mapping], metric: str):
  """{line value: (xs, means, stds)} of the plot's x axis, finished points only."""
  x_key, line_key = spec.plot.get('x') or next(iter(spec.axes)), spec.plot.get('lines')
  out = {}
  for value in (spec.axes[line_key] if line_key else [None]):
    points = [e for e in summary if metric in e and (line_key is None or e[line_key] == value)]
    # Other axes (neither x, lines nor over) are averaged into the same line by position.
    by_x: dict[Any, list] = {}
    for e in points:
      by_x.setdefault(e[x_key], []).append(e)
    xs = [x for x in spec.axes[x_key] if x in by_x]
    means = [sum(e[metric] for e in by_x[x]) / len(by_x[x]) for x in xs]
    stds = [sum(e[f'{metric}/std'] for e in by_x[x]) / len(by_x[x]) for x in xs]
    out[value] = (xs, means, stds)
  return out


def peaks_markdown(spec: SweepSpec, summary: Sequence[Mapping]) -> str:
  """For each plotted metric and each line: the x with the best mean, whether it is interior
  (an inverted U has its peak strictly inside the range), the means at the two ends, and the
  peak's x over the line's reference x (`plot.vlines`, e.g. raw β at the peak)."""
  x_key, line_key = spec.plot.get('x') or next(iter(spec.axes)), spec.plot.get('lines')
  vlines = {str(k): v for k, v in spec.plot.get('vlines', {}).items()}
  ratio_label = spec.plot.get('vline_ratio_label', 'x / reference')
  out = []
  for metric in spec.plot.get('y', []):
    out.append(f'### {metric}\n')
    out.append(f'| {line_key or "-"} | best {x_key} | mean at best | interior peak | '
               f'at lowest {x_key} | at highest {x_key} | {ratio_label} |')
    out.append('|---|---|---|---|---|---|---|')
    for value, (xs, means, _) in _lines(spec, summary, metric).items():
      if not xs:
        out.append(f'| {_cell(value)} | (no finished runs) | | | | | |')
        continue
      best = max(range(len(xs)), key=lambda i: means[i])
      interior = 0 < best < len(xs) - 1 and len(xs) >= 3
      reference = vlines.get(str(value))
      ratio = f'{xs[best] / reference:.3g}' if reference else ''
      out.append(f'| {_cell(value)} | {_cell(xs[best])} | {means[best]:.3g} | '
                 f'{"yes" if interior else "no"} | {means[0]:.3g} | {means[-1]:.3g} | {ratio} |')
    out.append('')
  return '\n'.join(out) + '\n'


def plot(spec: SweepSpec, summary: Sequence[Mapping], path: str) -> str | None:
  """Each `plot.y` metric against `plot.x`, one line per `plot.lines` value, mean ± std over
  `plot.over`; dashed verticals at `plot.vlines`. Returns the PNG's path (None: nothing to plot)."""
  metrics = [m for m in spec.plot.get('y', []) if any(m in e for e in summary)]
  if not metrics:
    return None
  import matplotlib  # noqa: PLC0415

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # noqa: PLC0415

  x_key, line_key = spec.plot.get('x') or next(iter(spec.axes)), spec.plot.get('lines')
  over = spec.plot.get('over')
  vlines = {str(k): v for k, v in spec.plot.get('vlines', {}).items()}
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.8), squeeze=False)
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  xs_all = [x for x in spec.axes[x_key] if isinstance(x, (int, float))]
  log_x = bool(xs_all) and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10
  for ax, metric in zip(axes[0], metrics):
    for i, (value, (xs, means, stds)) in enumerate(_lines(spec, summary, metric).items()):
      if not xs:
        continue
      color = colors[i % len(colors)]
      label = f'{line_key.split(".")[-1]}={_cell(value)}' if line_key else None
      ax.errorbar(xs, means, yerr=stds if over else None, marker='o', ms=4, capsize=3,
                  color=color, label=label)
      if str(value) in vlines:
        ax.axvline(vlines[str(value)], color=color, ls='--', lw=1, alpha=0.7)
    if log_x:
      ax.set_xscale('log')
    ax.set_xlabel(spec.plot.get('x_label', x_key))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  handles, labels = axes[0][0].get_legend_handles_labels()
  if vlines:
    handles.append(plt.Line2D([], [], color='grey', ls='--'))
    labels.append(spec.plot.get('vline_label', 'reference'))
  if handles:
    axes[0][-1].legend(handles, labels, fontsize=8)
  n = {e['n'] for e in summary if e['n']}
  title = spec.name + (f' (mean ± std over {over}, n={"/".join(map(str, sorted(n)))})'
                       if over and n else '')
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def collect(spec: SweepSpec | None, sweep_dir: str) -> dict:
  """Reads every run of the sweep and writes the tables, the peaks and the plot into `sweep_dir`.

  Works on runs any machine ran: it needs only `<sweep_dir>/runs/*` (and `sweep.json` when
  `spec` is None). Returns `{'rows', 'summary', 'files'}`.
  """
  sweep_dir = os.path.abspath(sweep_dir)
  spec = spec or load_saved_spec(sweep_dir)
  rows = collect_rows(spec, sweep_dir)
  summary = summarize(spec, rows)
  os.makedirs(sweep_dir, exist_ok=True)
  files = {}
  texts = dict(zip(('results.csv', 'results.md'), results_tables(spec, rows)))
  texts.update(zip(('summary.csv', 'summary.md'), summary_tables(spec, summary, rows)))
  if spec.plot.get('y'):
    texts['peaks.md'] = peaks_markdown(spec, summary)
  for name, text in texts.items():
    path = files[name] = os.path.join(sweep_dir, name)
    with open(path, 'w') as f:
      f.write(text)
  png = plot(spec, summary, os.path.join(sweep_dir, 'plot.png'))
  if png:
    files['plot.png'] = png
  return {'rows': rows, 'summary': summary, 'files': files}


def status_lines(spec: SweepSpec, sweep_dir: str) -> list[str]:
  """`<run>: <status>[ (<detail>)]` for every run."""
  out = []
  for run in runs(spec):
    status, detail = run_status(sweep_dir, run)
    out.append(f'{run.name}: {status}' + (f' ({detail})' if detail else ''))
  return out


def main(sweep_dir: str, *, sweep: str | None = None, config: str | None = None,
         axes: Sequence[str] = (), fixed: Sequence[str] = (), mode: str = 'run',
         lock_wait_s: float = 60.0) -> dict[str, tuple[str, str]]:
  """What `launch/sweep.py` does: builds the sweep from a definition file (`sweep`), the command
  line (`config`, `axes`, `fixed`) or `<sweep_dir>/sweep.json`, then in `mode`
  'run' runs it and collects, 'collect' only collects, 'print' prints the runs' commands,
  'status' prints each run's state. Returns `{run: (status, detail)}`."""
  if sweep:
    spec = with_overrides(load_spec_file(sweep), config=config, axes=axes, fixed=fixed)
  elif config or axes:
    spec = with_overrides(None, config=config, axes=axes, fixed=fixed)
  else:
    spec = load_saved_spec(sweep_dir)
  if mode == 'print':
    print('\n'.join(commands(spec, sweep_dir)))
    return {}
  if mode == 'status':
    print('\n'.join(status_lines(spec, sweep_dir)))
    return {run.name: run_status(sweep_dir, run) for run in runs(spec)}
  if mode == 'run':
    outcome = run_sweep(spec, sweep_dir, lock_wait_s=lock_wait_s)
  elif mode == 'collect':
    if not os.path.exists(os.path.join(sweep_dir, SPEC_FILE)):
      save_spec(spec, sweep_dir)
    outcome = {}
  else:
    raise ValueError(f'unknown mode {mode!r}')
  result = collect(spec, sweep_dir)
  with open(result['files']['summary.md']) as f:
    print(f.read())
  for row in result['rows']:
    if row['status'] != FINISHED:
      print(f'{row["status"]}: {row["run"]}' + (f': {row["error"]}' if row['error'] else ''))
  for name, path in result['files'].items():
    print(f'{name}: {path}')
  return outcome or {row['run']: (row['status'], row['error']) for row in result['rows']}

"""Sweeps: the grid, the commands, resuming after a kill, a failed run, collection and the plot."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import train_util
from disentangle_jax import sweeps
from disentangle_jax.errors import UserError

SWEEP = os.path.join(train_util.ROOT, 'launch', 'sweep.py')
FINDINGS = os.path.join(train_util.ROOT, 'configs', 'sweeps', 'betavae_findings.py')


def _spec(**kw):
  d = dict(config='configs/betavae_dsprites.py:runlocal',
           axes={'objective.latent_dim': [4, 8], 'objective.beta': [1.0, 0.5], 'seed': [0, 1]},
           fixed={'total_steps': 10}, plot={'x': 'objective.beta', 'lines': 'objective.latent_dim',
                                              'over': 'seed', 'y': ['final/kl']})
  d.update(kw)
  return sweeps.SweepSpec.from_dict(d)


def test_grid_names_and_commands(tmp_path):
  spec = _spec()
  grid = sweeps.runs(spec)
  assert [r.name for r in grid][:3] == [
      'latent_dim=4_beta=1_seed=0', 'latent_dim=4_beta=1_seed=1', 'latent_dim=4_beta=0.5_seed=0']
  assert len(grid) == 8 and len({r.name for r in grid}) == 8
  lines = sweeps.commands(spec, str(tmp_path))
  assert len(lines) == 8
  first = sweeps.command(spec, grid[0], str(tmp_path))
  assert first[1] == train_util.MAIN
  assert f'--workdir={tmp_path}/runs/latent_dim=4_beta=1_seed=0' in first
  # Fixed overrides first, then the run's axis values.
  assert first[4:] == ['--config.total_steps=10', '--config.objective.latent_dim=4',
                       '--config.objective.beta=1', '--config.seed=0']


def test_same_last_key_uses_full_keys_and_bad_definitions_are_one_line_errors():
  spec = _spec(axes={'objective.beta': [1], 'model.beta': [2]}, plot={})
  assert sweeps.runs(spec)[0].name == 'objective.beta=1_model.beta=2'
  with pytest.raises(UserError, match='no values'):
    _spec(axes={'seed': []})
  with pytest.raises(UserError, match='not an axis'):
    _spec(plot={'x': 'objective.gamma'})
  with pytest.raises(UserError, match='unknown sweep keys'):
    sweeps.SweepSpec.from_dict({'config': 'x.py', 'axes': {'seed': [0]}, 'axis': {}})
  with pytest.raises(UserError, match='key=v1,v2'):
    sweeps.with_overrides(None, config='c.py', axes=['objective.beta'])
  spec = sweeps.with_overrides(None, config='c.py', axes=['objective.beta=1,4.5', 'seed=0,1'],
                               fixed=['total_steps=5', 'seed=3'])
  assert spec.axes == {'objective.beta': [1, 4.5]} and spec.fixed == {'total_steps': 5, 'seed': 3}


def test_findings_definition_spans_raw_beta_one_for_every_latent_size():
  spec = sweeps.load_spec_file(FINDINGS)
  betas, latents = spec.axes['objective.beta'], spec.axes['objective.latent_dim']
  assert latents == [5, 10, 20] and len(spec.axes['seed']) >= 2
  for m in latents:  # raw β = β_norm · N / M; the grid has raw β < 1 and raw β > 1 for each M
    raw = [b * 4096 / m for b in betas]
    assert min(raw) < 1 < max(raw)
  assert spec.fixed['objective.beta_mode'] == 'normalized'
  assert set(spec.metrics) == {'betavae', 'mig', 'factorvae'}
  tiny = sweeps.load_spec_file(FINDINGS + ':budget=tiny')
  assert len(sweeps.runs(tiny)) == 2 and tiny.fixed['total_steps'] <= 100
  assert sweeps.load_spec_file(FINDINGS + ':steps=3000,seeds=3').fixed['total_steps'] == 3000
  with pytest.raises(UserError, match='unknown budget'):
    sweeps.load_spec_file(FINDINGS + ':budget=huge')


def _tiny_sweep_args(data_dir, sweep_dir):
  """Three runs of a few seconds: two trainable and one whose β is not a number (fails fast)."""
  flags = train_util.tiny_flags(data_dir, steps=24, batch_size=8)
  flags = [f.replace('--config.', '--set=', 1) for f in flags]
  flags = [f for f in flags if not f.startswith('--set=checkpoint_every')]
  return [f'--sweep_dir={sweep_dir}', '--config=configs/betavae_dsprites.py:runlocal',
          '--axis=objective.beta=1,2,oops', '--set=checkpoint_every=4', *flags]


def _files(directory):
  """{relative path: (size, mtime_ns)} of every file below `directory`."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      stat = os.stat(path)
      out[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime_ns)
  return out


@pytest.fixture(scope='module')
def killed_and_resumed(tfds_data_dir, tmp_path_factory):
  """A sweep SIGKILLed during its second run, then rerun to the end."""
  sweep_dir = str(tmp_path_factory.mktemp('sweep'))
  args = _tiny_sweep_args(tfds_data_dir, sweep_dir)
  env = train_util.subprocess_env()
  first = subprocess.Popen([sys.executable, SWEEP, *args], env=env, cwd=train_util.ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  second_ckpt = os.path.join(sweep_dir, 'runs', 'beta=2', 'checkpoints', '4', 'commit_success.txt')
  deadline = time.monotonic() + 400
  while not os.path.exists(second_ckpt) and first.poll() is None and time.monotonic() < deadline:
    time.sleep(0.2)
  assert first.poll() is None, f'the sweep ended before its second run checkpointed:\n{first.stdout.read()}'
  first.send_signal(signal.SIGKILL)
  first.wait()
  first_run = os.path.join(sweep_dir, 'runs', 'beta=1')
  assert sweeps.is_finished(first_run)
  assert not sweeps.is_finished(os.path.join(sweep_dir, 'runs', 'beta=2'))
  before = _files(first_run)
  rerun = subprocess.run([sys.executable, SWEEP, *args], env=env, cwd=train_util.ROOT,
                         capture_output=True, text=True, timeout=600)
  return sweep_dir, before, rerun


def test_rerun_after_kill_skips_the_finished_run_and_resumes_the_killed_one(killed_and_resumed):
  sweep_dir, before, rerun = killed_and_resumed
  output = rerun.stdout + rerun.stderr
  assert rerun.returncode == 2, output  # the third run failed; the others finished
  assert 'beta=1: finished before, skipped' in output
  assert 'beta=2: resuming' in output
  assert _files(os.path.join(sweep_dir, 'runs', 'beta=1')) == before  # not one file touched
  with open(os.path.join(sweep_dir, 'logs', 'beta=1.log')) as f:
    assert f.read().count('\n=== ') == 1  # started once
  with open(os.path.join(sweep_dir, 'logs', 'beta=2.log')) as f:
    assert f.read().count('\n=== ') == 2  # killed, then resumed
  for name in ('beta=1', 'beta=2'):
    assert sweeps.is_finished(os.path.join(sweep_dir, 'runs', name)), name
  # The resumed run kept its pre-kill checkpoint history: the step-4 checkpoint's metrics row
  # appears once (a restarted run would have written step 2 twice).
  steps = [json.loads(line)['step'] for line in
           open(os.path.join(sweep_dir, 'runs', 'beta=2', 'metrics.jsonl'))]
  assert steps.count(2) == 1 and max(steps) == 24


def test_failed_run_is_reported_and_the_rest_collected(killed_and_resumed):
  sweep_dir, _, rerun = killed_and_resumed
  output = rerun.stdout + rerun.stderr
  assert 'failed: beta=oops' in output and 'error:' in output
  spec = sweeps.load_saved_spec(sweep_dir)
  status = {r.name: sweeps.run_status(sweep_dir, r)[0] for r in sweeps.runs(spec)}
  assert status == {'beta=1': 'finished', 'beta=2': 'finished', 'beta=oops': 'failed'}
  with open(os.path.join(sweep_dir, 'results.csv')) as f:
    lines = f.read().splitlines()
  header = lines[0].split(',')
  assert header[:3] == ['run', 'objective.beta', 'status'] and 'final/kl' in header
  assert len(lines) == 4 and lines[3].startswith('beta=oops,oops,failed,')
  kl = header.index('final/kl')
  assert all(float(line.split(',')[kl]) > 0 for line in lines[1:3])


def test_collect_only_with_metrics_writes_tables_and_plot(killed_and_resumed, tmp_path):
  sweep_dir, _, _ = killed_and_resumed
  spec = sweeps.load_saved_spec(sweep_dir)
  spec.metrics = ['mig']
  spec.metric_settings = {'mig': {'num_train': 300}}
  spec.plot = {'x': 'objective.beta', 'y': ['mig/discrete_mig', 'final/kl']}
  result = sweeps.collect(spec, sweep_dir)
  finished = [r for r in result['rows'] if r['status'] == 'finished']
  assert len(finished) == 2
  assert all(0.0 <= r['mig/discrete_mig'] <= 1.0 for r in finished)
  assert os.path.exists(os.path.join(sweep_dir, 'runs', 'beta=1', 'sweep_eval_24.json'))
  png = result['files']['plot.png']
  with open(png, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert os.path.getsize(png) > 5_000
  with open(result['files']['summary.md']) as f:
    summary = f.read()
  assert 'mig/discrete_mig' in summary and '| 1 | 1 |' in summary
  with open(result['files']['peaks.md']) as f:
    assert 'best objective.beta' in f.read()
  # The command line's --collect_only reads sweep.json alone and gives the same table.
  out = train_util.run_script('launch/sweep.py', [f'--sweep_dir={sweep_dir}', '--collect_only'])
  assert 'results.csv' in out.stdout
  status = train_util.run_script('launch/sweep.py', [f'--sweep_dir={sweep_dir}', '--status'])
  assert 'beta=oops: failed' in status.stdout and 'beta=1: finished' in status.stdout


def test_summary_means_and_peaks_on_made_up_rows():
  spec = _spec(plot={'x': 'objective.beta', 'lines': 'objective.latent_dim', 'over': 'seed',
                     'y': ['score'], 'vlines': {4: 0.5}})
  spec.axes['objective.beta'] = [0.25, 0.5, 1.0]
  rows = []
  for run in sweeps.runs(spec):
    v = dict(run.values)
    peak = 0.5 if v['objective.latent_dim'] == 4 else 1.0
    score = 1.0 - abs(v['objective.beta'] - peak) + 0.1 * v['seed']
    rows.append({'run': run.name, **v, 'status': 'finished', 'error': '', 'score': score})
  summary = sweeps.summarize(spec, rows)
  first = summary[0]
  assert first['objective.latent_dim'] == 4 and first['objective.beta'] == 0.25 and first['n'] == 2
  assert first['score'] == pytest.approx(0.8) and first['score/std'] == pytest.approx(0.05)
  peaks = sweeps.peaks_markdown(spec, summary)
  assert '| 4 | 0.5 | 1.05 | yes |' in peaks and '| 1 |' in peaks  # raw β at best = 0.5/0.5
  assert '| 8 | 1 | 1.05 | no |' in peaks

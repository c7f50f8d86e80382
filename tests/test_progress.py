"""itstime, the Progress chronometer (with a fake clock), check_finite, and the StatusLine /
TaskProgress line of other long work."""

import io
import time

import jax.numpy as jnp
import numpy as np
import pytest

from disentangle_jax.training.progress import (
    Progress, StatusLine, TaskProgress, check_finite, hms, itstime)


def test_itstime_periodic_first_and_last():
  runs = [s for s in range(1, 251) if itstime(s, 100, 250)]
  assert runs == [100, 200, 250]
  assert [s for s in range(1, 251) if itstime(s, 100, 250, first=True)] == [1, 100, 200, 250]
  assert [s for s in range(1, 251) if itstime(s, 100, 250, last=False)] == [100, 200]
  assert [s for s in range(1, 201) if itstime(s, 100, 200)] == [100, 200]  # last is periodic too


def test_itstime_disabled_and_edge_cases():
  for every in (None, 0, -5):
    assert not any(itstime(s, every, 10, first=True) for s in range(0, 11))
  assert not itstime(0, 1, 10)  # nothing done yet
  assert [s for s in range(1, 4) if itstime(s, 1, 3)] == [1, 2, 3]
  assert [s for s in range(1, 6) if itstime(s, 100, 5)] == [5]  # every > total: only the end


def test_itstime_drop_close_to_last():
  steps = [s for s in range(1, 1011) if itstime(s, 100, 1010, drop_close_to_last=0.25)]
  assert steps[-2:] == [900, 1010]  # 1000 is skipped: the final run follows ten steps later
  steps = [s for s in range(1, 1011) if itstime(s, 100, 1010)]
  assert steps[-2:] == [1000, 1010]


class FakeClock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_skips_warmup_and_pauses():
  clock = FakeClock()
  p = Progress(total_steps=1000, global_batch_size=64, clock=clock)
  assert p.warming_up
  clock.now = 30.0  # step 1: compilation
  p.tick(1)
  assert p.summary() == {}
  clock.now = 35.0  # step 2: maybe a second compilation
  p.tick(2)
  assert not p.warming_up
  assert p.summary() == {}
  assert 'steps/s' not in p.line(2, {'loss': 1.0})

  clock.now = 45.0  # 100 steps in 10 s
  p.tick(102)
  with p.paused():  # a 5 s evaluation does not count as training time
    clock.now = 50.0
  clock.now = 60.0  # 100 more steps in 10 s of training
  p.tick(202)
  s = p.summary()
  assert s['steps_per_sec'] == pytest.approx(200 / 20)
  assert s['images_per_sec'] == pytest.approx(640)
  # ETA is wall-clock at the pace so far, pauses included: 798 steps at 25 s / 200 steps.
  assert s['eta_sec'] == pytest.approx(798 * 25 / 200)
  assert s['paused_sec'] == pytest.approx(5)
  line = p.line(202, {'loss': 123.4, 'kl': 0.0123})
  assert line == 'step 202/1000 | loss 123.4 | kl 0.0123 | 10 steps/s | 640 img/s | ETA 1m40s'


def test_progress_resumed_run_counts_from_first_step():
  clock = FakeClock()
  p = Progress(total_steps=5000, global_batch_size=10, first_step=4000, warmup=1, clock=clock)
  clock.now = 100.0
  p.tick(4001)  # the compile step starts the clock
  clock.now = 110.0
  p.tick(4501)
  s = p.summary()
  assert s['steps_per_sec'] == pytest.approx(50)
  assert s['eta_sec'] == pytest.approx(499 / 50)


def test_progress_tick_twice_and_pause_misuse():
  clock = FakeClock()
  p = Progress(total_steps=10, global_batch_size=1, warmup=1, clock=clock)
  p.tick(1)
  clock.now = 1.0
  p.tick(1)  # same step again: ignored
  assert p.summary() == {}
  p.pause()
  with pytest.raises(RuntimeError, match='twice'):
    p.pause()
  p.resume()
  with pytest.raises(RuntimeError, match='without pause'):
    p.resume()


def test_hms():
  assert [hms(s) for s in (5, 83, 3600 + 125, 2 * 86400 + 3 * 3600)] == [
      '5s', '1m23s', '1h02m', '2d03h'
  ]


def test_check_finite_names_quantity_step_and_checkpoint():
  check_finite({'loss': 1.0, 'kl': jnp.float32(0.5), 'note': 'text'}, 5, None)
  with pytest.raises(FloatingPointError) as err:
    check_finite({'loss': 1.0, 'kl': float('nan')}, 1234, 1000, checkpoint_dir='/w/checkpoints')
  assert str(err.value) == (
      'non-finite loss "kl" = nan at step 1234; last good checkpoint: step 1000 in /w/checkpoints'
  )
  both = r'"recon" = inf at step 3.*"kl" = -inf.*no checkpoint'
  with pytest.raises(FloatingPointError, match=both):
    check_finite({'recon': np.inf, 'kl': jnp.float32(-np.inf)}, 3, None)
  with pytest.raises(FloatingPointError, match='1 non-finite values'):
    check_finite({'per_dim_kl': np.array([0.1, np.nan])}, 7, 5)


# --- the progress line of other long work -----------------------------------------------------


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_status_line_rewrites_in_place_on_a_terminal():
  stream, clock = io.StringIO(), FakeClock()
  line = StatusLine(stream, tty=True, min_interval=0.5, clock=clock)
  assert line.update('working: 1 long line')
  clock.now += 0.1
  assert not line.update('too soon')  # throttled
  assert line.update('forced', force=True)  # blanks the longer line's tail
  line.message('a result')  # a line of its own; the status drawn again below
  line.finish('done')
  assert stream.getvalue() == ('\rworking: 1 long line'
                               '\rforced' + ' ' * 14 +
                               '\ra result\n'
                               '\rforced'
                               '\rdone  \n')


def test_status_line_off_a_terminal_writes_occasional_plain_lines():
  stream, clock = io.StringIO(), FakeClock()
  line = StatusLine(stream, tty=False, plain_interval=30, clock=clock)
  for second in range(100):
    clock.now = 100.0 + second
    line.update(f'step {second}')
  line.message('a result')
  line.finish('done')
  assert stream.getvalue().splitlines() == [
      'step 0', 'step 30', 'step 60', 'step 90', 'a result', 'done']


def test_task_progress_counts_rate_eta_and_final_line():
  stream, clock = io.StringIO(), FakeClock()
  line = StatusLine(stream, tty=False, plain_interval=0, clock=clock)
  with TaskProgress('factorvae', 1000, line=line, heartbeat=0, clock=clock) as task:
    assert task.text() == 'factorvae: 0/1,000 images (0%) | 0s elapsed'
    clock.now += 5  # the first piece compiles: left out of the rate
    task.advance(100)
    assert task.rate() is None
    clock.now += 2
    task.advance(200, note='encoding')
    assert task.rate() == pytest.approx(100)
    assert task.text() == ('factorvae: 300/1,000 images (30%), encoding | 100 images/s | '
                           'ETA 7s | 7s elapsed')
    clock.now += 7
    task.advance(700)
  lines = stream.getvalue().splitlines()
  assert lines[0] == 'factorvae: 0/1,000 images (0%) | 0s elapsed'
  assert lines[-1] == 'factorvae: 1,000 images in 14s (71.4 images/s)'
  assert len(lines) == 5


def test_task_progress_without_total_or_warmup_and_on_error():
  stream, clock = io.StringIO(), FakeClock()
  line = StatusLine(stream, tty=False, plain_interval=0, clock=clock)
  with pytest.raises(KeyError):
    with TaskProgress('runs', unit='runs', line=line, heartbeat=0, skip_first=False,
                      clock=clock) as task:
      clock.now += 60
      task.advance(1)
      assert task.text() == 'runs: 1 runs | 1m00s each | 1m00s elapsed'
      raise KeyError('boom')
  assert stream.getvalue().splitlines()[-1] == (
      'runs: 1 runs in 1m00s (1m00s each) -- stopped by an error')


def test_task_progress_heartbeat_refreshes_and_stops():
  stream = io.StringIO()
  line = StatusLine(stream, tty=True, min_interval=0)
  with TaskProgress('scoring', 10, line=line, heartbeat=0.01):
    time.sleep(0.2)  # nothing counted: the heartbeat rewrites the line (elapsed time)
  text = stream.getvalue()
  assert text.count('\r') > 3 and text.endswith('\n')
  assert text.split('\r')[-1].startswith('scoring: 0 images in ')
  written = len(text)
  time.sleep(0.05)
  assert len(stream.getvalue()) == written  # the heartbeat thread has stopped

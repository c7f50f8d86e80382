"""When periodic actions run, how fast training goes, stopping on a non-finite loss, and the
progress line of other long work.

`itstime` is the one predicate for every periodic action (logging, pictures, checkpoints,
evaluations), as big_vision's `utils.itstime`. `Progress` is a chronometer in the manner of
big_vision's `Chrono`: the first ticks (which include compilation) are left out of throughput,
pauses (evaluations, checkpoints, pictures) are left out of steps/s, and the ETA is wall-clock.

How the loop uses it:

  progress = Progress(total_steps, global_batch_size, first_step=start_step)
  for step in range(start_step + 1, total_steps + 1):
    state, metrics = train_step(state, batch, rng)
    if itstime(step, log_every, total_steps, first=True) or progress.warming_up:
      scalars = jax.device_get(metrics)   # waits for the step: now the clock means something
      progress.tick(step)
      check_finite(scalars, step, last_checkpoint_step, checkpoint_dir=...)
      logging.info(progress.line(step, scalars))
      writer.write_scalars(step, {**scalars, **progress.summary()})
    with progress.paused():
      ... checkpoint / pictures / evaluation ...

Ticking after the host has waited for the step's outputs matters with JAX's asynchronous
dispatch: a tick right after the (non-blocking) call measures how fast steps are queued, not run.
Ticking at every step is allowed and cheap; the averages are over whole stretches between ticks.

Work that is not training (an evaluation, a reproduction script's runs) reports through
`TaskProgress` on a `StatusLine`: one line that says what runs, how far it is, its rate and ETA,
rewritten in place on a terminal (plain occasional lines in a log), ended by a final line.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from typing import Any
from collections.abc import Callable, Iterator, Mapping

import numpy as np


def itstime(
    step: int,
    every: int | None,
    total_steps: int,
    *,
    first: bool = False,
    last: bool = True,
    drop_close_to_last: float = 0.0,
) -> bool:
  """Whether a periodic action runs after `step` (the number of steps done, 1..total_steps).

  Args:
    step: steps completed so far.
    every: run every this many steps; None or <= 0 turns the action off entirely (not even at the
      first or last step).
    total_steps: the last step of training.
    first: also run after step 1 (an early look at a fresh run).
    last: also run after the last step, whatever `every` is.
    drop_close_to_last: skip a periodic run this close to the last step, as a fraction of
      `every` (0.25 skips a checkpoint at step 1000 of 1010 when `every` is 100, since the final
      one follows at once). 0 never skips.

  Returns:
    True if the action should run now.
  """
  if not every or every <= 0 or step <= 0:
    return False
  if last and step == total_steps:
    return True
  if first and step == 1:
    return True
  if step % every:
    return False
  return not (drop_close_to_last and total_steps - step < drop_close_to_last * every)


def hms(seconds: float) -> str:
  """'42s', '3m07s', '2h05m', '1d03h' (big_vision's `hms`, zero-padded)."""
  if not math.isfinite(seconds):
    return '?'
  seconds = max(0.0, seconds)
  if seconds < 60:
    return f'{seconds:.0f}s'
  minutes, seconds = divmod(round(seconds), 60)
  if minutes < 60:
    return f'{minutes}m{seconds:02d}s'
  hours, minutes = divmod(minutes, 60)
  if hours < 24:
    return f'{hours}h{minutes:02d}m'
  days, hours = divmod(hours, 24)
  return f'{days}d{hours:02d}h'


def format_number(value: Any) -> str:
  """A short, readable number for a progress line: 123.4, 0.01234, 1.235e+06, nan."""
  try:
    value = float(np.asarray(value).reshape(()))
  except (TypeError, ValueError):
    return str(value)
  if not math.isfinite(value) or value == 0:
    return f'{value:g}'
  magnitude = abs(value)
  if magnitude >= 1e6 or magnitude < 1e-3:
    return f'{value:.3e}'
  if magnitude >= 1000:
    return f'{value:.1f}'
  return f'{value:.4g}'


def _format_rate(value: float) -> str:
  return f'{value:.0f}' if value >= 100 else f'{value:.3g}'


class Progress:
  """Throughput, ETA and a one-line report of a training run.

  Time starts counting at the `warmup`-th tick (by default the second, as big_vision's Chrono):
  the first step compiles, and the second may compile again once the state comes back from the
  first with its final shardings. Pauses before that are forgotten.
  """

  def __init__(
      self,
      total_steps: int,
      global_batch_size: int,
      first_step: int = 0,
      *,
      warmup: int = 2,
      clock: Callable[[], float] = time.monotonic,
  ):
    """Args:
      total_steps: the last step of training.
      global_batch_size: examples per step over all processes, for images/s.
      first_step: the step training starts (or resumes) from; the first tick comes after it.
      warmup: how many ticks (one per step at the start) are left out of the timing.
      clock: seconds, monotonic; tests pass a fake one.
    """
    if warmup < 1:
      raise ValueError(f'warmup must be >= 1 tick (the start of timing), got {warmup}')
    self.total_steps = int(total_steps)
    self.global_batch_size = int(global_batch_size)
    self.first_step = int(first_step)
    self._clock = clock
    self._warmup_left = int(warmup)
    self._prev_step = self.first_step
    self._start_time = None  # clock at the last warm-up tick
    self._start_step = None
    self._last_time = None  # clock at the latest tick after warm-up
    self._last_step = None
    self._paused_total = 0.0  # paused seconds since timing started
    self._pause_start = None

  @property
  def warming_up(self) -> bool:
    """True until timing has started: tick at every step (after waiting for it) until then."""
    return self._warmup_left > 0

  def tick(self, step: int) -> None:
    """Records that `step` is done. Call it after the host has waited for the step's outputs."""
    step = int(step)
    if step == self._prev_step:
      return  # ticked twice at one step (e.g. once for logging, once for an eval)
    now = self._clock()
    if self._pause_start is not None:  # ticking inside a pause: close the pause first
      self.resume()
    self._prev_step = step
    if self._warmup_left > 0:
      self._warmup_left -= 1
      if self._warmup_left == 0:
        self._start_time, self._start_step = now, step
        self._paused_total = 0.0  # pauses during warm-up are not training time either
      return
    self._last_time, self._last_step = now, step

  def pause(self) -> None:
    """Stops the training clock (around evaluations, checkpoints, pictures)."""
    if self._pause_start is not None:
      raise RuntimeError('Progress.pause() called twice without resume()')
    self._pause_start = self._clock()

  def resume(self) -> None:
    """Restarts the training clock after `pause()`."""
    if self._pause_start is None:
      raise RuntimeError('Progress.resume() called without pause()')
    if self._start_time is not None:
      self._paused_total += self._clock() - self._pause_start
    self._pause_start = None

  @contextlib.contextmanager
  def paused(self) -> Iterator[None]:
    """`with progress.paused(): evaluate()` -- pause and resume, even if the body raises."""
    self.pause()
    try:
      yield
    finally:
      self.resume()

  def summary(self) -> dict[str, float]:
    """Throughput and ETA as of the latest tick; empty until two ticks after warm-up.

    Returns:
      steps_per_sec: steps per second of training time (pauses excluded) since warm-up.
      images_per_sec: steps_per_sec * global batch size.
      eta_sec: wall-clock seconds left, at the average pace since warm-up with pauses included
        (evaluations and checkpoints will recur).
      elapsed_sec, paused_sec: wall-clock and paused seconds since warm-up.
    """
    if self._last_time is None or self._last_step <= self._start_step:
      return {}
    steps = self._last_step - self._start_step
    wall = self._last_time - self._start_time
    train = max(wall - self._paused_total, 1e-12)
    steps_per_sec = steps / train
    remaining = max(self.total_steps - self._last_step, 0)
    return {
        'steps_per_sec': steps_per_sec,
        'images_per_sec': steps_per_sec * self.global_batch_size,
        'eta_sec': remaining * wall / steps,
        'elapsed_sec': wall,
        'paused_sec': self._paused_total,
    }

  def line(self, step: int, scalars: Mapping[str, Any] | None = None) -> str:
    """'step 1200/5000 | loss 123.4 | 45.6 steps/s | 2918 img/s | ETA 1m23s'.

    Every scalar given is shown, in order (pass the few worth reading); throughput and ETA appear
    once measured.
    """
    parts = [f'step {int(step)}/{self.total_steps}']
    parts += [f'{name} {format_number(value)}' for name, value in (scalars or {}).items()]
    summary = self.summary()
    if summary:
      parts.append(f'{_format_rate(summary["steps_per_sec"])} steps/s')
      parts.append(f'{_format_rate(summary["images_per_sec"])} img/s')
      parts.append(f'ETA {hms(summary["eta_sec"])}')
    return ' | '.join(parts)


def check_finite(
    scalars: Mapping[str, Any],
    step: int,
    last_checkpoint_step: int | None,
    *,
    checkpoint_dir: str | None = None,
) -> None:
  """Raises FloatingPointError if any logged quantity is NaN or infinite.

  The message names the quantity (every one, if several), its value, the step and the last good
  checkpoint, e.g. 'non-finite loss "kl" = nan at step 1234; last good checkpoint: step 1000 in
  /work/run/checkpoints', so the run stops loudly rather than training on garbage.

  Args:
    scalars: name -> number (Python, numpy or jax; arrays are checked element-wise).
    step: the step the values come from.
    last_checkpoint_step: the newest checkpoint saved before the values went bad, or None.
    checkpoint_dir: where that checkpoint lives, for the message.
  """
  bad = []
  for name, value in scalars.items():
    try:
      array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
      continue  # not a number (a string tag, say): nothing to check
    if not np.all(np.isfinite(array)):
      if array.size == 1:
        shown = array.item()
      else:
        shown = f'{int(np.sum(~np.isfinite(array)))} non-finite values'
      bad.append((name, shown))
  if not bad:
    return
  name, value = bad[0]
  message = f'non-finite loss "{name}" = {value} at step {int(step)}'
  if len(bad) > 1:
    others = ', '.join(f'"{n}" = {v}' for n, v in bad[1:])
    message += f' (also {others})'
  if last_checkpoint_step is None:
    message += '; no checkpoint has been saved yet'
  else:
    message += f'; last good checkpoint: step {int(last_checkpoint_step)}'
    if checkpoint_dir:
      message += f' in {checkpoint_dir}'
  raise FloatingPointError(message)


# ---------------------------------------------------------------------------------------------
# Progress of long work other than training (evaluation, reproduction scripts): one line that
# rewrites itself on a terminal.


class StatusLine:
  """One status line on a terminal, rewritten in place (carriage return), ended by `finish`.

  When the stream is not a terminal (a log file, a pipe, pytest's capture) nothing is rewritten:
  an update becomes a plain line at most every `plain_interval` seconds, so a log shows the work
  advancing without a line per step. `finish` always writes its line.

  Args:
    stream: where the line goes (default: `sys.stderr` at the time of each write).
    tty: whether to rewrite in place; None asks the stream (`isatty()`).
    min_interval: fewest seconds between two rewrites on a terminal.
    plain_interval: fewest seconds between two plain lines off a terminal.
    clock: seconds, monotonic; tests pass a fake one.
  """

  def __init__(self, stream=None, *, tty: bool | None = None, min_interval: float = 0.2,
               plain_interval: float = 30.0, clock: Callable[[], float] = time.monotonic):
    self._stream = stream
    self._tty = tty
    self.min_interval = min_interval
    self.plain_interval = plain_interval
    self._clock = clock
    self._last_write = None
    self._width = 0  # characters of the line now on the terminal, to blank its tail
    self._shown = ''  # the status now on the terminal (redrawn after a message)
    self._lock = threading.Lock()

  @property
  def stream(self):
    return self._stream if self._stream is not None else sys.stderr

  @property
  def tty(self) -> bool:
    if self._tty is not None:
      return self._tty
    try:
      return bool(self.stream.isatty())
    except (AttributeError, ValueError):
      return False

  def update(self, text: str, *, force: bool = False) -> bool:
    """Shows `text` (if enough time has passed since the last write, or `force`); returns whether
    it was written."""
    with self._lock:
      now = self._clock()
      interval = self.min_interval if self.tty else self.plain_interval
      if not force and self._last_write is not None and now - self._last_write < interval:
        return False
      self._last_write = now
      self._write(text, final=False)
      return True

  def finish(self, text: str) -> None:
    """Writes `text` as the final line (ending the line being rewritten)."""
    with self._lock:
      self._last_write = None
      self._write(text, final=True)
      self._shown = ''

  def message(self, text: str) -> None:
    """Writes `text` as a line of its own above the status line, which is drawn again below it
    (a result worth keeping, in the middle of the work)."""
    with self._lock:
      shown = self._shown
      self._write(text, final=True)
      if shown and self.tty:
        self._write(shown, final=False)

  def _write(self, text: str, *, final: bool) -> None:
    stream = self.stream
    if self.tty:
      pad = ' ' * max(0, self._width - len(text))
      stream.write('\r' + text + pad + ('\n' if final else ''))
      self._width = 0 if final else len(text)
    else:
      stream.write(text + '\n')
    if not final:
      self._shown = text
    stream.flush()


class TaskProgress:
  """What a piece of countable work does, how far it is, its rate and ETA, on a `StatusLine`.

    with TaskProgress('factorvae', total=48_400, unit='images') as task:
      for batch in batches:
        ...
        task.advance(len(batch))
    # the terminal shows, rewritten in place:
    #   factorvae: 12,288/48,400 images (25%) | 1234 images/s | ETA 29s | 10s elapsed
    # and at the end, as a line of its own:
    #   factorvae: 48,400 images in 39s (1241 images/s)

  The first `advance` (which usually includes compilation) is left out of the rate, as
  `Progress` leaves out its warm-up ticks, unless `skip_first=False` (units of minutes, such as
  whole training runs). Without a total the line shows the count and rate but no ETA. On a
  terminal, every `heartbeat` seconds (default 1; 0 turns it off) a background thread refreshes
  the line, so elapsed time keeps moving while nothing is counted (a classifier being fitted).

  Args:
    what: the work's name, the start of the line.
    total: units expected; None when unknown.
    unit: what is counted ('images', 'runs', ...).
    line: the `StatusLine` to write on (default: a new one on stderr).
    heartbeat: seconds between refreshes while nothing is counted; 0: none.
    skip_first: leave the first `advance` out of the rate.
    clock: seconds, monotonic; tests pass a fake one.
  """

  def __init__(self, what: str, total: int | None = None, *, unit: str = 'images',
               line: StatusLine | None = None, heartbeat: float = 1.0, skip_first: bool = True,
               clock: Callable[[], float] = time.monotonic):
    self.what = what
    self.total = None if total is None else int(total)
    self.unit = unit
    self.line = line if line is not None else StatusLine(clock=clock)
    self.done = 0
    self.note = ''
    self._clock = clock
    self._start = clock()
    # (clock, done) where the rate starts: after the first advance, or at the start.
    self._rate_start = None if skip_first else (self._start, 0)
    self._heartbeat = heartbeat
    self._stop = threading.Event()
    self._thread = None
    self._finished = False

  def __enter__(self) -> 'TaskProgress':
    self.line.update(self.text(), force=True)
    if self._heartbeat and self.line.tty:
      self._thread = threading.Thread(target=self._beat, name='progress-heartbeat', daemon=True)
      self._thread.start()
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    self.finish(failed=exc_type is not None)

  def _beat(self) -> None:
    while not self._stop.wait(self._heartbeat):
      self.line.update(self.text())

  def advance(self, n: int = 1, note: str | None = None) -> None:
    """Counts `n` more units done (and sets the note shown after the count)."""
    self.done += int(n)
    if note is not None:
      self.note = note
    if self._rate_start is None:
      self._rate_start = (self._clock(), self.done)
    self.line.update(self.text())

  def message(self, text: str) -> None:
    """A line of its own above the progress line (see `StatusLine.message`)."""
    self.line.message(text)

  def set_note(self, note: str) -> None:
    """A few words after the count, e.g. the phase ('scoring'); shown at once."""
    self.note = note
    self.line.update(self.text(), force=True)

  def rate(self) -> float | None:
    """Units per second since the first advance; None until measurable."""
    if self._rate_start is None:
      return None
    seconds = self._clock() - self._rate_start[0]
    counted = self.done - self._rate_start[1]
    if seconds <= 0 or counted <= 0:
      return None
    return counted / seconds

  def _rate_text(self, rate: float) -> str:
    """'1234 images/s', or for slow units the time each takes: '1m42s each'."""
    return f'{_format_rate(rate)} {self.unit}/s' if rate >= 1 else f'{hms(1 / rate)} each'

  def elapsed(self) -> float:
    return self._clock() - self._start

  def text(self) -> str:
    """The status line as of now."""
    count = f'{self.done:,}' if self.total is None else f'{self.done:,}/{self.total:,}'
    parts = [f'{self.what}: {count} {self.unit}']
    if self.total:
      parts[0] += f' ({100 * min(self.done, self.total) // self.total}%)'
    if self.note:
      parts[0] += f', {self.note}'
    rate = self.rate()
    if rate:
      parts.append(self._rate_text(rate))
      if self.total is not None and self.done < self.total:
        parts.append(f'ETA {hms((self.total - self.done) / rate)}')
    parts.append(f'{hms(self.elapsed())} elapsed')
    return ' | '.join(parts)

  def finish(self, *, failed: bool = False) -> None:
    """Stops the heartbeat and writes the final line (once)."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    if self._finished:
      return
    self._finished = True
    elapsed = self.elapsed()
    text = f'{self.what}: {self.done:,} {self.unit} in {hms(elapsed)}'
    if self.done and elapsed > 0:
      text += f' ({self._rate_text(self.done / elapsed)})'
    if failed:
      text += ' -- stopped by an error'
    self.line.finish(text)

"""Bar charts (one bar per run or group, optional error bars) as uint8 RGB arrays [H, W, 3]."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def bar_chart(labels: Sequence[str], values: Sequence[float], *,
              errors: Sequence[float] | None = None, ylabel: str = '', title: str | None = None,
              size: tuple[float, float] | None = None, dpi: int = 100) -> np.ndarray:
  """Bars at `values` with `errors` as symmetric error bars (e.g. the std over seeds)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  labels = [str(label) for label in labels]
  width = max(4.0, 0.6 * len(labels) + 1.5)
  fig = Figure(figsize=size or (width, 3.6), dpi=dpi)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  positions = np.arange(len(labels))
  ax.bar(positions, values, yerr=errors, capsize=4 if errors is not None else 0,
         color='#4c72b0', ecolor='#333333')
  ax.set_xticks(positions)
  ax.set_xticklabels(labels, rotation=30 if max(map(len, labels), default=0) > 6 else 0,
                     ha='right' if max(map(len, labels), default=0) > 6 else 'center')
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(axis='y', alpha=0.3)
  fig.tight_layout()
  fig.canvas.draw()
  return np.array(np.asarray(fig.canvas.buffer_rgba())[..., :3], dtype=np.uint8)

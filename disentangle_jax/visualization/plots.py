"""Line and scatter plots as uint8 RGB arrays [H, W, 3], drawn with matplotlib's Agg backend.

The arrays go where every picture of this package goes: `images.save_png` writes them, and the
metric writer shows them in TensorBoard. No window is opened and pyplot's global state is not used
(each plot owns its `Figure`), so plotting is safe in any thread or test.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _figure(width_in: float, height_in: float, dpi: int):
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=(width_in, height_in), dpi=dpi)
  FigureCanvasAgg(fig)
  return fig


def _to_array(fig) -> np.ndarray:
  fig.tight_layout()
  fig.canvas.draw()
  rgba = np.asarray(fig.canvas.buffer_rgba())
  return np.array(rgba[..., :3], dtype=np.uint8)


def line_plot(
    x: Sequence[np.ndarray] | np.ndarray,
    ys: Sequence[np.ndarray],
    *,
    labels: Sequence[str] | None = None,
    shade: tuple[float, float] | None = None,
    shade_label: str | None = None,
    xlabel: str = '',
    ylabel: str = '',
    title: str | None = None,
    logy: bool = False,
    markers: bool = True,
    size: tuple[float, float] = (6.4, 4.0),
    dpi: int = 100,
) -> np.ndarray:
  """One curve per array of `ys` against `x`, an optional shaded x band; uint8 [H, W, 3].

  Args:
    x: the abscissae, one array for every curve or one array per curve.
    ys: the curves' ordinates.
    labels: one legend entry per curve (None: no legend).
    shade: (low, high): an x band shaded grey (e.g. the training set's missing values).
    shade_label: its legend entry.
    xlabel, ylabel, title: texts.
    logy: logarithmic y axis.
    markers: small markers on the points.
    size: figure size in inches; dpi: pixels per inch.
  """
  fig = _figure(*size, dpi)
  ax = fig.add_subplot(1, 1, 1)
  if shade is not None:
    ax.axvspan(shade[0], shade[1], color='0.85', label=shade_label, zorder=0)
  xs = list(x) if isinstance(x, (list, tuple)) else [np.asarray(x)] * len(ys)
  if len(xs) != len(ys):
    raise ValueError(f'{len(xs)} x arrays for {len(ys)} curves')
  for i, (xi, yi) in enumerate(zip(xs, ys)):
    ax.plot(np.asarray(xi), np.asarray(yi), marker='.' if markers else None, markersize=3,
            linewidth=1.2, label=None if labels is None else labels[i])
  if logy:
    ax.set_yscale('log')
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title, fontsize=10)
  if labels is not None or shade_label:
    ax.legend(fontsize=8)
  ax.grid(True, alpha=0.3)
  return _to_array(fig)


def scatter_plot(
    x: np.ndarray,
    y: np.ndarray,
    *,
    color: np.ndarray | None = None,
    color_label: str = '',
    xlabel: str = '',
    ylabel: str = '',
    title: str | None = None,
    size: tuple[float, float] = (4.8, 4.0),
    dpi: int = 100,
) -> np.ndarray:
  """A scatter of (x, y), coloured by `color` (with a colour bar) if given; uint8 [H, W, 3]."""
  fig = _figure(*size, dpi)
  ax = fig.add_subplot(1, 1, 1)
  points = ax.scatter(np.asarray(x), np.asarray(y), c=None if color is None else np.asarray(color),
                      s=6, cmap='viridis')
  if color is not None:
    fig.colorbar(points, ax=ax, label=color_label)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title, fontsize=10)
  ax.grid(True, alpha=0.3)
  return _to_array(fig)


def bar_chart(labels: Sequence[str], values: Sequence[float], *,
              errors: Sequence[float] | None = None, ylabel: str = '', title: str | None = None,
              size: tuple[float, float] | None = None, dpi: int = 100) -> np.ndarray:
  """Bars at `values` (one per label) with `errors` as symmetric error bars (e.g. the std over
  seeds)."""
  labels = [str(label) for label in labels]
  long_labels = max(map(len, labels), default=0) > 6
  fig = _figure(*(size or (max(4.0, 0.6 * len(labels) + 1.5), 3.6)), dpi)
  ax = fig.add_subplot(1, 1, 1)
  positions = np.arange(len(labels))
  ax.bar(positions, values, yerr=errors, capsize=4 if errors is not None else 0,
         color='#4c72b0', ecolor='#333333')
  ax.set_xticks(positions)
  ax.set_xticklabels(labels, rotation=30 if long_labels else 0,
                     ha='right' if long_labels else 'center')
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(axis='y', alpha=0.3)
  return _to_array(fig)


def grouped_bar_chart(labels: Sequence[str], series: dict[str, Sequence[float]], *,
                      ylabel: str = '', title: str | None = None,
                      size: tuple[float, float] | None = None, dpi: int = 100) -> np.ndarray:
  """One group of bars per label, one bar per series in each (e.g. models' scores per metric),
  with a legend of the series."""
  labels = [str(label) for label in labels]
  fig = _figure(*(size or (max(5.0, 1.1 * len(labels) * max(1, len(series)) / 2 + 2.0), 3.8)),
                dpi)
  ax = fig.add_subplot(1, 1, 1)
  positions = np.arange(len(labels))
  width = 0.8 / max(1, len(series))
  for i, (name, values) in enumerate(series.items()):
    ax.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=name)
  ax.set_xticks(positions)
  ax.set_xticklabels(labels)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(axis='y', alpha=0.3)
  # Below the axes, so that no bar is hidden behind it.
  ax.legend(fontsize='small', loc='upper center', bbox_to_anchor=(0.5, -0.1), ncol=2,
            frameon=False)
  return _to_array(fig)

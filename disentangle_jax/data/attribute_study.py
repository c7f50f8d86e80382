"""The CelebA attribute study: how balanced each attribute is per split, and how they co-occur.

    python launch/attribute_study.py --source_dir=~/celeba --output_dir=reports/celeba_attributes
    python launch/attribute_study.py --dataset=celeb_a64 --output_dir=reports/celeba_attributes

The labels come either from the official text files (`list_attr_celeba.txt` and
`list_eval_partition.txt`: seconds, no images read) or from a prepared labelled dataset
(`celeb_a64`, or `celeb_a` prepared by TFDS). Written to `output_dir`:

  attribute_balance.csv / .md   per attribute: the fraction of positive images in each split and
                                overall, and the test accuracy of always answering the training
                                split's majority class (the baseline a classifier must beat)
  attribute_balance.png         those fractions as bars, one colour per split
  attribute_correlation.csv     the 40×40 Pearson correlations of the 0/1 attributes (the phi
                                coefficients) over the images of `correlation_split`
  attribute_correlation.md      its strongest positive and negative pairs
  attribute_correlation.png     the matrix as a heatmap (-1 .. 1)

An attribute constant over the images has no correlation: its row and column are NaN (grey).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Mapping, Sequence

import numpy as np

from disentangle_jax.data import datasets

SPLIT_ORDER = ('train', 'validation', 'test')


@dataclasses.dataclass(frozen=True)
class AttributeStudy:
  """Attribute statistics of a labelled dataset.

  Attributes:
    attribute_names: the A attributes.
    splits: the split names, in order; `frequencies` has one row per split plus a last row,
      'all', for every image together.
    counts: images per split (and all), int [S + 1].
    frequencies: fraction of images with the attribute, float [S + 1, A].
    majority_baseline: accuracy on the evaluation split (test, else the last split) of always
      answering the first split's majority class, float [A].
    correlation_split: the images `correlation` is measured on ('all' or a split).
    correlation: Pearson correlation of the 0/1 attributes, float [A, A] (NaN where one is
      constant).
  """

  attribute_names: tuple[str, ...]
  splits: tuple[str, ...]
  counts: np.ndarray
  frequencies: np.ndarray
  majority_baseline: np.ndarray
  correlation_split: str
  correlation: np.ndarray

  def strongest_pairs(self, k: int = 10) -> list[tuple[str, str, float]]:
    """The `k` most positive, then the `k` most negative, distinct attribute pairs."""
    upper = np.triu_indices(len(self.attribute_names), 1)
    values = self.correlation[upper]
    order = np.argsort(np.where(np.isfinite(values), values, 0.0), kind='stable')
    chosen = list(order[::-1][:k]) + list(order[:k])
    return [(self.attribute_names[upper[0][i]], self.attribute_names[upper[1][i]],
             float(values[i])) for i in chosen]


def correlation_matrix(labels: np.ndarray) -> np.ndarray:
  """Pearson correlations of the columns of `labels` [N, A] (0/1), float [A, A].

  Columns that are constant have NaN rows and columns; the diagonal is 1 elsewhere.
  """
  x = np.asarray(labels, np.float64)
  x = x - x.mean(axis=0)
  std = np.sqrt((x * x).mean(axis=0))
  covariance = x.T @ x / max(len(x), 1)
  with np.errstate(invalid='ignore', divide='ignore'):
    corr = covariance / np.outer(std, std)
  corr[std == 0, :] = np.nan
  corr[:, std == 0] = np.nan
  return np.clip(corr, -1.0, 1.0)


def study(labels_by_split: Mapping[str, np.ndarray], attribute_names: Sequence[str], *,
          correlation_split: str = 'all') -> AttributeStudy:
  """The statistics of 0/1 labels `{split: int [N_s, A]}`.

  Args:
    labels_by_split: each split's labels, 0/1, columns in `attribute_names` order.
    attribute_names: the A column names.
    correlation_split: 'all' (every split together) or one split's name.

  Returns:
    An `AttributeStudy`.
  """
  names = tuple(attribute_names)
  splits = tuple(sorted(labels_by_split, key=lambda s: (
      SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s)))
  if not splits:
    raise ValueError('no split to study')
  tables = {s: np.asarray(labels_by_split[s]) for s in splits}
  for split, table in tables.items():
    if table.ndim != 2 or table.shape[1] != len(names):
      raise ValueError(f'split {split} labels have shape {table.shape}; expected [N, {len(names)}]')
    if table.size and not np.isin(table, (0, 1)).all():
      raise ValueError(f'split {split} labels are not 0/1 (values {np.unique(table)[:5]} ...)')
  tables['all'] = np.concatenate([tables[s] for s in splits])
  if correlation_split not in tables:
    raise ValueError(f'correlation_split {correlation_split!r} is not one of {list(tables)}')
  rows = [*splits, 'all']
  counts = np.array([len(tables[s]) for s in rows])
  with np.errstate(invalid='ignore'):
    frequencies = np.stack([tables[s].mean(axis=0) if len(tables[s]) else
                            np.full(len(names), np.nan) for s in rows])
  majority = frequencies[0] >= 0.5  # the first split's (train's) majority answer
  evaluation = 'test' if 'test' in splits else splits[-1]
  evaluated = frequencies[rows.index(evaluation)]
  baseline = np.where(majority, evaluated, 1.0 - evaluated)
  return AttributeStudy(
      attribute_names=names, splits=splits, counts=counts, frequencies=frequencies,
      majority_baseline=baseline, correlation_split=correlation_split,
      correlation=correlation_matrix(tables[correlation_split]),
  )


# ---------------------------------------------------------------------------------------------
# Where the labels come from.


def labels_from_source_files(source_dir: str) -> dict[str, np.ndarray]:
  """Per-split labels from the official `list_attr_celeba.txt` and `list_eval_partition.txt`.

  Raises:
    CelebASourceError: a file is missing (one line naming each) or not in the release's format.
  """
  from disentangle_jax.data.builders import celeba  # pylint: disable=g-import-not-at-top

  source_dir = os.path.abspath(os.path.expanduser(source_dir))
  missing = [n for n in (celeba.ATTRIBUTES_FILE, celeba.PARTITION_FILE)
             if not os.path.isfile(os.path.join(source_dir, n))]
  if missing:
    raise celeba.CelebASourceError(
        f'CelebA files missing from {source_dir}: {", ".join(missing)}; the attribute study '
        'needs the attribute list and the partition (download them from the CelebA site\'s '
        '"Anno" and "Eval" folders), or pass --dataset=celeb_a64 to read a prepared dataset.'
    )
  names, parts = celeba.read_partition(os.path.join(source_dir, celeba.PARTITION_FILE))
  attributes = celeba.read_attributes(os.path.join(source_dir, celeba.ATTRIBUTES_FILE),
                                      datasets.CELEBA_ATTRIBUTES)
  unlabelled = [n for n in names if n not in attributes]
  if unlabelled:
    raise celeba.CelebASourceError(
        f'{len(unlabelled)} images of {celeba.PARTITION_FILE} have no attributes in '
        f'{celeba.ATTRIBUTES_FILE} (e.g. {unlabelled[0]}): the files are not from one release.'
    )
  table = np.stack([attributes[n] for n in names]) if names else np.zeros((0, 40), np.int32)
  return {split: table[parts == p] for p, split in enumerate(celeba.SPLITS)}


def labels_from_dataset(name: str = 'celeb_a64', *, builder_config: str | None = None,
                        data_dir: str | None = None) -> tuple[dict[str, np.ndarray], tuple]:
  """Per-split labels of a prepared labelled dataset, and its label names.

  Raises:
    DatasetNotFoundError: it is not prepared (the message says how to prepare it).
    ValueError: it has no labels.
  """
  dataset = datasets.get_dataset(name)
  if not dataset.label_names:
    raise ValueError(f'{name} has no labels to study; use celeb_a64 or celeb_a')
  description = datasets.describe(name, builder_config=builder_config, data_dir=data_dir)
  splits = list(description.splits or [])
  if not splits:  # not prepared: opening it raises the error that says how to prepare it
    datasets.open_dataset(name, builder_config=builder_config, data_dir=data_dir)
  labels = {}
  for split in splits:
    reader = datasets.open_dataset(name, builder_config=builder_config, data_dir=data_dir,
                                   split=split)
    labels[split] = reader.table('label')
  return labels, tuple(dataset.label_names)


# ---------------------------------------------------------------------------------------------
# Writing it out.


def _percent(x: float) -> str:
  return 'n/a' if not np.isfinite(x) else f'{100 * x:.1f}'


def write_study(result: AttributeStudy, output_dir: str, *, title: str = 'CelebA') -> dict:
  """Writes the tables and pictures listed in the module docstring; returns {kind: path}."""
  from disentangle_jax.visualization import heatmap  # pylint: disable=g-import-not-at-top

  os.makedirs(output_dir, exist_ok=True)
  paths = {k: os.path.join(output_dir, f'attribute_{k}') for k in (
      'balance.csv', 'balance.md', 'balance.png', 'correlation.csv', 'correlation.md',
      'correlation.png')}
  rows = [*result.splits, 'all']

  with open(paths['balance.csv'], 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['attribute', *rows, 'majority_baseline'])
    writer.writerow(['images', *result.counts.tolist(), ''])
    for a, name in enumerate(result.attribute_names):
      writer.writerow([name, *(f'{v:.6f}' for v in result.frequencies[:, a]),
                       f'{result.majority_baseline[a]:.6f}'])
  evaluation = 'test' if 'test' in result.splits else result.splits[-1]
  counts = ', '.join(f'{s} {n:,}' for s, n in zip(rows, result.counts))
  lines = [
      f'# {title}: attribute balance',
      '',
      f'Percent of images with each attribute, per split ({counts} images). "Majority" is the '
      f'{evaluation} accuracy of always answering the {result.splits[0]} majority class.',
      '',
      '| attribute | ' + ' | '.join(rows) + ' | majority |',
      '|---|' + '---:|' * (len(rows) + 1),
  ]
  for a, name in enumerate(result.attribute_names):
    cells = [_percent(v) for v in result.frequencies[:, a]]
    cells.append(_percent(result.majority_baseline[a]))
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  with open(paths['balance.md'], 'w') as f:
    f.write('\n'.join(lines) + '\n')

  with open(paths['correlation.csv'], 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['attribute', *result.attribute_names])
    for name, row in zip(result.attribute_names, result.correlation):
      writer.writerow([name, *(f'{v:.6f}' for v in row)])
  pairs = result.strongest_pairs(10)
  lines = [
      f'# {title}: attribute correlation ({result.correlation_split} images)',
      '',
      'Pearson correlation of the 0/1 attributes (phi coefficient); the full matrix is in '
      '`attribute_correlation.csv` and `attribute_correlation.png`.',
      '',
      '| attribute | attribute | correlation |',
      '|---|---|---:|',
      *(f'| {a} | {b} | {r:+.3f} |' for a, b, r in pairs),
  ]
  with open(paths['correlation.md'], 'w') as f:
    f.write('\n'.join(lines) + '\n')
  short = [n.replace('_', ' ') for n in result.attribute_names]
  heatmap.heatmap_png(
      paths['correlation.png'], result.correlation, row_labels=short, col_labels=short,
      title=f'{title}: attribute correlation ({result.correlation_split} images)',
      vmin=-1.0, vmax=1.0, fmt='{:.1f}',
  )
  _balance_plot(result, paths['balance.png'], title)
  return paths


def _balance_plot(result: AttributeStudy, path: str, title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  count = len(result.attribute_names)
  order = np.argsort(np.nan_to_num(result.frequencies[-1]))  # by overall frequency
  figure, axes = plt.subplots(figsize=(8, 0.22 * count + 1.2), dpi=100)
  height = 0.8 / len(result.splits)
  y = np.arange(count)
  for s, split in enumerate(result.splits):
    axes.barh(y + (s - (len(result.splits) - 1) / 2) * height,
              100 * result.frequencies[s, order], height=height, label=split)
  axes.axvline(50, color='grey', linewidth=0.8, linestyle='--')
  axes.set_yticks(y, [result.attribute_names[i] for i in order], fontsize=8)
  axes.set_ylim(-0.6, count - 0.4)
  axes.set_xlim(0, 100)
  axes.set_xlabel('% of images with the attribute')
  axes.set_title(f'{title}: attribute balance per split')
  axes.legend(loc='lower right', fontsize=8)
  figure.tight_layout()
  figure.savefig(path)
  plt.close(figure)


def run_attribute_study(output_dir: str, *, source_dir: str | None = None,
                        dataset: str = 'celeb_a64', builder_config: str | None = None,
                        data_dir: str | None = None, correlation_split: str = 'all') -> dict:
  """The attribute study of CelebA, written to `output_dir` (the command's one call).

  Args:
    output_dir: where the tables and pictures go.
    source_dir: read the labels from the official text files there; None reads `dataset`.
    dataset, builder_config, data_dir: the prepared labelled dataset to read otherwise.
    correlation_split: the images the correlations are measured on: 'all' or a split.

  Returns:
    {kind: path} of what was written ('balance.csv', 'correlation.png', ...).
  """
  if source_dir is not None:
    labels, names = labels_from_source_files(source_dir), datasets.CELEBA_ATTRIBUTES
  else:
    labels, names = labels_from_dataset(dataset, builder_config=builder_config,
                                        data_dir=data_dir)
  result = study(labels, names, correlation_split=correlation_split)
  return write_study(result, output_dir)

"""The feature route against the pixel β-VAE: both train, both are scored on the same table."""

import dataclasses
import json

import numpy as np
import pytest

from disentangle_jax.experiments import featvae_vs_pixels
from disentangle_jax.pipelines import featvae


def test_the_comparison_table_has_a_row_per_model_and_the_challenge_columns():
  rows = {'a': {c: 0.5 for c in featvae.COLUMNS}, **featvae_vs_pixels.PAPER_ROWS}
  text = featvae.format_rows(rows)
  lines = text.splitlines()
  assert lines[0] == '| model | FactorVAE | DCI | SAP | IRS | MIG |'
  assert len(lines) == 2 + len(rows)
  assert '| a | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 |' in lines
  assert '0.992 | 0.809 | 0.223 | 0.547 | 0.297' in text  # the paper's stage-2 row


def test_the_comparison_plot_is_an_rgb_image():
  rows = {'a': {c: 0.5 for c in featvae.COLUMNS}, **featvae_vs_pixels.PAPER_ROWS}
  image = featvae_vs_pixels.comparison_plot(rows)
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
  assert image.std() > 0  # something is drawn


# The tiny budget on the training split's first 640 records (step 1: 2 steps on 512, validated on
# 128; step 2 extracts 640; step 3: 2 steps), 2 pixel steps at batch 8 (at 64 each took 8 s
# unoptimised), the table on 1/40 of runlocal's samples: every part runs, compilation is most of
# what is left.
SMALL = dataclasses.replace(featvae_vs_pixels.BUDGETS['tiny'], examples=640, finetune_epochs=0.25,
                            featvae_epochs=0.2, pixel_steps=2, pixel_batch_size=8,
                            table_divisor=40)


@pytest.mark.slow
def test_both_routes_train_and_are_scored_on_one_table(tmp_path, tfds_data_dir):
  record = featvae_vs_pixels.run(str(tmp_path), budget=SMALL, data_dir=tfds_data_dir)
  assert len(record['scores']) == 2
  for row in record['scores'].values():
    values = np.array([row[c] for c, _, _ in featvae.TABLE])
    assert np.all(np.isfinite(values)) and np.all((values >= -1e-9) & (values <= 1 + 1e-9))
  assert set(record['validation_accuracy']) == {
      'floor_hue', 'wall_hue', 'object_hue', 'scale', 'shape', 'orientation'}
  assert (tmp_path / 'featvae' / 'features' / 'store.json').is_file()
  assert '| pixel β-VAE' in (tmp_path / 'comparison.md').read_text()
  assert (tmp_path / 'comparison.png').stat().st_size > 0
  assert json.loads((tmp_path / 'runs.json').read_text())['scores'] == record['scores']

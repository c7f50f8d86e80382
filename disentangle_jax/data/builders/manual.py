"""Building a dataset from files the user downloaded by hand (TFDS's manual directory)."""

from __future__ import annotations

import os
import shutil

import tensorflow_datasets as tfds


def build_from(builder, source_dir: str) -> str:
  """Prepares `builder` as ArrayRecord from the files in `source_dir`; returns its directory.

  TFDS writes into an `incomplete.*` directory and renames it when every split is written, so an
  interrupted build never looks finished; the ones a killed build left are removed first. Nothing
  is downloaded.
  """
  config_dir = os.path.dirname(os.fspath(builder.data_dir).rstrip('/'))
  if os.path.isdir(config_dir):
    for entry in os.listdir(config_dir):
      if entry.startswith('incomplete'):
        shutil.rmtree(os.path.join(config_dir, entry), ignore_errors=True)
  builder.download_and_prepare(
      file_format='array_record',
      download_config=tfds.download.DownloadConfig(manual_dir=source_dir, try_download_gcs=False),
  )
  return os.fspath(builder.data_dir)

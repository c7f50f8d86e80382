"""The launch scripts' shared pieces: which library log records reach the user."""

import logging

import pytest

from disentangle_jax import cli


def _record(path, level, message):
  return logging.LogRecord('x', level, path, 1, message, None, None)


ORBAX = '/site-packages/orbax/checkpoint/checkpoint_manager.py'


@pytest.mark.parametrize('path,level,message,shown', [
    (ORBAX, logging.INFO, 'Saving checkpoint', False),
    ('/site-packages/tensorflow_datasets/core/x.py', logging.INFO, 'Reusing dataset', False),
    (ORBAX, logging.WARNING, 'Given directory is read only=/w/checkpoints', False),
    (ORBAX, logging.WARNING, 'Checkpoint step 3 could not be read', True),
    (ORBAX, logging.ERROR, 'failed', True),
    ('/work/disentangle_jax/training/train.py', logging.INFO, 'step 20/400', True),
])
def test_library_chatter_is_dropped_and_what_a_user_can_act_on_is_kept(path, level, message, shown):
  assert cli.QuietLibraries().filter(_record(path, level, message)) is shown

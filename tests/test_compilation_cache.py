"""The launch scripts' compilation cache setting."""

import jax

from disentangle_jax.training import compilation_cache


def test_default_dir_follows_the_environment(monkeypatch):
  monkeypatch.setenv(compilation_cache.ENV_VAR, '/somewhere/else')
  assert compilation_cache.default_dir() == '/somewhere/else'
  monkeypatch.delenv(compilation_cache.ENV_VAR)
  assert compilation_cache.default_dir().endswith('disentangle_jax/jax')


def test_unwritable_directory_leaves_the_cache_off(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('')  # a file where the directory's parent should be
  before = jax.config.jax_compilation_cache_dir
  assert compilation_cache.enable(str(blocker / 'cache')) == before
  assert jax.config.jax_compilation_cache_dir == before
  assert compilation_cache.enable('') == before  # '' turns nothing on

"""The geometric experiments' scores, attributes and plots, on known answers."""

import dataclasses
import json

import numpy as np
import pytest

from disentangle_jax.experiments import geometry
from disentangle_jax.networks import geometric
from disentangle_jax.visualization import plots

RADIUS = np.arange(128) * 0.25


def _errors(value_in_band=4.0):
  inside = (RADIUS >= 11) & (RADIUS <= 18)
  return np.where(inside, value_in_band, 1.0)


def test_a_linear_code_interpolates_perfectly():
  scores = geometry.disk_scores(RADIUS, 3.0 - 2.0 * RADIUS, _errors())
  assert scores['spearman_band'] == pytest.approx(-1.0)
  assert scores['spearman_all'] == pytest.approx(-1.0)
  assert scores['code_interpolation_error'] == pytest.approx(0.0, abs=1e-12)
  assert scores['holdout_error_ratio'] == pytest.approx(4.0)


def test_a_code_that_folds_back_in_the_band_is_caught():
  code = RADIUS.copy()
  inside = (RADIUS >= 11) & (RADIUS <= 18)
  code[inside] = 29.0 - RADIUS[inside]  # decreasing inside the band, from 18 down to 11
  scores = geometry.disk_scores(RADIUS, code, _errors(1.0))
  assert scores['spearman_band'] == pytest.approx(-1.0)
  # Deviation |29 − 2r| from the line r over the band (10.75 → 18.25), over the span 7.5.
  band = RADIUS[inside]
  assert scores['code_interpolation_error'] == pytest.approx(np.mean(np.abs(29 - 2 * band)) / 7.5)
  assert scores['holdout_error_ratio'] == pytest.approx(1.0)


def test_ellipse_attributes_of_known_images():
  images = np.zeros((2, 64, 64, 1))
  images[0, 31, 10:40, 0] = 1.0  # a horizontal bar: 30 along row 31, 1 on column 31
  images[1] = np.eye(64)[..., None]  # the main diagonal only
  attributes = geometry.ellipse_attributes(images)
  np.testing.assert_allclose(attributes['area'], [30, 64])
  np.testing.assert_allclose(attributes['axis_ratio'], [30.0, 1.0], rtol=1e-6)
  assert attributes['diagonal_ratio'][1] == pytest.approx(64 / 1e-6)  # nothing on the anti-diag.


def test_fresh_ellipse_attributes_follow_the_factors():
  images, attributes = geometry.fresh_ellipses(300, seed=0)
  assert images.shape == (300, 64, 64, 1)
  # Area ≈ π rx ry; the axis ratio grows with rx / ry at rotation near 0.
  area = np.pi * attributes['semi_axis_x'] * attributes['semi_axis_y']
  assert np.corrcoef(area, attributes['area'])[0, 1] > 0.99
  table = geometry.abs_correlations(np.stack([attributes['area'], np.ones(300)], 1),
                                    [attributes['area'], attributes['rotation']])
  assert table[0, 0] == pytest.approx(1.0) and table[1].tolist() == [0.0, 0.0]


def test_plots_are_rgb_arrays():
  image = plots.line_plot(RADIUS, [RADIUS, RADIUS ** 0.5], labels=['a', 'b'], shade=(11, 18),
                          shade_label='held out', xlabel='r', ylabel='code', title='t')
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
  assert image.shape[:2] == (400, 640)
  assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # something was drawn
  scatter = plots.scatter_plot(RADIUS, RADIUS, color=RADIUS, color_label='r')
  assert scatter.shape == (400, 480, 3)
  with pytest.raises(ValueError, match='x arrays'):
    plots.line_plot([RADIUS, RADIUS], [RADIUS])


def test_networks_shapes_and_homogeneity():
  import jax
  import jax.numpy as jnp

  # Jitted init and apply: unjitted, every op compiles on its own (53 s against 36 s on a busy
  # 2-core CPU); the values and shapes are the same.
  x = jnp.zeros((2, 64, 64, 1))
  encoder = geometric.PCAAEEncoder(3, conv_impl='xla')
  variables = jax.jit(encoder.init)(jax.random.key(0), x)
  assert jax.jit(encoder.apply)(variables, x).shape == (2, 3)
  widths = [variables['params'][f'Conv_{i}']['kernel'].shape[-1] for i in range(6)]
  assert widths == [96, 48, 24, 12, 6, 3]  # 32c .. c
  decoder = geometric.PCAAEDecoder((64, 64, 1), conv_impl='xla')
  z = jnp.ones((2, 2))
  variables = jax.jit(decoder.init)(jax.random.key(0), z)
  assert jax.jit(decoder.apply)(variables, z).shape == (2, 64, 64, 1)
  widths = [variables['params'][f'ConvTranspose_{i}']['kernel'].shape[-1] for i in range(6)]
  assert widths == [4, 8, 16, 32, 64, 1]  # 2k .. 32k, then the image
  nobias = geometric.DiskDecoder((64, 64, 1), use_bias=False, conv_impl='xla')
  z = jax.random.normal(jax.random.key(1), (3, 1))
  variables = jax.jit(nobias.init)(jax.random.key(0), z)
  apply = jax.jit(nobias.apply)
  np.testing.assert_allclose(apply(variables, 2.5 * z), 2.5 * apply(variables, z),
                             rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match='power of two'):
    geometric.DiskEncoder(1).init(jax.random.key(0), jnp.zeros((1, 48, 48, 1)))


# The tiny budget with 2 steps per stage at batch 4: both models train through both stages (an
# unoptimised XLA build runs the convolutions slowly: a second-stage step took 2.4 s at batch 16).
SMALL = dataclasses.replace(geometry.BUDGETS['tiny'], ellipse_stage_steps=2, batch_size=4)


@pytest.fixture
def compilation_cache(tmp_path_factory):
  """JAX's persistent compilation cache in a fresh directory for one test, every program cached:
  the two models share their initialiser, encoder, decoder and pictures' programs (the same HLO),
  which then compile once. The previous settings come back afterwards."""
  import jax
  from jax.experimental.compilation_cache import compilation_cache as cache

  names = ('jax_compilation_cache_dir', 'jax_persistent_cache_min_compile_time_secs')
  before = {name: getattr(jax.config, name) for name in names}
  jax.config.update('jax_compilation_cache_dir', str(tmp_path_factory.mktemp('jax_cache')))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  cache.reset_cache()
  try:
    yield
  finally:
    for name, value in before.items():
      jax.config.update(name, value)
    cache.reset_cache()


@pytest.mark.slow
def test_grey_disk_experiment_writes_its_table_and_pictures(tmp_path, tfds_data_dir,
                                                            compilation_cache):
  results = geometry.run(str(tmp_path), budget=SMALL, experiments=['grey_disks'],
                         data_dir=tfds_data_dir)
  out = tmp_path / 'grey_disks'
  for model in geometry.GREY_MODELS:
    table = np.asarray(results['grey_disks'][model]['attributes'])
    assert table.shape == (2, 2) and np.all((table >= 0) & (table <= 1 + 1e-9))
    assert (out / f'{model}_attributes.png').is_file()
    assert (out / f'{model}_navigation.png').is_file()
  assert '| pcaae/z2 |' in (out / 'grey_correlations.md').read_text()
  assert 'grey_disks' in json.loads((tmp_path / 'results.json').read_text())

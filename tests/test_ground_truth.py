"""Tests of the ground-truth factor interface: index maps, sampling, rendered and indexed data."""

import math

import numpy as np
import pytest

from disentangle_jax.data import ground_truth
from disentangle_jax.data.renderers import digits, disks, dsprites, ellipses, shapes3d, sprites


def test_get_renderer():
  assert ground_truth.get_renderer('dsprites') is dsprites
  for name in ground_truth.RENDERER_NAMES:
    module = ground_truth.get_renderer(name)
    assert module.render is not None and module.FACTOR_SIZES
  with pytest.raises(ValueError, match='unknown renderer'):
    ground_truth.get_renderer('mnist')


@pytest.mark.parametrize('name', ground_truth.RENDERER_NAMES)
def test_index_round_trip_is_row_major(name):
  data = ground_truth.RenderedGroundTruth(name)
  assert data.num_points == math.prod(data.factor_sizes)
  rng = np.random.default_rng(0)
  index = rng.integers(0, data.num_points, 1000)
  factors = data.index_to_factors(index)
  assert factors.shape == (1000, data.num_factors) and factors.dtype == np.int64
  np.testing.assert_array_equal(data.factors_to_index(factors), index)
  # Row-major: the last factor varies fastest.
  strides = np.cumprod((1,) + data.factor_sizes[::-1])[:-1][::-1]
  np.testing.assert_array_equal(data.factors_to_index(factors), factors @ strides)


def test_index_to_factors_enumerates_the_grid_in_order():
  data = ground_truth.RenderedGroundTruth(ellipses, ellipses.REDUCED_STRIDES)
  factors = data.index_to_factors(np.arange(data.num_points))
  expected = np.stack(np.meshgrid(*[np.arange(s) for s in data.factor_sizes], indexing='ij'), -1)
  np.testing.assert_array_equal(factors, expected.reshape(-1, 3))


def test_off_grid_factors_and_indices_are_errors():
  data = ground_truth.RenderedGroundTruth(dsprites)
  with pytest.raises(ValueError, match='outside the grid'):
    data.factors_to_index(np.array([[3, 0, 0, 0, 0]]))
  with pytest.raises(ValueError, match='shape'):
    data.factors_to_index(np.zeros((2, 4), np.int64))
  with pytest.raises(ValueError, match='grid index'):
    data.index_to_factors(np.array([data.num_points]))
  with pytest.raises(ValueError, match='outside the grid'):
    data.images_for(np.array([[0, 6, 0, 0, 0]]))


def test_sample_factors_is_uniform_independent_and_seeded():
  data = ground_truth.RenderedGroundTruth(dsprites)
  n = 60_000
  factors = data.sample_factors(np.random.default_rng(1), n)
  assert factors.shape == (n, 5) and np.issubdtype(factors.dtype, np.integer)
  assert factors.min() >= 0 and np.all(factors.max(0) == np.array(data.factor_sizes) - 1)
  for k, size in enumerate(data.factor_sizes):
    counts = np.bincount(factors[:, k], minlength=size)
    expected = n / size
    # Chi-square with size - 1 degrees of freedom, far inside its 1e-6 tail.
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < size - 1 + 10 * np.sqrt(2 * (size - 1)) + 20, (k, chi2)
  # Independent: shape and scale jointly uniform.
  joint = np.bincount(factors[:, 0] * 6 + factors[:, 1], minlength=18)
  assert np.all(np.abs(joint - n / 18) < 6 * np.sqrt(n / 18))
  np.testing.assert_array_equal(factors, data.sample_factors(np.random.default_rng(1), n))
  assert not np.array_equal(factors, data.sample_factors(np.random.default_rng(2), n))


@pytest.mark.parametrize('module', [dsprites, shapes3d, disks, ellipses, sprites],
                         ids=lambda m: m.__name__.rsplit('.', 1)[-1])
def test_images_for_matches_render(module):
  data = ground_truth.RenderedGroundTruth(module)
  factors = data.sample_factors(np.random.default_rng(3), 8)
  images = data.images_for(factors)
  assert images.dtype == np.float32 and images.shape == (8, *module.IMAGE_SHAPE)
  assert data.image_shape == module.IMAGE_SHAPE
  assert images.min() >= 0.0 and images.max() <= 1.0
  np.testing.assert_allclose(images, module.render(factors) / 255.0, atol=1e-6)


def test_render_options_are_passed_through():
  data = ground_truth.RenderedGroundTruth('dsprites', antialias=True)
  factors = data.sample_factors(np.random.default_rng(4), 8)
  np.testing.assert_allclose(
      data.images_for(factors), dsprites.render(factors, antialias=True) / 255.0, atol=1e-6)
  assert len(np.unique(data.images_for(factors))) > 2


def test_reduced_grid():
  data = ground_truth.RenderedGroundTruth(dsprites, dsprites.REDUCED_STRIDES)
  assert data.factor_sizes == (3, 3, 20, 16, 16)
  assert data.factor_names == dsprites.FACTOR_NAMES
  np.testing.assert_allclose(data.factor_values('scale'), [0.5, 0.7, 0.9])
  np.testing.assert_allclose(data.factor_values('x_position'), np.linspace(0, 1, 32)[::2])
  factors = data.sample_factors(np.random.default_rng(5), 16)
  assert np.all(factors < np.array(data.factor_sizes))
  full = factors * np.array(dsprites.REDUCED_STRIDES)
  np.testing.assert_array_equal(data.to_full_factors(factors), full)
  np.testing.assert_allclose(data.images_for(factors), dsprites.render(full) / 255.0, atol=1e-6)
  # A stride that does not divide the size rounds up and stays on the full grid.
  odd = ground_truth.RenderedGroundTruth(disks, strides=(3,))
  assert odd.factor_sizes == (43,)
  np.testing.assert_array_equal(odd.to_full_factors(np.array([[42]])), [[126]])
  assert odd.images_for(np.array([[42]])).shape == (1, 64, 64, 1)
  with pytest.raises(ValueError, match='strides'):
    ground_truth.RenderedGroundTruth(disks, strides=(0,))
  with pytest.raises(ValueError, match='strides'):
    ground_truth.RenderedGroundTruth(disks, strides=(1, 1))


def _shuffled_records(data, seed):
  """All grid points in a random record order, with `data`'s uint8 images."""
  perm = np.random.default_rng(seed).permutation(data.num_points)
  record_factors = data.index_to_factors(perm)
  record_images = np.round(data.images_for(record_factors) * 255).astype(np.uint8)
  return record_factors, record_images


def test_indexed_ground_truth_finds_the_right_records():
  rendered = ground_truth.RenderedGroundTruth(disks)
  record_factors, record_images = _shuffled_records(rendered, seed=6)
  calls = []

  def images_fn(records):
    calls.append(np.asarray(records))
    return record_images[records]

  data = ground_truth.IndexedGroundTruth(images_fn, record_factors, disks.FACTOR_NAMES,
                                         disks.FACTOR_SIZES)
  assert data.image_shape == (64, 64, 1)
  factors = data.sample_factors(np.random.default_rng(7), 50)
  np.testing.assert_array_equal(data.factors_to_index(record_factors[data.record_index(factors)]),
                                data.factors_to_index(factors))
  np.testing.assert_allclose(data.images_for(factors), rendered.images_for(factors), atol=1e-6)
  assert data.images_for(factors).dtype == np.float32


def test_indexed_ground_truth_multi_factor_grid_and_float_images():
  sizes = (3, 4, 5)
  n = math.prod(sizes)
  perm = np.random.default_rng(8).permutation(n)
  record_factors = np.stack(np.unravel_index(perm, sizes), -1)
  # Each record's image holds its own grid index, so a wrong lookup cannot go unnoticed.
  record_images = np.broadcast_to(perm[:, None, None, None] / n, (n, 2, 2, 1)).astype(np.float64)
  data = ground_truth.IndexedGroundTruth(lambda r: record_images[r], record_factors,
                                         ('a', 'b', 'c'), sizes, image_shape=(2, 2, 1))
  factors = data.index_to_factors(np.arange(n))
  images = data.images_for(factors)
  assert images.dtype == np.float32
  np.testing.assert_allclose(images[:, 0, 0, 0], np.arange(n) / n, rtol=1e-6)


def test_indexed_ground_truth_rejects_incomplete_records():
  sizes = (3, 4)
  record_factors = np.stack(np.unravel_index(np.arange(12), sizes), -1)
  images_fn = lambda r: np.zeros((len(r), 1, 1, 1), np.uint8)  # noqa: E731
  with pytest.raises(ValueError, match=r'do not cover .* 1 of 12 .* \{.a.: 2, .b.: 3\}'):
    ground_truth.IndexedGroundTruth(images_fn, record_factors[:-1], ('a', 'b'), sizes)
  with pytest.raises(ValueError, match='outside the grid'):
    ground_truth.IndexedGroundTruth(images_fn, record_factors + 1, ('a', 'b'), sizes)
  with pytest.raises(ValueError, match='names'):
    ground_truth.IndexedGroundTruth(images_fn, record_factors, ('a',), sizes)


# --- Subsets (splits) of a grid. -------------------------------------------------------------


def test_subset_samples_only_its_points_and_renders_any():
  base = ground_truth.RenderedGroundTruth(sprites)
  test = base.index_to_factors(np.flatnonzero(sprites.split_of(
      base.index_to_factors(np.arange(base.num_points))) == 'test'))
  subset = ground_truth.SubsetGroundTruth(base, test, name='test')
  assert subset.num_examples == 8_064 and subset.num_points == base.num_points
  assert subset.factor_sizes == base.factor_sizes and subset.renderer is sprites
  factors = subset.sample_factors(np.random.default_rng(0), 5_000)
  assert (sprites.split_of(factors) == 'test').all()
  assert subset.contains(factors).all()
  assert len({tuple(f) for f in factors[:, :6].tolist()}) == 48  # every test character drawn
  other = base.sample_factors(np.random.default_rng(1), 2_000)
  np.testing.assert_array_equal(subset.contains(other), sprites.split_of(other) == 'test')
  np.testing.assert_allclose(subset.images_for(factors[:4]), base.images_for(factors[:4]))
  np.testing.assert_array_equal(subset.sample_factors(np.random.default_rng(2), 9),
                                subset.sample_factors(np.random.default_rng(2), 9))
  import copy

  clone = copy.copy(subset)
  assert isinstance(clone, ground_truth.SubsetGroundTruth) and clone.num_examples == 8_064
  with pytest.raises(ValueError, match='no points'):
    ground_truth.SubsetGroundTruth(base, np.zeros((0, 7), np.int64))
  with pytest.raises(ValueError, match='outside the grid'):
    ground_truth.SubsetGroundTruth(base, np.full((1, 7), 9))


def test_indexed_ground_truth_of_a_split_refuses_points_without_a_record():
  sizes = (3, 4)
  grid = np.stack(np.unravel_index(np.arange(12), sizes), -1)
  half = grid[grid[:, 0] < 2]
  images_fn = lambda r: np.asarray(r, np.float32).reshape(-1, 1, 1, 1)  # noqa: E731
  data = ground_truth.IndexedGroundTruth(images_fn, half, ('a', 'b'), sizes, image_shape=(1, 1, 1),
                                         complete=False)
  np.testing.assert_array_equal(data.images_for(half[::-1])[:, 0, 0, 0], np.arange(8)[::-1])
  with pytest.raises(ValueError, match=r"no record holds .*'a': 2"):
    data.images_for(np.array([[2, 0]]))
  subset = ground_truth.SubsetGroundTruth(data, half)
  assert (subset.sample_factors(np.random.default_rng(0), 100)[:, 0] < 2).all()


# --- Concept masks from the renderers. -------------------------------------------------------


def _random_factors(module, n, seed):
  rng = np.random.default_rng(seed)
  return np.stack([rng.integers(0, s, n) for s in module.FACTOR_SIZES], axis=1)


def test_sprite_part_masks_partition_the_figure_and_match_its_colours():
  f = _random_factors(sprites, 48, seed=0)
  images = sprites.render(f)
  masks, names = ground_truth.concept_masks('sprites', f)
  assert masks.shape == (48, 64, 64, len(names)) and masks.dtype == bool
  assert names == sprites.CONCEPT_NAMES
  assert masks.sum(-1).max() == 1  # no pixel in two parts
  support = np.any(images != 255, axis=-1)
  np.testing.assert_array_equal(masks.any(-1), support)
  part = {n: masks[..., k] for k, n in enumerate(names)}
  drawn = masks.any(axis=(1, 2))
  # Parts drawn in every pose; the others (an arm behind the body, ...) in most images.
  for name in ('outline', 'hair', 'leg', 'boots'):
    assert drawn[:, names.index(name)].all(), name
  for name in ('skin', 'vest', 'arm', 'belt'):
    assert drawn[:, names.index(name)].mean() > 0.85, name
  for i, (body, skin, vest, hair, arm, leg, pose) in enumerate(f):
    direction = sprites.split_pose(pose)[0]
    if direction == 0:  # from the back
      assert not part['eyes'][i].any()
    if not (arm or leg):
      assert not part['armour'][i].any()
    # Each mask holds its part's colour, and nothing else does.
    for name, rgb in (('vest', sprites._VEST_RGB[vest]), ('hair', sprites._HAIR_RGB[hair]),
                      ('leg', sprites._TROUSERS_RGB[leg])):
      np.testing.assert_array_equal(np.all(images[i] == rgb, -1), part[name][i])
    skin_coloured = np.all(images[i] == sprites._SKIN_RGB[skin], -1)
    bare_arms = part['arm'][i] if arm == 0 else np.zeros_like(skin_coloured)
    np.testing.assert_array_equal(skin_coloured, part['skin'][i] | bare_arms)


def test_dsprites_masks_are_the_shape_under_its_class():
  f = _random_factors(dsprites, 30, seed=1)
  masks, names = ground_truth.concept_masks('dsprites', f)
  assert names == ('square', 'ellipse', 'heart') and masks.shape == (30, 64, 64, 3)
  images = dsprites.render(f)[..., 0]
  for i, shape in enumerate(f[:, 0]):
    np.testing.assert_array_equal(masks[i, ..., shape], images[i] > 0)
    assert not np.delete(masks[i], shape, axis=-1).any()
  grey, _ = ground_truth.concept_masks('dsprites', f, antialias=True)
  np.testing.assert_array_equal(grey.any(-1), dsprites.render(f, antialias=True)[..., 0] >= 128)


def test_shapes3d_masks_partition_the_scene_and_follow_the_object():
  f = _random_factors(shapes3d, 6, seed=2)
  masks, names = ground_truth.concept_masks('shapes3d', f)
  assert names == ('floor', 'wall', 'cube', 'cylinder', 'sphere', 'capsule')
  assert (masks.sum(-1) == 1).all()
  recoloured = f.copy()
  recoloured[:, 2] = (f[:, 2] + 5) % 10
  changed = np.any(shapes3d.render(f) != shapes3d.render(recoloured), axis=-1)
  for i, shape in enumerate(f[:, 4]):
    obj = masks[i, ..., 2 + shape]
    assert obj.sum() > 30 and masks[i, ..., 0].sum() > 100 and masks[i, ..., 1].sum() > 100
    assert not np.delete(masks[i, ..., 2:], shape, axis=-1).any()
    assert changed[i][obj].all()  # the object's hue shows on every object pixel ...
    near = ndimage_dilation(obj)
    assert not (changed[i] & ~near).any()  # ... and nowhere but at its edge


def ndimage_dilation(mask):
  from scipy import ndimage

  return ndimage.binary_dilation(mask, np.ones((3, 3), bool))


def test_digit_masks_and_the_entry_point():
  f = _random_factors(digits, 20, seed=3)
  masks, names = ground_truth.concept_masks('digits', f)
  assert names == tuple('0123456789') and masks.shape == (20, 32, 32, 10)
  images = digits.render(f)[..., 0]
  for i, d in enumerate(f[:, 0]):
    np.testing.assert_array_equal(masks[i, ..., d], images[i] >= 128)
    assert masks[i, ..., d].sum() > 20
    assert not np.delete(masks[i], d, axis=-1).any()
  from disentangle_jax.data.renderers import digit_mixture

  pairs = digit_mixture.sample_factors(np.random.default_rng(5), 6)
  masks, names = ground_truth.concept_masks('digit_mixture', pairs)
  assert names == tuple('0123456789') and masks.shape == (6, 56, 56, 10)
  np.testing.assert_array_equal(masks.any(-1), digit_mixture.render(pairs)[..., 0] >= 128)
  with pytest.raises(ValueError, match=r"'disks' has no concept masks; .*'sprites'"):
    ground_truth.concept_masks('disks', np.zeros((1, 1), np.int64))
  # A reduced grid's indices are mapped to the full grid first.
  reduced = ground_truth.RenderedGroundTruth(dsprites, dsprites.REDUCED_STRIDES)
  g = reduced.sample_factors(np.random.default_rng(4), 5)
  full_masks, _ = ground_truth.concept_masks('dsprites', reduced.to_full_factors(g))
  np.testing.assert_array_equal(reduced.concept_masks(g)[0], full_masks)

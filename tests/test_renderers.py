"""Tests of the procedural renderers: grids, value ranges, and what each factor does."""

import math

import numpy as np
import pytest

from disentangle_jax.data.renderers import (_common, digit_mixture, digits, disks, dsprites,
                                            ellipses, grey_disks, shapes3d, sprites)

RENDERERS = {
    'dsprites': dsprites,
    'shapes3d': shapes3d,
    'disks': disks,
    'ellipses': ellipses,
    'sprites': sprites,
    'digits': digits,
    'grey_disks': grey_disks,
}
GRID_SIZES = {
    'dsprites': 737_280,
    'shapes3d': 480_000,
    'disks': 128,
    'ellipses': 81_000,
    'sprites': 96_768,
    'digits': 60_900,
    'grey_disks': 2_176,
}


def random_factors(module, n, seed=0):
  rng = np.random.default_rng(seed)
  return np.stack([rng.integers(0, s, n) for s in module.FACTOR_SIZES], axis=1)


def centre_of_mass(image):
  """(row, column) centre of mass of a [H, W, 1] image."""
  weights = image[..., 0].astype(np.float64)
  rows, cols = np.indices(weights.shape)
  return (rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum()


# --- Every renderer. ----------------------------------------------------------------------


@pytest.mark.parametrize('name', sorted(RENDERERS))
def test_grid_and_constants(name):
  module = RENDERERS[name]
  assert math.prod(module.FACTOR_SIZES) == GRID_SIZES[name]
  k = len(module.FACTOR_SIZES)
  assert len(module.FACTOR_NAMES) == k and len(module.REDUCED_STRIDES) == k
  assert len(set(module.FACTOR_NAMES)) == k
  assert all(s >= 1 for s in module.REDUCED_STRIDES)
  assert len(module.IMAGE_SHAPE) == 3
  for factor, size in zip(module.FACTOR_NAMES, module.FACTOR_SIZES):
    values = module.factor_values(factor)
    assert values.shape == (size,), factor
  with pytest.raises(ValueError, match='no factor'):
    module.factor_values('colour')


@pytest.mark.parametrize('name', sorted(RENDERERS))
def test_dtype_shape_range_and_determinism(name):
  module = RENDERERS[name]
  factors = random_factors(module, 24)
  images = module.render(factors)
  assert images.dtype == np.uint8
  assert images.shape == (24, *module.IMAGE_SHAPE)
  assert images.max() > images.min()
  np.testing.assert_array_equal(images, module.render(factors))
  # An image does not depend on the rest of its batch.
  for i in (0, 7, 23):
    np.testing.assert_array_equal(images[i], module.render(factors[i : i + 1])[0])


@pytest.mark.parametrize('name', sorted(RENDERERS))
def test_every_factor_changes_the_image(name):
  module = RENDERERS[name]
  base = random_factors(module, 3, seed=1)
  if name == 'ellipses':
    base[:, 1] = (base[:, 0] + 7) % 30  # unequal axes: a circle's rotation is invisible
  if name == 'dsprites':
    base[:, 0] = 2  # hearts: any orientation step changes them
  base_images = module.render(base)
  for k, size in enumerate(module.FACTOR_SIZES):
    for step in (1, size // 2):
      changed = base.copy()
      changed[:, k] = (changed[:, k] + step) % size
      if name == 'dsprites' and k == 2:  # orientation 39 is orientation 0
        same = {frozenset((0, 39))}
        keep = [frozenset((a, b)) not in same for a, b in zip(base[:, k], changed[:, k])]
      else:
        keep = [True] * len(base)
      images = module.render(changed)
      for i in np.flatnonzero(keep):
        assert not np.array_equal(images[i], base_images[i]), (name, module.FACTOR_NAMES[k], i)


@pytest.mark.parametrize('name', sorted(RENDERERS))
def test_rejects_bad_factors(name):
  module = RENDERERS[name]
  k = len(module.FACTOR_SIZES)
  with pytest.raises(ValueError, match='shape'):
    module.render(np.zeros((2, k + 1), np.int64))
  with pytest.raises(ValueError, match='outside'):
    module.render(np.asarray([module.FACTOR_SIZES], np.int64))
  with pytest.raises(ValueError, match='outside'):
    module.render(-np.ones((1, k), np.int64))
  with pytest.raises(ValueError, match='integer'):
    module.render(np.zeros((1, k), np.float32))
  assert module.render(np.zeros((0, k), np.int64)).shape == (0, *module.IMAGE_SHAPE)


def test_lazy_table_computes_each_row_once():
  calls = []

  def compute(ids):
    calls.append(ids.copy())
    return np.stack([ids, 2 * ids], axis=1)

  table = _common.LazyTable(10, compute, chunk_size=2)
  np.testing.assert_array_equal(table(np.array([3, 1, 3])), [[3, 6], [1, 2], [3, 6]])
  np.testing.assert_array_equal(table(np.array([1, 4])), [[1, 2], [4, 8]])
  assert sorted(np.concatenate(calls).tolist()) == [1, 3, 4]
  assert table.fill().shape == (10, 2)


# --- dSprites. ----------------------------------------------------------------------------


def test_dsprites_values_are_dsprites():
  np.testing.assert_allclose(dsprites.factor_values('scale'), np.linspace(0.5, 1, 6))
  orientation = dsprites.factor_values('orientation')
  assert orientation[0] == 0 and orientation[-1] == 2 * np.pi and orientation.size == 40
  np.testing.assert_allclose(dsprites.factor_values('x_position'), np.linspace(0, 1, 32))
  assert dsprites.FACTOR_NAMES == ('shape', 'scale', 'orientation', 'x_position', 'y_position')


def test_dsprites_binary_by_default_and_grey_when_antialiased():
  factors = random_factors(dsprites, 64, seed=2)
  binary = dsprites.render(factors)
  assert set(np.unique(binary).tolist()) == {0, 255}
  grey = dsprites.render(factors, antialias=True)
  assert len(np.unique(grey)) > 2
  # Same shapes: the areas agree to a few percent and the images mostly coincide.
  area_b = binary.reshape(64, -1).sum(1) / 255.0
  area_g = grey.reshape(64, -1).sum(1) / 255.0
  np.testing.assert_allclose(area_g, area_b, rtol=0.08)
  assert np.mean(np.abs(binary.astype(int) - grey.astype(int)) > 128) < 0.01


def test_dsprites_grid_path_matches_direct_rendering():
  """The patch-and-shift fast path draws exactly what the continuous renderer draws."""
  factors = random_factors(dsprites, 300, seed=3)
  values = [dsprites.factor_values(n)[factors[:, k]] for k, n in enumerate(dsprites.FACTOR_NAMES)]
  for antialias in (False, True):
    direct = dsprites.render_continuous(factors[:, 0], *values[1:], antialias=antialias)
    np.testing.assert_array_equal(dsprites.render(factors, antialias=antialias), direct)


def test_dsprites_x_moves_right_and_y_moves_down():
  for shape in range(3):
    f = np.zeros((32, 5), np.int64)
    f[:, 0], f[:, 1], f[:, 2], f[:, 4] = shape, 3, 5, 10
    f[:, 3] = np.arange(32)
    com = np.array([centre_of_mass(im) for im in dsprites.render(f)])
    assert np.all(np.diff(com[:, 1]) > 0.5)  # x: right, ~1.25 px per step
    np.testing.assert_allclose(com[:, 0], com[0, 0], atol=0.3)  # y unchanged
    f[:, 3], f[:, 4] = 10, np.arange(32)
    com = np.array([centre_of_mass(im) for im in dsprites.render(f)])
    assert np.all(np.diff(com[:, 0]) > 0.5)  # y: down
    np.testing.assert_allclose(com[:, 1], com[0, 1], atol=0.3)


def test_dsprites_scale_grows_area():
  for shape in range(3):
    for orientation in (0, 7, 23):
      f = np.zeros((6, 5), np.int64)
      f[:, 0], f[:, 2], f[:, 3], f[:, 4] = shape, orientation, 16, 16
      f[:, 1] = np.arange(6)
      for antialias in (False, True):
        areas = dsprites.render(f, antialias=antialias).reshape(6, -1).sum(1)
        assert np.all(np.diff(areas) > 0), (shape, orientation, antialias, areas)
      # Area grows as scale² (to pixelation error).
      areas = dsprites.render(f, antialias=True).reshape(6, -1).sum(1) / 255.0
      scale = dsprites.factor_values('scale')
      np.testing.assert_allclose(areas / areas[-1], scale**2, atol=0.03)


def test_dsprites_first_and_last_orientation_are_the_same_image():
  f = random_factors(dsprites, 50, seed=4)
  first, last = f.copy(), f.copy()
  first[:, 2], last[:, 2] = 0, 39
  for antialias in (False, True):
    np.testing.assert_array_equal(
        dsprites.render(first, antialias=antialias), dsprites.render(last, antialias=antialias)
    )
  # Off the grid too: angle 2π is angle 0.
  args = (np.arange(3), np.full(3, 0.8), None, np.full(3, 0.3), np.full(3, 0.6))
  zero = dsprites.render_continuous(args[0], args[1], np.zeros(3), *args[3:])
  full = dsprites.render_continuous(args[0], args[1], np.full(3, 2 * np.pi), *args[3:])
  np.testing.assert_array_equal(zero, full)


def test_dsprites_rotating_a_square_by_a_quarter_turn_leaves_it_unchanged():
  # π/2 is not on the 40-point grid (the nearest is index 10, at 10/39 · 2π), so this uses the
  # continuous renderer at the canvas centre, where the pixel grid has the square's symmetry.
  grid = dsprites.factor_values('orientation')
  assert np.min(np.abs(grid - np.pi / 2)) > 0.01
  scale = dsprites.factor_values('scale')
  for antialias in (False, True):
    kw = dict(antialias=antialias)
    n = scale.size
    centre = np.full(n, 0.5)
    square = dsprites.render_continuous(np.zeros(n, int), scale, np.zeros(n), centre, centre, **kw)
    turned = dsprites.render_continuous(
        np.zeros(n, int), scale, np.full(n, np.pi / 2), centre, centre, **kw)
    np.testing.assert_array_equal(square, turned)
    # A quarter turn does change the ellipse and the heart; half a turn leaves the ellipse.
    for shape in (1, 2):
      s = np.full(n, shape)
      a = dsprites.render_continuous(s, scale, np.zeros(n), centre, centre, **kw)
      b = dsprites.render_continuous(s, scale, np.full(n, np.pi / 2), centre, centre, **kw)
      assert all(not np.array_equal(x, y) for x, y in zip(a, b))
    s = np.ones(n, int)
    half = dsprites.render_continuous(s, scale, np.full(n, np.pi), centre, centre, **kw)
    np.testing.assert_array_equal(
        half, dsprites.render_continuous(s, scale, np.zeros(n), centre, centre, **kw))
    # The square's eighth turn is a diamond: a different image.
    eighth = dsprites.render_continuous(
        np.zeros(n, int), scale, np.full(n, np.pi / 4), centre, centre, **kw)
    assert not np.array_equal(square[-1], eighth[-1])


def test_dsprites_shapes_differ_and_are_never_clipped():
  f = np.array([[s, 5, o, x, y] for s in range(3) for o in range(0, 39, 3)
                for x in (0, 31) for y in (0, 31)])
  images = dsprites.render(f, antialias=True)[..., 0]
  # Shapes at the extreme positions may touch the border pixels but never fill them, and
  # they keep their area (the same shape in the middle of the canvas has the same).
  border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
  assert border.max() < 128
  middle = f.copy()
  middle[:, 3:] = 16
  area = images.reshape(len(f), -1).sum(1)
  area_middle = dsprites.render(middle, antialias=True).reshape(len(f), -1).sum(1)
  np.testing.assert_allclose(area, area_middle, rtol=0.02)
  centred = dsprites.render(np.array([[s, 5, 0, 16, 16] for s in range(3)]))
  for a in range(3):
    for b in range(a + 1, 3):
      assert np.sum(centred[a] != centred[b]) > 20


def test_dsprites_heart_points_down_and_ellipse_is_upright_at_orientation_zero():
  f = np.array([[1, 5, 0, 16, 16], [2, 5, 0, 16, 16]])
  ellipse, heart = dsprites.render(f)[..., 0] > 0
  rows, cols = np.nonzero(ellipse)
  assert np.ptp(rows) > 1.6 * np.ptp(cols)
  # The heart's lobes are at the top: its upper half is wider than its lower half.
  rows, cols = np.nonzero(heart)
  mid = (rows.min() + rows.max()) / 2
  assert np.ptp(cols[rows < mid]) > np.ptp(cols[rows > mid + 4])


def test_render_in_chunks_crosses_chunk_boundaries():
  n = _common.CHUNK_SIZE + 5
  f = random_factors(dsprites, n, seed=5)
  images = dsprites.render(f)
  for i in (0, _common.CHUNK_SIZE - 1, _common.CHUNK_SIZE, n - 1):
    np.testing.assert_array_equal(images[i], dsprites.render(f[i : i + 1])[0])


# --- Shapes3D. ----------------------------------------------------------------------------


def test_shapes3d_values():
  np.testing.assert_allclose(shapes3d.factor_values('floor_hue'), np.arange(10) / 10)
  np.testing.assert_allclose(shapes3d.factor_values('scale'), np.linspace(0.75, 1.25, 8))
  np.testing.assert_allclose(shapes3d.factor_values('orientation'), np.linspace(-30, 30, 15))
  np.testing.assert_allclose(shapes3d.hue_to_rgb(np.array([0, 1 / 3, 2 / 3])), np.eye(3),
                             atol=1e-12)


def _changed_pixels(a, b):
  return np.any(a != b, axis=-1)


@pytest.mark.parametrize('shape', range(4))
def test_shapes3d_hue_factors_change_only_their_region(shape):
  base = np.array([[0, 3, 6, 4, shape, 9]])
  images = {}
  for k in range(3):
    changed = base.copy()
    changed[0, k] = (changed[0, k] + 5) % 10
    images[k] = _changed_pixels(shapes3d.render(base)[0], shapes3d.render(changed)[0])
  floor, wall, obj = images[0], images[1], images[2]
  n = floor.size
  # Every pixel shows some region; regions overlap only on anti-aliased boundary pixels.
  assert np.all(floor | wall | obj)
  assert (floor & wall).sum() <= 2 * 64 + 8
  assert (floor & obj).sum() < 0.3 * obj.sum() and (wall & obj).sum() < 0.3 * obj.sum()
  assert 0.05 * n < obj.sum() < 0.3 * n
  rows = np.indices(floor.shape)[0]
  assert rows[floor].mean() > rows[obj].mean() > rows[wall].mean()  # floor below, wall above
  cols = np.indices(floor.shape)[1]
  assert abs(cols[obj].mean() - 31.5) < 6  # the object is in the middle


def _object_area(factors):
  base = shapes3d.render(factors)
  other = factors.copy()
  other[:, 2] = (other[:, 2] + 5) % 10
  return _changed_pixels(base, shapes3d.render(other)).reshape(len(factors), -1).sum(1)


def test_shapes3d_scale_grows_the_object():
  for shape in range(4):
    f = np.array([[1, 4, 7, s, shape, 3] for s in range(8)])
    areas = _object_area(f)
    assert np.all(np.diff(areas) > 0), (shape, areas)


def test_shapes3d_orientation_turns_the_room():
  # Sphere and cylinder are symmetric about the vertical axis, yet orientation is visible: the
  # floor/wall boundary tilts one way or the other.
  for shape in (1, 2):
    f = np.array([[0, 5, 2, 4, shape, o] for o in (0, 7, 14)])
    left, middle, right = shapes3d.render(f)
    floor = lambda im: np.all(im == im[-1, 0], axis=-1)  # noqa: E731  pixels like the corner
    col_left, col_right = 2, 61
    # Height of the floor at the image's left and right edges.
    h = lambda im, c: floor(im)[:, c].sum()  # noqa: E731
    assert h(left, col_left) != h(left, col_right)
    assert abs(h(middle, col_left) - h(middle, col_right)) <= 1
    assert np.sign(h(left, col_left) - h(left, col_right)) == -np.sign(
        h(right, col_left) - h(right, col_right))


def test_shapes3d_shapes_differ_in_silhouette():
  f = np.array([[0, 5, 2, 7, s, 7] for s in range(4)])
  base = shapes3d.render(f)
  other = f.copy()
  other[:, 2] = 7
  masks = _changed_pixels(base, shapes3d.render(other))
  for a in range(4):
    for b in range(a + 1, 4):
      assert np.sum(masks[a] != masks[b]) > 30, (a, b)


# --- Disks and ellipses. ------------------------------------------------------------------


def test_disks_area_follows_radius():
  images = disks.render(np.arange(128)[:, None]).astype(np.float64) / 255.0
  area = images.reshape(128, -1).sum(1)
  radius = disks.factor_values('radius')
  assert area[0] == 0
  assert np.all(np.diff(area) > 0)
  big = (radius >= 4) & (radius <= 31)
  np.testing.assert_allclose(area[big], np.pi * radius[big] ** 2, rtol=0.01)
  # Blurred: a big disk's edge has grey values, and more of them than without blur.
  edge = lambda im: np.sum((im > 0.02) & (im < 0.98))  # noqa: E731
  sharp = disks.render(np.array([[80]]), blur_sigma=0.0)[0, ..., 0] / 255.0
  assert edge(images[80, ..., 0]) > edge(sharp) > 0


def test_disks_are_centred_and_symmetric():
  image = disks.render(np.array([[57]]))[0, ..., 0]
  np.testing.assert_array_equal(image, image.T)
  np.testing.assert_array_equal(image, image[::-1])
  np.testing.assert_array_equal(image, image[:, ::-1])
  np.testing.assert_allclose(centre_of_mass(image[..., None]), (31.5, 31.5), atol=1e-9)


def test_disks_holdout_band():
  all_radii = np.arange(128)[:, None]
  mask = disks.holdout_mask(all_radii)
  radius = disks.factor_values('radius')
  np.testing.assert_array_equal(radius[mask], np.arange(11, 18.01, 0.25))
  assert mask.sum() == 29
  assert disks.holdout_mask(all_radii[:: disks.REDUCED_STRIDES[0]]).sum() == 8  # 11..18 px
  np.testing.assert_array_equal(disks.factor_values('radius')[:: disks.REDUCED_STRIDES[0]],
                                np.arange(32))
  assert disks.holdout_mask(all_radii, low=0, high=100).all()


def test_ellipses_axes_and_rotation():
  values = {n: ellipses.factor_values(n) for n in ellipses.FACTOR_NAMES}
  np.testing.assert_array_equal(values['semi_axis_x'], np.arange(2, 32))
  np.testing.assert_array_equal(values['rotation'], np.arange(90))
  # r_x = 25, r_y = 6 at rotation 0: a wide ellipse; its width across the centre row ~ 2 r_x.
  wide = ellipses.render(np.array([[23, 4, 0]]))[0, ..., 0] > 127
  assert abs(wide[32].sum() - 2 * 25) <= 2 and abs(wide[:, 32].sum() - 2 * 6) <= 2
  # Area ~ π r_x r_y.
  for rx, ry, rot in ((25, 6, 0), (10, 20, 45), (30, 30, 10)):
    image = ellipses.render(np.array([[rx - 2, ry - 2, rot]]))[0, ..., 0] / 255.0
    np.testing.assert_allclose(image.sum(), np.pi * rx * ry, rtol=0.05)
  # A quarter turn swaps the axes (to float rounding on boundary pixels).
  turned = ellipses.render_continuous([25], [6], [90])[0]
  swapped = ellipses.render(np.array([[4, 23, 0]]))[0]
  assert np.sum(turned != swapped) <= 4
  # Counter-clockwise: at 45 degrees the long axis runs from bottom-left to top-right.
  diag = ellipses.render(np.array([[23, 4, 45]]))[0, ..., 0] > 127
  assert diag[20, 44] and diag[44, 20] and not diag[20, 20] and not diag[44, 44]
  # Blur: greys at the edge; 0 and 255 inside and outside.
  assert len(np.unique(ellipses.render(np.array([[10, 5, 30]])))) > 3


# --- Sprites. -----------------------------------------------------------------------------


def test_sprites_cardinalities_match_the_mixing_paper_table():
  sizes = dict(zip(sprites.FACTOR_NAMES, sprites.FACTOR_SIZES))
  assert sizes == dict(body=2, skin=4, vest=3, hair=6, arm=2, leg=2, pose=168)
  # The table's "Random" row is 1 / cardinality, rounded: 0.5, 0.25, 0.33, 0.17, .., 0.006.
  table_random = dict(body=0.5, skin=0.25, vest=0.33, hair=0.17, arm=0.5, leg=0.5, pose=0.006)
  for name, prior in table_random.items():
    digits = 3 if name == 'pose' else 2
    assert round(1 / sizes[name], digits) == prior, name
  pose = np.arange(168)
  np.testing.assert_array_equal(sprites.pose_index(*sprites.split_pose(pose)), pose)


def test_sprites_colour_attributes_recolour_only_their_part():
  base = random_factors(sprites, 6, seed=6)
  base_images = sprites.render(base)
  for k, palette in ((1, sprites._SKIN_RGB), (2, sprites._VEST_RGB)):
    changed = base.copy()
    changed[:, k] = (changed[:, k] + 1) % sprites.FACTOR_SIZES[k]
    images = sprites.render(changed)
    for i in range(len(base)):
      moved = _changed_pixels(base_images[i], images[i])
      old_colour = np.all(base_images[i] == palette[base[i, k]], axis=-1)
      np.testing.assert_array_equal(moved, old_colour)
      assert moved.sum() > 10


def test_sprites_poses_are_all_distinct():
  for hair in range(6):
    f = np.zeros((168, 7), np.int64)
    f[:, 0], f[:, 1], f[:, 3], f[:, 5] = hair % 2, 1, hair, 1
    f[:, 6] = np.arange(168)
    images = sprites.render(f).reshape(168, -1)
    assert np.unique(images, axis=0).shape[0] == 168, hair


def test_sprites_directions_show_face_or_back():
  eyes = sprites._FIXED_RGB[sprites._EYES]
  f = np.array([[0, 0, 0, 0, 0, 0, sprites.pose_index(d, 0, 0)] for d in range(4)])
  images = sprites.render(f)
  eye_pixels = np.all(images == eyes, axis=-1).reshape(4, -1).sum(1)
  back, left, front, right = eye_pixels
  assert back == 0 and front > left > 0 and front > right > 0
  # In a left-right symmetric pose (spellcast), left and right views are mirror images.
  f[:, 6] = sprites.pose_index(np.arange(4), 1, 3)
  images = sprites.render(f)
  np.testing.assert_array_equal(images[1], images[3][:, ::-1])


# --- Digits (the MNIST stand-in). -----------------------------------------------------------


def _digit_factors(rows):
  return np.array(rows, np.int64).reshape(-1, 4)


def test_digits_come_from_the_sklearn_scans():
  from sklearn.datasets import load_digits

  data = load_digits()
  scans = digits.scans()
  assert scans.shape == (10, 174, 8, 8)
  np.testing.assert_array_equal(scans[8, 173], data.images[data.target == 8][173] / 16)
  np.testing.assert_array_equal(scans[3, 0], data.images[data.target == 3][0] / 16)
  # Upright with the natural stroke, the image's 3x3 cells of the central 24x24 pixels hold the
  # scan's ink densities again.
  rng = np.random.default_rng(0)
  f = _digit_factors([[d, 3, 2, i] for d, i in zip(range(10), rng.integers(0, 174, 10))])
  images = digits.render(f)[..., 0] / 255.0
  cells = images[:, 4:28, 4:28].reshape(10, 8, 3, 8, 3).mean(axis=(2, 4))
  for k, (d, _, _, i) in enumerate(f):
    r = np.corrcoef(cells[k].ravel(), scans[d, i].ravel())[0, 1]
    assert r > 0.9, (d, i, r)
  assert images[:, :2].max() == 0 and images[:, -2:].max() == 0  # a margin at the edges


def test_digits_rotation_turns_the_upright_digit():
  from scipy import ndimage

  upright = digits.render(_digit_factors([[d, 3, 2, 7] for d in range(10)]))[..., 0] / 255.0
  for r, degrees in enumerate(digits.ROTATIONS_DEG):
    rotated = digits.render(_digit_factors([[d, r, 2, 7] for d in range(10)]))[..., 0] / 255.0
    # scipy turns counter-clockwise on screen for positive angles.
    expected = np.clip(ndimage.rotate(upright, degrees, axes=(2, 1), reshape=False, order=1), 0,
                       1)
    for d in range(10):
      r_match = np.corrcoef(rotated[d].ravel(), expected[d].ravel())[0, 1]
      assert r_match > 0.9, (d, degrees, r_match)
      if degrees:
        assert np.corrcoef(rotated[d].ravel(), upright[d].ravel())[0, 1] < r_match


def test_digits_stroke_thickens_monotonically_and_keeps_the_centre():
  f = _digit_factors([[d, r, s, i] for d in range(10) for r in (0, 3) for i in (0, 100)
                      for s in range(5)])
  ink = (digits.render(f)[..., 0] / 255.0).reshape(-1, 5, 32, 32)
  area = ink.sum(axis=(2, 3))
  assert (np.diff(area, axis=1) > 0).all()
  # Dilation: every thin stroke's full pixels stay full in the thicker ones.
  for s in range(4):
    assert (ink[:, s + 1][ink[:, s] == 1] == 1).all()
  natural = area[:, 2]
  assert (area[:, 0] > 0.3 * natural).all() and (area[:, 4] < 3 * natural).all()


def test_digits_splits_are_disjoint_scans():
  grid = np.stack(np.meshgrid(*[np.arange(s) for s in digits.FACTOR_SIZES], indexing='ij'),
                  -1).reshape(-1, 4)
  split = digits.split_of(grid)
  assert (split == 'train').sum() == 49_000 and (split == 'test').sum() == 11_900
  train = set(map(tuple, grid[split == 'train'][:, [0, 3]].tolist()))
  test = set(map(tuple, grid[split == 'test'][:, [0, 3]].tolist()))
  assert not train & test and len(train) == 1400 and len(test) == 340


# --- Mixture of digits. ---------------------------------------------------------------------


def test_mixture_classes_are_balanced_pairs_of_two_different_digits():
  rng = np.random.default_rng(0)
  f = digit_mixture.sample_factors(rng, 1_000)
  labels = digit_mixture.pair_label(f[:, 0], f[:, 1])
  counts = np.bincount(labels, minlength=45)
  assert counts.size == 45 and counts.max() - counts.min() <= 1
  assert (f[:, 0] < f[:, 1]).all() and (f[:, 8] == digit_mixture.NO_DISTRACTOR).all()
  np.testing.assert_array_equal(digit_mixture.pairs()[labels], f[:, :2])
  assert digit_mixture.pair_label(np.array([6]), np.array([3]))[0] == digit_mixture.pair_label(
      np.array([3]), np.array([6]))[0]
  corners = f[:, [4, 5, 6, 7]].reshape(-1, 2, 2)
  assert (digit_mixture.box_iou(corners[:, 0], corners[:, 1]) <= 0.1).all()
  assert corners.min() == 0 and corners.max() == 28
  # The usefulness variant: 28 classes over 0..7, and an 8 or a 9 in every image.
  g = digit_mixture.sample_factors(rng, 840, class_digits=range(8), distractors=(8, 9))
  labels = digit_mixture.pair_label(g[:, 0], g[:, 1], range(8))
  assert (np.bincount(labels, minlength=28) == 30).all()
  assert set(np.unique(g[:, 8]).tolist()) == {8, 9} and (g[:, :2] < 8).all()
  corners = g[:, [4, 5, 6, 7, 10, 11]].reshape(-1, 3, 2)
  for i, j in ((0, 1), (0, 2), (1, 2)):
    assert (digit_mixture.box_iou(corners[:, i], corners[:, j]) <= 0.1).all()
  with pytest.raises(ValueError, match='not one of the classes'):
    digit_mixture.pair_label(np.array([8]), np.array([9]), range(8))


def test_mixture_masks_cover_their_digits_and_nothing_else():
  rng = np.random.default_rng(1)
  f = np.concatenate([
      digit_mixture.sample_factors(rng, 40),
      digit_mixture.sample_factors(rng, 40, class_digits=range(8), distractors=(8, 9))])
  images = digit_mixture.render(f)
  assert images.shape == (80, 56, 56, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, digit_mixture.render(f))
  masks, names = digit_mixture.concept_masks(f)
  assert masks.shape == (80, 56, 56, 10) and names == tuple('0123456789')
  # The union of the masks is exactly the image's ink (pixels >= 0.5).
  np.testing.assert_array_equal(masks.any(-1), images[..., 0] >= 128)
  for i, row in enumerate(f):
    shown = {row[0], row[1]} | ({row[8]} if row[8] != digit_mixture.NO_DISTRACTOR else set())
    present = set(np.flatnonzero(masks[i].any(axis=(0, 1))).tolist())
    assert present == shown, (i, present, shown)
    # Each digit's mask lies in its own 28x28 patch and fills a plausible part of it.
    for d, (r, c) in ((row[0], row[4:6]), (row[1], row[6:8])):
      inside = np.zeros((56, 56), bool)
      inside[r : r + 28, c : c + 28] = True
      assert not (masks[i, ..., d] & ~inside).any()
      assert 20 < masks[i, ..., d].sum() < 400
  # Moving a digit by a whole patch moves its mask by the same amount.
  row = np.array([[3, 6, 5, 9, 0, 0, 28, 28, 10, 0, 0, 0]])
  moved = row.copy()
  moved[0, 5] = 28
  a, b = digit_mixture.concept_masks(row)[0][0], digit_mixture.concept_masks(moved)[0][0]
  np.testing.assert_array_equal(b[:, 28:, 3], a[:, :28, 3])
  np.testing.assert_array_equal(b[..., 6], a[..., 6])
  assert not b[:, :28, 3].any()


def test_mixture_rejects_bad_factors():
  with pytest.raises(ValueError, match='shape'):
    digit_mixture.render(np.zeros((1, 11), np.int64))
  with pytest.raises(ValueError, match='outside'):
    digit_mixture.render(np.asarray([digit_mixture.FACTOR_SIZES], np.int64))
  assert digit_mixture.render(np.zeros((0, 12), np.int64)).shape == (0, 56, 56, 1)


# --- Grey-level disks. ----------------------------------------------------------------------


def test_grey_disks_are_disks_scaled_by_their_grey_level():
  levels = grey_disks.factor_values('grey_level')
  np.testing.assert_allclose(levels[[0, 8, 16]], [0.2, 0.6, 1.0])
  radii = np.arange(0, 128, 9)
  white = grey_disks.render(np.stack([radii, np.full_like(radii, 16)], -1))
  np.testing.assert_array_equal(white, disks.render(radii[:, None]))
  for g in range(17):
    image = grey_disks.render(np.stack([radii, np.full_like(radii, g)], -1))
    np.testing.assert_allclose(image.astype(float), levels[g] * white, atol=1.0)  # two roundings
    assert abs(int(image[radii > 8].max()) - 255 * levels[g]) <= 0.5 + 1e-9
  assert not grey_disks.render(np.array([[0, 5]])).any()  # radius 0: empty at any level
  np.testing.assert_array_equal(grey_disks.holdout_mask(np.array([[44, 3], [80, 3]])),
                                [True, False])

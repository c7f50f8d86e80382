"""Grids, PNG/GIF files, latent traversals and heatmaps (numpy + Pillow, no device needed)."""

import os

import numpy as np
from PIL import Image
import pytest

from disentangle_jax.visualization import heatmap, images, traversals


def _images(n, h=5, w=4, c=1, seed=0):
  return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


# Grids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize('c', [1, 3])
def test_image_grid_shape_padding_and_values(c):
  x = _images(5, h=6, w=4, c=c)
  grid = images.image_grid(x, ncols=3, padding=2, pad_value=1.0)
  assert grid.dtype == np.uint8
  # 2 rows, 3 columns; a 2-pixel band around and between the cells.
  assert grid.shape == (2 * (6 + 2) + 2, 3 * (4 + 2) + 2, c)
  expected = images.to_uint8(x)
  for k in range(5):
    r, q = divmod(k, 3)
    top, left = 2 + r * 8, 2 + q * 6
    np.testing.assert_array_equal(grid[top : top + 6, left : left + 4], expected[k])
  # The padding bands and the empty sixth cell are pad_value.
  assert np.all(grid[:2] == 255) and np.all(grid[:, :2] == 255)
  assert np.all(grid[10:16, 2 + 2 * 6 : 2 + 2 * 6 + 4] == 255)


def test_image_grid_uint8_input_grayscale_and_scale():
  x = (np.arange(2 * 3 * 3) % 256).astype(np.uint8).reshape(2, 3, 3)  # [N, H, W]
  grid = images.image_grid(x, ncols=2, padding=1, pad_value=0.0, scale=2)
  assert grid.shape == (1 + 6 + 1, 1 + 2 * (6 + 1), 1)
  np.testing.assert_array_equal(grid[1:7, 1:7, 0], np.kron(x[0], np.ones((2, 2), np.uint8)))
  assert grid[0, 0, 0] == 0


def test_to_uint8_clips_and_maps_nan():
  out = images.to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]))
  np.testing.assert_array_equal(out, [0, 0, 128, 255, 255, 0])


def test_image_grid_rejects_bad_channels():
  with pytest.raises(ValueError, match='C in'):
    images.image_grid(np.zeros((2, 4, 4, 2)), ncols=2)


def test_labelled_grid_keeps_cells_and_adds_label_space():
  cells = _images(6, h=8, w=8).reshape(2, 3, 8, 8, 1)
  bare = images.labelled_grid(cells, scale=1, padding=2)
  assert bare.shape == (2 + 2 * 10, 2 + 3 * 10, 1)
  labelled = images.labelled_grid(
      cells, row_labels=['z0', 'z1'], col_labels=['a', 'b', 'c'], title='t', scale=1
  )
  assert labelled.shape[0] > bare.shape[0] and labelled.shape[1] > bare.shape[1]
  # Labels are drawn: some dark pixels exist outside the cells on the white background.
  assert labelled[:, :10].min() < 128


def test_labelled_grid_auto_scale_upsamples_small_images():
  cells = _images(2, h=28, w=28).reshape(1, 2, 28, 28, 1)
  grid = images.labelled_grid(cells)  # 28 px -> x3 = 84 px cells
  assert grid.shape == (2 + 84 + 2, 2 + 2 * (84 + 2), 1)
  first = np.kron(images.to_uint8(cells[0, 0, ..., 0]), np.ones((3, 3)))
  np.testing.assert_array_equal(grid[2 : 2 + 84, 2 : 2 + 84, 0], first)


def test_reconstruction_grid_puts_inputs_above_reconstructions():
  x = np.zeros((10, 64, 64, 1), np.float32)
  y = np.ones((10, 64, 64, 1), np.float32)
  grid = images.reconstruction_grid(x, y, max_images=10, ncols=5, labels=False)
  # Two pairs of rows of 5; a wider gap between the pairs than within them.
  assert grid.shape[1] == 2 + 5 * 66
  assert grid.shape[0] == 2 + 4 * 66 + 6
  first_cell = slice(2, 66)
  assert np.all(grid[first_cell, first_cell] == 0)  # an input (black)
  assert np.all(grid[68:132, first_cell] == 255)  # its reconstruction (white) just below
  assert np.all(grid[140:204, first_cell] == 0)  # the next pair's inputs after the gap


def test_reconstruction_grid_limits_and_checks_shapes():
  grid = images.reconstruction_grid(_images(40, 8, 8), _images(40, 8, 8, seed=1), max_images=16)
  assert grid.ndim == 3
  with pytest.raises(ValueError, match='differ in shape'):
    images.reconstruction_grid(_images(4), _images(3))


# Files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize('c', [1, 3])
def test_png_round_trip_is_exact_and_atomic(tmp_path, c):
  image = (np.random.default_rng(0).random((7, 9, c)) * 255).astype(np.uint8)
  path = tmp_path / 'sub' / 'x.png'
  images.save_png(str(path), image)
  with Image.open(path) as im:
    back = np.asarray(im)
  np.testing.assert_array_equal(back.reshape(image.shape), image)
  assert os.listdir(path.parent) == ['x.png']  # no temporary file left behind


def test_failed_write_leaves_no_temporary_file(tmp_path):
  with pytest.raises(ValueError):
    images.save_png(str(tmp_path / 'bad.png'), np.zeros((4, 4, 2), np.uint8))
  images.save_png(str(tmp_path / 'ok.png'), np.zeros((4, 4), np.uint8))
  assert os.listdir(tmp_path) == ['ok.png']


def test_gif_round_trip_frames_and_size(tmp_path):
  frames = [np.full((12, 20, 3), 20 * k, np.uint8) for k in range(6)]
  path = tmp_path / 'a.gif'
  images.save_gif(str(path), frames, duration_ms=50)
  with Image.open(path) as im:
    assert im.n_frames == 6
    assert im.size == (20, 12)
    assert im.info.get('loop') == 0
    assert im.info.get('duration') == 50
  assert os.listdir(tmp_path) == ['a.gif']


# Traversals ----------------------------------------------------------------------------------

_SIZE = 6


def _linear_decoder(weights):
  """codes [B, D] -> images [B, 6, 6, 1]; pixel block d responds to code dimension d only."""
  calls = []

  def decode_fn(codes):
    codes = np.asarray(codes)
    calls.append(codes.copy())
    return (codes @ weights).reshape(-1, _SIZE, _SIZE, 1)

  return decode_fn, calls


def _block_weights(latent_dim):
  weights = np.zeros((latent_dim, _SIZE * _SIZE), np.float32)
  for d in range(latent_dim):
    weights[d, d * 4 : d * 4 + 4] = 1.0  # dimension d lights pixels 4d..4d+3
  return weights


def test_latent_traversal_one_call_with_the_right_codes():
  latent_dim = 5
  decode_fn, calls = _linear_decoder(_block_weights(latent_dim))
  code = np.arange(latent_dim, dtype=np.float32) / 10
  values = np.array([-1.0, 0.0, 2.0])
  out = traversals.latent_traversal(decode_fn, code[None], dims=[3, 1], values=values)
  assert out.shape == (2, 3, _SIZE, _SIZE, 1)
  assert len(calls) == 1  # vectorised: every dim x value in one batch
  sent = calls[0].reshape(2, 3, latent_dim)
  for i, d in enumerate([3, 1]):
    for j, v in enumerate(values):
      expected = code.copy()
      expected[d] = v
      np.testing.assert_allclose(sent[i, j], expected)


def test_traversing_a_dimension_changes_only_what_it_controls():
  latent_dim = 4
  weights = _block_weights(latent_dim)
  decode_fn, _ = _linear_decoder(weights)
  code = np.full(latent_dim, 0.25, np.float32)
  out = traversals.latent_traversal(decode_fn, code, values=np.linspace(-2, 2, 5))
  flat = out.reshape(latent_dim, 5, -1)
  for d in range(latent_dim):
    changed = np.ptp(flat[d], axis=0) > 0
    np.testing.assert_array_equal(changed, weights[d] > 0)


def test_latent_traversal_relative_and_per_dimension_values():
  decode_fn, calls = _linear_decoder(_block_weights(3))
  code = np.array([1.0, 2.0, 3.0], np.float32)
  values = [[-1, 1], [-5, 5]]
  traversals.latent_traversal(decode_fn, code, dims=[0, 2], values=values, relative=True)
  sent = calls[0].reshape(2, 2, 3)
  np.testing.assert_allclose(sent[0, :, 0], [0.0, 2.0])
  np.testing.assert_allclose(sent[1, :, 2], [-2.0, 8.0])
  np.testing.assert_allclose(sent[:, :, 1], 2.0)


def test_latent_traversal_rejects_bad_dims():
  decode_fn, _ = _linear_decoder(_block_weights(3))
  with pytest.raises(ValueError, match='out of range'):
    traversals.latent_traversal(decode_fn, np.zeros(3), dims=[3])


def test_values_from_codes_spans_each_dimension():
  codes = np.stack([np.linspace(0, 1, 101), np.linspace(-10, 10, 101)], axis=1)
  values = traversals.values_from_codes(codes, num=4, quantiles=(0.0, 1.0))
  np.testing.assert_allclose(values, [np.linspace(0, 1, 4), np.linspace(-10, 10, 4)])


def test_traversal_grid_and_gif_frames(tmp_path):
  decode_fn, _ = _linear_decoder(_block_weights(4))
  values = np.linspace(-1, 1, 5)
  t = traversals.latent_traversal(decode_fn, np.zeros(4), values=values)
  bare = traversals.traversal_grid(t, labels=False, scale=1)
  assert bare.shape == (2 + 4 * (_SIZE + 2), 2 + 5 * (_SIZE + 2), 1)
  labelled = traversals.traversal_grid(t, values=values, kl=[1, 2, 3, 4])
  assert labelled.ndim == 3 and labelled.shape[1] > bare.shape[1]

  frames = traversals.traversal_gif_frames(t, values=values)
  assert len(frames) == 2 * 5 - 2  # there and back, ends not repeated
  assert len({f.shape for f in frames}) == 1
  np.testing.assert_array_equal(frames[1], frames[-1])  # value 1 on the way out and back
  assert len(traversals.traversal_gif_frames(t, ping_pong=False)) == 5
  images.save_gif(str(tmp_path / 't.gif'), frames)
  with Image.open(tmp_path / 't.gif') as im:
    assert im.n_frames == len(frames)


def test_traversal_gif_wraps_many_dimensions():
  decode_fn, _ = _linear_decoder(np.zeros((23, _SIZE * _SIZE), np.float32))
  t = traversals.latent_traversal(decode_fn, np.zeros(23), values=[0.0, 1.0])
  frames = traversals.traversal_gif_frames(t, scale=1, labels=False)
  assert frames[0].shape == (2 + 3 * (_SIZE + 2), 2 + 10 * (_SIZE + 2), 1)


# Heatmap -------------------------------------------------------------------------------------


def test_viridis_lightness_increases():
  lum = heatmap.viridis(np.linspace(0, 1, 50)) @ np.array([0.299, 0.587, 0.114])
  assert np.all(np.diff(lum) > 0)


def test_heatmap_png_size_and_colour_order(tmp_path):
  matrix = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, np.nan]])
  kwargs = dict(row_labels=['z0', 'z1'], col_labels=['shape', 'scale', 'orientation'], title='t')
  image, layout = heatmap.render_heatmap(matrix, **kwargs)
  path = tmp_path / 'h.png'
  heatmap.heatmap_png(str(path), matrix, **kwargs)
  with Image.open(path) as im:
    assert im.mode == 'RGB'
    assert im.size == (image.shape[1], image.shape[0])
    np.testing.assert_array_equal(np.asarray(im), image)
  top, left = layout['top'], layout['left']
  ch, cw = layout['cell_height'], layout['cell_width']
  assert image.shape[0] >= top + 2 * ch and image.shape[1] >= left + 3 * cw
  # Sample each cell near its corner (away from the printed value): lightness follows value.

  def corner(i, j):
    return image[top + i * ch + 2, left + j * cw + 2].astype(float)

  lum = [corner(i, j) @ [0.299, 0.587, 0.114] for i, j in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]]
  assert np.all(np.diff(lum) > 0)
  np.testing.assert_array_equal(corner(1, 2), heatmap._NAN_COLOR)
  assert layout['value_range'] == (0.0, 1.0)


def test_heatmap_respects_vmin_vmax_and_grows_with_size():
  small, _ = heatmap.render_heatmap(
      np.ones((2, 2)), row_labels='ab', col_labels='xy', vmin=0, vmax=2
  )
  big, layout = heatmap.render_heatmap(
      np.ones((4, 6)), row_labels='abcd', col_labels='uvwxyz', vmin=0, vmax=2
  )
  assert big.shape[0] > small.shape[0] and big.shape[1] > small.shape[1]
  mid = heatmap.viridis(0.5)
  np.testing.assert_array_equal(big[layout['top'] + 2, layout['left'] + 2], mid)
  with pytest.raises(ValueError, match='labels'):
    heatmap.render_heatmap(np.ones((2, 2)), row_labels='a', col_labels='xy')

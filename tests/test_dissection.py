"""Network Dissection: thresholds, IoU, the summary, the two-pass driver and activation capture."""

import numpy as np
import pytest

from disentangle_jax.analysis import activations as activations_lib
from disentangle_jax.analysis import dissection as dissection_driver
from disentangle_jax.metrics import dissection


def test_threshold_is_the_requested_top_quantile():
  values = np.arange(1000, dtype=np.float64)[:, None] * np.array([1.0, -2.0])  # two units
  thresholds = dissection.quantile_thresholds(values, top=0.1)
  np.testing.assert_allclose(thresholds, [np.quantile(values[:, 0], 0.9),
                                          np.quantile(values[:, 1], 0.9)])
  assert np.mean(values[:, 0] > thresholds[0]) == pytest.approx(0.1)
  assert np.mean(values[:, 1] > thresholds[1]) == pytest.approx(0.1)
  # Maps [N, h, w, U]: every position of every image is pooled; the default top is 0.5 %.
  rng = np.random.default_rng(0)
  maps = rng.normal(size=(50, 8, 10, 3))
  t = dissection.quantile_thresholds(maps)
  above = (maps > t).reshape(-1, 3).mean(axis=0)
  np.testing.assert_allclose(above, 0.005, atol=1.0 / (50 * 8 * 10))
  with pytest.raises(ValueError, match='top must lie'):
    dissection.quantile_thresholds(maps, top=0.0)


def test_iou_of_a_mask_with_itself_is_one_and_with_its_complement_zero():
  rng = np.random.default_rng(1)
  masks = rng.random((4, 12, 12, 1)) < 0.3
  maps = np.concatenate([masks, ~masks], axis=-1).astype(np.float32)  # unit 0 = mask, 1 = not
  inter, union = dissection.iou_counts(maps, [0.5, 0.5], masks)
  np.testing.assert_allclose(dissection.iou(inter, union), [[1.0], [0.0]])
  assert inter[0, 0] == masks.sum() and union[1, 0] == masks.size


def test_iou_is_accumulated_over_the_dataset_not_averaged_per_image():
  masks = np.zeros((2, 4, 4, 1), bool)
  masks[0, :2, :2] = True  # 4 px
  masks[1, :, :] = True  # 16 px
  maps = np.zeros((2, 4, 4, 1), np.float32)
  maps[0, :2, :2] = 1.0  # matches image 0
  maps[1, 0, 0] = 1.0  # 1 px of 16 in image 1
  inter, union = dissection.iou_counts(maps, [0.5], masks)
  # summed: (4 + 1) / (4 + 16) = 0.25; a per-image mean would say (1 + 1/16) / 2
  assert dissection.iou(inter, union)[0, 0] == pytest.approx(5 / 20)


def test_maps_are_upsampled_to_the_masks_before_binarising():
  maps = np.zeros((1, 2, 2, 1), np.float32)
  maps[0, 0, 0] = 1.0
  up = np.asarray(dissection.upsample(maps, (8, 8)))[0, ..., 0]
  assert up.shape == (8, 8) and up[:2, :2].min() == pytest.approx(1.0)
  assert up[6:, 6:].max() == pytest.approx(0.0) and up[4:, 4:].max() < 0.5  # bilinear
  masks = np.zeros((1, 8, 8, 2), bool)
  masks[0, :4, :4, 0] = True
  masks[0, 4:, 4:, 1] = True
  inter, union = dissection.iou_counts(maps, [0.5], masks)
  ious = dissection.iou(inter, union)
  assert ious[0, 0] > 0.5 and ious[0, 1] == 0.0


def test_summary_counts_detectors_above_the_iou_threshold_and_unique_concepts():
  ious = np.array([[0.30, 0.01, 0.0], [0.02, 0.05, 0.0], [0.039, 0.0, 0.0], [0.2, 0.1, 0.0]])
  s = dissection.summarize(ious, ['a', 'b', 'c'])
  assert s['best_concept_name'] == ['a', 'b', 'a', 'a']
  assert s['is_detector'].tolist() == [True, True, False, True]
  assert s['num_detectors'] == 3 and s['unique_concepts'] == ['a', 'b']
  assert s['num_unique_concepts'] == 2
  assert s['detectors_per_concept'] == {'a': 2, 'b': 1, 'c': 0}


def _probe(num=40, size=16, seed=0):
  rng = np.random.default_rng(seed)
  masks = np.zeros((num, size, size, 3), bool)
  for i in range(num):  # concept c: a random square
    for c in range(3):
      r, q = rng.integers(0, size - 4, 2)
      masks[i, r:r + 4, q:q + 4, c] = rng.random() < 0.7
  images = masks.astype(np.float32)  # three channels, one per concept

  def probe(with_masks):
    for s in range(0, num, 16):
      batch = {'image': images[s:s + 16]}
      if with_masks:
        batch['masks'], batch['concepts'] = masks[s:s + 16], ('x', 'y', 'z')
      yield batch

  return images, masks, probe


def test_dissect_finds_a_unit_that_is_a_concept_and_ignores_a_constant_one():
  images, masks, probe = _probe()

  def layer_fn(x):
    x = np.asarray(x)
    half = x[:, ::2, ::2]  # maps at half the masks' resolution
    unit_y = half[..., 1] + 0.01 * half[..., 0]  # concept 'y', slightly mixed
    constant = np.ones_like(unit_y)
    return {'layer': np.stack([unit_y, constant], axis=-1)}

  out = dissection_driver.dissect(layer_fn, probe, top=0.05)
  result = out['layer']
  summary = result['summary']
  assert summary['best_concept_name'][0] == 'y' and summary['is_detector'][0]
  assert result['iou'][0, 1] > 0.3
  assert not summary['is_detector'][1] and result['iou'][1].max() == 0.0
  assert out['_probe']['num_images'] == len(images)
  assert result['top_images'].shape == (dissection_driver.NUM_TOP_IMAGES, 2)
  figure = dissection_driver.unit_figure('layer', result, out['_probe'])
  assert figure.ndim == 3 and figure.shape[-1] == 3 and figure.dtype == np.uint8


def test_feature_maps_of_an_autoencoder_encoder_are_captured():
  import jax  # pylint: disable=g-import-not-at-top

  from configs import ae_dsprites  # pylint: disable=g-import-not-at-top
  from disentangle_jax.objectives import get_objective  # pylint: disable=g-import-not-at-top

  config = ae_dsprites.get_config('runlocal')
  objective = get_objective('ae')(config, (64, 64, 1))
  images = np.random.default_rng(0).random((2, 64, 64, 1)).astype(np.float32)
  params, state = objective.init(jax.random.key(0), {'image': images})
  maps = activations_lib.make_layer_fn(objective)(params, state, images)
  assert len(maps) >= 4
  shapes = [v.shape for v in maps.values()]
  assert all(len(s) == 4 and s[0] == 2 for s in shapes)
  assert shapes[0][1] > shapes[-1][1]  # in network order: the maps shrink
  with pytest.raises(ValueError, match='not among the feature maps'):
    activations_lib.make_layer_fn(objective, ['nope'])(params, state, images)

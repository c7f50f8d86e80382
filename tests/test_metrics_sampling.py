"""Sampled metrics (BetaVAE, FactorVAE, IRS sampling), the shared sampler and `evaluate`.

A tiny fake ground truth stands in for the renderers: its "images" are the one-hot encodings of
the factors, so encoders are plain functions of the factors.
"""

import importlib.util

import numpy as np
import pytest

from disentangle_jax import metrics
from disentangle_jax.metrics import betavae_score as bvae
from disentangle_jax.metrics import factorvae_score as fvae
from disentangle_jax.metrics import sampling


class FakeGroundTruth:
  """Factors (3, 4, 5); image = the concatenated one-hot codes of the factors, [n, 1, 1, 12]."""

  factor_names = ('a', 'b', 'c')

  def __init__(self, factor_sizes=(3, 4, 5)):
    self.factor_sizes = tuple(factor_sizes)
    self.image_shape = (1, 1, sum(self.factor_sizes))
    self.num_factors = len(self.factor_sizes)

  def sample_factors(self, rng, n):
    return rng.integers(0, self.factor_sizes, size=(n, len(self.factor_sizes)), dtype=np.int64)

  def images_for(self, factors):
    factors = np.asarray(factors)
    parts = [np.eye(s, dtype=np.float32)[factors[:, k]] for k, s in enumerate(self.factor_sizes)]
    return np.concatenate(parts, axis=1)[:, None, None, :]


def decode_factors(images, sizes=(3, 4, 5)):
  flat = np.asarray(images).reshape(len(images), -1)
  bounds = np.cumsum((0,) + tuple(sizes))
  return np.stack([flat[:, bounds[k] : bounds[k + 1]].argmax(1) for k in range(len(sizes))], 1)


def identity_encoder(images):
  """Each factor's value in [0, 1], one code dimension per factor."""
  return decode_factors(images) / (np.asarray((3, 4, 5)) - 1.0)


def rotated_encoder(images):
  """Factors a and b mixed in two dimensions: partly entangled."""
  z = identity_encoder(images)
  return np.stack([z[:, 0] + z[:, 1], z[:, 0] - z[:, 1], z[:, 2]], 1)


def make_noise_encoder(seed, dims=3):
  rng = np.random.default_rng(seed)
  return lambda images: rng.normal(size=(len(images), dims))


def constant_encoder(images):
  return np.zeros((len(images), 4))


GT = FakeGroundTruth()


# --- the shared sampler -----------------------------------------------------------------------


def test_sample_codes_and_factors_shapes_and_determinism():
  codes, factors = sampling.sample_codes_and_factors(
    GT, identity_encoder, 50, np.random.default_rng(0), batch_size=16
  )
  assert codes.shape == (50, 3) and factors.shape == (50, 3)
  assert codes.dtype == np.float64 and factors.dtype == np.int64
  np.testing.assert_allclose(codes, factors / np.array([2.0, 3.0, 4.0]))
  codes2, factors2 = sampling.sample_codes_and_factors(
    GT, identity_encoder, 50, np.random.default_rng(0), batch_size=7
  )
  np.testing.assert_array_equal(factors, factors2)
  np.testing.assert_array_equal(codes, codes2)


def test_encode_in_batches_pads_to_one_shape():
  shapes = []

  def encoder(images):
    shapes.append(images.shape[0])
    return identity_encoder(images)

  images = GT.images_for(GT.sample_factors(np.random.default_rng(1), 37))
  codes = sampling.encode_in_batches(encoder, images, batch_size=16)
  assert codes.shape == (37, 3)
  assert set(shapes) == {16}
  np.testing.assert_allclose(codes, identity_encoder(images))


def test_nan_codes_are_a_clear_error():
  def nan_encoder(images):
    z = identity_encoder(images)
    z[:, 1] = np.nan
    return z

  with pytest.raises(ValueError, match='NaN'):
    sampling.sample_codes_and_factors(GT, nan_encoder, 10, np.random.default_rng(0))


def test_bad_encoder_shape_is_a_clear_error():
  with pytest.raises(ValueError, match='encode_fn'):
    sampling.sample_codes_and_factors(
      GT, lambda images: np.zeros(len(images)), 10, np.random.default_rng(0)
    )


# --- BetaVAE ----------------------------------------------------------------------------------

SMALL_BVAE = dict(num_train=300, num_eval=200, batch_size=16)


def test_betavae_identity_code_scores_one():
  scores = bvae.betavae_score(GT, identity_encoder, np.random.default_rng(0), **SMALL_BVAE)
  assert scores['train_accuracy'] >= 0.99
  assert scores['eval_accuracy'] >= 0.99


def test_betavae_random_code_is_at_chance():
  scores = bvae.betavae_score(
    GT, make_noise_encoder(0), np.random.default_rng(0), num_train=600, num_eval=600, batch_size=16
  )
  assert abs(scores['eval_accuracy'] - 1 / 3) < 0.08


def test_betavae_falls_as_noise_grows():
  rng = lambda: np.random.default_rng(3)  # noqa: E731
  scores = []
  for scale in (0.0, 1.0, 3.0):
    noise = make_noise_encoder(1)
    encoder = lambda im, s=scale, n=noise: identity_encoder(im) + s * n(im)  # noqa: E731
    scores.append(bvae.betavae_score(GT, encoder, rng(), **SMALL_BVAE)['eval_accuracy'])
  assert scores[0] > scores[1] > scores[2]


def test_betavae_is_deterministic_and_chunk_independent():
  a = bvae.betavae_score(GT, rotated_encoder, np.random.default_rng(5), **SMALL_BVAE)
  b = bvae.betavae_score(GT, rotated_encoder, np.random.default_rng(5), **SMALL_BVAE)
  assert a == b
  x1, y1 = bvae.betavae_features(GT, rotated_encoder, 40, np.random.default_rng(2), batch_size=8)
  x2, y2 = bvae.betavae_features(
    GT,
    rotated_encoder,
    40,
    np.random.default_rng(2),
    batch_size=8,
    chunk_size=16,
    encode_batch_size=5,
  )
  np.testing.assert_array_equal(y1, y2)
  np.testing.assert_allclose(x1, x2)


def test_betavae_features_by_hand():
  """The fixed factor's dimension of an identity code has zero mean |z1 - z2|."""
  x, y = bvae.betavae_features(GT, identity_encoder, 30, np.random.default_rng(0), batch_size=8)
  assert x.shape == (30, 3) and y.shape == (30,)
  np.testing.assert_array_equal(x[np.arange(30), y], 0.0)
  others = np.ones_like(x, bool)
  others[np.arange(30), y] = False
  assert np.all(x[others] > 0)


def test_betavae_core_classifiers_and_degenerate_inputs():
  rng = np.random.default_rng(0)
  y = rng.integers(3, size=200)
  x = np.eye(3)[y] + 0.1 * rng.normal(size=(200, 3))
  for classifier in bvae.CLASSIFIERS:
    s = bvae.betavae_score_from_features(x[:150], y[:150], x[150:], y[150:], classifier=classifier)
    assert s['eval_accuracy'] == 1.0
  with pytest.raises(ValueError, match='classifier'):
    bvae.betavae_score_from_features(x, y, x, y, classifier='svm')
  # A single training class: the constant classifier.
  s = bvae.betavae_score_from_features(x[:5], np.zeros(5, int), x[:4], np.array([0, 0, 1, 2]))
  assert s == {'train_accuracy': 1.0, 'eval_accuracy': 0.5}
  bad = x.copy()
  bad[0, 0] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    bvae.betavae_score_from_features(bad, y, x, y)
  with pytest.raises(ValueError, match='2 factors'):
    bvae.betavae_score(
      FakeGroundTruth((4,)),
      lambda im: im.reshape(len(im), -1),
      np.random.default_rng(0),
      num_train=4,
      num_eval=4,
    )


# --- FactorVAE --------------------------------------------------------------------------------

SMALL_FVAE = dict(num_variance_estimate=500, num_train=300, num_eval=200, batch_size=16)


def test_factorvae_identity_code_scores_one():
  s = fvae.factorvae_score(GT, identity_encoder, np.random.default_rng(0), **SMALL_FVAE)
  assert s['train_accuracy'] == 1.0 and s['eval_accuracy'] == 1.0
  assert s['num_active_dims'] == 3
  assert s['train_votes'].shape == (3, 3) and s['train_votes'].sum() == 300
  # Every vote lands on the diagonal.
  np.testing.assert_array_equal(s['train_votes'], np.diag(np.diag(s['train_votes'])))


def test_factorvae_constant_code_scores_zero():
  s = fvae.factorvae_score(GT, constant_encoder, np.random.default_rng(0), **SMALL_FVAE)
  assert s['train_accuracy'] == 0.0 and s['eval_accuracy'] == 0.0 and s['num_active_dims'] == 0


def test_factorvae_pruning_threshold_is_configurable():
  # Dimensions of an identity code have std about 0.35-0.41; a threshold of 0.5 prunes them all.
  s = fvae.factorvae_score(
    GT, identity_encoder, np.random.default_rng(0), prune_threshold=0.5, **SMALL_FVAE
  )
  assert s['num_active_dims'] == 0 and s['eval_accuracy'] == 0.0


def test_factorvae_ignores_pruned_dimensions():
  """A constant extra dimension has the smallest local variance but is pruned, not voted for."""
  encoder = lambda im: np.concatenate([identity_encoder(im), np.zeros((len(im), 1))], 1)  # noqa
  s = fvae.factorvae_score(GT, encoder, np.random.default_rng(0), **SMALL_FVAE)
  assert s['num_active_dims'] == 3 and s['eval_accuracy'] == 1.0
  assert s['train_votes'][:, 3].sum() == 0


def test_factorvae_random_and_rotated_codes_score_lower():
  rng = lambda: np.random.default_rng(1)  # noqa: E731
  random = fvae.factorvae_score(GT, make_noise_encoder(0), rng(), **SMALL_FVAE)
  assert random['eval_accuracy'] < 0.6
  rotated = fvae.factorvae_score(GT, rotated_encoder, rng(), **SMALL_FVAE)
  assert rotated['eval_accuracy'] < 0.9


def test_factorvae_is_deterministic():
  a = fvae.factorvae_score(GT, rotated_encoder, np.random.default_rng(4), **SMALL_FVAE)
  b = fvae.factorvae_score(GT, rotated_encoder, np.random.default_rng(4), **SMALL_FVAE)
  assert a['eval_accuracy'] == b['eval_accuracy']
  np.testing.assert_array_equal(a['train_votes'], b['train_votes'])


def test_factorvae_cores_by_hand():
  votes = np.array([[5, 0, 1], [2, 3, 0], [0, 1, 0]])
  # Classifier: dim 0 -> factor 0, dim 1 -> factor 1, dim 2 -> factor 0 (column all-but-one 0).
  eval_votes = np.array([[1, 1, 1], [1, 1, 1], [0, 0, 2]])
  s = fvae.factorvae_accuracy_from_votes(votes, eval_votes)
  assert s['train_accuracy'] == pytest.approx((5 + 3 + 1) / 12)
  assert s['eval_accuracy'] == pytest.approx((1 + 1 + 1) / 8)
  assert (
    fvae.factorvae_accuracy_from_votes(np.zeros((2, 2)), np.zeros((2, 2)))['eval_accuracy'] == 0.0
  )
  np.testing.assert_array_equal(
    fvae.votes_matrix(np.array([0, 0, 2, 1]), np.array([1, 1, 0, 2]), 3, 3),
    [[0, 2, 0], [0, 0, 1], [1, 0, 0]],
  )
  local = np.array(
    [
      [[0.0, 0.0, 5.0], [1.0, 0.0, -5.0]],  # dim 1 constant, dim 0 ratio 0.5/1
      [[0.0, 1.0, 0.0], [0.0, 3.0, 0.1]],
    ]
  )  # dim 0 constant
  np.testing.assert_array_equal(
    fvae.vote_argmins(local, np.array([1.0, 1.0, 1.0]), np.array([True, True, True])), [1, 0]
  )
  # Inactive dims are skipped; the returned index is the code dimension.
  np.testing.assert_array_equal(
    fvae.vote_argmins(local, np.array([1.0, 1.0, 1.0]), np.array([False, False, True])), [2, 2]
  )
  np.testing.assert_array_equal(
    fvae.prune_dims([0.0, 0.0024, 0.0025, 1.0]), [False, False, True, True]
  )
  np.testing.assert_array_equal(fvae.prune_dims([0.0, 1e-9], threshold=0.0), [False, True])


# --- IRS sampling -----------------------------------------------------------------------------


@pytest.mark.skipif(
  importlib.util.find_spec('disentangle_jax.metrics.irs') is None,
  reason='the IRS array core has not landed',
)
def test_irs_sampled_is_the_core_on_a_sample():
  from disentangle_jax.metrics import irs  # pylint: disable=g-import-not-at-top

  s = sampling.irs_sampled(GT, identity_encoder, np.random.default_rng(0), num_points=1000)
  assert s['IRS'] == pytest.approx(1.0)
  codes, factors = sampling.sample_codes_and_factors(
    GT, rotated_encoder, 1000, np.random.default_rng(1)
  )
  direct = irs.irs(codes, factors)
  wrapped = sampling.irs_sampled(GT, rotated_encoder, np.random.default_rng(1), num_points=1000)
  assert wrapped['IRS'] == pytest.approx(direct['IRS'])
  assert wrapped['IRS'] < 0.99


# --- evaluate ---------------------------------------------------------------------------------

SETTINGS = {
  'betavae': dict(num_train=200, num_eval=100, batch_size=8, encode_batch_size=16),
  'factorvae': dict(
    num_variance_estimate=300, num_train=200, num_eval=100, batch_size=8, encode_batch_size=100
  ),
  'retrieval': dict(num_validation=200),
  'linear_probe': dict(max_iter=50),
}


def test_evaluate_runs_each_metric_with_shared_samples():
  names = ['betavae', 'factorvae', 'retrieval', 'linear_probe']
  images_encoded = []

  def encoder(images):
    images_encoded.append(len(images))
    return identity_encoder(images)

  out = metrics.evaluate(
    names,
    ground_truth=GT,
    encode_fn=encoder,
    rng_seed=0,
    settings=SETTINGS,
    num_train=400,
    num_test=300,
    batch_size=20,
  )
  assert sorted(out) == sorted(names)
  assert out['betavae']['eval_accuracy'] >= 0.99
  assert out['factorvae']['eval_accuracy'] == 1.0
  # An identity code: each factor's own dimension retrieves it perfectly and is chosen.
  np.testing.assert_array_equal(out['retrieval']['chunk_for_attribute'], [0, 1, 2])
  np.testing.assert_allclose(out['retrieval']['map'], 1.0)
  np.testing.assert_allclose(out['linear_probe']['accuracy'], 1.0, atol=0.02)
  # The shared train and test samples are encoded once for both array metrics (every batch size
  # here divides its sample, so no padding is encoded).
  betavae_images = (200 + 100) * 8 * 2
  factorvae_images = 300 + (200 + 100) * 8
  assert sum(images_encoded) == betavae_images + factorvae_images + 400 + 300


def test_evaluate_uses_named_streams():
  """A metric's numbers do not depend on which other metrics run."""
  alone = metrics.evaluate(
    ['betavae'], ground_truth=GT, encode_fn=rotated_encoder, rng_seed=0, settings=SETTINGS
  )
  with_others = metrics.evaluate(
    ['factorvae', 'betavae'],
    ground_truth=GT,
    encode_fn=rotated_encoder,
    rng_seed=0,
    settings=SETTINGS,
  )
  assert alone['betavae'] == with_others['betavae']
  other_seed = metrics.evaluate(
    ['betavae'], ground_truth=GT, encode_fn=rotated_encoder, rng_seed=1, settings=SETTINGS
  )
  assert other_seed['betavae'] != alone['betavae']


def test_evaluate_runs_the_array_cores_on_the_shared_samples():
  """Whichever array-core metrics are registered run through each input kind without error."""
  names = [
    n for n in ('mig', 'irs', 'unsupervised', 'modularity_explicitness') if n in metrics.available()
  ]
  if not names:
    pytest.skip('no array-core metric has landed')
  out = metrics.evaluate(
    names, ground_truth=GT, encode_fn=identity_encoder, rng_seed=0, num_train=300, num_test=200
  )
  assert sorted(out) == sorted(names)
  for name in names:
    assert out[name] and all(
      np.all(np.isfinite(np.asarray(v, float)))
      for v in out[name].values()
      if np.asarray(v).dtype.kind in 'fiub'
    )
  if 'irs' in out:
    assert out['irs']['IRS'] == pytest.approx(1.0)


def test_registry():
  assert {'betavae', 'factorvae', 'retrieval', 'linear_probe'} <= set(metrics.available())
  assert metrics.get_metric('betavae').inputs == 'ground_truth'
  with pytest.raises(ValueError, match='unknown metric'):
    metrics.get_metric('no_such_metric')
  with pytest.raises(ValueError, match='inputs'):
    metrics.Metric('x', lambda: {}, 'images')


# --- agreement with disentanglement_lib (optional: only where it is installed) -----------------


class DlibGroundTruth:
  """The fake ground truth behind dlib's GroundTruthData interface (RandomState sampling)."""

  def __init__(self, gt):
    self.gt = gt
    self.num_factors = gt.num_factors
    self.factors_num_values = list(gt.factor_sizes)

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(s, size=num) for s in self.gt.factor_sizes], axis=1)

  def sample_observations_from_factors(self, factors, random_state):
    del random_state
    return self.gt.images_for(factors)

  def sample_observations(self, num, random_state):
    return self.sample_observations_from_factors(self.sample_factors(num, random_state), None)


def _dlib_module(name):
  from disentangle_jax.metrics import _dlib_reference  # pylint: disable=g-import-not-at-top

  _dlib_reference.load('utils')  # installs the gin stand-in
  return importlib.import_module(f'disentanglement_lib.evaluation.metrics.{name}')


needs_dlib = pytest.mark.skipif(
  importlib.util.find_spec('disentanglement_lib') is None,
  reason='disentanglement_lib is not installed',
)


@needs_dlib
@pytest.mark.slow
def test_betavae_agrees_with_dlib():
  encoder = rotated_encoder
  ours = bvae.betavae_score(GT, encoder, np.random.default_rng(0), num_train=2000, num_eval=2000)
  ref = _dlib_module('beta_vae').compute_beta_vae_sklearn(
    DlibGroundTruth(GT),
    encoder,
    np.random.RandomState(0),
    batch_size=64,
    num_train=2000,
    num_eval=2000,
  )
  assert 0.5 < ref['eval_accuracy'] < 0.99  # a case that is not saturated
  assert ours['eval_accuracy'] == pytest.approx(ref['eval_accuracy'], abs=0.02)


@needs_dlib
@pytest.mark.slow
def test_factorvae_agrees_with_dlib():
  encoder = rotated_encoder
  ours = fvae.factorvae_score(
    GT, encoder, np.random.default_rng(0), num_variance_estimate=5000, num_train=3000, num_eval=3000
  )
  ref = _dlib_module('factor_vae').compute_factor_vae(
    DlibGroundTruth(GT),
    encoder,
    np.random.RandomState(0),
    batch_size=64,
    num_train=3000,
    num_eval=3000,
    num_variance_estimate=5000,
  )
  assert 0.5 < ref['eval_accuracy'] < 0.99
  assert ours['eval_accuracy'] == pytest.approx(ref['eval_accuracy'], abs=0.02)
  assert ours['num_active_dims'] == ref['num_active_dims']

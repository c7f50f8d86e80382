"""The classifier objective, its configs, the unit analysis and the launch tools on a tiny run."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import attributes_celeba, digits_classifier
from disentangle_jax.analysis import units
from disentangle_jax.data import pipeline
from disentangle_jax.data.info import DatasetInfo
from disentangle_jax.metrics import unit_alignment
from disentangle_jax.objectives import classifier as classifier_lib
from disentangle_jax.objectives import get_objective
from disentangle_jax.training import train as train_lib
import train_util

SHAPE = (56, 56, 1)


def _objective(arg='runlocal', **objective):
  config = digits_classifier.get_config(arg)
  config.objective.num_classes = 45  # no data set in these tests
  config.objective.update(objective)
  return get_objective('classifier')(config, SHAPE)


def _images(n=8, seed=0):
  return np.random.default_rng(seed).random((n, *SHAPE)).astype(np.float32)


def test_softmax_loss_and_accuracy_match_hand_values():
  objective = _objective()
  logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
  targets = jnp.array([0, 1])
  loss, metrics = objective.loss_and_metrics(logits, targets)
  expected = np.mean([np.log(np.exp([2, 0, 0]).sum()) - 2, np.log(np.exp([0, 1, 3]).sum()) - 1])
  assert float(loss) == pytest.approx(expected, rel=1e-6)
  assert float(metrics['accuracy']) == 0.5


def test_weighted_sigmoid_cross_entropy_and_positive_weights():
  logits = jnp.array([[0.0, 2.0]])
  labels = jnp.array([[1, 0]])
  log_sig = lambda x: -np.log1p(np.exp(-x))  # noqa: E731
  plain = -(log_sig(0.0) + log_sig(-2.0)) / 2
  assert float(classifier_lib.weighted_sigmoid_cross_entropy(logits, labels)) == pytest.approx(plain)
  weighted = -(3.0 * log_sig(0.0) + log_sig(-2.0)) / 2
  got = classifier_lib.weighted_sigmoid_cross_entropy(logits, labels, pos_weight=[3.0, 5.0])
  assert float(got) == pytest.approx(weighted)
  assert classifier_lib.weighted_sigmoid_cross_entropy(
      jnp.zeros((3, 2), jnp.bfloat16), jnp.ones((3, 2)), reduction='none').dtype == jnp.float32
  labels = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 1, 1]])
  np.testing.assert_allclose(classifier_lib.positive_weights(labels), [3.0, 3.0, 1.0])


def test_classification_scores_per_class_and_balanced():
  pred, target = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 2])
  s = classifier_lib.classification_scores(pred, target, 'softmax', 4)
  assert s['accuracy'] == pytest.approx(0.8)
  np.testing.assert_allclose(s['per_class_accuracy'][:3], [1.0, 0.5, 1.0])
  assert np.isnan(s['per_class_accuracy'][3])
  assert s['balanced_accuracy'] == pytest.approx(2.5 / 3)
  pred = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
  target = np.array([[1, 0], [0, 0], [0, 0], [0, 1]])
  s = classifier_lib.classification_scores(pred, target, 'sigmoid', 2)
  np.testing.assert_allclose(s['per_attribute_accuracy'], [0.5, 0.5])
  # attribute 0: TPR 1/1, TNR 1/3; attribute 1: TPR 0/1, TNR 2/3
  np.testing.assert_allclose(s['per_attribute_balanced_accuracy'], [2 / 3, 1 / 3])
  flat = classifier_lib.scalar_scores(s, ('Smiling', 'Male'))
  assert flat['balanced_accuracy/Male'] == pytest.approx(1 / 3)
  assert flat['accuracy/Smiling'] == 0.5 and flat['balanced_accuracy'] == pytest.approx(0.5)


def test_pretrained_weights_are_loaded_from_an_npz(tmp_path):
  first = _objective()
  batch = {'image': _images(2)}
  params, _ = first.init(jax.random.key(1), batch)
  path = str(tmp_path / 'weights.npz')
  classifier_lib.save_params_npz(path, params['classifier'])
  loaded, _ = _objective(pretrained=path).init(jax.random.key(2), batch)
  jax.tree.map(np.testing.assert_array_equal, loaded, params)
  # A new head: the classifier layer keeps its fresh values, the convs come from the file.
  fresh, _ = first.init(jax.random.key(2), batch)
  partial, _ = _objective(pretrained=path, pretrained_exclude=('classifier',)).init(
      jax.random.key(2), batch)
  np.testing.assert_array_equal(partial['classifier']['conv1']['kernel'],
                                params['classifier']['conv1']['kernel'])
  np.testing.assert_array_equal(partial['classifier']['classifier']['kernel'],
                                fresh['classifier']['classifier']['kernel'])
  wider = _objective('runlocal,variant=wider', pretrained=path)
  with pytest.raises(ValueError, match='conv3/kernel.*pretrained_exclude'):
    wider.init(jax.random.key(0), batch)
  with pytest.raises(FileNotFoundError, match='do not exist'):
    _objective(pretrained=str(tmp_path / 'missing.npz')).init(jax.random.key(0), batch)


def test_ablating_a_unit_the_classifier_ignores_changes_nothing():
  objective = _objective()
  images = _images(16)
  params, state = objective.init(jax.random.key(0), {'image': images})
  kernel = params['classifier']['classifier']['kernel']
  params['classifier']['classifier']['kernel'] = kernel.at[3].set(0.0)  # unit 3 is ignored
  labels = np.asarray(jnp.argmax(objective.logits(params, state, images), -1))

  def predict(keep):
    return objective.logits(params, state, images, ablate={'conv3': keep})

  effect = unit_alignment.ablation_effect(predict, labels, 10, batch_size=1)
  assert effect['baseline_accuracy'] == 1.0
  # Zero in exact arithmetic, but the baseline runs eagerly and the ablations in one jitted map,
  # whose fusions may round differently (3.7e-9 seen with XLA's LLVM optimisation, AVX-512 CPU).
  assert effect['accuracy_drop'][3] == 0.0
  assert effect['probability_drop'][3] == pytest.approx(0.0, abs=1e-6)
  np.testing.assert_allclose(np.asarray(predict(jnp.ones(10).at[3].set(0.0))),
                             np.asarray(predict(jnp.ones(10))), rtol=1e-6)
  assert np.abs(effect['probability_drop']).max() > 0  # others do matter


class _PlantedUnits:
  """A stand-in classifier whose conv3 unit u is exactly "the image shows digit u" (row 0 of the
  image holds the presence vector), for known-answer unit scores."""

  returns_activations = True
  name = 'classifier'

  def activations(self, params, model_state, images):
    del params, model_state
    presence = images[:, 0, :10, 0]  # [B, 10]
    maps = jnp.broadcast_to(presence[:, None, None, :], (images.shape[0], 2, 2, 10))
    return {'conv3': maps, 'pooled': presence}

  def logits(self, params, model_state, images, ablate=None):
    keep = jnp.ones(10) if not ablate else ablate['conv3']
    presence = images[:, 0, :10, 0] * keep
    return jnp.concatenate([presence[:, :1], 1 - presence[:, :1]], axis=1)  # class: has a 0


def test_unit_analysis_known_answers_on_planted_detectors():
  rng = np.random.default_rng(0)
  n = 200
  digits = np.stack([rng.choice(10, 2, replace=False) for _ in range(n)])
  factors = np.zeros((n, 3), np.int64)
  factors[:, :2] = digits
  factors[:, 2] = 10  # no distractor
  presence = units.digit_presence(factors, ('digit_a', 'digit_b', 'distractor'))
  assert presence.sum(axis=1).tolist() == [2] * n
  images = np.zeros((n, 4, 12, 1), np.float32)
  images[:, 0, :10, 0] = presence
  labels = 1 - presence[:, 0].astype(int)
  result = units.unit_analysis(_PlantedUnits(), None, None, images, labels, presence,
                               ks=(10, 100), recalls=(0.5,), chunk=64, num_top=3)
  assert result['best_digit'].tolist() == list(range(10))
  np.testing.assert_allclose(result['alignment'], 1.0)
  positives = presence.sum(axis=0)
  for u in range(10):  # precision@k of its own digit: 1 up to the positives, then pos / k
    expected = [min(1.0, positives[u] / k) for k in (10, 100)]
    np.testing.assert_allclose(result['precision_at_k'][u, u], expected)
  np.testing.assert_allclose(result['precision_at_recall'][np.arange(10), np.arange(10), 0], 1.0)
  # Only unit 0 matters to this classifier: its ablation costs exactly the images with a 0.
  ab = result['ablation']
  assert result['accuracy'] == 1.0
  assert ab['accuracy_drop_in'][0] == 1.0 and ab['accuracy_drop_out'][0] == 0.0
  np.testing.assert_allclose(ab['accuracy_drop'][1:], 0.0)
  summary = units.summarize(result)
  assert summary['detectors_ap_ge_0.5'] == 10 and summary['digits_detected'] == list(range(10))
  assert result['top_maps'].shape == (3, 10, 4, 12)


def test_units_aligned_with_distractors_are_reported():
  rng = np.random.default_rng(1)
  n = 120
  factors = np.zeros((n, 3), np.int64)
  factors[:, :2] = np.stack([rng.choice(8, 2, replace=False) for _ in range(n)])
  factors[:, 2] = rng.choice([8, 9], n)
  names = ('digit_a', 'digit_b', 'distractor')
  presence = units.digit_presence(factors, names)
  images = np.zeros((n, 4, 12, 1), np.float32)
  images[:, 0, :10, 0] = presence
  result = units.unit_analysis(_PlantedUnits(), None, None, images,
                               1 - presence[:, 0].astype(int), presence, ks=(10,),
                               recalls=(0.5,), chunk=64, num_top=2, ablate=False)
  summary = units.summarize(result, units.distractor_digits(factors, names))
  assert summary['distractors'] == [8, 9]
  assert summary['units_best_on_distractor'] == [8, 9]
  assert summary['max_ap_on_distractor'] == pytest.approx(1.0)
  # The planted distractor units are perfect: AP 1 over a base rate of about one half.
  rate = presence.mean(axis=0)
  assert summary['base_rate'] == pytest.approx(list(rate))
  assert summary['max_ap_lift_on_distractor'] == pytest.approx(1.0 - min(rate[8], rate[9]))


def test_digit_presence_and_distractors():
  names = ('digit_a', 'digit_b', 'distractor')
  factors = np.array([[0, 1, 8], [2, 3, 9], [4, 5, 10]])
  np.testing.assert_array_equal(np.flatnonzero(units.digit_presence(factors, names)[0]),
                                [0, 1, 8])
  assert units.distractor_digits(factors, names) == [8, 9]
  with pytest.raises(ValueError, match='mixture_of_digits'):
    units.digit_presence(factors, ('a', 'b', 'c'))


def test_configs_variants_and_class_count_from_the_data():
  for variant in ('baseline', 'dropout', 'wider', 'wider_dropout'):
    config = digits_classifier.get_config(f'variant={variant}')
    assert config.model.network_kwargs.variant == variant
    assert config.data.builder_config == 'pairs' and config.objective.head == 'softmax'
  assert digits_classifier.get_config('distractors').data.builder_config == 'distractors'
  assert classifier_lib.num_classes_of(digits_classifier.get_config('distractors').data) == 28
  assert classifier_lib.num_classes_of(digits_classifier.get_config().data) == 45
  wider = _objective('variant=wider')
  assert wider.latent_dim == 30 and _objective().latent_dim == 10
  with pytest.raises(KeyError, match='unknown config argument'):
    digits_classifier.get_config('varient=wider')


def test_attribute_classifier_on_mock_celeba(tmp_path):
  from disentangle_jax.data import testing  # pylint: disable=g-import-not-at-top

  config = attributes_celeba.get_config('runlocal,weighted')
  config.data.data_dir = str(tmp_path / 'empty')
  config.total_steps = 2
  config.batch_size = 4
  config.log_every = 1
  config.checkpoint_every = 2
  config.image_every = 2
  config.eval_every = 2
  config.objective_eval_examples = 8
  workdir = str(tmp_path / 'run')
  with testing.mock_real_data(num_examples=12):
    train_lib.train_and_evaluate(config, workdir)
    model_objective = train_lib.build_objective(config, pipeline.dataset_info(config.data))
  assert model_objective.num_outputs == 40 and model_objective.pos_weight.shape == (40,)
  assert np.all(model_objective.pos_weight > 0)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert any('accuracy' in r and 0 <= r['accuracy'] <= 1 for r in records)
  evals = [r for r in records if 'eval/classifier/balanced_accuracy/Smiling' in r]
  assert evals and 0 <= evals[-1]['eval/classifier/accuracy/Male'] <= 1
  assert os.path.exists(os.path.join(workdir, 'images', 'predictions_00000002.png'))


def test_bad_heads_say_what_to_do():
  with pytest.raises(ValueError, match="head must be one of"):
    _objective(head='softmaxx')
  info = DatasetInfo.for_images(SHAPE, label_names=tuple(f'a{i}' for i in range(40)))
  config = digits_classifier.get_config('runlocal')
  with pytest.raises(ValueError, match="head='sigmoid'"):
    get_objective('classifier')(config, info)
  config.objective.pos_weight = 'auto'
  with pytest.raises(ValueError, match='sigmoid'):
    get_objective('classifier')(config, DatasetInfo.for_images(SHAPE, label_names=('pair',)))


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory, tfds_data_dir):
  """A classifier trained for a few steps on the small mixture (shared by the launch tests)."""
  config = digits_classifier.get_config('runlocal')
  config.data.data_dir = tfds_data_dir
  config.total_steps = 6
  config.batch_size = 16
  config.log_every = 2
  config.checkpoint_every = 6
  config.image_every = 6
  config.eval_every = 6
  config.objective_eval_examples = 50
  workdir = str(tmp_path_factory.mktemp('digits') / 'run')
  train_lib.train_and_evaluate(config, workdir)
  return workdir


def test_tiny_end_to_end_run_of_the_digits_config(tiny_run):
  with open(os.path.join(tiny_run, 'config.json')) as f:
    assert json.load(f)['objective']['name'] == 'classifier'
  with open(os.path.join(tiny_run, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  accuracy = [r['accuracy'] for r in records if 'accuracy' in r]
  assert accuracy and all(0 <= a <= 1 for a in accuracy)
  evals = [r for r in records if 'eval/classifier/balanced_accuracy' in r]
  assert evals and evals[-1]['step'] == 6 and 0 <= evals[-1]['eval/classifier/accuracy'] <= 1
  assert all(np.isfinite(r['loss/classifier']) for r in records if 'loss/classifier' in r)
  images = sorted(os.listdir(os.path.join(tiny_run, 'images')))
  assert images == ['predictions_00000006.png', 'unit_maps_00000006.png']
  # Validation accuracy per class and balanced, as the train loop's evaluation hook would log it.
  from disentangle_jax.training import restore  # pylint: disable=g-import-not-at-top

  model = restore.load_trained_model(tiny_run)
  scores = model.objective.evaluate(model.params, model.model_state, model.config.data,
                                    num_examples=90)
  assert model.objective.num_outputs == 45
  assert 0 <= scores['accuracy'] <= 1 and 0 <= scores['balanced_accuracy'] <= 1
  assert 'accuracy/0' in scores and all(0 <= v <= 1 for v in scores.values())


def test_launch_unit_analysis_and_dissect_on_a_tiny_run(tiny_run, tmp_path):
  out = str(tmp_path / 'units')
  train_util.run_script('launch/unit_analysis.py', [f'--workdir={tiny_run}', f'--output_dir={out}',
                                                    '--num_examples=120'])
  with open(os.path.join(out, 'units.json')) as f:
    record = json.load(f)
  assert record['num_images'] == 120 and len(record['units']) == 10
  row = record['units'][0]
  assert list(row['precision_at_k']) == ['100'] and len(row['ap_per_digit']) == 10
  assert {'accuracy_drop_in', 'accuracy_drop_out', 'selectivity'} <= set(row)
  assert sorted(os.listdir(out)) == ['ap.png', 'precision_at_100.png', 'top_images.png',
                                     'units.json', 'units.md']

  out = str(tmp_path / 'dissection')
  train_util.run_script('launch/dissect.py', [f'--workdir={tiny_run}', f'--output_dir={out}',
                                              '--num_examples=64', '--batch_size=32'])
  with open(os.path.join(out, 'dissection.json')) as f:
    record = json.load(f)
  assert record['num_probe_images'] == 64 and sorted(record['layers']) == ['conv1', 'conv2',
                                                                            'conv3']
  conv3 = record['layers']['conv3']
  assert conv3['concepts'] == [str(d) for d in range(10)] and conv3['num_units'] == 10
  assert np.asarray(conv3['iou']).shape == (10, 10)
  assert conv3['num_detectors'] == sum(u['iou'] > 0.04 for u in conv3['units'])
  for name in ('dissection.md', 'iou_conv1.png', 'units_conv3.png'):
    assert os.path.exists(os.path.join(out, name))

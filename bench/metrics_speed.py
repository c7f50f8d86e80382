"""Times every array metric next to disentanglement_lib (the reference) on the same codes.

  python bench/metrics_speed.py                       # everything, reference included (slow)
  python bench/metrics_speed.py --reference=fast      # skip the reference's minutes-long fits
  python bench/metrics_speed.py --metrics=dci,mig     # a subset
  python bench/metrics_speed.py --mode=suite --n_train=2000 --n_test=1000  # suite times only

Two sections (`--mode`): 'table' times each metric (below); 'suite' times the whole suite per
protocol (`--protocols`, default 'fast,dlib'): 'cold' is one pass in a fresh Python process with no
persistent compilation cache (what a one-off `launch/evaluate.py` pays), 'warm' the median of
`--repeats` further passes in that process; then one pass of the reference on the same arrays. The
'dlib' protocol runs scikit-learn's estimators for DCI, SAP, explicitness and the downstream tasks
(as slow as the reference there); the other metrics are the same under both protocols.

Data: 10,000 train / 5,000 test points, K = 5 factors of the dSprites sizes (3, 6, 40, 32, 32)
drawn uniformly, D = 10: the normalised factors plus Gaussian noise (`--noise`), and 5 noise-only
dimensions. Ours is timed in one process: 'cold' is the first call, JAX compilation included,
'warm' the median of `--repeats` further calls on the same shapes, each with its own boosted-tree
fit; the last line is the median of `--repeats` warm passes over the whole suite, where DCI, the
boosted downstream task and fairness share one fit of the same training sample (`gbt.fit_gbt`
memoises its last fits; `metrics.evaluate` gives DCI and the downstream tasks one shared training
sample). The reference is disentanglement-lib 1.5 (`pip install disentanglement-lib==1.5
--no-deps`, imported without TensorFlow) called on the same arrays, except fairness (it samples its
own interventions from a stand-in dataset whose observations are the factors) and UDR and InfoMEC
(not in that package: the reference is the authors' procedure written with scikit-learn as in the
tests). The ratio is reference time / our warm time. Times are wall clock; the machine's load
average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

SIZES = (3, 6, 40, 32, 32)
SLOW_REFERENCE = {'dci', 'downstream_boosted', 'downstream_logistic', 'fairness'}


def make_data(noise, n_train=10_000, n_test=5_000, seed=0):
  rng = np.random.default_rng(seed)

  def factors(n):
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)

  def encode(f):
    z = np.concatenate([f / (np.asarray(SIZES) - 1.0), np.zeros((len(f), 5))], axis=1)
    return z + noise * rng.standard_normal(z.shape)

  ftr, fte = factors(n_train), factors(n_test)
  return encode(ftr), ftr, encode(fte), fte, encode


def train_sizes(n):
  """dlib's downstream training sizes that fit in n training points."""
  return tuple(s for s in (10, 100, 1000, 10000) if s <= n)


def timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def ours(name, d, protocol='fast'):
  """Our value of metric `name` on the data `d`, under `protocol` where the metric has one."""
  from disentangle_jax.metrics import (dci, downstream, fairness, infomec, irs, mig, modularity,
                                       sap, udr, unified, unsupervised)

  xtr, ftr, xte, fte = d['xtr'], d['ftr'], d['xte'], d['fte']
  kw = {} if protocol == 'fast' else {'protocol': protocol}
  if name == 'mig':
    return mig.mig(xtr, ftr)['discrete_mig']
  if name == 'sap':
    return sap.sap(xtr, ftr, xte, fte, **kw)['SAP_score']
  if name == 'sap_continuous':
    return sap.sap(xtr, ftr, continuous_factors=True)['SAP_score']
  if name == 'dci':
    out = dci.dci(xtr, ftr, xte, fte, **kw)
    return tuple(out[k] for k in ('disentanglement', 'completeness', 'informativeness_train',
                                  'informativeness_test'))
  if name == 'unified':
    out = unified.unified_scores(xtr, ftr, xte, fte, **kw)
    return tuple(out[k] for k in ('importance_gbt_matrix.dci_disentanglement',
                                  'mutual_information_matrix.mig', 'accuracy_svm_matrix.sap'))
  if name == 'dci_lasso':
    out = dci.dci(xtr, ftr, xte, fte, importance='lasso')
    return out['disentanglement'], out['completeness'], out['informativeness_test']
  if name == 'modularity_explicitness':
    out = modularity.modularity_explicitness(xtr, ftr, xte, fte, **kw)
    return out['modularity_score'], out['explicitness_score_test']
  if name == 'irs':
    return irs.irs(xtr, ftr)['IRS']
  if name == 'unsupervised':
    out = unsupervised.unsupervised_scores(xtr)
    return (out['gaussian_total_correlation'], out['gaussian_wasserstein_correlation_norm'],
            out['mutual_info_score'])
  if name in ('downstream_logistic', 'downstream_boosted'):
    sizes = train_sizes(len(xtr))
    out = downstream.downstream_task(xtr, ftr, xte, fte, predictor=name.split('_')[1],
                                     train_sizes=sizes, **kw)
    return tuple(out[f'{n}:mean_test_accuracy'] for n in sizes)
  if name == 'fairness':
    inter = fairness.sample_intervened_codes(d['encode'], SIZES, num_points=100, random_state=0)
    return fairness.fairness(xtr, ftr, inter)['mean_fairness:mean_pred:mean_sens']
  if name == 'udr':
    return tuple(np.round(udr.udr(d['udr_codes'], d['udr_kl'])['model_scores'], 4))
  if name == 'infomec':
    out = infomec.infomec(xtr, ftr)
    return out['infom'], out['infoc'], out['infoe']
  raise KeyError(name)


def reference(name, d):
  from disentangle_jax.metrics import _dlib_reference as R

  utils = R.bind_discretizer()
  xtr, ftr, xte, fte = d['xtr'].T, d['ftr'].T, d['xte'].T, d['fte'].T
  if name == 'mig':
    return R.load('mig')._compute_mig(xtr, ftr)['discrete_mig']
  if name == 'sap':
    return R.load('sap')._compute_sap(xtr, ftr, xte, fte, False)['SAP_score']
  if name == 'sap_continuous':
    return R.load('sap')._compute_sap(xtr, ftr, xte, fte, True)['SAP_score']
  if name == 'dci':
    out = R.load('dci')._compute_dci(xtr, ftr, xte, fte)
    return tuple(out[k] for k in ('disentanglement', 'completeness', 'informativeness_train',
                                  'informativeness_test'))
  if name == 'modularity_explicitness':
    m = R.load('modularity')
    mi = utils.discrete_mutual_info(utils.make_discretizer(xtr), ftr)
    ntr, mean, std = utils.normalize_data(xtr)
    nte, _, _ = utils.normalize_data(xte, mean, std)
    test = [m.explicitness_per_factor(ntr, ftr[k], nte, fte[k])[1] for k in range(len(ftr))]
    return m.modularity(mi), float(np.mean(test))
  if name == 'irs':
    m = R.load('irs')
    return m.scalable_disentanglement_score(
      utils.make_discretizer(ftr).T, m._drop_constant_dims(xtr).T, 0.99)['avg_score']
  if name == 'unsupervised':
    m = R.load('unsupervised')
    cov = np.cov(xtr)
    disc = utils.make_discretizer(xtr)
    mi = utils.discrete_mutual_info(disc, disc)
    np.fill_diagonal(mi, 0)
    return (m.gaussian_total_correlation(cov),
            m.gaussian_wasserstein_correlation(cov) / np.trace(cov),
            mi.sum() / (len(xtr) ** 2 - len(xtr)))
  if name in ('downstream_logistic', 'downstream_boosted'):
    from sklearn import ensemble, linear_model, model_selection

    if name == 'downstream_logistic':
      make = lambda: linear_model.LogisticRegressionCV(  # noqa: E731
        Cs=10, cv=model_selection.KFold(n_splits=5))
    else:
      make = ensemble.GradientBoostingClassifier
    m = R.load('downstream')
    return tuple(float(np.mean(m._compute_loss(xtr.T[:n], ftr[:, :n], xte.T, fte, make)[1]))
                 for n in train_sizes(xtr.shape[1]))
  if name == 'fairness':
    m = R.load('fairness')
    utils.make_predictor_fn = lambda: utils.gradient_boosting_classifier
    return m.compute_fairness(_FactorsAsObservations(d['encode']), d['encode'],
                              np.random.RandomState(0), num_train=xtr.shape[1],
                              num_test_points_per_class=100)['mean_fairness:mean_pred:mean_sens']
  if name == 'infomec':
    return _infomec_reference(d['xtr'], d['ftr'])
  return None  # no reference (udr, dci_lasso)


class _FactorsAsObservations:
  """A dlib GroundTruthData whose observations are the factors (the encoder renders nothing)."""

  factors_num_values = list(SIZES)
  num_factors = len(SIZES)

  def __init__(self, encode):
    self.encode = encode

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(s, size=num) for s in SIZES], axis=1)

  def sample_observations_from_factors(self, factors, random_state):
    return factors

  def sample(self, num, random_state):
    f = self.sample_factors(num, random_state)
    return f, f


def _infomec_reference(x, f):
  from sklearn import feature_selection, linear_model, metrics, preprocessing

  z = preprocessing.StandardScaler().fit_transform(x)
  nmi = np.array([[feature_selection.mutual_info_classif(z[:, j:j + 1], f[:, i], n_neighbors=10)[0]
                   / metrics.mutual_info_score(f[:, i], f[:, i])
                   for j in range(x.shape[1])] for i in range(f.shape[1])])
  ranges = np.ptp(x, axis=0)
  p = nmi[:, ranges > ranges.max() / 20]
  k, da = p.shape
  infom = (np.nanmean(p.max(0) / p.sum(0)) - 1 / k) / (1 - 1 / k)
  infoc = (np.nanmean(p.max(1) / p.sum(1)) - 1 / da) / (1 - 1 / da)
  infoe = []
  for i in range(k):
    clf = linear_model.LogisticRegression(penalty=None, class_weight='balanced', max_iter=100)
    l1 = metrics.log_loss(f[:, i], clf.fit(z, f[:, i]).predict_proba(z))
    infoe.append((np.log(SIZES[i]) - l1) / np.log(SIZES[i]))
  return infom, infoc, float(np.mean(infoe))


def fmt(v):
  if v is None:
    return '-'
  if isinstance(v, tuple):
    return '(' + ', '.join(f'{float(x):.4f}' for x in v) + ')'
  return f'{float(v):.4f}'


PROTOCOL_METRICS = {'sap', 'dci', 'unified', 'modularity_explicitness', 'downstream_logistic',
                    'downstream_boosted'}


def build_data(noise, n_train, n_test):
  xtr, ftr, xte, fte, encode = make_data(noise, n_train, n_test)
  # UDR: 5 models whose codes are permutations of one code (1,000 points, dlib's setting).
  rng = np.random.default_rng(1)
  perms = [rng.permutation(10) for _ in range(5)]
  kl = np.r_[np.ones(5), np.full(5, 1e-3)]
  udr_codes = [xtr[:1000][:, p] for p in perms]
  udr_kl = [kl[p] for p in perms]
  return dict(xtr=xtr, ftr=ftr, xte=xte, fte=fte, encode=encode, udr_codes=udr_codes,
              udr_kl=udr_kl)


def suite_child(args):
  """In a fresh process: one cold pass of the suite, then `--repeats` warm passes (JSON out)."""
  import json

  from disentangle_jax.metrics import gbt

  d = build_data(args.noise, args.n_train, args.n_test)
  names = args.metrics.split(',')
  _, cold = timed(lambda: [ours(name, d, args.child) for name in names])
  warm = []
  for _ in range(args.repeats):
    gbt.clear_fit_cache()
    warm.append(timed(lambda: [ours(name, d, args.child) for name in names])[1])
  print(json.dumps({'cold': cold, 'warm': warm}), flush=True)


def suite(args):
  """Cold (a fresh process, no compilation cache) and warm suite times per protocol."""
  import json
  import subprocess

  names = args.metrics.split(',')
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_COMPILATION_CACHE')}
  env['JAX_ENABLE_COMPILATION_CACHE'] = 'false'
  print(f'suite: {len(names)} metrics, N={args.n_train}/{args.n_test}; cold = first pass in a '
        'fresh process (compilation included, no persistent cache), warm = median of '
        f'{args.repeats} further passes (boosted fits redone each pass, shared within it)',
        flush=True)
  for protocol in args.protocols.split(','):
    cmd = [sys.executable, os.path.abspath(__file__), f'--child={protocol}',
           f'--metrics={args.metrics}', f'--noise={args.noise}', f'--repeats={args.repeats}',
           f'--n_train={args.n_train}', f'--n_test={args.n_test}']
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    times = json.loads(out.stdout.strip().splitlines()[-1])
    print(f'  protocol={protocol:5s} cold {times["cold"]:8.2f} s   warm {np.median(times["warm"]):8.2f} s'
          f'   (process wall {wall:.1f} s incl. imports; load {os.getloadavg()[0]:.2f})', flush=True)
  if args.reference != 'none':
    d = build_data(args.noise, args.n_train, args.n_test)
    ref = [n for n in names if not (args.reference == 'fast' and n in SLOW_REFERENCE)]
    _, t = timed(lambda: [reference(name, d) for name in ref])
    left = sorted(set(names) - set(ref))
    print(f'  reference (disentanglement_lib 1.5) {t:8.2f} s' +
          (f'  (without {",".join(left)})' if left else ''), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--metrics', default='mig,sap,sap_continuous,dci,dci_lasso,'
                      'modularity_explicitness,irs,unsupervised,downstream_logistic,'
                      'downstream_boosted,fairness,udr,infomec')
  parser.add_argument('--mode', choices=['table', 'suite', 'both'], default='both',
                      help="'table': per metric, ours next to the reference; 'suite': the whole "
                      'suite cold (fresh process) and warm per protocol, and the reference')
  parser.add_argument('--protocols', default='fast,dlib', help="the suite's protocols")
  parser.add_argument('--reference', choices=['all', 'fast', 'none'], default='all')
  parser.add_argument('--noise', type=float, default=0.05)
  parser.add_argument('--n_train', type=int, default=10_000)
  parser.add_argument('--n_test', type=int, default=5_000)
  parser.add_argument('--repeats', type=int, default=3,
                      help='warm calls per metric and suite passes; their median is printed')
  parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  warnings.filterwarnings('ignore')
  if args.child:
    return suite_child(args)
  print(f'cpus={os.cpu_count()} load={os.getloadavg()} noise={args.noise} '
        f'N={args.n_train}/{args.n_test} D=10 K=5 sizes={SIZES}', flush=True)
  if args.mode in ('table', 'both'):
    table(args)
  if args.mode in ('suite', 'both'):
    suite(args)
  print(f'load at the end: {os.getloadavg()}', flush=True)


def table(args):
  d = build_data(args.noise, args.n_train, args.n_test)
  print(f'{"metric":26s} {"ours cold s":>11s} {"ours warm s":>11s} {"ref s":>9s} {"ref/warm":>9s}'
        '  ours value | reference value', flush=True)
  from disentangle_jax.metrics import gbt

  names = args.metrics.split(',')
  total_cold = total_warm = 0.0
  for name in names:
    gbt.clear_fit_cache()  # each metric's figures include its own boosted-tree fit
    value, cold = timed(lambda: ours(name, d))
    warm_runs = []
    for _ in range(args.repeats):
      gbt.clear_fit_cache()
      warm_runs.append(timed(lambda: ours(name, d))[1])
    warm = float(np.median(warm_runs))
    total_cold += cold
    total_warm += warm
    ref_value, ref_time = None, None
    skip = args.reference == 'none' or (args.reference == 'fast' and name in SLOW_REFERENCE)
    if not skip:
      ref_value, ref_time = timed(lambda: reference(name, d))
      if ref_value is None:
        ref_time = None
    ratio = f'{ref_time / warm:9.1f}' if ref_time else f'{"-":>9s}'
    ref_s = f'{ref_time:9.2f}' if ref_time else f'{"-":>9s}'
    print(f'{name:26s} {cold:11.2f} {warm:11.2f} {ref_s} {ratio}  {fmt(value)} | {fmt(ref_value)}',
          flush=True)
  print(f'{"total (ours)":26s} {total_cold:11.2f} {total_warm:11.2f}', flush=True)
  # The suite in one warm pass: metrics on the same training sample share one boosted-tree fit
  # (dci, downstream_boosted at 10,000 labels, fairness).
  passes = []
  for _ in range(args.repeats):
    gbt.clear_fit_cache()
    passes.append(timed(lambda: [ours(name, d) for name in names])[1])
  print(f'{"suite, shared fits (ours)":26s} {"":11s} {np.median(passes):11.2f}  (passes: '
        + ', '.join(f'{t:.2f}' for t in passes) + ')', flush=True)


if __name__ == '__main__':
  sys.exit(main())

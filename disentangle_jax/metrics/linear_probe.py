"""Linear-probe accuracy per attribute, on the whole code and on each chunk (the CelebA protocol).

One logistic-regression probe per (input, attribute): the input is the whole code or one chunk,
the attribute binary (CelebA's 40) or multi-class (Sprites' pose, factor values). Every probe has
the objective of scikit-learn's `LogisticRegression(C=C)` (the default, C = 1), on standardised
inputs (train mean and std, per feature; a constant feature is left at 0):
  `sum_n CE(y_n, W x_n + b) + ||W||^2 / (2 C)`, the intercept unpenalised,
with one logit for binary attributes (the sigmoid form scikit-learn uses for two classes) and one
logit per class otherwise (scikit-learn's multinomial form). The accuracy is that of the argmax
prediction.

Vectorisation: all probes of a group of inputs are fitted at once by one jitted, batched,
full-batch L-BFGS in which every probe keeps its own curvature pairs, backtracking line search and
stopping test (max |gradient| <= tol, at most `max_iter` = 100 iterations, scikit-learn's
defaults); the probes share only the array operations. 40 attributes x 64 chunks is one or a few
jitted solves instead of 2,560 scikit-learn fits. Inputs are grouped so that one group's logits
stay under `max_elements`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.metrics._common import MIN_POINTS

#: Elements of one group's logits [N, inputs, attributes, classes].
DEFAULT_MAX_ELEMENTS = 1 << 24


def _encode_labels(train_y: np.ndarray, test_y: np.ndarray):
  """Per attribute, values -> 0..K_a-1 over the union of train and test; returns the codes."""
  train_out = np.empty(train_y.shape, np.int32)
  test_out = np.empty(test_y.shape, np.int32)
  num_classes = []
  for a in range(train_y.shape[1]):
    values, inverse = np.unique(np.concatenate([train_y[:, a], test_y[:, a]]), return_inverse=True)
    inverse = inverse.reshape(-1)
    train_out[:, a] = inverse[: train_y.shape[0]]
    test_out[:, a] = inverse[train_y.shape[0] :]
    num_classes.append(values.size)
  return train_out, test_out, np.asarray(num_classes)


def _as_inputs(x: np.ndarray, name: str, min_points: int = 1) -> np.ndarray:
  x = np.asarray(x, np.float32)
  if x.ndim == 2:
    x = x[:, None, :]
  if x.ndim != 3:
    raise ValueError(f'{name} must be [N, D] or [N, P, d], got {x.shape}')
  if x.shape[0] < min_points:
    raise ValueError(
      f'linear_probe needs at least {min_points} points in {name}, got {x.shape[0]}: pass a '
      'larger sample'
    )
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name} contains NaN or infinite values')
  return x


def _logits(w, x, binary: bool, class_mask):
  """`w [P, q, A, K]`, `x [P, N, q]` (a trailing 1 for the intercept) -> logits `[P, N, A, K]`.

  `class_mask` is (valid [A, K] bool, free [A, K] float): the classes an attribute has, and the
  classes with parameters. A binary attribute among multi-class ones has class 1 free only, so
  its logits are (0, z): scikit-learn's single penalised logit, not two (which would halve the
  penalty, i.e. fit at C = 2). Masked weights get no data gradient and stay at their start, 0.
  The probe-input axis leads (a plain batched matmul), which XLA runs about twice as fast as with
  the examples first.
  """
  if binary:
    return jnp.einsum('pnq,pqak->pnak', x, w)
  valid, free = class_mask
  logits = jnp.einsum('pnq,pqak->pnak', x, w * free)
  return jnp.where(valid, logits, -jnp.inf)  # classes an attribute lacks never win


def _probe_losses(w, x, y, class_mask, l2, binary: bool):
  """Each probe's objective, `[P, A]`: mean CE + ||w||^2 / (2 C N) (scikit-learn's, over N)."""
  logits = _logits(w, x, binary, class_mask)
  if binary:
    z = logits[..., 0]
    # softplus(z) - y z, with softplus written out: a third of the cost of jax.nn.softplus.
    softplus = jnp.maximum(z, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(z)))
    ce = softplus - y[None].astype(z.dtype) * z
  else:
    log_p = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.take_along_axis(log_p, y[None, :, :, None], axis=-1)[..., 0]
  penalty = jnp.sum(w[:, :-1] ** 2, axis=(1, 3))  # the intercept row is not penalised
  return ce.mean(axis=1) + l2 * penalty


def _pdot(u, v):
  """Per-probe inner product of `[P, q, A, K]` arrays: `[P, A]`."""
  return jnp.sum(u * v, axis=(1, 3))


@functools.partial(jax.jit, static_argnames=('binary', 'max_iter', 'memory'))
def _fit(x, y, class_mask, l2, tol, *, binary: bool, max_iter: int, memory: int = 10):
  """Batched L-BFGS: every probe has its own curvature pairs, line search and stopping test.

  The probes share only the array operations: directions, step sizes and convergence are per
  probe, so each probe follows the path it would follow alone. Stopping test per probe:
  max |gradient| <= tol (scikit-learn's criterion for L-BFGS); a converged probe stops moving.
  """
  num_inputs, q = x.shape[0], x.shape[2]
  num_attributes = y.shape[1]
  k = 1 if binary else class_mask[0].shape[-1]
  w = jnp.zeros((num_inputs, q, num_attributes, k), x.dtype)
  losses_fn = functools.partial(
    _probe_losses, x=x, y=y, class_mask=class_mask, l2=l2, binary=binary
  )

  def value_and_grad(w):
    losses, vjp = jax.vjp(losses_fn, w)
    return losses, vjp(jnp.ones_like(losses))[0]  # probes are independent: per-probe gradients

  def per_probe(v):  # [P, A] -> broadcastable to [P, q, A, K]
    return v[:, None, :, None]

  def direction(g, s_mem, y_mem, rho, newest):
    """Two-loop recursion, newest pair first; empty slots have rho = 0 and do nothing."""

    def first(i, carry):
      r, alphas = carry
      j = (newest - i) % memory
      alpha = rho[j] * _pdot(s_mem[j], r)
      return r - per_probe(alpha) * y_mem[j], alphas.at[j].set(alpha)

    r, alphas = jax.lax.fori_loop(0, memory, first, (g, jnp.zeros_like(rho)))
    sy = _pdot(s_mem[newest], y_mem[newest])
    yy = _pdot(y_mem[newest], y_mem[newest])
    gamma = jnp.where((rho[newest] > 0) & (yy > 0), sy / jnp.where(yy > 0, yy, 1.0), 1.0)
    r = per_probe(gamma) * r

    def second(i, r):
      j = (newest + 1 + i) % memory
      beta = rho[j] * _pdot(y_mem[j], r)
      return r + per_probe(alphas[j] - beta) * s_mem[j]

    return -jax.lax.fori_loop(0, memory, second, r)

  def line_search(w, f, g, d, active):
    """Backtracking per probe, halving from step 1, at most 20 halvings.

    The sufficient-decrease test is Armijo's (c1 = 1e-4) loosened by 1e-6 |f|, Hager and Zhang's
    approximate form: near the optimum the float32 loss cannot resolve the predicted decrease, and
    a strict test would halve to nothing on rounding noise.
    """
    slope = _pdot(g, d)
    slack = 1e-6 * jnp.abs(f)

    def cond(carry):
      i, _, _, done = carry
      return (i < 20) & ~jnp.all(done)

    def body(carry):
      i, t, f_new, done = carry
      trial = losses_fn(w + per_probe(t) * d)
      ok = trial <= f + 1e-4 * t * slope + slack
      newly = ok & ~done
      f_new = jnp.where(newly, trial, f_new)
      t = jnp.where(done | ok, t, 0.5 * t)
      return i + 1, t, f_new, done | ok

    start = (0, jnp.ones_like(f), f, ~active)
    _, t, _, done = jax.lax.while_loop(cond, body, start)
    return jnp.where(done & active, t, 0.0), done | ~active  # a failed probe stays put

  f, g = value_and_grad(w)
  zeros_mem = jnp.zeros((memory,) + w.shape, w.dtype)
  state = (
    0,
    w,
    f,
    g,
    zeros_mem,
    zeros_mem,
    jnp.zeros((memory, num_inputs, num_attributes), w.dtype),
    memory - 1,
    jnp.zeros((num_inputs, num_attributes), bool),
  )

  def grad_max(g):
    return jnp.max(jnp.abs(g), axis=(1, 3))

  # A probe stops when its gradient is small, or when its line search fails (it cannot improve in
  # float32 any more); the loop stops when every probe has stopped.
  def cond(state):
    it, _, _, g, *_, stalled = state
    return (it < max_iter) & jnp.any((grad_max(g) > tol) & ~stalled)

  def body(state):
    it, w, f, g, s_mem, y_mem, rho, newest, stalled = state
    active = (grad_max(g) > tol) & ~stalled
    d = direction(g, s_mem, y_mem, rho, newest)
    # Not a descent direction (numerical trouble): fall back to steepest descent.
    d = jnp.where(per_probe(_pdot(g, d) < 0), d, -g)
    t, found = line_search(w, f, g, d, active)
    w_new = w + per_probe(t) * d
    f_new, g_new = value_and_grad(w_new)
    s, yv = w_new - w, g_new - g
    sy = _pdot(s, yv)
    slot = (newest + 1) % memory
    rho = rho.at[slot].set(jnp.where(sy > 1e-10, 1.0 / jnp.where(sy > 1e-10, sy, 1.0), 0.0))
    s_mem, y_mem = s_mem.at[slot].set(s), y_mem.at[slot].set(yv)
    return it + 1, w_new, f_new, g_new, s_mem, y_mem, rho, slot, stalled | ~found

  return jax.lax.while_loop(cond, body, state)[1]


@functools.partial(jax.jit, static_argnames=('binary',))
def _accuracy(w, x, y, class_mask, *, binary: bool):
  logits = _logits(w, x, binary, class_mask)
  pred = (logits[..., 0] > 0).astype(jnp.int32) if binary else jnp.argmax(logits, axis=-1)
  return (pred == y[None]).mean(axis=1)


def probe_accuracy(
  train_x: np.ndarray,
  train_y: np.ndarray,
  test_x: np.ndarray,
  test_y: np.ndarray,
  *,
  C: float = 1.0,  # pylint: disable=invalid-name
  max_iter: int = 100,
  tol: float = 1e-4,
  standardize: bool = True,
  max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[str, np.ndarray]:
  """Fits one logistic-regression probe per (input, attribute) and scores it.

  Args:
    train_x: `[N, P, d]` P probe inputs per example (e.g. chunks), or `[N, D]` (P = 1).
    train_y: `[N, A]` (or `[N]`) attribute values; any integers or labels, encoded per attribute.
    test_x: `[M, P, d]` or `[M, D]`.
    test_y: `[M, A]` (or `[M]`).
    C: inverse L2 strength, as scikit-learn's `C`.
    max_iter: L-BFGS iterations (scikit-learn's default is 100).
    tol: stop when every probe's gradient (of its mean-loss objective) is below this in max norm,
      scikit-learn's L-BFGS criterion.
    standardize: standardise each input feature with the training mean and std.
    max_elements: bound on one group's logits; inputs are fitted in groups under it.

  Returns:
    `{'train_accuracy': [P, A], 'test_accuracy': [P, A]}`.

  Degenerate inputs (the package's policy): NaN/inf and fewer than 2 training points raise
  ValueError. A constant input feature (std within 1e-12 of its mean's scale) is standardised to 0
  and carries nothing; an attribute with a single value is predicted as that value; when no
  attribute varies, ValueError.
  """
  train_x, test_x = _as_inputs(train_x, 'train_x', MIN_POINTS), _as_inputs(test_x, 'test_x')
  if train_x.shape[1:] != test_x.shape[1:]:
    raise ValueError(f'train inputs {train_x.shape[1:]} differ from test inputs {test_x.shape[1:]}')
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  if train_y.ndim == 1:
    train_y, test_y = train_y[:, None], test_y.reshape(-1, 1)
  if train_y.shape[0] != train_x.shape[0] or test_y.shape[0] != test_x.shape[0]:
    raise ValueError('inputs and labels disagree on the number of examples')
  if train_y.shape[1] != test_y.shape[1]:
    raise ValueError('train and test labels have different numbers of attributes')
  if C <= 0:
    raise ValueError(f'C must be > 0, got {C}')
  train_y, test_y, num_classes = _encode_labels(train_y, test_y)
  if not np.any(num_classes > 1):
    raise ValueError('linear_probe: every attribute is constant: there is nothing to measure')

  if standardize:
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, np.inf)
    train_x = (train_x - mean) / std
    test_x = (test_x - mean) / std
  # A constant input 1 per probe input carries the intercept.
  train_x = np.concatenate([train_x, np.ones(train_x.shape[:2] + (1,), np.float32)], axis=2)
  test_x = np.concatenate([test_x, np.ones(test_x.shape[:2] + (1,), np.float32)], axis=2)

  binary = bool(num_classes.max() <= 2)
  k = 1 if binary else int(num_classes.max())
  valid = np.arange(k)[None, :] < num_classes[:, None]  # [A, K]
  free = np.where(num_classes[:, None] == 2, np.arange(k)[None, :] == 1, valid)
  class_mask = (jnp.asarray(valid), jnp.asarray(free, jnp.float32))
  n, num_inputs = train_x.shape[:2]
  num_attributes = train_y.shape[1]
  largest = int(max(1, min(num_inputs, max_elements // max(1, n * num_attributes * k))))
  num_groups = -(-num_inputs // largest)
  group = -(-num_inputs // num_groups)  # equal groups: the padded last one wastes little
  l2 = 0.5 / (C * n)

  train_acc = np.empty((num_inputs, num_attributes))
  test_acc = np.empty((num_inputs, num_attributes))
  for start in range(0, num_inputs, group):
    idx = np.arange(start, start + group) % num_inputs  # the last group is padded: one shape
    keep = min(group, num_inputs - start)
    train_inputs = jnp.asarray(np.swapaxes(train_x[:, idx], 0, 1))  # [P, N, q]
    test_inputs = jnp.asarray(np.swapaxes(test_x[:, idx], 0, 1))
    w = _fit(
      train_inputs, jnp.asarray(train_y), class_mask, l2, tol, binary=binary, max_iter=max_iter
    )
    tr = _accuracy(w, train_inputs, jnp.asarray(train_y), class_mask, binary=binary)
    te = _accuracy(w, test_inputs, jnp.asarray(test_y), class_mask, binary=binary)
    train_acc[start : start + keep] = np.asarray(tr)[:keep]
    test_acc[start : start + keep] = np.asarray(te)[:keep]
  return {'train_accuracy': train_acc, 'test_accuracy': test_acc}


def majority_accuracy(train_y: np.ndarray, test_y: np.ndarray) -> np.ndarray:
  """Chance level per attribute: test accuracy of predicting the training majority class."""
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  if train_y.ndim == 1:
    train_y, test_y = train_y[:, None], test_y.reshape(-1, 1)
  out = []
  for a in range(train_y.shape[1]):
    values, counts = np.unique(train_y[:, a], return_counts=True)
    out.append(np.mean(test_y[:, a] == values[np.argmax(counts)]))
  return np.asarray(out)


def linear_probe_evaluation(
  train_codes: np.ndarray,
  train_labels: np.ndarray,
  test_codes: np.ndarray,
  test_labels: np.ndarray,
  *,
  num_chunks: int | None = None,
  **probe_kwargs,
) -> dict[str, np.ndarray | float]:
  """Probe accuracies on the whole code and, with chunks, on each chunk.

  Args:
    train_codes: `[N, D]`, or `[N, C, d]` chunked codes.
    train_labels: `[N, A]` attributes (e.g. CelebA's 40 binary attributes).
    test_codes: `[M, D]` or `[M, C, d]`.
    test_labels: `[M, A]`.
    num_chunks: split flat codes into this many chunks for the per-chunk probes (chunked
      `[N, C, d]` codes are split as given).
    **probe_kwargs: passed to `probe_accuracy` (C, max_iter, tol, standardize, max_elements).

  Returns:
    'accuracy' `[A]` (test, whole code), 'accuracy_mean', 'train_accuracy' `[A]`,
    'chance_accuracy' `[A]` (training majority class on test); with chunks also
    'accuracy_per_chunk' `[C, A]`, 'train_accuracy_per_chunk' `[C, A]`, and 'best_chunk' `[A]`
    (the chunk with the highest *training* accuracy) with its test 'accuracy_best_chunk' `[A]`
    and 'accuracy_best_chunk_mean'.
  """
  train_codes, test_codes = np.asarray(train_codes), np.asarray(test_codes)
  chunked = train_codes.ndim == 3
  if chunked:
    train_chunks, test_chunks = train_codes, test_codes
    train_codes = train_codes.reshape(train_codes.shape[0], -1)
    test_codes = test_codes.reshape(test_codes.shape[0], -1)
  elif num_chunks is not None:
    if train_codes.shape[1] % num_chunks:
      raise ValueError(
        f'{train_codes.shape[1]} code dimensions do not split into {num_chunks} chunks'
      )
    train_chunks = train_codes.reshape(train_codes.shape[0], num_chunks, -1)
    test_chunks = test_codes.reshape(test_codes.shape[0], num_chunks, -1)
  whole = probe_accuracy(train_codes, train_labels, test_codes, test_labels, **probe_kwargs)
  out = {
    'accuracy': whole['test_accuracy'][0],
    'accuracy_mean': float(whole['test_accuracy'][0].mean()),
    'train_accuracy': whole['train_accuracy'][0],
    'chance_accuracy': majority_accuracy(train_labels, test_labels),
  }
  if chunked or num_chunks is not None:
    per_chunk = probe_accuracy(train_chunks, train_labels, test_chunks, test_labels, **probe_kwargs)
    best = np.argmax(per_chunk['train_accuracy'], axis=0)
    best_acc = per_chunk['test_accuracy'][best, np.arange(best.size)]
    out.update(
      {
        'accuracy_per_chunk': per_chunk['test_accuracy'],
        'train_accuracy_per_chunk': per_chunk['train_accuracy'],
        'best_chunk': best,
        'accuracy_best_chunk': best_acc,
        'accuracy_best_chunk_mean': float(best_acc.mean()),
      }
    )
  return out

"""2-D convolutions with a fast CPU path: exact re-formulations of the stride-2 convolutions.

On XLA:CPU three of the six convolutions of a stride-2 conv / transposed-conv pair lower to
*lhs-dilated* convolutions, which take a slow generic path: the input gradient of a strided conv,
the forward pass of a transposed conv (`lax.conv_transpose` dilates its input) and the kernel
gradient of a transposed conv. In a 64×64 β-VAE they cost more than the rest of the step. Each has
exact re-formulations without any dilation:

* **space-to-depth** (`'s2d_*'`): a stride-2 k×k conv equals a stride-1 ⌈k/2⌉×⌈k/2⌉ VALID conv of
  the space-to-depth input (4·C channels) with a rearranged, zero-padded kernel;
* **phases** (`'phase_*'`): a stride-2 transposed conv equals one stride-1 conv to 4·C_out channels
  (the four output phases, each with its own sub-kernel) followed by depth-to-space;
* **overlap-add** (`'ola'`): a transposed conv equals a per-pixel matmul to (taps·4·C_out) columns
  followed by a sum of shifted slices (good when C_out is tiny, as in a decoder's last layer).

The stride-1 VALID conv at the core of 's2d' and 'phase' runs as XLA's convolution (`*_conv`) or as
im2col + one matmul (`*_gemm`, `*_gemm_t`, `*_gemm_tt`, `*_gemm_cm`: the kernel gradient as
colsᵀ·dz, as (dzᵀ·cols)ᵀ, with explicit transposes that XLA folds into a dot contracting both
operands' major dimension, or as channel-major x times shifted copies of dz; which of them XLA:CPU
runs fastest depends on the shapes).

All formulations compute the same function, so they also have the same gradients. `conv2d` and
`conv_transpose2d` with impl='fast' wrap them in a `jax.custom_vjp` that computes the forward pass,
the input gradient and the kernel gradient each with the formulation that XLA:CPU runs fastest for
it (a `Plan`; see `plan_conv` and `plan_conv_transpose` for the choices and why). Parameters are
identical to `flax.linen.Conv` / `ConvTranspose` (HWIO kernels; a transposed conv's kernel is *not*
flipped: flax's `transpose_kernel=False`), so a checkpoint trained with one impl runs with the other.

Grouped convs (`feature_group_count` G > 1) run as G convs, one per group, concatenated: XLA:CPU
runs a grouped conv on a slow path (AlexNet's 5×5 and 3×3 two-group convs, forward and both
gradients, 5-6× slower than the two halves as plain convs, measured on a 2-core CPU).

Layouts are NHWC / HWIO. Only 2-D convs with stride 2 in both dimensions are re-formulated (any
kernel size, 'SAME', 'VALID' or explicit padding, odd sizes included); everything else (stride 1,
dilated convs) is plain XLA, which has no lhs-dilated convolution there.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Literal, Sequence

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

ConvImpl = Literal['auto', 'xla', 'fast']
Padding = str | Sequence[tuple[int, int]]

_DN = ('NHWC', 'HWIO', 'NHWC')
_IMPLS = ('auto', 'xla', 'fast')


def resolve_conv_impl(conv_impl: str, backend: str | None = None) -> str:
  """'auto' → 'fast' on the CPU backend, 'xla' elsewhere; 'xla' and 'fast' as given."""
  if conv_impl not in _IMPLS:
    raise ValueError(f'conv_impl must be one of {_IMPLS}, got {conv_impl!r}')
  if conv_impl == 'auto':
    return 'fast' if (backend or jax.default_backend()) == 'cpu' else 'xla'
  return conv_impl


# ---------------------------------------------------------------------------------------------
# Padding arithmetic


def _conv_pads(in_hw, kernel_hw, padding: Padding) -> tuple[tuple[int, int], ...]:
  """Explicit (low, high) pads of a stride-2 conv, as `lax.conv_general_dilated` applies them."""
  if isinstance(padding, str):
    return tuple(tuple(p) for p in lax.padtype_to_pads(in_hw, kernel_hw, (2, 2), padding.upper()))
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _conv_transpose_pads(kernel_hw, padding: Padding) -> tuple[tuple[int, int], ...]:
  """Pads of the dilated input, as `lax.conv_transpose` (so flax's ConvTranspose) uses them."""
  if not isinstance(padding, str):
    return tuple((int(lo), int(hi)) for lo, hi in padding)
  pads = []
  for k in kernel_hw:  # lax's `_conv_transpose_padding` with stride 2
    if padding.upper() == 'SAME':
      pad_len = k
      pad_a = k - 1 if k < 3 else int(np.ceil(pad_len / 2))
    elif padding.upper() == 'VALID':
      pad_len = k + max(k - 2, 0)
      pad_a = k - 1
    else:
      raise ValueError(f'padding must be SAME, VALID or explicit pairs, got {padding!r}')
    pads.append((pad_a, pad_len - pad_a))
  return tuple(pads)


def _zero_pad(x, pads_hw):
  """Pads (or, for negative amounts, crops) the two spatial dims of an NHWC array."""
  config = ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads_hw), (0, 0, 0))
  return lax.pad(x, jnp.zeros((), x.dtype), config)


# ---------------------------------------------------------------------------------------------
# The stride-1 VALID conv at the core of 's2d' and 'phase': as XLA's conv or as im2col + matmul,
# each gradient with an explicit formula, so that its matmul has the operand order XLA:CPU runs
# fastest rather than whichever autodiff happens to produce.

_CORES = ('conv', 'gemm', 'gemm_t', 'gemm_tt', 'gemm_cm')


def _im2col(x, kh, kw, oh, ow):
  cols = [x[:, a:a + oh, b:b + ow, :] for a in range(kh) for b in range(kw)]
  return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def _core_forward(x, w, core):
  kh, kw, ci, co = w.shape
  if core == 'conv':
    return lax.conv_general_dilated(x, w, (1, 1), 'VALID', dimension_numbers=_DN)
  # every gemm core shares the forward pass and the input gradient; they differ in the kernel grad
  oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  return jnp.einsum('bhwk,ko->bhwo', _im2col(x, kh, kw, oh, ow), w.reshape(kh * kw * ci, co))


def _core_input_grad(dz, w, x_shape, core):
  kh, kw, ci, co = w.shape
  if core == 'conv':  # a stride-1 'full' conv with the flipped, transposed kernel
    w_t = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    return lax.conv_general_dilated(dz, w_t, (1, 1), ((kh - 1, kh - 1), (kw - 1, kw - 1)),
                                    dimension_numbers=_DN)
  # column gradients dz·Wᵀ, then col2im as a sum of shifted, zero-padded slices
  _, h, wd, _ = x_shape
  oh, ow = dz.shape[1], dz.shape[2]
  dcols = jnp.einsum('bhwo,tio->bhwti', dz, w.reshape(kh * kw, ci, co))
  dx = None
  for a in range(kh):
    for b in range(kw):
      part = _zero_pad(dcols[:, :, :, a * kw + b, :], ((a, h - oh - a), (b, wd - ow - b)))
      dx = part if dx is None else dx + part
  return dx


def _core_kernel_grad(x, dz, w_shape, core):
  kh, kw, _, _ = w_shape
  if core == 'conv':
    fn = lambda w: lax.conv_general_dilated(x, w, (1, 1), 'VALID', dimension_numbers=_DN)
    return jax.vjp(fn, jnp.zeros(w_shape, x.dtype))[1](dz)[0]
  if core == 'gemm_cm':
    return _kernel_grad_channel_major(x, dz, w_shape)
  cols = _im2col(x, kh, kw, dz.shape[1], dz.shape[2])
  contract = (((0, 1, 2), (0, 1, 2)), ((), ()))
  if core == 'gemm':
    dw = lax.dot_general(cols, dz, contract)
  elif core == 'gemm_t':
    dw = lax.dot_general(dz, cols, contract).T
  else:
    m = cols.shape[0] * cols.shape[1] * cols.shape[2]
    dz_t = dz.reshape(m, dz.shape[3]).T
    dw = jnp.matmul(dz_t, cols.reshape(m, cols.shape[3])).T
  return dw.reshape(w_shape)


def _kernel_grad_channel_major(x, dz, w_shape):
  """dW[a, b] = Σ_q x[q]ᵀ·dz[q − (a, b)] as one [C_in, BHW]·[BHW, kh·kw·C_out] matmul.

  Shifting the (small) output gradient instead of the input avoids im2col of x; transposing x to
  channel-major once gives the matmul the operand layout XLA:CPU runs fastest (it runs a matmul
  contracting both operands' major dimension several times slower).
  """
  kh, kw, ci, co = w_shape
  b, h, w, _ = x.shape
  shifted = [_zero_pad(dz, ((a, kh - 1 - a), (c, kw - 1 - c))) for a in range(kh) for c in range(kw)]
  dz_cols = shifted[0] if len(shifted) == 1 else jnp.concatenate(shifted, axis=-1)
  # The barrier keeps XLA from fusing the transpose into whatever produced x (slow strided loops).
  x_cm = lax.optimization_barrier(x).reshape(b * h * w, ci).T
  dw = jnp.matmul(x_cm, dz_cols.reshape(b * h * w, kh * kw * co))
  return dw.reshape(ci, kh, kw, co).transpose(1, 2, 0, 3)


@dataclasses.dataclass(frozen=True)
class _Reformulated:
  """y = post(core_conv(pre_x(x), pre_w(w))): linear maps around one stride-1 VALID conv."""

  pre_x: Callable
  pre_w: Callable
  post: Callable
  # post's transpose, (dy, z_shape) -> dz, where jax.linear_transpose's is slow
  post_t: Callable | None = None

  def forward(self, x, w, core):
    return self.post(_core_forward(self.pre_x(x), self.pre_w(w), core))

  def _dz(self, x, w, dy):
    z = jax.eval_shape(lambda x, w: _core_forward(self.pre_x(x), self.pre_w(w), 'conv'), x, w)
    if self.post_t is not None:
      return self.post_t(dy, z.shape)
    return jax.linear_transpose(self.post, z)(dy)[0]

  def input_grad(self, x, w, dy, core):
    xp = jax.eval_shape(self.pre_x, x)
    dxp = _core_input_grad(self._dz(x, w, dy), self.pre_w(w), xp.shape, core)
    return jax.linear_transpose(self.pre_x, x)(dxp)[0]

  def kernel_grad(self, x, w, dy, core):
    wp = jax.eval_shape(self.pre_w, w)
    dwp = _core_kernel_grad(self.pre_x(x), self._dz(x, w, dy), wp.shape, core)
    return jax.linear_transpose(self.pre_w, w)(dwp)[0]


# ---------------------------------------------------------------------------------------------
# Strided conv


def space_to_depth(x: jax.Array) -> jax.Array:
  """[B, 2H, 2W, C] → [B, H, W, 4C], channels ordered (row phase, column phase, c)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(x: jax.Array) -> jax.Array:
  """The inverse of `space_to_depth`: [B, H, W, 4C] → [B, 2H, 2W, C]."""
  b, h, w, c4 = x.shape
  x = x.reshape(b, h, w, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c4 // 4)


def s2d_kernel(kernel: jax.Array) -> jax.Array:
  """[k, k', I, O] → [⌈k/2⌉, ⌈k'/2⌉, 4I, O]: tap (2a+p, 2b+q) goes to block (a, b), phase (p, q)."""
  k1, k2, ci, co = kernel.shape
  kb1, kb2 = -(-k1 // 2), -(-k2 // 2)
  kernel = jnp.pad(kernel, ((0, 2 * kb1 - k1), (0, 2 * kb2 - k2), (0, 0), (0, 0)))
  kernel = kernel.reshape(kb1, 2, kb2, 2, ci, co).transpose(0, 2, 1, 3, 4, 5)
  return kernel.reshape(kb1, kb2, 4 * ci, co)


def _s2d(x_shape, w_shape, pads) -> _Reformulated:
  """Pad to length 2·(out + ⌈k/2⌉ − 1) (cropping if need be), space-to-depth, stride-1 conv."""
  new_pads = []
  for n, k, (lo, hi) in zip(x_shape[1:3], w_shape[:2], pads):
    out = (n + lo + hi - k) // 2 + 1
    length = 2 * (out + -(-k // 2) - 1)
    new_pads.append((lo, length - lo - n))
  return _Reformulated(lambda x: space_to_depth(_zero_pad(x, new_pads)), s2d_kernel,
                       lambda z: z)


def _conv_lax(x, w, pads):
  return lax.conv_general_dilated(x, w, (2, 2), pads, dimension_numbers=_DN)


# ---------------------------------------------------------------------------------------------
# Transposed conv (flax semantics: a conv of the stride-dilated input, kernel not flipped)


def _conv_transpose_lax(x, w, pads):
  return lax.conv_general_dilated(x, w, (1, 1), pads, lhs_dilation=(2, 2), dimension_numbers=_DN)


@dataclasses.dataclass(frozen=True)
class _PhaseGeometry:
  """One spatial dim of a stride-2 transposed conv, split by output phase q ∈ {0, 1}.

  Phase q takes kernel taps r_q, r_q+2, … applied to inputs from offset d_q on. All phases share
  one window of `taps` inputs (a shorter sub-kernel is zero-padded); phase q reads the window
  outputs from `shift[q]` on, `per_phase` = ⌈out/2⌉ of them (an odd `out` crops the last one).
  """

  r: tuple[int, int]
  taps: int
  shift: tuple[int, int]
  per_phase: int
  out: int
  pads: tuple[int, int]  # how the input is padded (negative: cropped) for the window conv


def _phase_geometry(n: int, k: int, pad: tuple[int, int]) -> _PhaseGeometry:
  pa, pb = pad
  out = 2 * n + pa + pb - k
  if out <= 0:
    raise ValueError(f'a transposed conv of size {n}, kernel {k} and pads {pad} has no output')
  r = tuple((pa - q) % 2 for q in range(2))
  taps = max(-(-(k - r[q]) // 2) for q in range(2))
  d = tuple((q + r[q] - pa) // 2 for q in range(2))
  lo = min(d)
  shift = tuple(d[q] - lo for q in range(2))
  per_phase = -(-out // 2)
  windows = max(shift) + per_phase
  return _PhaseGeometry(r, taps, shift, per_phase, out, (-lo, windows + taps - 1 - n + lo))


def _phase_kernel(w, geo_h: _PhaseGeometry, geo_w: _PhaseGeometry):
  """[k, k', I, O] → [taps_h, taps_w, I, 4·O], output channels ordered (row phase, col phase, o)."""
  blocks = []
  for qh in range(2):
    for qw in range(2):
      sub = w[geo_h.r[qh]::2, geo_w.r[qw]::2]
      pad = ((0, geo_h.taps - sub.shape[0]), (0, geo_w.taps - sub.shape[1]), (0, 0), (0, 0))
      blocks.append(jnp.pad(sub, pad))
  kh, kw, ci, co = blocks[0].shape
  return jnp.stack(blocks, axis=3).reshape(kh, kw, ci, 4 * co)


def _interleave_phases(z, geo_h: _PhaseGeometry, geo_w: _PhaseGeometry):
  """z: [B, zh, zw, 4·O] (phase-major channels) → [B, out_h, out_w, O] (depth-to-space)."""
  z = z.reshape(*z.shape[:3], 2, 2, z.shape[3] // 4)
  mh, mw = geo_h.per_phase, geo_w.per_phase
  rows = []
  for qh in range(2):
    sh = geo_h.shift[qh]
    cols = [z[:, sh:sh + mh, geo_w.shift[qw]:geo_w.shift[qw] + mw, qh, qw] for qw in range(2)]
    rows.append(jnp.stack(cols, axis=3))  # [B, mh, mw, 2 (qw), O]
  y = jnp.stack(rows, axis=2)  # [B, mh, 2 (qh), mw, 2 (qw), O]
  y = y.reshape(y.shape[0], 2 * mh, 2 * mw, y.shape[-1])
  return y[:, :geo_h.out, :geo_w.out, :]


def _deinterleave_phases(dy, z_shape, geo_h: _PhaseGeometry, geo_w: _PhaseGeometry):
  """The transpose of `_interleave_phases`: [B, out_h, out_w, O] → z_shape [B, zh, zw, 4·O].

  Written out because jax.linear_transpose's version adds four zero-padded full-size arrays.
  """
  mh, mw = geo_h.per_phase, geo_w.per_phase
  dy = _zero_pad(dy, ((0, 2 * mh - geo_h.out), (0, 2 * mw - geo_w.out)))
  dy = dy.reshape(dy.shape[0], mh, 2, mw, 2, dy.shape[-1])
  zh, zw = z_shape[1], z_shape[2]
  parts = []
  for qh in range(2):
    for qw in range(2):
      sh, sw = geo_h.shift[qh], geo_w.shift[qw]
      parts.append(_zero_pad(dy[:, :, qh, :, qw], ((sh, zh - sh - mh), (sw, zw - sw - mw))))
  return jnp.concatenate(parts, axis=-1)


def _phases(x_shape, w_shape, pads) -> _Reformulated:
  geo_h, geo_w = (_phase_geometry(n, k, p) for n, k, p in zip(x_shape[1:3], w_shape[:2], pads))
  return _Reformulated(lambda x: _zero_pad(x, (geo_h.pads, geo_w.pads)),
                       lambda w: _phase_kernel(w, geo_h, geo_w),
                       lambda z: _interleave_phases(z, geo_h, geo_w),
                       lambda dy, z_shape: _deinterleave_phases(dy, z_shape, geo_h, geo_w))


def _conv_transpose_ola(x, w, pads):
  """Per input pixel u = x·W (every tap of every phase), then each output phase sums its taps'
  shifted slices of u."""
  geo_h, geo_w = (_phase_geometry(n, k, p) for n, k, p in zip(x.shape[1:3], w.shape[:2], pads))
  wp = _phase_kernel(w, geo_h, geo_w)  # [th, tw, I, 4·O]
  th, tw, ci, c4 = wp.shape
  xp = _zero_pad(x, (geo_h.pads, geo_w.pads))
  u = jnp.einsum('bhwi,it->bhwt', xp, wp.transpose(2, 0, 1, 3).reshape(ci, th * tw * c4))
  u = u.reshape(*u.shape[:3], th, tw, c4)
  zh, zw = xp.shape[1] - th + 1, xp.shape[2] - tw + 1
  z = None
  for a in range(th):
    for b in range(tw):
      part = u[:, a:a + zh, b:b + zw, a, b]
      z = part if z is None else z + part
  return _interleave_phases(z, geo_h, geo_w)


# ---------------------------------------------------------------------------------------------
# Formulations by name: 'lax' (the op as XLA lowers it), 'ola' (transposed conv only), or
# '<s2d|phase>_<core>' with a core from _CORES.

_DIRECT = {
    ('conv', 'lax'): _conv_lax,
    ('conv_transpose', 'lax'): _conv_transpose_lax,
    ('conv_transpose', 'ola'): _conv_transpose_ola,
}
_REFORMULATED = {('conv', 's2d'): _s2d, ('conv_transpose', 'phase'): _phases}


def formulations(kind: str) -> tuple[str, ...]:
  """The formulation names of `kind` ('conv' or 'conv_transpose')."""
  direct = [name for k, name in _DIRECT if k == kind]
  reform = [f'{base}_{core}' for k, base in _REFORMULATED if k == kind for core in _CORES]
  return tuple(direct + reform)


def _parts(kind: str, name: str, x, w, pads):
  """(forward(), input_grad(dy), kernel_grad(dy)) of formulation `name` at (x, w)."""
  fn = _DIRECT.get((kind, name))
  if fn is not None:
    return (lambda: fn(x, w, pads),
            lambda dy: jax.vjp(lambda x_: fn(x_, w, pads), x)[1](dy)[0],
            lambda dy: jax.vjp(lambda w_: fn(x, w_, pads), w)[1](dy)[0])
  base, _, core = name.partition('_')
  builder = _REFORMULATED.get((kind, base))
  if builder is None or core not in _CORES:
    raise ValueError(f'unknown {kind} formulation {name!r}; known: {formulations(kind)}')
  ref = builder(x.shape, w.shape, pads)
  return (lambda: ref.forward(x, w, core),
          lambda dy: ref.input_grad(x, w, dy, core),
          lambda dy: ref.kernel_grad(x, w, dy, core))


# ---------------------------------------------------------------------------------------------
# Plans: which formulation computes which part


@dataclasses.dataclass(frozen=True)
class Plan:
  """The formulations of the forward pass, the input gradient and the kernel gradient."""

  forward: str
  input_grad: str
  kernel_grad: str


def plan_conv(x_shape, w_shape) -> Plan:
  """The plan for a stride-2 conv of `x_shape` [B, H, W, C] with kernel `w_shape` [k, k, I, O].

  The input gradient (a transposed conv) always goes through space-to-depth. With a few input
  channels (an encoder's first layer) the forward pass and the kernel gradient are im2col + one
  matmul each, sharing their columns. Otherwise the strided conv stays 'lax' (XLA:CPU is fast on
  it); XLA's own kernel gradient needs the activations transposed batch-minor, which is slow on
  large maps, so there the channel-major matmul computes it. Measured in the 64×64 benchmark
  step (bench/train_throughput.py).
  """
  ci = w_shape[2]
  if ci <= 4:
    return Plan('s2d_gemm', 's2d_conv', 's2d_gemm_tt')
  if min(x_shape[1:3]) >= 16:
    return Plan('lax', 's2d_conv', 's2d_gemm_cm')
  return Plan('lax', 's2d_conv', 'lax')


def plan_conv_transpose(x_shape, w_shape) -> Plan:
  """The plan for a stride-2 transposed conv of `x_shape` with kernel `w_shape` [k, k, I, O].

  Its input gradient is a strided conv, fast as lowered ('lax'). The forward pass and the kernel
  gradient go through the phase formulation. With few output channels (a decoder's last layer) a
  conv to 4·C_out channels wastes its vector lanes: the forward pass goes through overlap-add and
  the kernel gradient through the channel-major matmul.
  """
  co = w_shape[3]
  if co <= 4:
    return Plan('ola', 'lax', 'phase_gemm_cm')
  return Plan('phase_conv', 'lax', 'phase_gemm' if min(x_shape[1:3]) >= 16 else 'phase_gemm_tt')


# ---------------------------------------------------------------------------------------------
# The custom-VJP ops


def _make_op(kind):
  @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
  def op(x, w, pads, plan):
    return _parts(kind, plan.forward, x, w, pads)[0]()

  def fwd(x, w, pads, plan):
    return op(x, w, pads, plan), (x, w)

  def bwd(pads, plan, residuals, dy):
    x, w = residuals
    dx = _parts(kind, plan.input_grad, x, w, pads)[1](dy)
    dw = _parts(kind, plan.kernel_grad, x, w, pads)[2](dy)
    return dx, dw

  op.defvjp(fwd, bwd)
  return op


_conv_s2 = _make_op('conv')
_conv_transpose_s2 = _make_op('conv_transpose')


def _validate_plan(plan: Plan, kind: str):
  known = formulations(kind)
  for part in (plan.forward, plan.input_grad, plan.kernel_grad):
    if part not in known:
      raise ValueError(f'unknown {kind} formulation {part!r}; known: {known}')


def conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
           padding: Padding = 'SAME', *, impl: str = 'auto', feature_group_count: int = 1,
           plan: Plan | None = None) -> jax.Array:
  """`lax.conv_general_dilated` in NHWC/HWIO, exactly as `flax.linen.Conv` applies it.

  Args:
    x: [B, H, W, C_in].
    kernel: [kh, kw, C_in / feature_group_count, C_out].
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((lo, hi), (lo, hi)), as in `lax.conv_general_dilated`.
    impl: 'xla' (plain lax), 'fast' (stride-2 convs through a `Plan`), or 'auto'
      (`resolve_conv_impl`).
    feature_group_count: for grouped convs (with 'fast', one conv per group, concatenated).
    plan: overrides `plan_conv` (tests and benchmarks).

  Returns:
    [B, H', W', C_out].
  """
  strides = tuple(int(s) for s in strides)
  fast = resolve_conv_impl(impl) == 'fast' and x.ndim == 4
  if fast and feature_group_count > 1:
    groups = zip(jnp.split(x, feature_group_count, axis=-1),
                 jnp.split(kernel, feature_group_count, axis=-1))
    return jnp.concatenate([conv2d(xg, kg, strides, padding, impl='fast', plan=plan)
                            for xg, kg in groups], axis=-1)
  if not fast or strides != (2, 2) or feature_group_count != 1:
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN,
                                    feature_group_count=feature_group_count)
  pads = _conv_pads(x.shape[1:3], kernel.shape[:2], padding)
  plan = plan or plan_conv(x.shape, kernel.shape)
  _validate_plan(plan, 'conv')
  return _conv_s2(x, kernel, pads, plan)


def conv_transpose2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
                     padding: Padding = 'SAME', *, impl: str = 'auto',
                     plan: Plan | None = None) -> jax.Array:
  """`lax.conv_transpose` in NHWC/HWIO, kernel unflipped, exactly as `flax.linen.ConvTranspose`.

  Args:
    x: [B, H, W, C_in].
    kernel: [kh, kw, C_in, C_out].
    strides: (sh, sw).
    padding: 'SAME' or 'VALID' (as `lax.conv_transpose` reads them), or explicit pads of the
      stride-dilated input.
    impl: 'xla', 'fast' or 'auto', as in `conv2d`.
    plan: overrides `plan_conv_transpose` (tests and benchmarks).

  Returns:
    [B, H', W', C_out]; with 'SAME', H' = sh·H.
  """
  strides = tuple(int(s) for s in strides)
  if resolve_conv_impl(impl) == 'xla' or strides != (2, 2) or x.ndim != 4:
    return lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=_DN)
  pads = _conv_transpose_pads(kernel.shape[:2], padding)
  plan = plan or plan_conv_transpose(x.shape, kernel.shape)
  _validate_plan(plan, 'conv_transpose')
  return _conv_transpose_s2(x, kernel, pads, plan)

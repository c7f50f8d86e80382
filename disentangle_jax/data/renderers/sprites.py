"""A Sprites-equivalent: little game avatars with labelled attributes, 64×64×3.

The attributes and their cardinalities are those of the Sprites table in Hu et al.'s mixing paper
(seed 000, methods §1.9, whose "Random" row is 1/cardinality): body 2, skin 4, vest 3, hair 6,
arm 2, leg 2, and a pose with ≈ 167 values. Our pose grid has 168 = 4 directions × 6 actions ×
7 frames (1/168 = 0.006, the table's pose prior), index `(direction · 6 + action) · 7 + frame`:
- directions (the Liberated Pixel Cup sheets' order): back, left, front, right;
- actions: walk, spellcast, thrust, slash, shoot (bow), hurt (collapsing); 7 frames each.
The full grid is 2 · 4 · 3 · 6 · 2 · 2 · 168 = 96,768 images (Sprites has ~120K): 576
characters (every attribute but the pose) in 168 poses each. `split_of` assigns whole characters to
train / validation / test (80,640 / 8,064 / 8,064 images), so no evaluation image has a copy, or the
same character in another pose, among the training images.

What each attribute changes (all visible in every direction):
- body: slim or broad (torso width and depth, limb thickness);
- skin: one of 4 skin tones (head, hands, bare arms);
- vest: one of 3 vest colours (torso);
- hair: 6 styles, each with its own colour: short brown, long blonde, spiky black, red bun,
  green mohawk, purple afro;
- arm: bare arms, or steel sleeves with shoulder pads;
- leg: dark trousers, or light trousers with steel greaves.

How: a figure is a 3D stick model (shoulders, elbows, hips, knees, a sphere head) posed by the
action and frame, projected orthographically for the direction, and drawn as outlined capsules,
boxes and the head sphere with a depth buffer, into a label map (skin, hair, vest, ...). The
label map depends on (body, hair, arm, leg, pose) only and is computed once per process for each
of those 8,064 cases on first use; an image is the label map coloured by a per-image palette.
"""

from __future__ import annotations

import numpy as np

from disentangle_jax.data.renderers import _common

FACTOR_NAMES = ('body', 'skin', 'vest', 'hair', 'arm', 'leg', 'pose')
FACTOR_SIZES = (2, 4, 3, 6, 2, 2, 168)
IMAGE_SHAPE = (64, 64, 3)
#: Every other frame (0, 2, 4, 6 of each action; index 7 · j + f with f even): 2 · 4 · 3 · 6 ·
#: 2 · 2 · 84 = 48,384 images.
REDUCED_STRIDES = (1, 1, 1, 1, 1, 1, 2)
DIRECTIONS = ('back', 'left', 'front', 'right')
ACTIONS = ('walk', 'spellcast', 'thrust', 'slash', 'shoot', 'hurt')
FRAMES = 7
HAIR_STYLES = ('short', 'long', 'spiky', 'bun', 'mohawk', 'afro')

# Labels of the label map; the palette maps them to colours per image.
(_BACKGROUND, _OUTLINE, _SKIN, _HAIR, _VEST, _SLEEVE, _TROUSERS, _BOOTS, _EYES, _BELT,
 _STEEL) = range(11)
_NUM_LABELS = 11

_SKIN_RGB = np.array([[250, 218, 186], [222, 172, 122], [158, 104, 64], [92, 58, 38]])
_VEST_RGB = np.array([[196, 40, 40], [44, 84, 200], [226, 178, 36]])
_HAIR_RGB = np.array([[112, 68, 28], [240, 208, 96], [28, 28, 34], [196, 60, 28],
                      [60, 176, 64], [132, 64, 176]])
_TROUSERS_RGB = np.array([[56, 56, 92], [200, 186, 150]])
_STEEL_RGB = np.array([172, 176, 188])
_FIXED_RGB = {
    _BACKGROUND: (255, 255, 255),
    _OUTLINE: (40, 32, 32),
    _BOOTS: (92, 56, 30),
    _EYES: (24, 24, 40),
    _BELT: (70, 44, 24),
    _STEEL: tuple(_STEEL_RGB),
}

_SIZE = IMAGE_SHAPE[0]
_CENTRE_X = _SIZE / 2
_GROUND_Y = 55.0  # ankle height when standing
_HEAD_Y, _HEAD_RX, _HEAD_RY = 14.0, 6.5, 7.0
_SHOULDER_Y, _TORSO_BOTTOM_Y, _HIP_Y = 22.5, 37.0, 38.5
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 7.0, 6.5, 8.5, 8.0
# body 0 (slim), 1 (broad)
_TORSO_HALF_WIDTH = np.array([5.5, 7.5])
_TORSO_HALF_DEPTH = np.array([3.5, 5.0])
_ARM_RADIUS = np.array([1.9, 2.5])
_LEG_RADIUS = np.array([2.2, 2.8])
_HIP_HALF_WIDTH = np.array([2.8, 4.0])


#: The splits of `split_of`, with their share of the 576 characters.
SPLITS = ('train', 'validation', 'test')
CHARACTER_FACTORS = ('body', 'skin', 'vest', 'hair', 'arm', 'leg')


def character_fold(factors: np.ndarray) -> np.ndarray:
  """Which of 12 folds the character (every attribute but the pose) of each row belongs to.

  A character (body, skin, vest, hair, arm, leg) maps to the fold
  `6 · ((body + skin + leg) mod 2) + 3 · ((arm + hair + leg) mod 2) + (vest + hair) mod 3`, a
  homomorphism onto Z2 × Z2 × Z3. The other five attributes alone still reach every fold, so each
  fold holds 48 of the 576 characters and, for every attribute, exactly 48 / cardinality of them
  take each value: every split made of whole folds is balanced in every attribute, and its
  retrieval "Random" baseline is the table's 1 / cardinality.

  Args:
    factors: int [n, 7] full-grid factor indices.

  Returns:
    int64 [n] folds in 0..11.
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'sprites')
  body, skin, vest, hair, arm, leg, _ = factors.T
  return 6 * ((body + skin + leg) % 2) + 3 * ((arm + hair + leg) % 2) + (vest + hair) % 3


def split_of(factors: np.ndarray) -> np.ndarray:
  """The split of each row: 'test' (fold 0), 'validation' (fold 7) or 'train' (the other ten).

  The split is a function of the character alone: the 48 test and the 48 validation characters
  appear in every pose and never in training, as Reed et al. (2015, "Deep visual analogy-making")
  split their sprites by character. Train 80,640 images, validation 8,064, test 8,064.

  Args:
    factors: int [n, 7] full-grid factor indices.

  Returns:
    str [n].
  """
  fold = character_fold(factors)
  return np.where(fold == 0, 'test', np.where(fold == 7, 'validation', 'train'))


def factor_values(name: str) -> np.ndarray:
  """Index of each value: the attributes are categorical (pose: see the module docstring)."""
  if name not in FACTOR_NAMES:
    raise ValueError(f'sprites has no factor {name!r}; factors are {FACTOR_NAMES}')
  return np.arange(FACTOR_SIZES[FACTOR_NAMES.index(name)], dtype=np.float64)


def pose_index(direction, action, frame) -> np.ndarray:
  """Pose factor index of (direction, action, frame) indices."""
  return (np.asarray(direction) * len(ACTIONS) + np.asarray(action)) * FRAMES + np.asarray(frame)


def split_pose(pose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(direction, action, frame) indices of pose indices."""
  return np.unravel_index(np.asarray(pose), (len(DIRECTIONS), len(ACTIONS), FRAMES))


# --- Posing: joint angles in degrees per (action, frame). ---------------------------------
# A limb hangs down at 0; `swing` turns it forwards (+) about the shoulder/hip's lateral axis,
# `spread` lifts it sideways, away from the body; `bend` is the elbow's (forwards) or the knee's
# (backwards) angle.


def _joint_angles(action: np.ndarray, frame: np.ndarray) -> dict[str, np.ndarray]:
  """Per limb (left/right arm/leg): swing, spread and bend, float [m] each, in degrees."""
  p = frame / (FRAMES - 1)  # progress 0..1 of one-shot actions
  ph = np.sin(2 * np.pi * frame / FRAMES)  # walk cycle
  ph2 = np.cos(2 * np.pi * frame / FRAMES)
  zeros = np.zeros_like(p)
  table = {  # action -> limb -> (swing, spread, bend)
      0: dict(arm_l=(-24 * ph, 8 + zeros, 15 + zeros), arm_r=(24 * ph, 8 + zeros, 15 + zeros),
              leg_l=(30 * ph, 3 + zeros, 25 * np.clip(ph2, 0, 1)),
              leg_r=(-30 * ph, 3 + zeros, 25 * np.clip(-ph2, 0, 1))),
      1: dict(arm_l=(15 + zeros, 15 + 125 * p, 10 + 25 * p),
              arm_r=(15 + zeros, 15 + 125 * p, 10 + 25 * p),
              leg_l=(zeros, 6 + 4 * p, zeros), leg_r=(zeros, 6 + 4 * p, zeros)),
      2: dict(arm_l=(-20 + zeros, 12 + zeros, 30 + zeros),
              arm_r=(20 + 70 * p, 5 + zeros, 95 * (1 - p)),
              leg_l=(10 + 15 * p, 4 + zeros, 5 + 10 * p), leg_r=(-10 - 10 * p, 4 + zeros, zeros)),
      3: dict(arm_l=(10 + 25 * p, 28 + zeros, 20 + zeros),
              arm_r=(190 - 170 * p, 10 + 15 * p, 20 + zeros),
              leg_l=(15 + zeros, 8 + zeros, 10 + zeros), leg_r=(-12 + zeros, 8 + zeros, zeros)),
      4: dict(arm_l=(85 + zeros, 5 + zeros, zeros), arm_r=(85 + zeros, 5 + zeros, 150 * p),
              leg_l=(zeros, 10 + 4 * p, zeros), leg_r=(zeros, 10 + 4 * p, zeros)),
      5: dict(arm_l=(30 * p, 20 + 50 * p, 40 * p), arm_r=(30 * p, 20 + 50 * p, 40 * p),
              leg_l=(65 * p, 6 + zeros, 115 * p), leg_r=(60 * p, 8 + zeros, 110 * p)),
  }
  out = {}
  for limb in ('arm_l', 'arm_r', 'leg_l', 'leg_r'):
    for k, part in enumerate(('swing', 'spread', 'bend')):
      choices = [np.broadcast_to(table[a][limb][k], p.shape) for a in range(len(ACTIONS))]
      out[f'{limb}_{part}'] = np.choose(action, choices)
  return out


def _limb_direction(swing, spread, side) -> np.ndarray:
  """Unit 3D direction [m, 3] in the body frame (x: the figure's left, y: down, z: forwards)."""
  s, b = np.deg2rad(swing), np.deg2rad(spread)
  return np.stack([side * np.sin(b), np.cos(b) * np.cos(s), np.cos(b) * np.sin(s)], -1)


# --- Drawing with signed distances on the pixel grid, vectorised over m figures. ---------

_PX = (np.arange(_SIZE) + 0.5).astype(np.float32)  # pixel centres


def _column(v) -> np.ndarray:
  return np.reshape(np.asarray(v, np.float32), (-1, 1, 1))


def _segment_sdf(a: np.ndarray, b: np.ndarray, radius) -> np.ndarray:
  """Distance to the capsule from screen points a to b ([m, 2] each), minus radius; [m, H, W]."""
  d = b - a
  ax, ay, dx, dy = _column(a[:, 0]), _column(a[:, 1]), _column(d[:, 0]), _column(d[:, 1])
  px, py = _PX[None, None, :] - ax, _PX[None, :, None] - ay
  inv = 1.0 / np.maximum(dx * dx + dy * dy, np.float32(1e-9))
  t = px * (dx * inv) + py * (dy * inv)
  np.clip(t, 0.0, 1.0, out=t)
  ex, ey = px - t * dx, py - t * dy
  ex *= ex
  ey *= ey
  ex += ey
  np.sqrt(ex, out=ex)
  ex -= _column(radius)
  return ex


def _box_sdf(centre: np.ndarray, half_w, half_h, corner: float) -> np.ndarray:
  """Rounded box centred at `centre` [m, 2] with half sizes [m]; [m, H, W]."""
  qx = np.abs(_PX[None, None, :] - _column(centre[:, 0])) - (_column(half_w) - corner)
  qy = np.abs(_PX[None, :, None] - _column(centre[:, 1])) - (_column(half_h) - corner)
  outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
  return outside + np.minimum(np.maximum(qx, qy), 0) - corner


class _Canvas:
  """Label map and depth buffer for m figures; later draws win depth ties."""

  def __init__(self, m: int):
    self.labels = np.zeros((m, _SIZE, _SIZE), np.uint8)
    self.depth = np.full((m, _SIZE, _SIZE), -np.inf, np.float32)

  def draw(self, sdf, label, depth, outline: bool = True, where=None, rows=None):
    """Paints `label` where `sdf < 0` (and an outline where `sdf < 1`) if nearer than before.

    Args:
      sdf: float [m', H, W] signed distances, m' = m or len(rows).
      label: a label, or uint8 [m', H, W] labels.
      depth: float [m'], larger is nearer the viewer.
      outline: also paint the 1-pixel ring around the shape with the outline label.
      where: optional bool [m', H, W] limiting the paint.
      rows: optional int [m'], the figures that `sdf` belongs to (default: all).
    """
    labels = self.labels if rows is None else self.labels[rows]
    depths = self.depth if rows is None else self.depth[rows]
    depth = np.broadcast_to(_column(depth), depths.shape)
    passes = ((1.0, _OUTLINE), (0.0, label)) if outline else ((0.0, label),)
    for level, lab in passes:
      mask = (sdf < level) & (depth >= depths)
      if where is not None:
        mask &= where
      np.copyto(labels, lab, where=mask)
      np.copyto(depths, depth, where=mask)
    if rows is not None:
      self.labels[rows] = labels
      self.depth[rows] = depths


def _label_maps(body, hair, arm, leg, direction, action, frame) -> np.ndarray:
  """Label maps uint8 [m, 64, 64] of m figures (all arguments int [m])."""
  m = body.shape[0]
  # Body frame (x: figure's left, y: down, z: forwards) -> screen x and depth (towards the
  # viewer), per direction: back, left, front, right.
  proj_x = np.array([[-1, 0], [0, -1], [1, 0], [0, 1]], np.float64)[direction]  # [m, 2]
  proj_depth = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], np.float64)[direction]

  def screen(p):  # p: [m, 3] body-frame points (x, y, z) -> screen [m, 2], depth [m]
    xz = p[:, [0, 2]]
    return (np.stack([_CENTRE_X + np.sum(proj_x * xz, -1), p[:, 1]], -1),
            np.sum(proj_depth * xz, -1))

  angles = _joint_angles(action, frame)
  arm_r, leg_r = _ARM_RADIUS[body], _LEG_RADIUS[body]
  half_w, half_d = _TORSO_HALF_WIDTH[body], _TORSO_HALF_DEPTH[body]

  # Legs first (they decide how far the body sinks: the lower ankle stays on the ground).
  legs = {}
  for name, side in (('leg_l', 1.0), ('leg_r', -1.0)):
    hip = np.stack([side * _HIP_HALF_WIDTH[body], np.full(m, _HIP_Y), np.zeros(m)], -1)
    swing, spread, bend = (angles[f'{name}_{k}'] for k in ('swing', 'spread', 'bend'))
    knee = hip + _THIGH * _limb_direction(swing, spread, side)
    ankle = knee + _SHIN * _limb_direction(swing - bend, spread, side)
    legs[name] = (hip, knee, ankle)
  sink = _GROUND_Y - np.maximum(legs['leg_l'][2][:, 1], legs['leg_r'][2][:, 1])
  lean = np.where(action == 2, 2.0 * frame / (FRAMES - 1), 0.0)  # thrust: lean forwards
  lean = lean + np.where(action == 5, 3.0 * frame / (FRAMES - 1), 0.0)  # hurt: slump
  shift = np.stack([np.zeros(m), sink, np.zeros(m)], -1)
  upper = shift + np.stack([np.zeros(m), np.zeros(m), lean], -1)

  canvas = _Canvas(m)
  for name in ('leg_l', 'leg_r'):
    hip, knee, ankle = (p + shift for p in legs[name])
    (h2, hd), (k2, kd), (a2, ad) = screen(hip), screen(knee), screen(ankle)
    toe = ankle + np.stack([np.zeros(m), np.full(m, 0.8), np.full(m, 2.6)], -1)
    t2, td = screen(toe)
    depth = (hd + kd + ad) / 3
    canvas.draw(_segment_sdf(h2, k2, leg_r), _TROUSERS, depth)
    canvas.draw(_segment_sdf(k2, a2, leg_r), _TROUSERS, depth)
    g = np.flatnonzero(leg == 1)  # greaves
    canvas.draw(_segment_sdf(k2[g] + 0.3 * (a2[g] - k2[g]), a2[g], leg_r[g] + 0.4), _STEEL,
                depth[g] + 0.01, rows=g)
    canvas.draw(_segment_sdf(a2, t2, leg_r + 0.3), _BOOTS, np.maximum(ad, td) + 0.01)

  # Torso: vest, belt and hips, a box whose width is the body's width or depth by direction.
  torso_half = np.abs(proj_x[:, 0]) * half_w + np.abs(proj_x[:, 1]) * half_d
  centre, torso_depth = screen(upper + np.stack(
      [np.zeros(m), np.full(m, (_SHOULDER_Y + _TORSO_BOTTOM_Y) / 2 - 0.5), np.zeros(m)], -1))
  half_h = (_TORSO_BOTTOM_Y - _SHOULDER_Y) / 2 + 1.5
  pelvis, _ = screen(shift + np.stack([np.zeros(m), np.full(m, _HIP_Y), np.zeros(m)], -1))
  canvas.draw(_box_sdf(pelvis, torso_half - 0.5, np.full(m, 2.5), 1.0), _TROUSERS, torso_depth)
  canvas.draw(_box_sdf(centre, torso_half, np.full(m, half_h), 2.5), _VEST, torso_depth)
  belt_c = centre + np.stack([np.zeros(m), np.full(m, half_h - 1.5)], -1)
  canvas.draw(_box_sdf(belt_c, torso_half, np.full(m, 1.0), 0.0), _BELT, torso_depth + 0.01,
              outline=False, where=_box_sdf(centre, torso_half, np.full(m, half_h), 2.5) < 0)

  # Head: a sphere whose pixels are skin, hair or eyes by where they lie on the sphere.
  head_c3 = upper + np.stack([np.zeros(m), np.full(m, _HEAD_Y), np.zeros(m)], -1)
  head_c, head_depth = screen(head_c3)
  _draw_hair(canvas, hair, head_c3, screen, in_front=False)
  a = (_PX[None, None, :] - head_c[:, 0, None, None]) / _HEAD_RX
  b = (_PX[None, :, None] - head_c[:, 1, None, None]) / _HEAD_RY
  r2 = a * a + b * b
  c = np.sqrt(np.clip(1 - r2, 0, None))  # towards the viewer
  # Back to the body frame: screen x = proj_x · (x, z), depth = proj_depth · (x, z).
  px, pz = proj_x[:, 0, None, None], proj_x[:, 1, None, None]
  dx, dz = proj_depth[:, 0, None, None], proj_depth[:, 1, None, None]
  sx, sz = px * a + dx * c, pz * a + dz * c  # the rows of the inverse (orthonormal) map
  sy = b
  head_labels = _head_labels(hair, sx, sy, sz)
  head_sdf = (np.sqrt(r2) - 1.0) * min(_HEAD_RX, _HEAD_RY)
  canvas.draw(head_sdf, head_labels, head_depth)
  _draw_hair(canvas, hair, head_c3, screen, in_front=True)

  # Arms last: shoulder, elbow, hand; sleeves and pads when armoured.
  for name, side in (('arm_l', 1.0), ('arm_r', -1.0)):
    shoulder = upper + np.stack(
        [side * (half_w + 0.8), np.full(m, _SHOULDER_Y + 1.0), np.zeros(m)], -1)
    swing, spread, bend = (angles[f'{name}_{k}'] for k in ('swing', 'spread', 'bend'))
    elbow = shoulder + _UPPER_ARM * _limb_direction(swing, spread, side)
    hand = elbow + _FOREARM * _limb_direction(swing + bend, spread, side)
    (s2, sd), (e2, ed), (w2, wd) = screen(shoulder), screen(elbow), screen(hand)
    depth = (sd + ed + wd) / 3
    canvas.draw(_segment_sdf(s2, e2, arm_r), _SLEEVE, depth)
    canvas.draw(_segment_sdf(e2, w2, arm_r), _SLEEVE, depth)
    canvas.draw(_segment_sdf(w2, w2, arm_r + 0.5), _SKIN, wd + 0.01)
    g = np.flatnonzero(arm == 1)  # shoulder pads
    canvas.draw(_segment_sdf(s2[g], s2[g], arm_r[g] + 1.4), _STEEL, sd[g] + 0.02, rows=g)
  return canvas.labels


def _head_labels(hair, x, y, z) -> np.ndarray:
  """Label of each point (x, y, z) on the unit head sphere (body frame; y down, z forwards)."""
  h = hair[:, None, None]
  cap = (y < -0.3) | ((z < -0.25) & (y < 0.55))
  hair_mask = np.select(
      [h == 1, h == 4, h == 5],
      [(y < -0.35) | ((z < 0.0) & (y < 0.9)),  # long: down the back and sides
       (np.abs(x) < 0.3) & (y < 0.0),  # mohawk: a central strip only
       (y < -0.15) | (z < 0.3)],  # afro: all but the face
      cap)
  # Eyes: points within 0.22 (chord length) of the two eye directions (±0.45, 0.1, 0.89).
  eye_x, eye_y = 0.45, 0.1
  eye_z = np.sqrt(1 - eye_x**2 - eye_y**2)
  eyes = np.abs(x) * eye_x + y * eye_y + z * eye_z > 1 - 0.22**2 / 2
  labels = np.full(x.shape, _SKIN, np.uint8)
  labels[eyes] = _EYES
  labels[hair_mask] = _HAIR
  return labels


def _hair_pieces(hair, head_c3, in_front: bool):
  """Capsules (from, to, radius, label visibility mask [m]) of hair outside the head sphere."""
  m = hair.shape[0]
  point = lambda x, y, z: head_c3 + np.stack(  # noqa: E731
      [np.full(m, x), np.full(m, y), np.full(m, z)], -1)
  pieces = []
  if not in_front:
    pieces.append((point(0, 0, -3.0), point(0, 9, -3.5), 7.8, hair == 1))  # long
    pieces.append((point(0, -1.5, -1.5), point(0, -1.5, -1.5), 9.5, hair == 5))  # afro
    pieces.append((point(0, -6.5, -4.0), point(0, -6.5, -4.0), 3.2, hair == 3))  # bun
  else:
    for deg in (-70, -35, 0, 35, 70):  # spikes, fanned over the top
      t = np.deg2rad(deg)
      d = np.array([np.sin(t), -np.cos(t), -0.3])
      pieces.append((point(*(4.5 * d)), point(*(9.0 * d)), 1.6, hair == 2))
    for z in (3.0, 0.0, -3.0):  # mohawk crest along the mid line
      pieces.append((point(0, -6.5 + 0.1 * abs(z), z), point(0, -8.5 + 0.3 * abs(z), z), 1.8,
                     hair == 4))
  return pieces


def _draw_hair(canvas, hair, head_c3, screen, in_front: bool):
  """Draws the hair outside the head sphere: behind it (depth-tested) or over it (always)."""
  for start, end, radius, on in _hair_pieces(hair, head_c3, in_front):
    (a, ad), (b, bd) = screen(start), screen(end)
    g = np.flatnonzero(on)
    depth = np.full(g.size, np.inf) if in_front else (ad[g] + bd[g]) / 2
    canvas.draw(_segment_sdf(a[g], b[g], radius), _HAIR, depth, rows=g)


# Label maps per (body, hair, arm, leg, pose).
_GEOMETRY_SHAPE = (2, 6, 2, 2, 168)


def _compute_label_maps(ids: np.ndarray) -> np.ndarray:
  body, hair, arm, leg, pose = np.unravel_index(ids, _GEOMETRY_SHAPE)
  direction, action, frame = split_pose(pose)
  return _label_maps(body, hair, arm, leg, direction, action, frame)


_LABEL_MAPS = _common.LazyTable(int(np.prod(_GEOMETRY_SHAPE)), _compute_label_maps,
                                chunk_size=128)


def _palettes(factors: np.ndarray) -> np.ndarray:
  """Colour of each label per image: uint8 [n, labels, 3]."""
  body, skin, vest, hair, arm, leg, _ = factors.T
  n = factors.shape[0]
  palette = np.zeros((n, _NUM_LABELS, 3), np.uint8)
  for label, rgb in _FIXED_RGB.items():
    palette[:, label] = rgb
  palette[:, _SKIN] = _SKIN_RGB[skin]
  palette[:, _HAIR] = _HAIR_RGB[hair]
  palette[:, _VEST] = _VEST_RGB[vest]
  palette[:, _SLEEVE] = np.where((arm == 1)[:, None], _STEEL_RGB, _SKIN_RGB[skin])
  palette[:, _TROUSERS] = _TROUSERS_RGB[leg]
  return palette


def _render_chunk(factors: np.ndarray) -> np.ndarray:
  body, _, _, hair, arm, leg, pose = factors.T
  labels = _LABEL_MAPS(np.ravel_multi_index((body, hair, arm, leg, pose), _GEOMETRY_SHAPE))
  palette = _palettes(factors).reshape(-1, 3)
  offset = (np.arange(factors.shape[0]) * _NUM_LABELS)[:, None, None]
  return palette[labels + offset]


def render(factors: np.ndarray) -> np.ndarray:
  """Renders avatars for factor indices (body, skin, vest, hair, arm, leg, pose).

  Returns:
    uint8 [n, 64, 64, 3].
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'sprites')
  return _common.render_in_chunks(_render_chunk, factors, IMAGE_SHAPE)


#: The parts `concept_masks` returns, each one label of the label map (every label but the
#: background): the outline ring, skin (face and hands), hair, vest, arm (upper and lower arms:
#: bare skin or steel sleeves), leg (trousers: legs and hips), boots, eyes, belt, armour (shoulder
#: pads and greaves).
CONCEPT_NAMES = ('outline', 'skin', 'hair', 'vest', 'arm', 'leg', 'boots', 'eyes', 'belt',
                 'armour')
_CONCEPT_LABELS = (_OUTLINE, _SKIN, _HAIR, _VEST, _SLEEVE, _TROUSERS, _BOOTS, _EYES, _BELT,
                   _STEEL)


def concept_masks(factors: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-pixel body-part masks of the avatars, from the label maps the images are painted from.

  The masks partition the figure: every non-background pixel is in exactly one mask, and their
  union is the image's support (the pixels that are not the white background).

  Args:
    factors: int [n, 7] indices (body, skin, vest, hair, arm, leg, pose) into the full grid.

  Returns:
    (bool [n, 64, 64, 10], `CONCEPT_NAMES`).
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'sprites')
  masks = np.zeros((factors.shape[0], _SIZE, _SIZE, len(CONCEPT_NAMES)), bool)
  labels_of_concepts = np.asarray(_CONCEPT_LABELS, np.uint8)
  for s in _common.chunks(factors.shape[0]):
    body, _, _, hair, arm, leg, pose = factors[s].T
    labels = _LABEL_MAPS(np.ravel_multi_index((body, hair, arm, leg, pose), _GEOMETRY_SHAPE))
    masks[s] = labels[..., None] == labels_of_concepts
  return masks, CONCEPT_NAMES

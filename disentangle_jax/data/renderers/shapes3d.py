"""A Shapes3D-equivalent: one object on a floor in front of a wall, 64×64×3, by ray casting.

The factor grid is Shapes3D's (Burgess & Kim 2018): floor hue 10 × wall hue 10 × object hue 10
(hues 0, 0.1, .., 0.9, fully saturated) × scale 8 (linspace 0.75..1.25) × shape 4 (cube,
cylinder, sphere, capsule) × orientation 15 (linspace −30..30 degrees), 480,000 images.

The scene (ours; Shapes3D's renderer is not public): an infinite floor plane y = 0 and an
infinite back wall z = 2.5; the object stands on the floor at the origin, its size proportional
to the scale; a fixed camera 5.2 units away at height 2.3 looks at (0, 0.6, 0), and orientation
swings the whole room about the object's vertical axis (the camera orbits by the angle), as
Shapes3D's orientation turns the view of the room. One directional light plus ambient light gives
Lambertian shading, and the object casts a shadow on the floor and the wall. Each pixel averages
3×3 rays (anti-aliasing).

Speed: what a pixel shows depends on geometry only (scale, shape, orientation: 480 cases), and
its colour is linear in the three hues' RGB. So for each geometry we ray-cast once a weight map
`W [64, 64, 3]` (shaded coverage of floor, wall and object in each pixel), and an image is
`W @ [floor_rgb, wall_rgb, object_rgb]`.
"""

from __future__ import annotations

import numpy as np

from disentangle_jax.data.renderers import _common

FACTOR_NAMES = ('floor_hue', 'wall_hue', 'object_hue', 'scale', 'shape', 'orientation')
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
IMAGE_SHAPE = (64, 64, 3)
#: Every other hue, scale and orientation: 5 · 5 · 5 · 4 · 4 · 8 = 16,000 images.
REDUCED_STRIDES = (2, 2, 2, 2, 1, 2)
SHAPE_NAMES = ('cube', 'cylinder', 'sphere', 'capsule')

_SIZE = IMAGE_SHAPE[0]
_SUPERSAMPLE = 3
_CAMERA_DISTANCE = 5.2
_CAMERA_HEIGHT = 2.3
_TARGET = np.array([0.0, 0.6, 0.0])
_VERTICAL_FOV_DEGREES = 38.0
_WALL_Z = 2.5
_LIGHT = np.array([-0.45, 0.9, -0.55])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)  # direction towards the light
_AMBIENT = 0.35
_DIFFUSE = 0.65
_OBJECT_SIZE = 0.6  # object half-width at scale 1
_EPS = 1e-6


def factor_values(name: str) -> np.ndarray:
  """Hues in [0, 1), scale multipliers, shape indices, orientation in degrees."""
  values = {
      'floor_hue': np.arange(10) / 10.0,
      'wall_hue': np.arange(10) / 10.0,
      'object_hue': np.arange(10) / 10.0,
      'scale': np.linspace(0.75, 1.25, 8),
      'shape': np.arange(4, dtype=np.float64),
      'orientation': np.linspace(-30.0, 30.0, 15),
  }
  if name not in values:
    raise ValueError(f'shapes3d has no factor {name!r}; factors are {FACTOR_NAMES}')
  return values[name]


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
  """Fully saturated, full-value HSV colours: float [...] hues -> float [..., 3] in [0, 1]."""
  hue = np.asarray(hue, np.float64)[..., None]
  k = np.mod(np.array([5.0, 3.0, 1.0]) + hue * 6.0, 6.0)
  return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


# --- Ray casting. Rays are arrays o, d of shape [..., 3]; t = inf means no hit. ---------------


def _camera_rays(orientation_degrees: float) -> tuple[np.ndarray, np.ndarray]:
  """Origins and unit directions [64·s, 64·s, 3] of the (supersampled) camera rays."""
  phi = np.deg2rad(orientation_degrees)
  eye = np.array([_CAMERA_DISTANCE * np.sin(phi), _CAMERA_HEIGHT, -_CAMERA_DISTANCE * np.cos(phi)])
  forward = _TARGET - eye
  forward /= np.linalg.norm(forward)
  right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
  right /= np.linalg.norm(right)
  up = np.cross(forward, right)
  n = _SIZE * _SUPERSAMPLE
  half = np.tan(np.deg2rad(_VERTICAL_FOV_DEGREES) / 2)
  s = ((np.arange(n) + 0.5) / n * 2 - 1) * half  # screen coordinate of each sample
  d = forward + s[None, :, None] * right - s[:, None, None] * up  # rows go down
  d /= np.linalg.norm(d, axis=-1, keepdims=True)
  return np.broadcast_to(eye, d.shape), d


def _sphere(o, d, centre_y, radius):
  oc = o - np.array([0.0, 1.0, 0.0]) * centre_y
  b = np.sum(oc * d, -1)
  c = np.sum(oc * oc, -1) - radius**2
  disc = b * b - c
  with np.errstate(invalid='ignore'):
    t = -b - np.sqrt(disc)
  t = np.where((disc >= 0) & (t > _EPS), t, np.inf)
  normal = (o + t[..., None] * d) - np.array([0.0, centre_y, 0.0])
  return t, normal / radius


def _vertical_cylinder_side(o, d, radius, y_low, y_high):
  a = d[..., 0] ** 2 + d[..., 2] ** 2
  b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
  c = o[..., 0] ** 2 + o[..., 2] ** 2 - radius**2
  disc = b * b - a * c
  with np.errstate(invalid='ignore', divide='ignore'):
    t = (-b - np.sqrt(disc)) / a
  y = o[..., 1] + t * d[..., 1]
  t = np.where((disc >= 0) & (a > 0) & (t > _EPS) & (y >= y_low) & (y <= y_high), t, np.inf)
  p = o + np.where(np.isfinite(t), t, 0.0)[..., None] * d
  normal = np.stack([p[..., 0], np.zeros_like(t), p[..., 2]], -1) / radius
  return t, normal


def _cap(o, d, y, radius):
  """The disk of `radius` at height `y` on the vertical axis, seen from above."""
  with np.errstate(divide='ignore', invalid='ignore'):
    t = (y - o[..., 1]) / d[..., 1]
  p = o + np.where(np.isfinite(t), t, 0.0)[..., None] * d
  ok = (t > _EPS) & (p[..., 0] ** 2 + p[..., 2] ** 2 <= radius**2)
  t = np.where(ok, t, np.inf)
  return t, np.broadcast_to(np.array([0.0, 1.0, 0.0]), d.shape)


def _box(o, d, half):
  lo = np.array([-half, 0.0, -half])
  hi = np.array([half, 2 * half, half])
  safe_d = np.where(np.abs(d) < 1e-12, 1e-12, d)
  t1 = (lo - o) / safe_d
  t2 = (hi - o) / safe_d
  t_near = np.minimum(t1, t2)
  t_enter = t_near.max(-1)
  t_exit = np.maximum(t1, t2).min(-1)
  t = np.where((t_exit >= t_enter) & (t_enter > _EPS), t_enter, np.inf)
  axis = np.argmax(t_near, -1)
  normal = -np.sign(safe_d) * (np.arange(3) == axis[..., None])
  return t, normal


def _nearest(*hits):
  ts = np.stack([t for t, _ in hits], 0)
  best = np.argmin(ts, 0)
  t = np.take_along_axis(ts, best[None], 0)[0]
  normals = np.stack([np.broadcast_to(n, hits[0][1].shape) for _, n in hits], 0)
  normal = np.take_along_axis(normals, best[None, ..., None], 0)[0]
  return t, normal


def _object(o, d, shape: int, scale: float):
  """Nearest hit of the object (standing on the floor at the origin): t, unit normal."""
  size = _OBJECT_SIZE * scale
  if shape == 0:  # cube
    return _box(o, d, 0.85 * size)
  if shape == 1:  # cylinder
    radius, height = 0.9 * size, 1.8 * size
    return _nearest(_vertical_cylinder_side(o, d, radius, 0.0, height), _cap(o, d, height, radius))
  if shape == 2:  # sphere
    return _sphere(o, d, size, size)
  if shape == 3:  # capsule: a vertical cylinder with hemispherical ends
    radius, height = 0.62 * size, 2.5 * size
    return _nearest(
        _vertical_cylinder_side(o, d, radius, radius, height - radius),
        _sphere(o, d, radius, radius),
        _sphere(o, d, height - radius, radius),
    )
  raise ValueError(f'unknown shape {shape}')


def _weights(scale_index: int, shape_index: int, orientation_index: int) -> np.ndarray:
  """Shaded coverage of (floor, wall, object) per pixel; float32 [64, 64, 3]."""
  scale = factor_values('scale')[scale_index]
  o, d = _camera_rays(factor_values('orientation')[orientation_index])
  with np.errstate(divide='ignore', invalid='ignore'):
    t_floor = np.where(d[..., 1] < 0, -o[..., 1] / d[..., 1], np.inf)
    t_wall = np.where(d[..., 2] > 0, (_WALL_Z - o[..., 2]) / d[..., 2], np.inf)
  t_obj, n_obj = _object(o, d, shape_index, scale)
  t = np.stack([t_floor, t_wall, t_obj], -1)
  region = np.argmin(t, -1)
  t_hit = np.min(t, -1)
  if not np.isfinite(t_hit).all():
    raise AssertionError('a camera ray escaped the room')
  normal = np.where(
      (region == 0)[..., None],
      np.array([0.0, 1.0, 0.0]),
      np.where((region == 1)[..., None], np.array([0.0, 0.0, -1.0]), n_obj),
  )
  point = o + t_hit[..., None] * d
  lambert = np.clip(np.sum(normal * _LIGHT, -1), 0.0, None)
  # Shadow: does a ray from the floor or wall towards the light hit the object?
  shadow_o = point + 1e-4 * normal
  t_shadow, _ = _object(shadow_o, np.broadcast_to(_LIGHT, d.shape), shape_index, scale)
  lit = np.where((region != 2) & np.isfinite(t_shadow), 0.0, 1.0)
  shade = _AMBIENT + _DIFFUSE * lambert * lit
  weights = shade[..., None] * (region[..., None] == np.arange(3))
  s = _SUPERSAMPLE
  return weights.reshape(_SIZE, s, _SIZE, s, 3).mean(axis=(1, 3)).astype(np.float32)


_GEOMETRY_SHAPE = FACTOR_SIZES[3:]  # (scale, shape, orientation)


def _compute_weights(ids: np.ndarray) -> np.ndarray:
  return np.stack([_weights(*np.unravel_index(i, _GEOMETRY_SHAPE)) for i in ids])


_WEIGHTS = _common.LazyTable(int(np.prod(_GEOMETRY_SHAPE)), _compute_weights, chunk_size=16)


def _render_chunk(factors: np.ndarray) -> np.ndarray:
  geometry = np.ravel_multi_index(tuple(factors[:, 3:].T), _GEOMETRY_SHAPE)
  weights = _WEIGHTS(geometry).reshape(-1, _SIZE * _SIZE, 3)
  hues = factor_values('floor_hue')  # the three hue factors share their values
  colours = (255.0 * hue_to_rgb(hues[factors[:, :3]])).astype(np.float32)  # [n, 3 regions, rgb]
  images = np.matmul(weights, colours)
  # Shades are at most 1 and the weights of a pixel sum to at most 1: no clipping needed.
  images += np.float32(0.5)
  return images.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)


def render(factors: np.ndarray) -> np.ndarray:
  """Renders Shapes3D scenes for factor indices into the full grid.

  Args:
    factors: int [n, 6] indices (floor_hue, wall_hue, object_hue, scale, shape, orientation).

  Returns:
    uint8 [n, 64, 64, 3].
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'shapes3d')
  return _common.render_in_chunks(_render_chunk, factors, IMAGE_SHAPE)


CONCEPT_NAMES = ('floor', 'wall', *SHAPE_NAMES)


def concept_masks(factors: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-pixel concept masks: floor, wall, and the object's pixels under its shape's name.

  Each pixel goes to the region (floor, wall, object) with the largest shaded coverage, so the
  masks partition the image; the hues do not change them.

  Args:
    factors: int [n, 6] indices into the full grid.

  Returns:
    (bool [n, 64, 64, 6], `CONCEPT_NAMES`: floor, wall, cube, cylinder, sphere, capsule).
  """
  factors = _common.check_factors(factors, FACTOR_SIZES, 'shapes3d')
  masks = np.zeros((factors.shape[0], _SIZE, _SIZE, len(CONCEPT_NAMES)), bool)
  for s in _common.chunks(factors.shape[0]):
    geometry = np.ravel_multi_index(tuple(factors[s, 3:].T), _GEOMETRY_SHAPE)
    region = np.argmax(_WEIGHTS(geometry), axis=-1)  # 0 floor, 1 wall, 2 object
    channel = np.where(region == 2, 2 + factors[s, 4, None, None], region)
    masks[s] = channel[..., None] == np.arange(len(CONCEPT_NAMES))
  return masks, CONCEPT_NAMES

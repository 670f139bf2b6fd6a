"""The body's pieces as plain vertex and face lists (numpy only): tapered tubes and a sphere."""

from __future__ import annotations

import numpy as np


def tube(
    rest_matrix: np.ndarray,
    length: float,
    head_radii: tuple[float, float],
    tail_radii: tuple[float, float],
    segments: int = 12,
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A capped tube along a bone's Y axis with elliptic cross-sections (x, z half-widths) that
    taper from head to tail. Returns vertices in armature space and faces (quads, two caps)."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    rings = []
    for y, (radius_x, radius_z) in ((0.0, head_radii), (length, tail_radii)):
        rings.append(np.stack([radius_x * np.cos(angles), np.full(segments, y), radius_z * np.sin(angles)], axis=1))
    local = np.concatenate(rings)
    vertices = local @ rest_matrix[:3, :3].T + rest_matrix[:3, 3]
    sides = [(i, (i + 1) % segments, segments + (i + 1) % segments, segments + i) for i in range(segments)]
    caps = [tuple(reversed(range(segments))), tuple(range(segments, 2 * segments))]
    return vertices, sides + caps


def sphere(
    centre: np.ndarray, radius: float, rings: int = 8, segments: int = 12
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A UV sphere: poles first and last, `rings - 1` latitude rings between them."""
    latitudes = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    longitudes = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring_points = [
        np.stack(
            [np.sin(lat) * np.cos(longitudes), np.sin(lat) * np.sin(longitudes), np.full(segments, np.cos(lat))], axis=1
        )
        for lat in latitudes
    ]
    vertices = np.concatenate([[[0.0, 0.0, 1.0]], *ring_points, [[0.0, 0.0, -1.0]]]) * radius + centre
    bottom = len(vertices) - 1

    def at(ring: int, segment: int) -> int:
        return 1 + ring * segments + segment % segments

    faces = [(0, at(0, s), at(0, s + 1)) for s in range(segments)]
    faces += [
        (at(r, s), at(r + 1, s), at(r + 1, s + 1), at(r, s + 1)) for r in range(rings - 2) for s in range(segments)
    ]
    faces += [(bottom, at(rings - 2, s + 1), at(rings - 2, s)) for s in range(segments)]
    return vertices, faces

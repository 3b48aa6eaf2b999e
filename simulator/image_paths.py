"""The image-source paths of a room and the first-order mirror images of a rig: plain data.

:class:`ImagePaths` holds every kept path of every pair (built by :func:`assemble_paths`);
:class:`FirstOrderImages` the transducers mirrored across the room's shell walls, for the
body-room multipath.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FirstOrderImages", "ImagePaths", "assemble_paths"]


@dataclass(frozen=True)
class ImagePaths:
    """All image-source paths kept, for all pairs, sorted by pair (p = speaker * M + microphone).

    Attributes:
        pair: (P,) int64 pair index of each path; ``pair_offsets`` (S*M + 1,) delimit each
            pair's paths (``pair_offsets[p]:pair_offsets[p + 1]``).
        speaker, microphone: (P,) int64.
        order: (P,) int64 reflection order (0 = direct path).
        image_m: (P, 3) image-source position (room frame, metres).
        length_m: (P,) path length d = |image - microphone|; delay_s = d / c.
        delay_s: (P,) arrival time.
        band_amplitudes: (P, N) amplitude of the path at each synthesis node
            (``band_centers_hz``): damping(f_k) * exp(-a(f_k) d / 2) / (4 pi d).
        band_centers_hz: (N,) the synthesis nodes (Hz).
        leg_start_m, leg_end_m: (L, 3) the legs of all paths (speaker -> reflection points ->
            microphone for shoeboxes; traced back from the microphone in general rooms, the
            direction does not matter); ``leg_path`` (L,) the path of each leg.
    """

    pair: np.ndarray
    pair_offsets: np.ndarray
    speaker: np.ndarray
    microphone: np.ndarray
    order: np.ndarray
    image_m: np.ndarray
    length_m: np.ndarray
    delay_s: np.ndarray
    band_amplitudes: np.ndarray
    band_centers_hz: np.ndarray
    leg_start_m: np.ndarray
    leg_end_m: np.ndarray
    leg_path: np.ndarray

    @property
    def n_paths(self) -> int:
        return len(self.pair)

    def of_pair(self, speaker: int, microphone: int, n_microphones: int) -> slice:
        """Slice of the paths of one (speaker, microphone) pair."""
        p = int(speaker) * int(n_microphones) + int(microphone)
        return slice(int(self.pair_offsets[p]), int(self.pair_offsets[p + 1]))


@dataclass(frozen=True)
class FirstOrderImages:
    """Mirror images of the transducers across the room's shell walls.

    Attributes:
        speaker_images_m: (S, W, 3) mirror of each speaker across each wall's plane.
        microphone_images_m: (M, W, 3) same for the microphones.
        wall_reflection: (W,) pressure reflection coefficient of each wall in ``ECHO_BAND_HZ``:
            the band average of the image-source model's own gain,
            mean_f sum_b G_b(f)^2 sqrt(1 - alpha_b) over 19-32 kHz (alpha per pyroomacoustics
            octave band; this is sqrt(1 - alpha) with alpha interpolated between the 16 and
            32 kHz bands the way the room response interpolates it).
        wall_names: (W,) surface names (shoebox: west x=0, east x=Lx, south y=0, north y=Ly,
            floor z=0, ceiling z=Lz).
        wall_points_m: (W, 3) a point of each wall's plane; wall_normals: (W, 3) unit normals
            pointing out of the room.
        wall_polygons_m: tuple of (K_w, 3) wall polygons. An image across wall w is a real
            first-order path only if the specular point lies on the polygon: always true for a
            shoebox (and any convex room with both points inside); in non-convex rooms the
            caller must check (``specular_points_m``).
    """

    speaker_images_m: np.ndarray
    microphone_images_m: np.ndarray
    wall_reflection: np.ndarray
    wall_names: tuple[str, ...]
    wall_points_m: np.ndarray
    wall_normals: np.ndarray
    wall_polygons_m: tuple[np.ndarray, ...]

    def specular_points_m(self, image_m: np.ndarray, point_m: np.ndarray, wall: int) -> np.ndarray:
        """Where the segment from ``image_m`` (N, 3), mirrored across ``wall``, to ``point_m``
        (N, 3) meets the wall's plane: the reflection point of that first-order path."""
        image = np.atleast_2d(np.asarray(image_m, dtype=float))
        point = np.atleast_2d(np.asarray(point_m, dtype=float))
        n = self.wall_normals[wall]
        num = (self.wall_points_m[wall] - point) @ n
        den = (image - point) @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / den
        return point + t[:, None] * (image - point)



def assemble_paths(per_pair, n_speakers, n_mics, c, centers, n_bands) -> ImagePaths:
    """One :class:`ImagePaths` from the kept paths of every pair, pair p = speaker * M + microphone.

    per_pair: one entry per pair, None (no path) or (images (K, 3), length (K,), orders (K,),
        amplitudes (K, N), leg_start (L, 3), leg_end (L, 3), leg_path (L,) indices into the K).
    """
    offsets = [0]
    fields = {k: [] for k in ("pair", "image", "length", "order", "amp", "ls", "le", "lp")}
    total = 0
    for p, entry in enumerate(per_pair):
        if entry is None:
            offsets.append(total)
            continue
        images, length, orders, amplitudes, leg_s, leg_e, leg_p = entry
        fields["pair"].append(np.full(len(length), p, dtype=np.int64))
        fields["image"].append(images)
        fields["length"].append(length)
        fields["order"].append(orders.astype(np.int64))
        fields["amp"].append(amplitudes)
        fields["ls"].append(leg_s)
        fields["le"].append(leg_e)
        fields["lp"].append(leg_p + total)
        total += len(length)
        offsets.append(total)

    def cat(name, shape):
        return np.concatenate(fields[name]) if fields[name] else np.zeros(shape)

    pair = cat("pair", (0,)).astype(np.int64)
    length = cat("length", (0,))
    return ImagePaths(
        pair=pair,
        pair_offsets=np.asarray(offsets, dtype=np.int64),
        speaker=pair // n_mics,
        microphone=pair % n_mics,
        order=cat("order", (0,)).astype(np.int64),
        image_m=cat("image", (0, 3)),
        length_m=length,
        delay_s=length / c,
        band_amplitudes=np.ascontiguousarray(cat("amp", (0, n_bands))),
        band_centers_hz=centers,
        leg_start_m=np.ascontiguousarray(cat("ls", (0, 3))),
        leg_end_m=np.ascontiguousarray(cat("le", (0, 3))),
        leg_path=cat("lp", (0,)).astype(np.int64),
    )

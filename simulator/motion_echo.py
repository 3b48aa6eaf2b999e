"""Echo of a moving mesh: the received chirps when the body moves during the frame.

Model
-----
A facet path i (transmitter -> facet -> receiver, a wall image counting as a transmitter or a
receiver) has, for the wave emitted at time e, the delay

    tau_i(e) = tau_i + r_i (e - t0),      r_i = v_i . (u_tx,i + u_rx,i) / c,

where tau_i is the path's delay in the static geometry (``simulator.body_echo``), v_i the facet's
velocity (the mean of its vertices'), u_tx,i and u_rx,i the unit vectors from the transmitter and
the receiver to the facet's centroid, and c the speed of sound (r_i < 0: the path shortens). To
first order in v / c the received signal (t: reception time) is then

    y(t) = sum_i w_i x((1 - r_i) (t - tau_i) + r_i t0),

x the chirp, periodic (the speakers play continuously; :meth:`ChirpPlan.chirp_at`), w_i the facet's
static weight, and t - tau_i taken over the whole recording window, so the samples at its start that
carry the previous chirp's tail see the body where it was then (a real capture cut into periods does
the same). It is the delay written in reception time, tau_i(t) = tau_i + r_i (t - t0 - tau_i), up to
O(r^2) (r <= 1.2e-2 at 2 m/s).

The instant: the vertices and velocities describe the body when the wave emitted at the chirp's
middle, t0 = n_samples / (2 fs), reaches it. Two reasons: (1) a linear chirp's matched filter
(the deconvolution) locates a reflector where it was when the band's centre frequency, emitted at
t0, reached it, so the static kernel of these vertices (``Recording.pose_kernels``) is the right
ground truth and the moving kernel differs from it only by the range-Doppler shift v f_c / beta, with
no range migration term; (2) with t0 in emission time the facets' delays tau_i are the static ones,
so each facet is deposited exactly as ``body_echo`` deposits it (its delay span included) and all
of the motion goes into the signal it is convolved with.

Synthesis
---------
The (pair, facet) contributions are binned by delay rate: bin k of speaker s holds the rates within
dr_s / 2 of r_k = k dr_s, and the bin's contributions use r_k. Within a bin,

    sum_i w_i x((1 - r_k) (t - tau_i) + r_k t0) = (D_k (*) z_k)(t),   z_k(u) = x((1 - r_k) u + r_k t0),

with D_k today's facet deposit of the bin's contributions (band-limited, differentiated: an impulse
response h_k) and z_k the time-warped chirp evaluated analytically on u in [-(b - 1), T - a), [a, b)
the samples h_k occupies: a linear (not circular) convolution, as z_k is not periodic in T.

Error bound of the binning. A contribution of rate r_i in bin k has the argument of x off by
(r_i - r_k) (u - t0), |r_i - r_k| <= dr_s / 2, |u - t0| <= T / 2 + tau_max (T the period,
tau_max the latest path delay), so its phase at any frequency up to f_top,s (speaker s's band top)
is off by at most

    phi = 2 pi f_top,s (dr_s / 2) (T / 2 + tau_max),    dr_s = phi_tol / (pi f_top,s (T / 2 + tau_max)),

i.e. phi <= phi_tol = ``phase_tolerance_rad`` (default 0.1 rad): each contribution is exact within
|exp(j phi) - 1| <= phi_tol of its own amplitude, and the sum within phi_tol of the sum of their
amplitudes (coherent worst case). In the deconvolved kernel the error is a rate error of at most
dr_s / 2, i.e. a range-Doppler shift of at most (c / 2) (dr_s / 2) f_c / beta (about 1 mm at the
default tolerance). What is not bounded by phi_tol: the O(r^2) terms of the model (relative
1.4e-4 at 2 m/s), and the facet's rate taken at its centroid (over a 1 cm facet 1.5 m away the
rate varies by ~1e-5 of r).

Approximations beside the binning: the speaker's and microphone's responses and air absorption act
on the warped signal as on the static one (they are smooth in frequency; the warp moves a frequency
by r f <= 400 Hz); directivity gains stay those of the static geometry. Shadowing of room paths by
the body is not moved (``simulator.recording`` keeps it static).

Cost: one deposit of every lit (pair, facet) contribution, as for the static echo, then per occupied
bin one band-limit FFT per receiving channel and one convolution; the number of occupied bins grows
with the spread of the body's rates divided by dr_s. This is ``method="exact"``: the reference.

Fast method (``method="fast"``, the default)
--------------------------------------------
Each speaker's chirp x_s is a linear sweep of rate beta_s = B_s / T over its band (centre f_c, half-width
B_s / 2), and the receiver only uses that band. Within it, a path of rate r is an LTI filter: the warped chirp's
spectrum is exactly X_w(f) = X(f / a) exp(j 2 pi f r t0 / a) / a (a = 1 - r), and with the chirp's
stationary phase psi(f) = -pi (f - f0)^2 / beta,

    X_w(f) / X(f) = (1 / a) exp(j Phi(f)),   Phi(f) = -(pi r f / (a beta)) (f (1 + 1 / a) - 2 f_c)
                  = theta - 2 pi f Delta - kappa (f - f_c)^2 ... written about f_c as
    exp(-j 2 pi f Delta) exp(j theta) exp(-j kappa (f - f_c)^2),
    Delta = r f_c / (a^2 beta),   theta = kappa f_c^2,   kappa = pi r (2 - r) / (a^2 beta)

(``band_coupling``). Delta is the range-Doppler shift (r f_c / beta: v f_c / beta of range for a monostatic pair)
and kappa the smear across the band (~2.8 rad at the band edges for 1 m/s monostatic). Each (pair, facet) path is
deposited as ``body_echo`` deposits it, with its own Delta added to its delays, its own phase theta (a complex
deposit: cos theta real, sin theta imaginary, i.e. the sin part Hilbert-transformed), amplitude 1 / a, and only
the curvature is shared: the path is split linearly between the two nearest curvature nodes k dkappa_s
(``curvature_node_spacing``: the interpolation of exp(-j kappa delta^2) errs by at most
(dkappa delta_max^2)^2 / 8 = ``phase_tolerance_rad`` at the band edges), and each node's spectrum is multiplied
by its exp(-j kappa_k (f - f_c)^2) (delta clamped to the band). One grid per (channel, speaker), nodes as columns,
one FFT per node, then the sum is the (channel, speaker) equivalent impulse response, folded into the period:
the body's part is LTI again, and the chirp, ``response_filter`` (air absorption), transducers and noise apply to
it as to the static echo. Air absorption would then act at the shifted delay: each path is given back the band
centre's gain of its own delay, exp(k_s (((tau + Delta) mod T) - tau)), k_s measured from ``response_filter`` on
two tone bursts.

Synthesis of the fast method. What a path's two ends contribute separately (the centroid's distance from each, the
facet velocity's component along each leg, each facing cosine) is computed once per (position, facet)
(``_kernels.position_facet_terms``): a position ends many paths (a speaker with every microphone and microphone
image). ``_kernels.moving_path_extents`` searches each pair's lit facets once, returning their list with the pairs'
delay and node extents; ``_kernels.deposit_moving_paths`` deposits those paths, computing every path's terms in one
pass and its facet in a second (the arithmetic of the unbatched reference form, kept in ``tests/motion_echo_reference.py``). Of
the fine grid's spectrum (length L = window * oversampling) only the bins below fs / 2 are used; with the grid split
into its ``oversampling`` phases g_q[m] = grid[m * oversampling + q],

    G[k] = sum_q exp(-2 pi j k q / L) FFT_window(g_q)[k],    k < window,

(a decimation-in-time FFT's first stage, exact), so each node costs ``oversampling`` FFTs of the window's length
and none of L. These reorder float64 roundings only (reassociated sums, the phase exp(j theta) by reduction and
polynomial, |theta| <= a few hundred rad): ``tests/test_motion_echo.py`` holds the echo within 1e-9 of its peak of
the straightforward form (unbatched kernels, one FFT of length L per node) with the same window.

The window: every stream's responses are synthesised over one window of ``window`` samples (FFTs of that length,
circular), its length the smallest even one >= the longest stream's span plus pads whose FFTs are fast (factors 2, 3,
5, 7, 11: ``_even_fast_length``; a fast odd length plus one would carry a large prime into every FFT). The output
depends on that length beyond rounding: ``tests/test_motion_echo.py`` holds the echo of its two spheres, with this
length and with the first rule's (a fast real length, plus one where odd), within 5e-3 of its peak of a window four
times as long. That is not a general bound: the radial-motion test's sphere moves by more (its kernel's peak stays
within 1 mm), and the cause (tails of the responses in the circular window, or another dependence on the length) is not
established.

What the fast method leaves out, against the exact method (measured with ``tests/test_motion_echo.py``'s sphere of
radius 0.15 m at 1.5 m from a monostatic pair; error = energy of the difference of the deconvolved kernels over
that of the exact one, exact at ``phase_tolerance_rad`` = 0.02):

* The period seam (the largest). One period [0, T) of the exact echo is not periodic: the frequencies received
  before the echo's chirp gap, the top beta tau of the band (tau the path's delay), come from the previous chirp,
  sent when the body was r T of delay elsewhere, and the wrap at t = T joins the two with a phase jump (a Fresnel
  zone of ~sqrt(beta) = 175 Hz about the seam). The fast method models every period as the t0 one. Below the
  seam (band edge + 300 Hz to the band's top - beta tau_max - 400 Hz) the two agree within 0.15-0.5 % of the
  kernel energy (straight lines at +-1 and 1.5 m/s, spinning at 5 rad/s, air absorption on or off); whole
  kernels differ by 2-9 % (spinning, approaching), 10-29 % (1-1.5 m/s straight, receding or oblique) at 1.5 m,
  and more for later echoes (70-95 % at 4 m, 1 m/s): the seam moves into the band as beta tau grows. A walking
  Anny body in a room (4 x 4 rig, first-order multipath): <= 0.1 % over each band's lower half, 2-8 % below
  its 75 %, 24-36 % over whole kernels (mean over microphones; 71 % at worst). The exact method is the one to
  use where the seam matters.
* Energy leaving the band: the exact echo's band is Doppler-shifted by r f (up to ~370 Hz at 2 m/s); the fast
  one keeps the chirp's band. Both fall in the deconvolution's 300 Hz band taper.
* The Tukey taper: the stationary-phase ratio assumes the chirp's envelope at f / a equals that at f; it differs
  only in the tapers (the band's outer ~150 Hz). A single path's in-band spectrum matches the model within 6.5 %
  (Fresnel ripple of the finite chirp) over the band's middle half.
* (v / c)^2 terms are kept in Delta, theta, kappa (exact within stationary phase); the model's own O(r^2)
  (module docstring above) is shared with the exact method.
* The node spacing: at most ``phase_tolerance_rad`` (0.1) at the band edges, ~(0.1 / 3) rms over the band.
* Air absorption: the gain is compensated at each band's centre, so its slope across the band (0.13 dB/m over
  band 0) acts over the shift's path c Delta instead of the path's: <= +-0.25 dB at the band edges at 2 m/s.

Cost (one frame, 4 x 4 co-located rig, first-order body-room multipath, best of 3, 2 shared cores): a 20k-facet
sphere adds 0.25-0.27 s (straight, 1 m/s) and 0.32-0.39 s (spinning at 5 rad/s) to ``RoomSimulator.record``
against 7.2 s and 29 s for the exact method (best of 1); a walking 27k-facet Anny body (median vertex speed
1.2 m/s, feet 3.6 m/s) adds 0.31 s against 48 s (before the synthesis above was batched). Most of it is the
deposit (twice the static one's work: two complex nodes per path).
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from simulator import _kernels
from simulator.body_echo import (
    _WINDOW_PAD_SAMPLES,
    DEFAULT_REFLECTION_COEFFICIENT,
    FacetMesh,
    output_lowpass,
    _add_band_limited,
    _checked_facet_gains,
    _checked_geometry,
    _checked_lit,
    _checked_numbers,
    _checked_pairs,
    _checked_reflection,
    _echo_windows,
    _lit_by_both,
)
from simulator.errors import SimulationInputError
from simulator.signals import ChirpPlan

__all__ = [
    "DEFAULT_PHASE_TOLERANCE_RAD",
    "MAX_SPEED_M_S",
    "band_coupling",
    "check_vertex_velocities",
    "curvature_node_spacing",
    "delay_rate_bin_widths",
    "facet_delay_rates",
    "is_moving",
    "moving_echo_signals",
]

#: Phase error allowed by the delay-rate binning at a band's top frequency (module docstring).
DEFAULT_PHASE_TOLERANCE_RAD = 0.1
#: Fastest vertex accepted, m/s: far beyond any limb (hands reach ~2 m/s; a sprinter's foot ~10 m/s);
#: a faster one is a unit error (mm/s, or a displacement per frame) and would break the model's v << c.
MAX_SPEED_M_S = 20.0


def check_vertex_velocities(name: str, velocities_m_s, n_vertices: int) -> np.ndarray:
    """(V, 3) float64 vertex velocities (m/s), or SimulationInputError naming ``name`` and the fix."""
    try:
        velocities = np.asarray(velocities_m_s, dtype=float)
    except (TypeError, ValueError):
        raise SimulationInputError(f"{name} = {velocities_m_s!r}: not numbers; pass a ({n_vertices}, 3) array of "
                                   "m/s, room frame, or None for a body at rest") from None
    if velocities.shape != (n_vertices, 3):
        raise SimulationInputError(
            f"{name} = array of shape {velocities.shape}: the mesh has {n_vertices} vertices; pass one velocity "
            f"per vertex, shape ({n_vertices}, 3), m/s in the room frame, or None for a body at rest")
    if not np.all(np.isfinite(velocities)):
        raise SimulationInputError(f"{name} = array with NaN or infinite values: pass finite m/s")
    speed = float(np.sqrt((velocities**2).sum(axis=1)).max(initial=0.0))
    if speed > MAX_SPEED_M_S:
        raise SimulationInputError(
            f"{name} = array reaching {speed:.4g} m/s: faster than any body part ({MAX_SPEED_M_S:g} m/s); "
            "give metres per second (not mm/s, nor a displacement per frame)")
    return np.ascontiguousarray(velocities)


def is_moving(velocities_m_s) -> bool:
    """True unless the velocities are None or all zero (the static echo then applies, bit for bit)."""
    return velocities_m_s is not None and bool(np.any(np.asarray(velocities_m_s) != 0))


def facet_delay_rates(centroids_m: np.ndarray, facet_velocities_m_s: np.ndarray, tx_m: np.ndarray,
                      rx_m: np.ndarray, speed_of_sound_m_s: float) -> np.ndarray:
    """Delay rate r = v . (u_tx + u_rx) / c of each path (dimensionless, s per s; < 0: shortening).

    centroids_m, facet_velocities_m_s, tx_m, rx_m: (E, 3) each, one row per path (the facet's
    centroid and velocity, the path's transmitter and receiver). Returns (E,).
    """
    to_tx = centroids_m - tx_m
    to_rx = centroids_m - rx_m
    u = to_tx / np.linalg.norm(to_tx, axis=1, keepdims=True) + to_rx / np.linalg.norm(to_rx, axis=1, keepdims=True)
    return np.einsum("ed,ed->e", facet_velocities_m_s, u) / speed_of_sound_m_s


def delay_rate_bin_widths(chirp_plan: ChirpPlan, max_delay_s: float,
                          phase_tolerance_rad: float = DEFAULT_PHASE_TOLERANCE_RAD) -> np.ndarray:
    """(S,) delay-rate bin width dr_s of each speaker: phase error <= ``phase_tolerance_rad`` at its band's top
    over |u - t0| <= T / 2 + ``max_delay_s`` (module docstring)."""
    top_hz = chirp_plan.speaker_bands_hz()[:, 1]
    span_s = chirp_plan.n_samples / chirp_plan.sample_rate_hz / 2 + max(float(max_delay_s), 0.0)
    return phase_tolerance_rad / (np.pi * top_hz * span_s)


def moving_echo_signals(
    mesh: FacetMesh,
    vertex_velocities_m_s: np.ndarray,
    tx_positions_m: np.ndarray,
    rx_positions_m: np.ndarray,
    chirp_plan: ChirpPlan,
    *,
    pair_speakers: np.ndarray | None = None,
    speed_of_sound_m_s: float = 343.0,
    reflection_coefficient: float | np.ndarray = DEFAULT_REFLECTION_COEFFICIENT,
    pairs: np.ndarray | None = None,
    channels: np.ndarray | None = None,
    n_channels: int | None = None,
    pair_gains: np.ndarray | None = None,
    lit: np.ndarray | None = None,
    facet_gains: np.ndarray | None = None,
    response_filter=None,
    phase_tolerance_rad: float = DEFAULT_PHASE_TOLERANCE_RAD,
    oversampling: int = 8,
    max_delay_error_s: float | None = None,
    method: str = "fast",
) -> np.ndarray:
    """(C, T) the chirps as received through a moving mesh's echo, one period in the steady state.

    Row c is sum over the pairs p of channel c of the echo of speaker pair_speakers[p]'s chirp along
    p's facet paths, each path delayed by tau_i + r_i (e - t0) (module docstring): the moving
    counterpart of circularly convolving ``chirp_plan.chirps()[s]`` with
    ``body_impulse_responses(...).impulse_responses[c]`` (which it equals, to rounding, for zero rates).

    Args:
        mesh: ``FacetMesh`` of the body at t0 (vertices as ``body_echo`` takes them).
        vertex_velocities_m_s: (V, 3) m/s, same frame as the mesh.
        tx_positions_m, rx_positions_m: (S', 3), (M', 3) transmitters and receivers (images included).
        chirp_plan: the chirps; T = chirp_plan.n_samples, fs = chirp_plan.sample_rate_hz.
        pair_speakers: (P,) the speaker whose chirp pair p carries; default the pair's transmitter.
        speed_of_sound_m_s, reflection_coefficient, pairs, channels, n_channels, pair_gains, lit,
            facet_gains, oversampling, max_delay_error_s: as for ``body_impulse_responses``.
        response_filter: optional function of (N, T) impulse responses (t = 0 at emission) returning
            the same shape, applied to each bin's responses before the chirp (e.g. air absorption).
        phase_tolerance_rad: the binning's phase-error bound (module docstring), in (0, 1]: per path at the band's
            top for the exact method's delay-rate bins, at the band's edges for the fast method's curvature nodes.
        method: "fast" (default: per-band equivalent responses, "Fast method" in the module docstring) or
            "exact" (the delay-rate bins above: the reference, and the measure of the fast method's band leakage).
    Returns:
        (C, T) float64, pressure as the microphones receive it (before any transducer response).
    """
    mesh, tx, rx = _checked_geometry(mesh, tx_positions_m, rx_positions_m)
    n_samples, fs, c, oversampling, max_delay_error_s = _checked_numbers(
        chirp_plan.n_samples, chirp_plan.sample_rate_hz, speed_of_sound_m_s, oversampling, max_delay_error_s)
    velocities = check_vertex_velocities("vertex_velocities_m_s", vertex_velocities_m_s, len(mesh.vertices_m))
    reflection = _checked_reflection(mesh, reflection_coefficient)
    pairs, channels, n_channels, gains = _checked_pairs(pairs, channels, n_channels, pair_gains, len(tx), len(rx))
    if pair_speakers is None:
        pair_speakers = pairs[:, 0]
    pair_speakers = np.asarray(pair_speakers)
    if pair_speakers.shape != (len(pairs),) or (len(pairs) and (
            not np.issubdtype(pair_speakers.dtype, np.integer) or pair_speakers.min() < 0
            or pair_speakers.max() >= chirp_plan.n_speakers)):
        raise SimulationInputError(
            f"pair_speakers = array of shape {pair_speakers.shape}: pass one speaker index in "
            f"[0, {chirp_plan.n_speakers}) per pair ({len(pairs)},)")
    if not (np.isfinite(phase_tolerance_rad) and 0 < phase_tolerance_rad <= 1.0):
        raise SimulationInputError(f"phase_tolerance_rad = {phase_tolerance_rad!r}: use a phase in (0, 1] rad, "
                                   f"e.g. {DEFAULT_PHASE_TOLERANCE_RAD}")
    if method not in ("fast", "exact"):
        raise SimulationInputError(f"method = {method!r}: use \"fast\" (per-band equivalent responses) or \"exact\" "
                                   "(delay-rate bins, the reference)")
    positions = np.vstack([tx, rx])
    lit = _checked_lit(lit, positions, mesh)
    mesh.check_outside("tx_positions_m", tx)
    mesh.check_outside("rx_positions_m", rx)
    lit = _lit_by_both(mesh, positions) if lit is None else lit
    if facet_gains is not None:
        facet_gains = _checked_facet_gains(facet_gains, len(positions), mesh.n_faces)
    out = np.zeros((n_channels, n_samples))
    if method == "fast":
        _fast_echo(out, mesh, velocities, positions, lit, pairs, len(tx), channels, gains, pair_speakers, reflection,
                   facet_gains, chirp_plan, c, oversampling, max_delay_error_s, phase_tolerance_rad, response_filter)
        return out

    # every (pair, facet) path the static echo deposits
    pair_tx = pairs[:, 0].astype(np.int64)
    pair_rx = pairs[:, 1].astype(np.int64) + len(tx)
    seen = [np.flatnonzero(lit[t] & lit[r]) for t, r in zip(pair_tx, pair_rx)]
    counts = np.array([len(s) for s in seen], dtype=np.int64)
    if counts.sum() == 0:
        return out
    entry_pair = np.repeat(np.arange(len(pairs)), counts)
    entry_facet = np.concatenate(seen).astype(np.int64)
    entry_tx, entry_rx = pair_tx[entry_pair], pair_rx[entry_pair]
    entry_gain = gains[entry_pair] * reflection[entry_facet]
    if facet_gains is not None:
        entry_gain = entry_gain * facet_gains[entry_tx, entry_facet] * facet_gains[entry_rx, entry_facet]
    facet_velocity = velocities[mesh.faces].mean(axis=1)
    rates = facet_delay_rates(mesh.centroids_m[entry_facet], facet_velocity[entry_facet], positions[entry_tx],
                              positions[entry_rx], c)

    # delay bounds of every path (as ``pair_delay_bounds``, per facet), samples: the bins' windows
    used = np.zeros(len(positions), dtype=bool)
    used[pair_tx] = True
    used[pair_rx] = True
    vertex_distance = _kernels.vertex_distances(mesh.vertices_m, positions, used)
    corners = mesh.faces[entry_facet]
    path_m = vertex_distance[entry_tx[:, None], corners] + vertex_distance[entry_rx[:, None], corners]
    bounds = np.stack([path_m.min(axis=1) - 2.0 * mesh.max_edges_m[entry_facet], path_m.max(axis=1)], 1) * fs / c
    widths = delay_rate_bin_widths(chirp_plan, bounds[:, 1].max() / fs, phase_tolerance_rad)
    speaker = pair_speakers[entry_pair]
    bin_index = np.rint(rates / widths[speaker]).astype(np.int64)
    keys = np.stack([speaker, bin_index], 1)
    groups, group_of_entry = np.unique(keys, axis=0, return_inverse=True)
    group_of_entry = group_of_entry.ravel()
    entry_channel = channels[entry_pair].astype(np.int64)
    # one sort: by bin, then channel, then the static deposit's order (pair, facet)
    order = np.lexsort((np.arange(len(entry_channel)), entry_channel, group_of_entry))
    group_bounds = np.r_[0, np.cumsum(np.bincount(group_of_entry, minlength=len(groups)))]
    t0_s = n_samples / (2 * fs)
    for g, (s, k) in enumerate(groups):
        mine = order[group_bounds[g]:group_bounds[g + 1]]
        mine_channel = entry_channel[mine]
        new_row = np.r_[True, mine_channel[1:] != mine_channel[:-1]]
        rows_of = mine_channel[new_row]
        row = np.cumsum(new_row) - 1
        windows = _echo_windows(bounds[mine], row, len(rows_of), n_samples)
        if windows is None:
            continue
        active, start, stop, window = windows
        grid = np.zeros((len(rows_of), window * oversampling))
        _kernels.deposit_entry_echoes(
            mesh.vertices_m, mesh.faces, mesh.normals, mesh.areas_m2, mesh.centroids_m, mesh.max_edges_m,
            positions, vertex_distance, entry_tx[mine], entry_rx[mine], entry_facet[mine], row,
            np.ascontiguousarray(entry_gain[mine]), fs * oversampling / c, grid, start * oversampling,
            max_delay_error_s * fs * oversampling)
        responses = np.zeros((len(rows_of), n_samples))
        active_rows = np.flatnonzero(active)
        _add_band_limited(responses, grid[active_rows] if len(active_rows) < len(rows_of) else grid, active_rows,
                          start, stop, window, oversampling, fs, c)
        if response_filter is not None:
            responses = response_filter(responses)
        out[rows_of] += _warped_convolution(responses, chirp_plan, int(s), k * widths[s], t0_s)
    return out


def _warped_convolution(responses: np.ndarray, chirp_plan: ChirpPlan, speaker: int, rate: float,
                        t0_s: float) -> np.ndarray:
    """(N, T): y[t] = sum_n h[n] z(t - n), z(u) = x_s((1 - rate) u + rate t0), t in [0, T), for (N, T) responses h.

    Linear in u (z is not T-periodic): z is evaluated over every u that the responses' samples reach.
    """
    n_samples = responses.shape[1]
    occupied = np.flatnonzero(np.any(responses != 0, axis=0))
    if len(occupied) == 0:
        return np.zeros_like(responses)
    a, b = int(occupied[0]), int(occupied[-1]) + 1
    span = b - a
    u_s = np.arange(-(b - 1), n_samples - a) / chirp_plan.sample_rate_hz
    z = chirp_plan.chirp_at(speaker, (1.0 - rate) * u_s + rate * t0_s)
    n_fft = scipy.fft.next_fast_len(len(z) + span - 1, real=True)
    full = scipy.fft.irfft(scipy.fft.rfft(responses[:, a:b], n_fft, axis=1) * scipy.fft.rfft(z, n_fft), n_fft, axis=1)
    return full[:, span - 1:span - 1 + n_samples]


def band_coupling(chirp_plan: ChirpPlan, speakers: np.ndarray, rates: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fast method's per-path terms (module docstring, "Fast method"), each (E,) like ``rates``:

    (delay shift Delta = r f_c / ((1 - r)^2 beta) s, phase theta = kappa f_c^2 rad, curvature
    kappa = pi r (2 - r) / ((1 - r)^2 beta) rad / Hz^2, amplitude 1 / (1 - r)), with f_c and beta the centre and sweep
    rate of each path's speaker's band.
    """
    bands = chirp_plan.speaker_bands_hz()
    centre_hz = bands.mean(axis=1)[speakers]
    beta_hz_s = (bands[:, 1] - bands[:, 0])[speakers] / (chirp_plan.n_samples / chirp_plan.sample_rate_hz)
    a = 1.0 - rates
    shift_s = rates * centre_hz / (a * a * beta_hz_s)
    kappa = np.pi * rates * (2.0 - rates) / (a * a * beta_hz_s)
    return shift_s, kappa * centre_hz**2, kappa, 1.0 / a


def curvature_node_spacing(chirp_plan: ChirpPlan, phase_tolerance_rad: float = DEFAULT_PHASE_TOLERANCE_RAD
                           ) -> np.ndarray:
    """(S,) spacing dkappa_s of the fast method's curvature nodes, rad / Hz^2: linear interpolation between
    nodes of exp(-j kappa delta^2) errs by at most (dkappa delta_max^2)^2 / 8 = ``phase_tolerance_rad`` at the band
    edges |delta| = delta_max (half the band), less inside."""
    half_hz = 0.5 * (chirp_plan.speaker_bands_hz()[:, 1] - chirp_plan.speaker_bands_hz()[:, 0])
    return np.sqrt(8.0 * phase_tolerance_rad) / half_hz**2


def _delay_decay_rates(response_filter, chirp_plan: ChirpPlan) -> np.ndarray:
    """(S,) decay rate k_s (1/s) of ``response_filter``'s gain with the delay at each band's centre, measured on tone
    bursts at T / 4 and 3 T / 4: exp(-k_s t) for a delay-dependent gain such as air absorption, 0 for None (or a
    time-invariant filter)."""
    n_samples, fs = chirp_plan.n_samples, chirp_plan.sample_rate_hz
    S = chirp_plan.n_speakers
    if response_filter is None:
        return np.zeros(S)
    length = min(512, n_samples // 4)
    burst = np.hanning(length)
    centres = np.array([n_samples // 4, (3 * n_samples) // 4])
    centre_hz = chirp_plan.speaker_bands_hz().mean(axis=1)
    probes = np.zeros((S, 2, n_samples))
    t_s = np.arange(length) / fs
    for s in range(S):
        for i, middle in enumerate(centres):
            first = middle - length // 2
            probes[s, i, first:first + length] = burst * np.cos(2 * np.pi * centre_hz[s] * (t_s + first / fs))
    filtered = np.asarray(response_filter(probes.reshape(2 * S, n_samples))).reshape(S, 2, n_samples)
    gains = (filtered * probes).sum(axis=-1) / (probes * probes).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.log(gains[:, 0] / gains[:, 1]) / ((centres[1] - centres[0]) / fs)
    return np.where(np.isfinite(rates), rates, 0.0)


def _even_fast_length(n: int) -> int:
    """The smallest even length >= n whose complex FFTs are fast (factors 2, 3, 5, 7, 11 only): twice
    ``scipy.fft.next_fast_len(ceil(n / 2))``. (A fast length made even by adding one can bring a large prime into
    every FFT: 6561 = 3^8 becomes 6562 = 2 * 17 * 193.)"""
    return 2 * scipy.fft.next_fast_len(-(-int(n) // 2), real=False)


def _fast_echo(out, mesh, velocities, positions, lit, pairs, n_tx, channels, gains, pair_speakers, reflection,
               facet_gains, chirp_plan: ChirpPlan, c, oversampling, max_delay_error_s, phase_tolerance_rad,
               response_filter) -> None:
    """The fast method (module docstring): add into ``out`` (C, T) every speaker's chirp circularly convolved with
    the equivalent response of each (channel, speaker) "stream" of pairs."""
    n_samples = out.shape[1]
    fs = chirp_plan.sample_rate_hz
    period_s = n_samples / fs
    bands = chirp_plan.speaker_bands_hz()
    centre_hz = bands.mean(axis=1)
    half_hz = 0.5 * (bands[:, 1] - bands[:, 0])
    beta_hz_s = 2.0 * half_hz / period_s
    node_spacing = curvature_node_spacing(chirp_plan, phase_tolerance_rad)
    pair_tx = np.ascontiguousarray(pairs[:, 0], dtype=np.int64)
    pair_rx = np.ascontiguousarray(pairs[:, 1], dtype=np.int64) + n_tx
    pair_speakers = pair_speakers.astype(np.int64)
    used = np.zeros(len(positions), dtype=bool)
    used[pair_tx] = True
    used[pair_rx] = True
    vertex_distance = _kernels.vertex_distances(mesh.vertices_m, positions, used)
    facet_velocity = np.ascontiguousarray(velocities[mesh.faces].mean(axis=1))
    lit = np.ascontiguousarray(lit)
    max_start = float(n_samples + _WINDOW_PAD_SAMPLES)   # as the static echo: nothing starting after the period
    distance, along, facing = _kernels.position_facet_terms(mesh.centroids_m, mesh.normals, facet_velocity, lit,
                                                            positions, used)
    # the lit masks eight facets a word, for the kernel to skip the (many) runs of facets unlit for a pair at once
    lit_bytes = np.zeros((len(positions), -(-mesh.n_faces // 8) * 8), dtype=np.uint8)
    lit_bytes[:, :mesh.n_faces] = lit
    extents, counts, paths, path_offsets = _kernels.moving_path_extents(
        mesh.faces, mesh.max_edges_m, along, lit_bytes.view(np.uint64), vertex_distance, pair_tx, pair_rx,
        centre_hz[pair_speakers], beta_hz_s[pair_speakers], node_spacing[pair_speakers], c, fs, max_start)
    live = counts > 0
    if not np.any(live):
        return
    # streams: the pairs of one (channel, speaker)
    keys = channels.astype(np.int64) * chirp_plan.n_speakers + pair_speakers
    streams = np.unique(keys[live])
    use_facet_gains = facet_gains is not None      # (no (positions, facets) array of ones to read otherwise)
    gains_of = np.ascontiguousarray(facet_gains) if use_facet_gains else np.ones((1, 1))
    decay = _delay_decay_rates(response_filter, chirp_plan)
    plans = []
    for key in streams:
        mine = np.flatnonzero(live & (keys == key))
        s = int(key % chirp_plan.n_speakers)
        first_node, last_node = int(extents[mine, 2].min()), int(extents[mine, 3].max()) + 1
        # the curvature's group delay kappa delta / pi reaches kappa_max delta_max / pi
        spread = max(abs(first_node), abs(last_node)) * node_spacing[s] * half_hz[s] / np.pi * fs
        lo = int(np.floor(extents[mine, 0].min() - spread)) - 2 * _WINDOW_PAD_SAMPLES
        hi = int(np.ceil(extents[mine, 1].max() + spread)) + 2 * _WINDOW_PAD_SAMPLES
        plans.append((mine, s, first_node, last_node, lo, hi))
    window = _even_fast_length(max(hi - lo for *_, lo, hi in plans) + _WINDOW_PAD_SAMPLES + 1)
    n_freq = window // 2 + 1
    f_hz = np.arange(n_freq) * fs / window
    fine = window * oversampling
    z = np.exp(-2j * np.pi * np.arange(n_freq) / fine)
    integrate = np.zeros(n_freq, dtype=complex)
    integrate[1:] = 1.0 / (1.0 - z[1:]) ** 2          # second differences -> densities (the static echo's cumsums)
    hat_gain = np.sinc(f_hz / (fs * oversampling)) ** 2
    transfer = (2j * np.pi * f_hz / c) / (16 * np.pi**2) * output_lowpass(f_hz, fs) / hat_gain * integrate
    # only the fine grid's bins below fs / 2 are used: its oversampling phases' FFTs of the window's length, twiddled
    # and summed (module docstring, "Synthesis of the fast method"); the bins above are never computed
    phase_twiddle = np.exp(-2j * np.pi * np.outer(np.arange(n_freq), np.arange(oversampling)) / fine)
    responses = np.zeros((len(streams), n_samples))
    for g, (mine, s, first_node, last_node, lo, hi) in enumerate(plans):
        n_nodes = last_node - first_node + 1
        grid = np.zeros((fine, n_nodes), dtype=complex)   # node-minor: a path's two nodes share a cache line
        _kernels.deposit_moving_paths(
            mesh.vertices_m, mesh.faces, mesh.normals, mesh.areas_m2, mesh.max_edges_m, reflection, gains_of,
            use_facet_gains, distance, along, facing, paths, path_offsets[mine], counts[mine], positions,
            vertex_distance, pair_tx[mine], pair_rx[mine], np.ascontiguousarray(gains[mine], dtype=float),
            centre_hz[s], beta_hz_s[s], node_spacing[s], decay[s], period_s, first_node, c, fs, oversampling,
            grid.view(np.float64), lo * oversampling,
            max_delay_error_s * fs * oversampling)
        # positive frequencies: (cos theta part) + j (sin theta part) of each node, times its curvature
        phases = scipy.fft.fft(grid.reshape(window, oversampling * n_nodes), axis=0, overwrite_x=True)[:n_freq]
        del grid
        delta_hz = np.clip(f_hz - centre_hz[s], -half_hz[s], half_hz[s])
        curvature = np.exp(-1j * ((first_node + np.arange(n_nodes)) * node_spacing[s])[:, None] * delta_hz**2)
        spectrum = np.einsum("kq,kqn,nk->k", phase_twiddle, phases.reshape(n_freq, oversampling, n_nodes), curvature)
        response = scipy.fft.irfft(transfer * spectrum, window)
        responses[g] = np.bincount(np.mod(lo + np.arange(window), n_samples), weights=response, minlength=n_samples)
    if response_filter is not None:
        responses = response_filter(responses)
    chirp_spectra = scipy.fft.rfft(chirp_plan.chirps(), axis=1)
    received = scipy.fft.irfft(scipy.fft.rfft(responses, axis=1) * chirp_spectra[streams % chirp_plan.n_speakers],
                               n_samples, axis=1)
    np.add.at(out, streams // chirp_plan.n_speakers, received)

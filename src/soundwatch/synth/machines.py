"""Physical-model machine sounds (fan, pump, slider, valve, gearbox) with graded anomalies."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from soundwatch.errors import ConfigError
from soundwatch.synth.sources import (
    damped_kernel,
    envelope_from_events,
    fcos,
    fsin,
    harmonics,
    lorentz,
    phase,
    place_events,
    rfft_freqs,
    shaped_noise,
    smooth_random,
    unit_rms,
)

__all__ = [
    "DOMAINS",
    "MACHINES",
    "MACHINE_TYPES",
    "Attribute",
    "MachineModel",
    "render_machine_clip",
    "render_machine_parts",
    "sample_attributes",
]

DOMAINS = ("source", "target")
TWO_PI = 2.0 * math.pi
CLIP_RMS = 0.06
"""Nominal RMS of a rendered clip (about -24 dBFS), before the per-clip gain."""


@dataclass(frozen=True)
class Attribute:
    """One operating condition of a machine type.

    Attributes:
        name: Name used in file names and ``attributes_00.csv`` (no underscores).
        source: Values drawn in the source domain.
        target: Values drawn in the target domain (shifted conditions).
    """

    name: str
    source: tuple[str, ...]
    target: tuple[str, ...]


@dataclass(frozen=True)
class _Ctx:
    n: int
    sr: int
    rng: np.random.Generator

    @property
    def f(self) -> np.ndarray:
        return rfft_freqs(self.n, self.sr)

    @property
    def seconds(self) -> float:
        return self.n / self.sr

    @property
    def nyq(self) -> float:
        return self.sr / 2.0


RenderFn = Callable[[_Ctx, Mapping[str, float], "str | None", float], np.ndarray]


@dataclass(frozen=True)
class MachineModel:
    """A machine type: its attributes, anomaly kinds and sound model.

    Attributes:
        name: Machine type name (folder name in the dataset).
        description: One line on what it sounds like.
        attributes: Operating conditions, in file-name order.
        anomalies: Anomaly kinds this machine can show.
        render: ``render(ctx, attributes, anomaly, severity) -> signal`` at about unit RMS.
    """

    name: str
    description: str
    attributes: tuple[Attribute, ...]
    anomalies: tuple[str, ...]
    render: RenderFn


def _db(db: float) -> float:
    return 10.0 ** (db / 20.0)


def _grade(severity: float, lo_db: float, hi_db: float) -> float:
    """Linear gain of an anomaly component: ``lo_db`` at severity 0, ``hi_db`` at 1."""
    return _db(lo_db + (hi_db - lo_db) * severity)


def _shaft(ctx: _Ctx, hz: float, wobble: float = 0.003) -> tuple[np.ndarray, np.ndarray]:
    """Instantaneous shaft frequency (slow random wobble) and its running phase."""
    rng = ctx.rng
    freq = hz * (1.0 + wobble * smooth_random(ctx.n, ctx.sr, 0.7, rng))
    return freq, phase(freq, ctx.n, ctx.sr, rng.uniform(0, TWO_PI))


def _tone_stack(ph: np.ndarray, f0: float, k: int, decay: float, ctx: _Ctx,
                jitter_db: float = 1.5) -> np.ndarray:
    """``k`` harmonics of a phase, amplitudes falling by ``decay`` per harmonic, unit RMS."""
    rng = ctx.rng
    amps = decay ** np.arange(k) * 10 ** (rng.normal(0, jitter_db, k) / 20)
    limit = (np.arange(1, k + 1) * f0) < 0.45 * ctx.sr
    return unit_rms(harmonics(ph, amps, rng.uniform(0, TWO_PI, k), limit))


def _bearing(ctx: _Ctx, ph: np.ndarray, fr: float, order: float, severity: float,
             lo_db: float = -30.0, hi_db: float = -6.0,
             gate: np.ndarray | None = None) -> np.ndarray:
    """Bearing-fault impulses at ``order`` x shaft rate exciting a structural resonance."""
    rng = ctx.rng
    rate = fr * order
    count = int(ctx.seconds * rate) + 2
    gaps = (1.0 / rate) * (1.0 + 0.01 * rng.standard_normal(count))
    pos = (np.cumsum(gaps) - rng.uniform(0, 1.0 / rate)) * ctx.sr
    pos = pos[(pos >= 0) & (pos < ctx.n)].astype(np.int64)
    amps = (1.0 + 0.6 * fcos(ph[pos])) * rng.uniform(0.7, 1.0, pos.size)
    if gate is not None:
        amps = amps * gate[pos]
    res = min(rng.uniform(2600, 4200), 0.42 * ctx.sr)
    kern = damped_kernel(ctx.sr, np.array([res, res * 1.37]), np.array([0.0015, 0.001]),
                         np.array([1.0, 0.5]), 0.012, rng, noise=0.3)
    return _grade(severity, lo_db, hi_db) * unit_rms(place_events(ctx.n, pos, amps, kern))


def _imbalance(ph: np.ndarray, severity: float, lo_db: float = -24.0,
               hi_db: float = -2.0) -> tuple[np.ndarray, np.ndarray]:
    """Once-per-revolution tone and amplitude modulation from a rotor imbalance."""
    g = _grade(severity, lo_db, hi_db)
    tone = g * math.sqrt(2) * (fsin(ph) + 0.35 * fsin(2 * ph + 0.7))
    am = 1.0 + 0.4 * severity * fsin(ph + 0.3)
    return tone, am


# ----------------------------------------------------------------------------------------
# The five machine types
# ----------------------------------------------------------------------------------------


def _fan(ctx: _Ctx, a: Mapping[str, float], anomaly: str | None, severity: float) -> np.ndarray:
    """Blade-pass tone and harmonics over broadband flow noise."""
    rng, f = ctx.rng, ctx.f
    rpm = a["speed"] * (1.0 + 0.01 * rng.standard_normal())
    blades = max(2, int(round(a["blades"])))
    fr = rpm / 60.0
    _, ph = _shaft(ctx, fr)
    bpf = fr * blades
    tone = _tone_stack(blades * ph, bpf, 6, 0.6, ctx)
    hump = 700.0 * (rpm / 1500.0) * rng.uniform(0.9, 1.1)
    shape = 1.0 / (1.0 + (f / hump) ** 1.6) + 0.08 * lorentz(f, min(2500.0, 0.4 * ctx.sr), 900.0)
    shape *= np.minimum(1.0, f / 40.0)
    flow_level = (rpm / 1500.0) ** 1.5
    flow = shaped_noise(ctx.n, ctx.sr, shape, rng) * (1.0 + 0.12 * fsin(blades * ph))
    shaft = 0.03 * fsin(ph + rng.uniform(0, TWO_PI))
    am = 1.0
    extra = 0.0
    if anomaly == "imbalance":
        extra, am = _imbalance(ph, severity)
    elif anomaly == "bearing":
        extra = _bearing(ctx, ph, fr, 3.58, severity)
    elif anomaly == "rubbing":
        band = lorentz(f, min(3000.0, 0.4 * ctx.sr), 1500.0)
        gate = np.maximum(0.0, fcos(ph - rng.uniform(0, TWO_PI)))
        gate = gate * gate
        gate = gate * gate * gate  # cos^6: a short contact once per revolution
        extra = _grade(severity, -30.0, -6.0) * unit_rms(
            shaped_noise(ctx.n, ctx.sr, band, rng) * gate)
    elif anomaly == "clogging":
        flow_level *= 1.0 - 0.3 * severity
        whistle_f = min(rng.uniform(1200, 2400), 0.4 * ctx.sr)
        whistle = shaped_noise(ctx.n, ctx.sr, lorentz(f, whistle_f, 40.0), rng)
        surge = 1.0 + 0.5 * severity * smooth_random(ctx.n, ctx.sr, 1.5, rng)
        extra = _grade(severity, -38.0, -14.0) * whistle * np.abs(surge)
    return am * (0.7 * tone + 0.55 * flow_level * flow + shaft) + extra


def _pump(ctx: _Ctx, a: Mapping[str, float], anomaly: str | None, severity: float) -> np.ndarray:
    """Pulsating fluid flow (amplitude-modulated broadband noise) plus impeller tones."""
    rng, f = ctx.rng, ctx.f
    flow, pressure = a["flow"], a["pressure"]
    fr = 24.5 * (1.0 + 0.005 * rng.standard_normal())
    _, ph = _shaft(ctx, fr)
    tone = _tone_stack(6 * ph, 6 * fr, 4, 0.5, ctx)
    fp = (0.8 + flow / 40.0) * rng.uniform(0.97, 1.03)
    irregular = 0.0
    whistle = 0.0
    if anomaly == "clogging":
        irregular = 0.35 * severity
    fp_t = fp * (1.0 + 0.02 * smooth_random(ctx.n, ctx.sr, 0.5, rng)
                 + irregular * smooth_random(ctx.n, ctx.sr, 3.0, rng))
    pulse = 0.5 + 0.5 * fcos(phase(fp_t, ctx.n, ctx.sr, rng.uniform(0, TWO_PI)))
    env = 0.25 + 0.75 * pulse * pulse * pulse
    c1 = min(350.0 * pressure / 3.0 * rng.uniform(0.9, 1.1), 0.4 * ctx.sr)
    shape = lorentz(f, c1, 250.0) + 0.5 * lorentz(f, min(1500.0, 0.4 * ctx.sr), 800.0) + 0.04
    shape *= np.minimum(1.0, f / 30.0)
    fluid = shaped_noise(ctx.n, ctx.sr, shape, rng) * env
    level = 0.6 + 0.2 * pressure
    am = 1.0
    extra = 0.0
    if anomaly == "clogging":
        level *= 1.0 - 0.35 * severity
        wf = min(rng.uniform(2000, 3000), 0.4 * ctx.sr)
        whistle = _grade(severity, -38.0, -14.0) * unit_rms(
            shaped_noise(ctx.n, ctx.sr, lorentz(f, wf, 60.0), rng) * env)
    elif anomaly == "bearing":
        extra = _bearing(ctx, ph, fr, 4.1, severity, -36.0, -12.0)
    elif anomaly == "imbalance":
        extra, am = _imbalance(ph, severity)
    return am * (0.35 * tone + level * fluid) + extra + whistle


def _slider(ctx: _Ctx, a: Mapping[str, float], anomaly: str | None, severity: float) -> np.ndarray:
    """A linear slide: motor whine and rolling noise while moving, an impact at each stop."""
    rng, f, sr, n = ctx.rng, ctx.f, ctx.sr, ctx.n
    period = 60.0 / a["stroke"] * rng.uniform(0.98, 1.02)
    load = a["load"]
    count = int(ctx.seconds / period) + 2
    starts = (np.arange(count) * period - rng.uniform(0, period)
              + 0.002 * rng.standard_normal(count))
    moving = 0.6 * period
    stalled = np.zeros(count, bool)
    if anomaly == "missing_clicks":
        # the carriage stalls: some strokes are skipped (no motion, no stop impact),
        # others stop short without the impact, and the timing wanders
        starts = starts + 0.08 * severity * period * rng.standard_normal(count)
        stalled = rng.random(count) < 0.1 + 0.3 * severity
    s_idx = (starts * sr).astype(np.int64)
    d_idx = np.full(count, int(moving * sr))
    gate = envelope_from_events(n, s_idx[~stalled], d_idx[~stalled], sr, ramp=0.04)
    f_m = min(380.0 * (1.0 + 0.15 * load / 20.0) * rng.uniform(0.97, 1.03), 0.2 * sr)
    whine = _tone_stack(phase(f_m, n, sr, rng.uniform(0, TWO_PI)), f_m, 3, 0.5, ctx)
    roll_shape = lorentz(f, min(1200.0, 0.4 * sr), 900.0) + 0.3 * lorentz(
        f, min(3500.0, 0.4 * sr), 1500.0) + 0.02
    roll = shaped_noise(n, sr, roll_shape, rng)
    body = gate * (0.4 * whine + 0.6 * (0.7 + load / 40.0) * roll)
    stops = s_idx + d_idx
    hit_amp = (0.7 + 0.3 * load / 20.0) * rng.uniform(0.85, 1.15, count)
    if anomaly == "missing_clicks":
        hit_amp[stalled | (rng.random(count) < 0.2 + 0.6 * severity)] = 0.0
    modes = np.array([900.0, 2100.0, 3700.0]) * rng.uniform(0.97, 1.03)
    kern = damped_kernel(sr, modes, np.array([0.03, 0.02, 0.012]), np.array([1.0, 0.6, 0.4]),
                         0.12, rng, noise=0.4)
    impacts = place_events(n, stops, hit_amp, kern)
    idle = 0.03 * shaped_noise(n, sr, 1.0 / (1.0 + f / 200.0), rng)
    y = body + 0.9 * impacts + idle
    if anomaly == "rubbing":
        fs = min(rng.uniform(1800, 3500), 0.35 * sr)
        squeal_f = fs * (1.0 + 0.02 * smooth_random(n, sr, 2.0, rng))
        squeal = harmonics(phase(squeal_f, n, sr), np.array([1.0, 0.3]),
                           limit=np.array([True, 2 * fs < 0.45 * sr]))
        y = y + _grade(severity, -32.0, -8.0) * unit_rms(squeal * gate) * 1.0
    elif anomaly == "looseness":
        rattle = damped_kernel(sr, np.array([min(4200.0, 0.4 * sr), 5600.0]),
                               np.array([0.004, 0.003]), np.array([1.0, 0.5]), 0.03, rng, 0.5)
        delays = rng.uniform(0.015, 0.06, (count, 3)).cumsum(axis=1)
        pos = (stops[:, None] + delays * sr).astype(np.int64).ravel()
        amps = (hit_amp[:, None] * 0.6 ** np.arange(1, 4)[None, :]).ravel()
        extra = place_events(n, pos, amps * rng.uniform(0.5, 1.0, amps.size), rattle)
        y = y + _grade(severity, -30.0, -4.0) * unit_rms(extra) * 0.5
    elif anomaly == "bearing":
        pos = np.arange(0, n, int(sr / 70.0)) + rng.integers(0, 50)
        kern_b = damped_kernel(sr, np.array([min(3300.0, 0.42 * sr)]), np.array([0.0012]),
                               np.array([1.0]), 0.01, rng, 0.3)
        ev = place_events(n, pos, gate[np.minimum(pos, n - 1)], kern_b)
        y = y + _grade(severity, -30.0, -6.0) * unit_rms(ev) * 0.6
    return y


def _valve(ctx: _Ctx, a: Mapping[str, float], anomaly: str | None, severity: float) -> np.ndarray:
    """A solenoid valve: open and close clicks, flow hiss while open."""
    rng, f, sr, n = ctx.rng, ctx.f, ctx.sr, ctx.n
    period = a["interval"] / 1000.0 * rng.uniform(0.98, 1.02)
    pressure = a["pressure"]
    count = int(ctx.seconds / period) + 2
    opens = (np.arange(count) * period - rng.uniform(0, period)
             + 0.003 * rng.standard_normal(count))
    dur = 0.5 * period * rng.uniform(0.95, 1.05, count)
    active = np.ones(count, bool)
    if anomaly == "missing_clicks":
        active = rng.random(count) >= 0.1 + 0.45 * severity
    o_idx = (opens * sr).astype(np.int64)
    c_idx = ((opens + dur) * sr).astype(np.int64)
    gate = envelope_from_events(n, o_idx[active], (c_idx - o_idx)[active], sr, ramp=0.005)
    hiss_c = min(2500.0 + 600.0 * pressure, 0.38 * sr)
    hiss_shape = lorentz(f, hiss_c, 1800.0) + 0.05
    hiss = shaped_noise(n, sr, hiss_shape, rng)
    hiss_level = 0.25 + 0.1 * pressure
    k_open = damped_kernel(sr, np.array([3200.0, 5100.0, 800.0]) * rng.uniform(0.97, 1.03),
                           np.array([0.006, 0.004, 0.01]), np.array([1.0, 0.6, 0.5]), 0.05,
                           rng, 0.5)
    k_close = damped_kernel(sr, np.array([2600.0, 4400.0, 150.0]) * rng.uniform(0.97, 1.03),
                            np.array([0.008, 0.005, 0.02]), np.array([1.0, 0.5, 0.8]), 0.06,
                            rng, 0.5)
    amp = rng.uniform(0.85, 1.15, count) * active
    clicks = place_events(n, o_idx, amp, k_open) + place_events(n, c_idx, 0.8 * amp, k_close)
    hum = 0.05 * gate * fsin(phase(100.0, n, sr, rng.uniform(0, TWO_PI)))
    room = 0.02 * shaped_noise(n, sr, 1.0 / (1.0 + f / 300.0), rng)
    y = hiss_level * hiss * gate + 1.2 * clicks + hum + room
    if anomaly == "extra_clicks":
        # relay chatter: bursts of spurious, higher-pitched clicks
        k_extra = int(round(ctx.seconds * (1.0 + 5.0 * severity)))
        pos = rng.integers(0, n, max(1, k_extra))
        chatter = damped_kernel(sr, np.array([min(6200.0, 0.42 * sr), 1900.0]),
                                np.array([0.003, 0.006]), np.array([1.0, 0.7]), 0.03, rng, 0.5)
        y = y + 1.2 * place_events(n, pos, rng.uniform(0.4, 1.0, pos.size), chatter)
    elif anomaly == "looseness":
        delay = (rng.uniform(0.004, 0.012, count) * sr).astype(np.int64)
        bounce = 0.15 + 0.75 * severity
        rattle = damped_kernel(sr, np.array([1600.0, min(4800.0, 0.42 * sr)]),
                               np.array([0.004, 0.002]), np.array([1.0, 0.8]), 0.03, rng, 0.6)
        y = y + 1.2 * bounce * (place_events(n, o_idx + delay, amp, rattle)
                                + place_events(n, c_idx + delay, 0.8 * amp, rattle))
    elif anomaly == "leak":
        leak_shape = lorentz(f, min(hiss_c * 1.3, 0.4 * sr), 1200.0)
        leak = shaped_noise(n, sr, leak_shape, rng) * (1.0 - gate)
        y = y + _grade(severity, -40.0, -16.0) * hiss_level * 3 * leak
    return y


def _gearbox(ctx: _Ctx, a: Mapping[str, float], anomaly: str | None,
             severity: float) -> np.ndarray:
    """Gear-mesh harmonics with shaft-rate sidebands over casing noise."""
    rng, f, sr, n = ctx.rng, ctx.f, ctx.sr, ctx.n
    rpm, load = a["speed"], a["load"]
    fr = rpm / 60.0 * (1.0 + 0.005 * rng.standard_normal())
    teeth, teeth_out = 23, 37
    freq = fr * (1.0 + 0.003 * smooth_random(n, sr, 0.7, rng))
    if anomaly == "pitch_drift":
        t = np.linspace(-0.5, 0.5, n)
        direction = rng.choice([-1.0, 1.0])
        freq = freq * (1.0 + severity * (0.25 * direction * t
                                         + 0.06 * smooth_random(n, sr, 1.0, rng)))
    ph = phase(freq, n, sr, rng.uniform(0, TWO_PI))
    mesh = _tone_stack(teeth * ph, teeth * fr, 4, 0.55, ctx) * (0.5 + load / 100.0)
    side = 1.0 + 0.05 * fcos(ph) + 0.04 * fcos(ph * teeth / teeth_out + 1.1)
    casing_shape = (0.4 * lorentz(f, min(1100.0, 0.4 * sr), 300.0)
                    + 0.3 * lorentz(f, min(2700.0, 0.4 * sr), 600.0)
                    + 1.0 / (1.0 + f / 150.0)) * np.minimum(1.0, f / 30.0)
    casing = shaped_noise(n, sr, casing_shape, rng)
    hum = 0.05 * fsin(phase(100.0, n, sr, rng.uniform(0, TWO_PI)))
    extra = 0.0
    if anomaly == "imbalance":
        depth = 0.15 + 0.6 * severity
        side = side + depth * fcos(ph + 0.4)
        extra = _grade(severity, -26.0, -4.0) * math.sqrt(2) * fsin(ph)
    elif anomaly == "bearing":
        extra = _bearing(ctx, ph, fr, 5.4, severity)
    elif anomaly == "looseness":
        per_rev = np.arange(int(ctx.seconds * fr) + 2) / fr
        pos = ((per_rev + 0.002 * rng.standard_normal(per_rev.size)) * sr).astype(np.int64)
        amps = rng.uniform(0.3, 1.0, pos.size)
        knock = damped_kernel(sr, np.array([min(1800.0, 0.4 * sr), 4100.0]),
                              np.array([0.006, 0.003]), np.array([1.0, 0.6]), 0.04, rng, 0.6)
        sub = fsin(0.5 * ph)
        extra = _grade(severity, -30.0, -6.0) * (
            unit_rms(place_events(n, pos, amps, knock)) + 0.3 * sub)
    return 0.7 * mesh * side + 0.45 * casing + hum + extra


MACHINES: dict[str, MachineModel] = {
    m.name: m
    for m in (
        MachineModel(
            "fan", "blade-pass tone and harmonics over broadband flow noise",
            (Attribute("speed", ("1200", "1350", "1500", "1650"), ("1950", "2100")),
             Attribute("blades", ("5", "7"), ("5", "7"))),
            ("imbalance", "bearing", "rubbing", "clogging"), _fan),
        MachineModel(
            "pump", "pulsating fluid flow with impeller vane-pass tones",
            (Attribute("flow", ("60", "80", "100"), ("130", "150")),
             Attribute("pressure", ("2", "3"), ("2", "3"))),
            ("clogging", "bearing", "imbalance"), _pump),
        MachineModel(
            "slider", "periodic strokes: motor whine and rolling noise, an impact at each stop",
            (Attribute("stroke", ("40", "60", "80"), ("100", "120")),
             Attribute("load", ("10", "20"), ("10", "20"))),
            ("rubbing", "looseness", "missing_clicks", "bearing"), _slider),
        MachineModel(
            "valve", "solenoid valve: on/off actuation clicks and flow hiss",
            (Attribute("interval", ("500", "750", "1000"), ("300", "1500")),
             Attribute("pressure", ("2", "4"), ("2", "4"))),
            ("missing_clicks", "extra_clicks", "looseness", "leak"), _valve),
        MachineModel(
            "gearbox", "gear-mesh harmonics with shaft-rate sidebands over casing noise",
            (Attribute("speed", ("600", "900", "1200"), ("1500", "1800")),
             Attribute("load", ("30", "60"), ("30", "60"))),
            ("bearing", "imbalance", "looseness", "pitch_drift"), _gearbox),
    )
}
"""Machine models by name."""

MACHINE_TYPES: tuple[str, ...] = tuple(MACHINES)
"""Names of the machine types, in their default order."""


def sample_attributes(machine: str, domain: str, rng: np.random.Generator) -> dict[str, str]:
    """Draw operating conditions for one clip of ``machine`` in ``domain``.

    Args:
        machine: A name from :data:`MACHINE_TYPES`.
        domain: ``"source"`` or ``"target"`` (target draws the shifted values).
        rng: Random generator.

    Returns:
        ``{attribute name: value}`` in file-name order.
    """
    model = _model(machine)
    _check_domain(domain)
    return {
        att.name: str(rng.choice(att.source if domain == "source" else att.target))
        for att in model.attributes
    }


def _model(machine: str) -> MachineModel:
    try:
        return MACHINES[machine]
    except KeyError as exc:
        raise ConfigError(
            "machine", f"unknown machine type {machine!r}; choose from {', '.join(MACHINE_TYPES)}"
        ) from exc


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ConfigError("domain", f"must be 'source' or 'target', got {domain!r}")


def _background(ctx: _Ctx, domain: str) -> np.ndarray:
    """Factory background at unit RMS; the target domain is a different factory."""
    rng, f, sr, n = ctx.rng, ctx.f, ctx.sr, ctx.n
    if domain == "source":
        shape = np.minimum(f, 10000.0).clip(20.0) ** -0.5
        bed = shaped_noise(n, sr, shape, rng)
        hum = harmonics(phase(50.0, n, sr), np.array([1.0, 0.5, 0.3, 0.2]),
                        rng.uniform(0, TWO_PI, 4))
        return unit_rms(bed + 0.15 * unit_rms(hum))
    shape = (np.maximum(f, 30.0) ** -1.0 + 0.002 * lorentz(f, 1000.0, 800.0))
    bed = shaped_noise(n, sr, shape, rng)
    babble = shaped_noise(n, sr, lorentz(f, 600.0, 500.0), rng)
    syllables = np.abs(smooth_random(n, sr, 8.0, rng))
    other = rng.uniform(80.0, 400.0)
    distant = harmonics(phase(other, n, sr), np.array([1.0, 0.6, 0.4]), rng.uniform(0, 6, 3),
                        np.arange(1, 4) * other < 0.45 * sr)
    return unit_rms(bed + 0.5 * babble * syllables + 0.3 * unit_rms(distant))


def _numeric(machine: str, model: MachineModel, attributes: Mapping[str, str | float]
             ) -> dict[str, float]:
    values: dict[str, float] = {}
    for att in model.attributes:
        if att.name not in attributes:
            raise ConfigError(f"{machine} attributes", f"missing {att.name!r}")
        try:
            values[att.name] = float(attributes[att.name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{machine} attributes",
                f"{att.name} must be a number, got {attributes[att.name]!r}") from exc
        if not math.isfinite(values[att.name]) or values[att.name] <= 0:
            raise ConfigError(f"{machine} attributes", f"{att.name} must be positive")
    return values


def render_machine_clip(
    machine: str,
    domain: str,
    attributes: Mapping[str, str | float],
    anomaly_kind: str | None,
    severity: float,
    seconds: float,
    sr: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Render one machine clip in memory.

    Args:
        machine: A name from :data:`MACHINE_TYPES`.
        domain: ``"source"`` or ``"target"``: the target domain has a different
            background (another factory: brown noise, babble, a distant machine) at a
            lower signal-to-noise ratio. Shifted operating conditions come through
            ``attributes`` (see :func:`sample_attributes`).
        attributes: Operating conditions, e.g. ``{"speed": "1500", "blades": "7"}`` for a
            fan (any positive number is accepted, not only the listed values).
        anomaly_kind: ``None`` for a normal clip, else one of the machine's
            ``MACHINES[machine].anomalies``.
        severity: 0..1; how strong the anomaly is (ignored for normal clips).
        seconds: Clip length.
        sr: Sample rate.
        rng: Random generator (the clip is a pure function of its state and the
            arguments).

    Returns:
        float32 mono clip, peak below 1.

    Raises:
        ConfigError: Unknown machine, domain or anomaly kind; bad attributes, severity,
            length or rate.
    """
    ctx, model, values = _prepare(machine, domain, attributes, anomaly_kind, severity, seconds,
                                  sr, rng)
    y = unit_rms(model.render(ctx, values, anomaly_kind, float(severity) if anomaly_kind else 0.0))
    snr = rng.uniform(8.0, 14.0) if domain == "source" else rng.uniform(2.0, 8.0)
    y = y + _db(-snr) * _background(ctx, domain)
    y *= CLIP_RMS * _db(rng.uniform(-2.0, 2.0)) / max(float(np.sqrt(np.mean(y * y))), 1e-12)
    peak = float(np.max(np.abs(y)))
    if peak > 0.98:
        y *= 0.98 / peak
    return y.astype(np.float32)


def render_machine_parts(
    machine: str,
    domain: str,
    attributes: Mapping[str, str | float],
    anomaly_kind: str | None,
    severity: float,
    seconds: float,
    sr: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The machine sound and its factory background apart, each at unit RMS.

    For writers that mix them themselves at known signal-to-noise ratios (the DCASE
    2025 supplementary clips, the DCASE 2026 near/far channels). Arguments and errors
    as :func:`render_machine_clip`; the same ``rng`` state gives the same machine sound
    as there (the background is drawn next).

    Returns:
        ``(machine, background)``, float32 arrays of ``round(seconds * sr)`` samples.
    """
    ctx, model, values = _prepare(machine, domain, attributes, anomaly_kind, severity, seconds,
                                  sr, rng)
    y = unit_rms(model.render(ctx, values, anomaly_kind, float(severity) if anomaly_kind else 0.0))
    return y.astype(np.float32), _background(ctx, domain).astype(np.float32)


def _prepare(
    machine: str,
    domain: str,
    attributes: Mapping[str, str | float],
    anomaly_kind: str | None,
    severity: float,
    seconds: float,
    sr: int,
    rng: np.random.Generator,
) -> tuple[_Ctx, MachineModel, dict[str, float]]:
    """Validate the arguments of a rendering; its context, model and attribute values."""
    model = _model(machine)
    _check_domain(domain)
    if anomaly_kind is not None and anomaly_kind not in model.anomalies:
        raise ConfigError(
            "anomaly_kind",
            f"{anomaly_kind!r} does not apply to {machine}; "
            f"choose from {', '.join(model.anomalies)}",
        )
    if not 0.0 <= severity <= 1.0:
        raise ConfigError("severity", f"must be between 0 and 1, got {severity!r}")
    if int(sr) != sr or sr < 4000:
        raise ConfigError("sr", f"sample rate must be an integer of at least 4000 Hz, got {sr!r}")
    n = int(round(seconds * sr))
    if n < 16:
        raise ConfigError("seconds", f"clip too short: {seconds!r} s")
    values = _numeric(machine, model, attributes)
    return _Ctx(n, int(sr), rng), model, values

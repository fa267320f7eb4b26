"""A picture of the flows: per peering, accepted and rejected packets per window over time,
with the windows where an anomaly was found marked. Hand-written SVG, pure (no I/O).

`.svg` is the chart alone; `.html` a self-contained page (inline SVG and CSS, no script, no
network) with the findings listed under each peering's chart. Only the CLI imports this:
the analyzer never draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from peerguard.domain.findings import Finding
from peerguard.domain.flows.aggregates import WindowAggregates, iso

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 40
ACCEPTED, REJECTED, ANOMALY = "#2b7bb9", "#d62728", "#ff7f0e"
FORMATS = (".svg", ".html", ".htm")


def _q(text: object) -> str:
    return escape(str(text), quote=True)


def _epoch(text: object) -> int | None:
    try:
        return int(datetime.fromisoformat(str(text)).astimezone(UTC).timestamp())
    except ValueError:
        return None


def series(aggs: WindowAggregates, peering_id: str) -> list[tuple[int, int, int]]:
    """(window start, accepted packets, rejected packets) for every window covered."""
    acc: dict[int, list[int]] = {s: [0, 0] for s in aggs.window_starts()}
    for f in aggs.flows:
        if f.peering_id != peering_id:
            continue
        slot = acc.setdefault(f.window_start, [0, 0])
        if f.accepted:
            slot[0] += f.packets
        elif f.rejected:
            slot[1] += f.packets
    return [(s, a, r) for s, (a, r) in sorted(acc.items())]


def marks(findings: Sequence[Finding], peering_id: str) -> dict[int, list[Finding]]:
    """The findings of a peering by the start of the window they were found in."""
    out: dict[int, list[Finding]] = {}
    for f in findings:
        evidence = f.extra.get("evidence") or {}
        start = _epoch(evidence.get("window_start")) if isinstance(evidence, dict) else None
        if f.peering_connection_id == peering_id and start is not None:
            out.setdefault(start, []).append(f)
    return out


def _nice(top: int) -> int:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1
    step = 10 ** (len(str(top)) - 1)
    for m in (1, 2, 5, 10):
        if top <= m * step:
            return m * step
    return 10 * step


def panel(aggs: WindowAggregates, findings: Sequence[Finding], peering_id: str, y0: int) -> str:
    """One peering's chart as an SVG group, `y0` pixels down."""
    points = series(aggs, peering_id)
    found = marks(findings, peering_id)
    seconds = aggs.window.seconds
    starts = [p[0] for p in points] or sorted(found) or [0]
    lo, hi = min(starts), max(starts)
    span = max(hi - lo, seconds)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice(max([max(a, r) for _, a, r in points] or [0]))

    def x(t: int) -> float:
        return LEFT + (t - lo) / span * plot_w

    def y(v: int) -> float:
        return TOP + plot_h - v / top * plot_h

    out = [f'<g transform="translate(0,{y0})" class="peering" data-peering="{_q(peering_id)}">']
    out.append(
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{_q(peering_id)}'
        f"{'' if found else ' (no anomaly)'}</text>"
    )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>'
    )
    for v in (0, top // 2, top):
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#eee"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v}</text>'
        )
    for t in sorted({lo, lo + (span // 2) // seconds * seconds, hi}):
        label = datetime.fromtimestamp(t, UTC).strftime("%H:%M")
        out.append(
            f'<text x="{x(t):.1f}" y="{TOP + plot_h + 16}" font-size="10" '
            f'text-anchor="middle">{label}</text>'
        )
    out.append(
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" font-size="10" '
        f'text-anchor="middle">window start (UTC), {seconds // 60}-minute windows; '
        "packets per window</text>"
    )
    for t, items in sorted(found.items()):
        cx = x(t)
        what = "; ".join(f"{f.check_id}: {f.detail}" for f in items)
        out.append(
            f'<g class="anomaly" data-window="{_q(iso(t))}"><title>{_q(what)}</title>'
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="{ANOMALY}" stroke-width="2" stroke-dasharray="4 3"/>'
            f'<path d="M {cx - 6:.1f} {TOP - 2} L {cx + 6:.1f} {TOP - 2} L {cx:.1f} {TOP + 8} Z" '
            f'fill="{ANOMALY}"/>'
            f'<text x="{cx + 8:.1f}" y="{TOP + 12}" font-size="10" fill="{ANOMALY}">'
            f"{_q(', '.join(sorted({f.check_id.removeprefix('flow.') for f in items})))}</text>"
            "</g>"
        )
    for name, index, colour in (("accepted", 1, ACCEPTED), ("rejected", 2, REJECTED)):
        coords = " ".join(f"{x(p[0]):.1f},{y(p[index]):.1f}" for p in points)
        out.append(
            f'<polyline class="{name}" points="{coords}" fill="none" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        for p in points:
            out.append(
                f'<circle cx="{x(p[0]):.1f}" cy="{y(p[index]):.1f}" r="2.5" fill="{colour}">'
                f"<title>{_q(iso(p[0]))}: {p[index]} {name} packets</title></circle>"
            )
    legend_x = WIDTH - RIGHT - 260
    for i, (name, colour) in enumerate(
        (("accepted", ACCEPTED), ("rejected", REJECTED), ("anomaly", ANOMALY))
    ):
        lx = legend_x + i * 88
        out.append(f'<rect x="{lx}" y="10" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 16}" y="20" font-size="11">{name}</text>')
    out.append("</g>")
    return "".join(out)


def peerings_of(aggs: WindowAggregates, findings: Sequence[Finding]) -> list[str]:
    ids = [c.peering_id for c in aggs.crossings]
    extra = sorted(
        {f.peering_connection_id for f in findings if f.peering_connection_id} - set(ids)
    )
    return ids + extra


def svg(aggs: WindowAggregates, findings: Sequence[Finding]) -> str:
    """Every peering's chart, one under the other, as one SVG document."""
    ids = peerings_of(aggs, findings)
    height = HEIGHT * max(len(ids), 1)
    body = "".join(panel(aggs, findings, p, i * HEIGHT) for i, p in enumerate(ids))
    if not ids:
        body = f'<text x="{LEFT}" y="40" font-size="14">No active peering.</text>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" role="img">'
        f"<title>Flows across each peering</title>{body}</svg>"
    )


def html(aggs: WindowAggregates, findings: Sequence[Finding], title: str) -> str:
    """A self-contained page: each peering's chart and its findings."""
    sections = []
    for p in peerings_of(aggs, findings):
        mine = [f for f in findings if f.peering_connection_id == p]
        items = "".join(
            f"<li><b>{_q(f.severity.value.upper())}</b> <code>{_q(f.check_id)}</code> "
            f"{_q(f.detail)}</li>"
            for f in mine
        )
        chart = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" role="img">'
            f"{panel(aggs, findings, p, 0)}</svg>"
        )
        listing = f"<ul>{items}</ul>" if mine else "<p>No anomaly.</p>"
        sections.append(f"<section><h2>{_q(p)}</h2>{chart}{listing}</section>")
    body = "".join(sections) or "<p>No active peering.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{_q(title)}</title><style>"
        "body{font-family:sans-serif;margin:24px;color:#222}"
        "section{margin-bottom:28px}li{margin:4px 0}code{background:#f3f3f3}"
        f"</style></head><body><h1>{_q(title)}</h1>{body}</body></html>\n"
    )


def render(
    path_suffix: str, aggs: WindowAggregates, findings: Sequence[Finding], title: str
) -> str:
    """The chart for a file name ending in `path_suffix` (.svg, .html or .htm)."""
    suffix = path_suffix.lower()
    if suffix == ".svg":
        return svg(aggs, findings) + "\n"
    if suffix in (".html", ".htm"):
        return html(aggs, findings, title)
    raise ValueError(
        f"chart file must end in .svg or .html, not {path_suffix or '(nothing)'!r} "
        "(PNG would need an image library, which PeerGuard does not carry)"
    )

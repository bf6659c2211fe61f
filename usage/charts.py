"""Plain SVG charts rendered on the server (no script, no CDN): columns over days, and
horizontal bars for a ranking. Every label is escaped; values only size shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Point = tuple[str, float]
PALETTE = ("#417690", "#79aec8", "#e8a33d", "#7fa650", "#b55d5d", "#8e7cc3")


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, fill: str = "#555") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>'
    )


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    # Safe: every text in `body` went through escape(); numbers are formatted by us.
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def column_chart(
    points: Sequence[Point],
    *,
    title: str,
    value_format: Callable[[float], str] = lambda value: f"{value:,.0f}",
    width: int = 640,
    height: int = 200,
    color: str = PALETTE[0],
) -> SafeString:
    """One column per point (e.g. per day), the highest value labelled, every 5th label shown."""
    top, bottom, left, right = 20, 28, 8, 8
    plot_height = height - top - bottom
    peak = max((value for _, value in points), default=0) or 1
    step = (width - left - right) / max(1, len(points))
    body = [f'<line x1="{left}" y1="{top + plot_height}" x2="{width - right}" y2="{top + plot_height}" stroke="#ccc"/>']
    for index, (label, value) in enumerate(points):
        bar = plot_height * value / peak
        x = left + index * step
        body.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{top + plot_height - bar:.1f}" width="{step * 0.8:.1f}" '
            f'height="{bar:.1f}" fill="{color}"><title>{escape(label)}: {escape(value_format(value))}</title></rect>'
        )
        if index % 5 == 0 or index == len(points) - 1:
            body.append(_text(x + step / 2, height - 10, label, anchor="middle", size=10))
    if points:
        body.append(_text(left, 12, f"max {value_format(max(value for _, value in points))}"))
    return _svg(width, height, title, body)


def bar_chart(
    items: Sequence[Point],
    *,
    title: str,
    value_format: Callable[[float], str] = lambda value: f"{value:,.0f}",
    width: int = 520,
    color: str = PALETTE[1],
    label_width: int = 170,
) -> SafeString:
    """One horizontal bar per item, largest first as given; the value written after the bar."""
    row, top = 22, 6
    height = top * 2 + row * max(1, len(items))
    peak = max((value for _, value in items), default=0) or 1
    plot = width - label_width - 90
    body = []
    if not items:
        body.append(_text(8, top + 14, "no usage yet"))
    for index, (label, value) in enumerate(items):
        y = top + index * row
        length = plot * value / peak
        shown = label if len(label) <= 28 else label[:27] + "…"
        body.append(_text(label_width - 6, y + 15, shown, anchor="end"))
        body.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{max(length, 1):.1f}" height="{row - 8}" fill="{color}">'
            f"<title>{escape(label)}: {escape(value_format(value))}</title></rect>"
        )
        body.append(_text(label_width + length + 6, y + 15, value_format(value), fill="#333"))
    return _svg(width, height, title, body)


def paired_bar_chart(
    items: Sequence[tuple[str, float | None, float | None]],
    *,
    title: str,
    names: tuple[str, str],
    value_format: Callable[[float], str] = lambda value: f"{value:,.0f}",
    width: int = 520,
    label_width: int = 120,
) -> SafeString:
    """Two bars per item (e.g. p50 and p95), a legend on top; a missing value draws no bar."""
    row, top = 34, 24
    height = top + row * max(1, len(items)) + 6
    peak = max((value or 0 for _, *values in items for value in values), default=0) or 1
    plot = width - label_width - 80
    body = [
        f'<rect x="{label_width}" y="6" width="10" height="10" fill="{PALETTE[0]}"/>',
        _text(label_width + 14, 15, names[0]),
        f'<rect x="{label_width + 70}" y="6" width="10" height="10" fill="{PALETTE[2]}"/>',
        _text(label_width + 84, 15, names[1]),
    ]
    if not items:
        body.append(_text(8, top + 14, "no data yet"))
    for index, (label, first, second) in enumerate(items):
        y = top + index * row
        body.append(_text(label_width - 6, y + 17, label, anchor="end"))
        for offset, value, color in ((2, first, PALETTE[0]), (16, second, PALETTE[2])):
            if value is None:
                continue
            length = plot * value / peak
            body.append(
                f'<rect x="{label_width}" y="{y + offset}" width="{max(length, 1):.1f}" height="12" fill="{color}"/>'
            )
            body.append(_text(label_width + length + 6, y + offset + 10, value_format(value), size=10, fill="#333"))
    return _svg(width, height, title, body)

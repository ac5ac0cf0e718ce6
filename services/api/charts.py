"""Small server-side charts for Mintgate: geometry computed here, drawn as inline SVG by the
templates (no JavaScript, readable by screen readers through titles and a summary label)."""

from __future__ import annotations

import time


def volume_chart(series: list[dict], bucket_s: int, width: int = 720, height: int = 160) -> dict:
    """Bars of settled volume per bucket of a payment summary's `series`.

    Returns {width, height, bars: [{x, y, w, h, title}], max_msat, total_msat, label, first,
    last} (`first` the first bucket's start, `last` the window's end or "now"): bar heights
    are proportional to the largest bucket (a zero bucket has no height), every bar has a title
    ("14:00 UTC: 3 payments, 120,000 msat")."""
    n = max(1, len(series))
    plot_h = height - 20  # room for the axis labels under the bars
    top = max((b["volume_msat"] for b in series), default=0)
    slot = width / n
    bars = []
    for i, b in enumerate(series):
        h = (
            0.0
            if top == 0
            else max(1.0, plot_h * b["volume_msat"] / top)
            if b["volume_msat"]
            else 0.0
        )
        when = _clock(b["start"], bucket_s)
        bars.append(
            {
                "x": round(i * slot + slot * 0.1, 1),
                "w": round(slot * 0.8, 1),
                "y": round(plot_h - h, 1),
                "h": round(h, 1),
                "title": f"{when}: {b['settled']} payment(s), {b['volume_msat']:,} msat",
            }
        )
    total = sum(b["volume_msat"] for b in series)
    return {
        "id": "volume-chart-label",
        "width": width,
        "height": height,
        "plot_height": plot_h,
        "bars": bars,
        "max_msat": top,
        "total_msat": total,
        "first": _clock(series[0]["start"], bucket_s) if series else "",
        "last": _end_label(series[-1]["start"] + bucket_s, bucket_s) if series else "",
        "label": f"Settled volume per {_span(bucket_s)}: {total:,} msat in {len(series)} buckets,"
        f" the largest {top:,} msat",
    }


def _clock(t: float, bucket_s: int) -> str:
    fmt = "%H:%M UTC" if bucket_s < 86_400 else "%Y-%m-%d"
    return time.strftime(fmt, time.gmtime(t))


def _end_label(end: float, bucket_s: int) -> str:
    """The right-hand axis label: "now" for a window that reaches the present, else its end."""
    return "now" if end >= time.time() - 60 else _clock(end, bucket_s)


def _span(bucket_s: int) -> str:
    if bucket_s % 86_400 == 0:
        return "day" if bucket_s == 86_400 else f"{bucket_s // 86_400} days"
    if bucket_s % 3600 == 0:
        return "hour" if bucket_s == 3600 else f"{bucket_s // 3600} hours"
    return f"{bucket_s // 60} minutes"

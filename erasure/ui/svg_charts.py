"""Bar charts as plain geometry for the console's server-rendered SVG (templates/ui/chart.html).

No JavaScript and no external asset: the template draws rectangles and text from the numbers
computed here, and prints the same numbers as a table, the chart's accessible fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 420
HEIGHT = 190
#: Room for the y-axis labels on the left and the category labels below.
LEFT, TOP, BOTTOM, RIGHT = 40, 12, 30, 8
#: Dark enough to keep 4.5:1 against white, and apart from each other.
COLOURS = ("#0b4f9c", "#8a4b00", "#1b5e20", "#6a1b9a")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no figure for that category (shown as "—")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    text: str  # "<category>, <series>: <value>", the bar's tooltip


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    unit: str
    categories: list[str]
    series: list[Series]
    bars: list[Bar]
    ticks: list[Tick]  # category labels under the axis (every n-th when crowded)
    y_max: float
    colours: list[str]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    base: int = HEIGHT - BOTTOM

    def cell(self, value: float | None) -> str:
        return "—" if value is None else format_value(value, self.unit)

    def axis(self, value: float) -> str:
        """The y-axis label: the number, and "%" (other units are in the title: no room)."""
        return format_value(value, "%" if self.unit == "%" else "")


def format_value(value: float, unit: str) -> str:
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{text}{unit}" if unit == "%" else (f"{text} {unit}" if unit else text)


def _nice_max(peak: float) -> float:
    """The axis top: the peak rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if peak <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(peak))
    for step in (1, 2, 5, 10):
        if peak <= step * power:
            return float(step * power)
    return float(10 * power)


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    y_max: float | None = None,
) -> Chart:
    """Grouped bars: one group per category, one bar per series in it."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = y_max if y_max is not None else _nice_max(peak)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    group = plot_w / max(1, len(categories))
    bar_w = group * 0.8 / max(1, len(series))
    bars: list[Bar] = []
    for i, category in enumerate(categories):
        for j, one in enumerate(series):
            value = one.values[i]
            if value is None or value <= 0:
                continue
            height = plot_h * min(value, top) / top
            bars.append(
                Bar(
                    x=round(LEFT + i * group + group * 0.1 + j * bar_w, 1),
                    y=round(TOP + plot_h - height, 1),
                    width=round(bar_w, 1),
                    height=round(height, 1),
                    colour=COLOURS[j % len(COLOURS)],
                    text=f"{category}, {one.name}: {format_value(value, unit)}",
                )
            )
    every = max(1, math.ceil(len(categories) / 6))
    ticks = [
        Tick(x=round(LEFT + i * group + group / 2, 1), text=category)
        for i, category in enumerate(categories)
        if i % every == 0
    ]
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        unit=unit,
        categories=list(categories),
        series=list(series),
        bars=bars,
        ticks=ticks,
        y_max=top,
        colours=[COLOURS[j % len(COLOURS)] for j in range(len(series))],
    )

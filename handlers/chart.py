"""The `/stats` chart: MRR at the end of each month, one panel per currency, as a PNG.

Drawn with matplotlib's object API on the Agg backend (a `Figure` with its own
`FigureCanvasAgg`): pyplot keeps global state (current figures) that concurrent chats would
share, and picks a GUI backend where one exists.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

from babel.numbers import get_currency_precision
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

MAX_PANELS = 4  # a photo in a chat stays readable with up to four currencies
Money = Callable[[int, str], str]


def mrr_chart(months: Sequence[str], series: Mapping[str, Sequence[int]], *, title: str,
              money: Money) -> bytes:
    """Return a PNG of MRR per month (minor units), amounts labelled by `money`."""
    currencies = list(series)[:MAX_PANELS] or [""]
    figure = Figure(figsize=(8, 2.2 + 2.0 * len(currencies)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    axes_list = figure.subplots(len(currencies), 1, squeeze=False, sharex=True)[:, 0]
    positions = list(range(len(months)))
    for axes, currency in zip(axes_list, currencies, strict=True):
        values = series.get(currency, [0] * len(months))
        scale = 10 ** get_currency_precision(currency.upper()) if currency else 1
        axes.plot(positions, [v / scale for v in values], marker="o", color="#2f6fde")
        axes.fill_between(positions, [v / scale for v in values], alpha=0.12, color="#2f6fde")
        axes.set_ylim(bottom=0)
        axes.set_title(currency.upper(), loc="left", fontsize="medium")
        axes.grid(axis="y", alpha=0.3)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
        if currency:
            axes.yaxis.set_major_formatter(FuncFormatter(
                lambda major, _pos, code=currency, unit=scale: money(round(major * unit), code)))
    last = axes_list[-1]
    last.set_xticks(positions, list(months), rotation=45, ha="right")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()

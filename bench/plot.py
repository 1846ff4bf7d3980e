#!/usr/bin/env python3
"""Draws one of bench/run's scaling curves from the JSON that bench/run
keeps in bench/.build/scaling-*.json: one line per system (the median, with
min-max bars), a dashed reference line per system from its first point
(linear: time in proportion to x; flat: the same time at every x), log-log
axes when the spec asks for them (x spanning a decade or more).

usage: bench/.venv/bin/python bench/plot.py SPEC.json [OUT]

OUT (default: the spec's "out") may end in .svg or .png. Needs matplotlib,
which bench/install puts into bench/.venv; bench/run runs this script with
that Python and never imports matplotlib itself.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

# The same data gives the same SVG bytes (no random ids, no date).
matplotlib.rcParams["svg.hashsalt"] = "shoal-bench"


def number(v, _pos=None):
    """A tick label without scientific notation: 0.5, 2, 120, 1,000."""
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def minor(v, _pos=None):
    """Minor tick labels on a log axis: only 2 and 5 times a power of ten,
    so that a curve within one decade still has numbers beside it."""
    mantissa = f"{v:e}"[0]
    return number(v) if mantissa in "25" else ""


def draw(spec, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, s in enumerate(spec["series"]):
        color = f"C{i}"
        x, med = s["x"], s["median"]
        err = [[m - lo for m, lo in zip(med, s["min"])], [hi - m for m, hi in zip(med, s["max"])]]
        ax.errorbar(x, med, yerr=err, marker="o", color=color, capsize=3, label=s["label"])
        if len(x) > 1:
            ref = [med[0] * xi / x[0] for xi in x] if spec["reference"] == "linear" else [med[0]] * len(x)
            ax.plot(x, ref, linestyle="--", linewidth=1, color=color, alpha=0.6)
    if any(len(s["x"]) > 1 for s in spec["series"]):
        what = spec.get("reference_label") or ("linear from each system's first point" if spec["reference"] == "linear"
                                               else "flat at each system's first point")
        ax.plot([], [], linestyle="--", linewidth=1, color="grey", label=f"dashed: {what}")
    if spec["log"]:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(number))
        ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    else:
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0, right=spec["xticks"][-1] * 1.08 if spec["xticks"] else None)
    ax.set_xticks(spec["xticks"])
    ax.set_xticklabels(spec["xticklabels"])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.set_title(spec["title"])
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    # The systems first, then the one entry that explains the dashed lines.
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("dashed: "))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="small")
    fig.tight_layout()
    fig.savefig(out, metadata={"Date": None} if out.endswith(".svg") else None)
    plt.close(fig)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    draw(spec, sys.argv[2] if len(sys.argv) == 3 else spec["out"])


if __name__ == "__main__":
    main()

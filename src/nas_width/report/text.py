"""The key numbers of an :class:`~nas_width.analysis.Analysis` in words: one list of rows that
the terminal, the HTML report and the dashboard note all show.

Only formatting happens here: every number comes from the analysis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nas_width._version import __version__
from nas_width.analysis import Analysis, RankStat
from nas_width.analysis.convergence import STILL_FALLING, TAIL
from nas_width.kinds import KINDS
from nas_width.report.data import StudyInfo

__all__ = [
    "KIND_LABELS",
    "key_numbers",
    "kind_label",
    "markdown_note",
    "plural",
    "terminal_lines",
]

#: The paper's names of the kinds registered at import (:func:`kind_label` also knows later ones).
KIND_LABELS = {name: spec.label for name, spec in KINDS.items()}

Row = tuple[str, str]


def plural(n: int, noun: str) -> str:
    """``1 trial``, ``2 trials``: the report reads as prose."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def kind_label(kind: str) -> str:
    """The paper's name of a mixing kind (the key itself for kinds not registered)."""
    spec = KINDS.get(kind)
    return spec.label if spec is not None else kind or "unknown"


def _num(value: float | None, spec: str = ".3g") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return format(value, spec)


def _rank(stat: RankStat, level: float) -> str:
    p = stat.p_increasing if stat.estimate >= 0 else stat.p_decreasing
    side = "increasing" if stat.estimate >= 0 else "decreasing"
    return (
        f"{_num(stat.estimate, '+.3f')} ({100 * level:g}% CI {_num(stat.ci_low, '+.3f')} to "
        f"{_num(stat.ci_high, '+.3f')}; one-sided permutation p ({side}) = {_num(p, '.3g')})"
    )


def _counted(a: Analysis, accuracy: float) -> str:
    """`` = 284/288 per trial`` where the validation size is known."""
    if a.val_samples is None:
        return ""
    return f" (= {round(accuracy * a.val_samples):,}/{a.val_samples:,} per trial)"


def _training_rows(a: Analysis) -> list[Row]:
    """The last training accuracy over the used trials, and the shapes still learning."""
    if a.train_accuracy_range is None and not a.unconverged:
        return []
    rows: list[Row] = []
    if a.train_accuracy_range is not None:
        lo, hi = a.train_accuracy_range
        rows.append(("training accuracy (last epoch)", f"{lo:.4f} to {hi:.4f}"))
    label = (
        f"not converged (training loss still falling > {STILL_FALLING:.0%} over the last "
        f"{TAIL:.0%} of epochs)"
    )
    shapes = a.n_shapes
    if not a.unconverged:
        rows.append((label, f"none of {shapes} shapes"))
        return rows
    listed = "; ".join(
        f"{u.shape} (trials {', '.join(map(str, u.trials))}: {-u.drop:+.1%}, train acc "
        f"{_num(u.train_accuracy, '.3f')})"
        for u in a.unconverged
    )
    rows.append((label, f"{len(a.unconverged)} of {shapes} shapes: {listed}"))
    return rows


def _grid_edges(a: Analysis) -> str:
    """A warning when most trials kept a rate at an end of the tuned grid: the best rate may
    lie beyond it (the artifact to rule out before reading a trend)."""
    grid = sorted(a.settings.get("lr_grid") or [])
    if len(grid) < 2:
        return ""
    counts = dict(a.lr_counts)
    total = sum(counts.values())
    notes = [
        f"{counts[edge]} of {total} at the grid's {word} rate {edge:g}"
        for edge, word in ((grid[0], "smallest"), (grid[-1], "largest"))
        if 2 * counts.get(edge, 0) > total
    ]
    return f"; {', '.join(notes)}: widen the grid" if notes else ""


def key_numbers(analysis: Analysis) -> list[Row]:
    """(label, value) rows: trials, width range, correlations, trends, theory, kinds."""
    a = analysis
    level = float(a.settings.get("level", 0.95))
    pct = f"{100 * level:g}%"
    c = a.counts
    rows: list[Row] = [
        ("trials used / pruned / failed / other",
         f"{c.used} / {c.pruned} / {c.failed} / {c.other}"),
    ]  # fmt: skip
    if a.m_range is not None:
        lo, hi = a.m_range
        rows.append(("width m = S*C", f"{lo:,} to {hi:,} (log spread {a.log_m_spread:.3g})"))
    if a.flops_range is not None:
        rows.append(("FLOPs per sample", f"{a.flops_range[0]:,} to {a.flops_range[1]:,}"))
    if a.correlation is None:
        rows.append(("rank correlation of m with accuracy", "n/a (fewer than 3 trials or one m)"))
    else:
        rows.append(("Spearman rho (m, accuracy)", _rank(a.correlation.spearman, level)))
        rows.append(("Kendall tau (m, accuracy)", _rank(a.correlation.kendall, level)))
    if a.params_correlation is not None:
        pc = a.params_correlation
        rows.append((
            "Spearman rho (stored parameters, accuracy)",
            f"{_num(pc.estimate, '+.3f')} ({pct} hierarchical bootstrap interval "
            f"{_num(pc.ci_low, '+.3f')} to {_num(pc.ci_high, '+.3f')}; by shape; descriptive, "
            "not in the test family): width or capacity",
        ))  # fmt: skip
    trend = a.trend
    if trend is not None and trend.isotonic is not None:
        iso = trend.isotonic
        way = "non-decreasing" if iso.non_decreasing else "non-increasing"
        rows.append((
            "isotonic fit of accuracy vs log m",
            f"{way}, rise {_num(iso.rise, '+.4f')} from narrowest to widest, R^2 {_num(iso.r2)}",
        ))  # fmt: skip
    if trend is not None and trend.quadratic is not None:
        q = trend.quadratic
        lo_ci, hi_ci = q.best_ratio_ci
        shape = "opens downward" if q.opens_downward else "opens upward (best at an end)"
        rows.append((
            "best S/C (quadratic in log(S/C))",
            f"{_num(q.best_ratio)} ({pct} interval {_num(lo_ci)} to {_num(hi_ci)}); "
            f"fit {shape}, R^2 {_num(q.r2)}, accuracy at best {_num(q.accuracy_at_best, '.4f')}",
        ))  # fmt: skip
    if trend is not None:
        t = trend.theory
        inside = {True: "yes", False: "no", None: "n/a"}[t.in_best_ratio_ci]
        S, C = t.nearest_shape
        rows.append((
            "theory: S = C",
            f"S/C = 1, m* = {t.m_star:,.0f} ({t.m_star_source}); nearest shape S={S}, C={C}; "
            f"1 inside the best S/C interval: {inside}",
        ))  # fmt: skip
        if trend.note:
            rows.append(("trend note", trend.note))
    split = "test" if a.primary.metric == "test_accuracy" else "validation"
    if a.lr_counts:
        chosen = ", ".join(f"{lr:g} ({n})" for lr, n in a.lr_counts)
        rows.append(("learning rate (trials)", chosen + _grid_edges(a)))
    if a.val_samples is not None and a.kinds.summaries:
        best = max(s.best_shape_mean for s in a.kinds.summaries)
        se = a.binomial_se(best)
        rows.append((
            f"{split} samples per trial",
            f"{a.val_samples:,} (one sample = {100 / a.val_samples:.2g} points); binomial SE "
            f"of one trial's accuracy at {best:.4f}: {_num(None if se is None else 100 * se)} "
            "points",
        ))  # fmt: skip
    rows += _training_rows(a)
    for s in a.kinds.summaries:
        rows.append((
            f"{kind_label(s.kind)} {split} accuracy",
            f"mean {s.mean:.4f} ± {_num(s.std, '.4f')} (sd; n={s.n}, {s.n_shapes} shapes, "
            f"{plural(s.n_seeds, 'seed')}); best shape {s.best_shape} "
            f"{s.best_shape_mean:.4f}"
            f"{_counted(a, s.best_shape_mean)}",
        ))  # fmt: skip
    for d in a.kinds.differences:
        how = f"paired over {d.n_pairs} shape-seed pairs" if d.method == "paired" else "unpaired"
        rows.append((
            f"{kind_label(d.a)} - {kind_label(d.b)}",
            f"{d.difference:+.4f} ({pct} CI {_num(d.ci_low, '+.4f')} to "
            f"{_num(d.ci_high, '+.4f')}; {how})",
        ))  # fmt: skip
    return rows


def test_rows(analysis: Analysis) -> list[Row]:
    """(test, result) rows: the primary test first, then the secondaries with Holm's p."""
    pct = f"{100 * float(analysis.settings.get('level', 0.95)):g}%"
    rows: list[Row] = []
    for t in analysis.tests:
        which = "primary" if t.primary else f"secondary, Holm p = {_num(t.p_holm, '.3g')}"
        rows.append((
            f"{t.name} ({which})",
            f"{_num(t.estimate, '+.3f')} over {plural(t.n_shapes, 'shape')} "
            f"({plural(t.n_trials, 'trial')}); "
            f"two-sided permutation p = {_num(t.p, '.3g')}; {pct} hierarchical bootstrap "
            f"interval {_num(t.ci_low, '+.3f')} to {_num(t.ci_high, '+.3f')}",
        ))  # fmt: skip
    return rows


def primary_line(analysis: Analysis, declared: bool) -> str:
    """What the primary test is, and whether the study named it before its run."""
    how = "named by the study before its run" if declared else "the default; the study names none"
    return f"primary test ({how}): {analysis.primary.describe()}"


def terminal_lines(
    info: StudyInfo,
    analysis: Analysis,
    per_kind: Mapping[str, Analysis] | None = None,
    pooled: Analysis | None = None,
) -> list[str]:
    """What ``nas-width report`` prints before the report's path: the primary test and its
    verdict (``analysis``), the family of tests, then the key numbers over every kind
    (``pooled``, when the primary test covers one kind)."""
    lines = [
        f"study {info.name!r}: budget {info.budget}, data set {info.dataset}, "
        f"space {info.space}, {plural(info.n_trials, 'trial')}",
        primary_line(analysis, info.primary_declared),
        f"verdict: {analysis.verdict.outcome}",
        f"  {analysis.verdict.text}",
        f"  criterion: {analysis.verdict.criterion}",
    ]
    tests = test_rows(analysis)
    if tests:
        lines.append("tests (the primary first; the secondaries Holm-corrected):")
        width = max(len(label) for label, _ in tests)
        lines += [f"  {label:<{width}}  {value}" for label, value in tests]
    rows = key_numbers(pooled or analysis)
    lines.append("key numbers (every kind):" if pooled is not None else "key numbers:")
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    for kind, sub in (per_kind or {}).items():
        lines.append(f"verdict for {kind_label(kind)} alone: {sub.verdict.outcome}")
        lines.append(f"  {sub.verdict.text}")
    return lines


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_note(
    info: StudyInfo,
    analysis: Analysis,
    figure_titles: Sequence[str],
    per_kind: Mapping[str, Analysis] | None = None,
    report_path: str | None = None,
    pooled: Analysis | None = None,
) -> str:
    """The study note for optuna-dashboard: the primary test and its verdict, the tests, key
    numbers (over every kind: ``pooled``), figures, excluded trials."""
    v = analysis.verdict
    every = pooled or analysis
    lines = [
        f"## nas-width report: {info.name}",
        "",
        f"Budget **{info.budget}**, data set **{info.dataset}**, space **{info.space}**, "
        f"{plural(info.n_trials, 'trial')}.",
        "",
        f"*{_md_cell(primary_line(analysis, info.primary_declared))}*",
        "",
        f"### Verdict: {v.outcome}",
        "",
        v.text,
        "",
        f"*Criterion:* {v.criterion}",
        "",
        "| test | result |",
        "|---|---|",
        *(f"| {_md_cell(k)} | {_md_cell(val)} |" for k, val in test_rows(analysis)),
        "",
        "| quantity | value |",
        "|---|---|",
        *(f"| {_md_cell(k)} | {_md_cell(val)} |" for k, val in key_numbers(every)),
    ]
    if per_kind:
        lines += ["", "### Each mixing kind alone", ""]
        lines += [f"- **{kind_label(k)}**: {sub.verdict.text}" for k, sub in per_kind.items()]
    if figure_titles:
        lines += ["", "### Figures (saved with this study)", ""]
        lines += [f"- {title}" for title in figure_titles]
    lines += ["", f"### Excluded trials ({len(every.excluded)})", ""]
    if every.excluded:
        lines += [f"- trial {e.number} ({e.state}): {e.reason}" for e in every.excluded]
    else:
        lines.append("none")
    where = f"; HTML report `{report_path}`" if report_path else ""
    lines += ["", f"*Generated by nas-width {__version__}{where}.*", ""]
    return "\n".join(lines)

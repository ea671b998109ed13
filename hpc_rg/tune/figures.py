"""Figures of a search over training settings (`hpc-rg tune`), written to <run>/figures/ so that
`hpc-rg report` includes them (PNG at 150 dpi, PDF beside each):
  tune_<model>_history     the validation metric per trial (complete: dots; pruned: crosses at their
                           last report) and the best so far;
  tune_<model>_importance  how much each searched key explains of the metric (Optuna's PED-ANOVA
                           importance over the complete trials; fANOVA would need scikit-learn);
  tune_<model>_slices      the metric against each searched key (log axis for log ranges).
Each `plot_*(study, tspec, model, ax=None)` draws into the given Axes (`plot_slices`: one per searched key)
and returns it, or into a new figure it returns; `write_figures` saves them all.
"""
from __future__ import annotations

from pathlib import Path

from hpc_rg.reduce.figures import _axes_list, legend, new_figure, save

__all__ = ["plot_history", "plot_importance", "plot_slices", "write_figures"]


def _finished(study):
    done, pruned = [], []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state.name == "COMPLETE":
            done.append(t)
        elif t.state.name == "PRUNED" and t.intermediate_values:
            pruned.append(t)
    return done, pruned


def _last(t):
    return t.intermediate_values[max(t.intermediate_values)]


def _metric_label(tspec) -> str:
    # the metric is whatever the trainer logs (a loss, an accuracy): its unit is that of the logged number
    return f"{tspec.metric} (as logged)"


def _new_axes(n: int, size, pyplot: bool = True):
    axes = new_figure((size[0] * n, size[1]), pyplot).subplots(1, n, squeeze=False)
    return axes[0, 0] if n == 1 else axes[0]


def plot_history(study, tspec, model: str, ax=None):
    """The metric per trial and the best so far."""
    ax = _new_axes(1, (6, 4)) if ax is None else ax
    done, pruned = _finished(study)
    better = max if tspec.goal == "maximize" else min
    if pruned:
        ax.plot([t.number for t in pruned], [_last(t) for t in pruned], "x", color="0.6", label="pruned (last report)")
    if done:
        ax.plot([t.number for t in done], [t.value for t in done], "o", ms=4, label="complete")
        best, run = [], None
        for t in done:
            run = t.value if run is None else better(run, t.value)
            best.append(run)
        ax.step([t.number for t in done], best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial number (count)")
    ax.set_ylabel(_metric_label(tspec))
    ax.set_title(f"tune.{model}: {tspec.metric} per trial ({tspec.goal})")
    legend(ax, fontsize=8)
    return ax


def _importances(study, tspec, done) -> dict:
    keys = [e.key for e in tspec.space]
    if len(done) < 2 or len(keys) < 2:
        return {}
    try:
        import warnings

        import optuna
        from optuna.importance import PedAnovaImportanceEvaluator
        with warnings.catch_warnings():   # "importances will be equal" when the trials tie: the bars say so
            warnings.simplefilter("ignore", UserWarning)
            return optuna.importance.get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    except (ValueError, RuntimeError, ZeroDivisionError):   # too few distinct trials to compare
        return {}


def plot_importance(study, tspec, model: str, ax=None):
    """PED-ANOVA importance of each searched key (or a sentence saying why there is none)."""
    n_keys = max(len(tspec.space), 1)
    ax = _new_axes(1, (6, 1.4 + 0.4 * n_keys)) if ax is None else ax
    importances = _importances(study, tspec, _finished(study)[0])
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[k] for k in names], label="PED-ANOVA importance")
        ax.set_xlabel("importance (fraction of the metric's variation, dimensionless)")
        ax.set_ylabel("searched key")
    else:
        ax.text(0.5, 0.5, "not enough complete trials (or one key) to rank the keys", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(f"tune.{model}: parameter importances")
    return ax


def plot_slices(study, tspec, model: str, ax=None):
    """The metric against each searched key; `ax`: one Axes per key of the search space."""
    keys = list(tspec.space)
    if ax is None:
        ax = _new_axes(len(keys), (3.2, 3.2))
    axes = _axes_list(ax)
    if len(axes) != len(keys):
        raise ValueError(f"{len(axes)} axes given for {len(keys)} searched keys ({[e.key for e in keys]})")
    done, pruned = _finished(study)
    for a, e in zip(axes, keys):
        for trials, style, colour, what in ((pruned, "x", "0.6", "pruned (last report)"), (done, "o", "C0", "complete")):
            xs = [t.params[e.key] for t in trials if e.key in t.params]
            ys = [(t.value if t.state.name == "COMPLETE" else _last(t)) for t in trials if e.key in t.params]
            if e.form == "choice":
                xs = [list(e.choices).index(x) for x in xs]
            a.plot(xs, ys, style, ms=4, color=colour, label=what if xs else None)
        if e.form == "choice":
            a.set_xticks(range(len(e.choices)), [str(c) for c in e.choices])
        if e.form == "log":
            a.set_xscale("log")
        a.set_xlabel(f"{e.key} ({'choice' if e.form == 'choice' else 'as in the job file'})")
        a.set_ylabel(_metric_label(tspec))
        a.set_title(f"{tspec.metric} vs {e.key}", fontsize=9)
    legend(axes[0], fontsize=7)
    return ax


def write_figures(study, tspec, folder: Path, model: str) -> list[Path]:
    """The three figures of `tune.<model>` as PNG (150 dpi) + PDF in `folder`; returns the PNG paths."""
    folder = Path(folder)
    written = []
    n_keys = max(len(tspec.space), 1)
    for name, fn, n, size in (("history", plot_history, 1, (6, 4)),
                              ("importance", plot_importance, 1, (6, 1.4 + 0.4 * n_keys)),
                              ("slices", plot_slices, len(tspec.space), (3.2, 3.2))):
        ax = fn(study, tspec, model, ax=_new_axes(n, size, pyplot=False))
        fig = _axes_list(ax)[0].figure
        fig.tight_layout()
        written.append(save(fig, folder, f"tune_{model}_{name}"))
    return written

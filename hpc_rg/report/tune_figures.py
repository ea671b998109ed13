"""Figures of a search over training settings (`hpc-rg tune`), written to <run>/figures/ so that
`hpc-rg report` includes them:
  tune_<model>_history.png     the validation metric per trial (complete: dots; pruned: crosses at their
                               last report) and the best so far;
  tune_<model>_importance.png  how much each searched key explains of the metric (Optuna's PED-ANOVA
                               importance over the complete trials; fANOVA would need scikit-learn);
  tune_<model>_slices.png      the metric against each searched key (log axis for log ranges).
"""
from __future__ import annotations

from pathlib import Path


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


def write_figures(study, tspec, folder: Path, model: str) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done, pruned = _finished(study)
    written = []
    better = max if tspec.goal == "maximize" else min

    # optimisation history
    fig, ax = plt.subplots(figsize=(6, 4))
    if pruned:
        ax.plot([t.number for t in pruned], [_last(t) for t in pruned], "x", color="0.6", label="pruned (last report)")
    if done:
        ax.plot([t.number for t in done], [t.value for t in done], "o", ms=4, label="complete")
        best, run = [], None
        for t in done:
            run = t.value if run is None else better(run, t.value)
            best.append(run)
        ax.step([t.number for t in done], best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(tspec.metric)
    ax.set_title(f"tune.{model}: optimisation history ({tspec.goal})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, folder / f"tune_{model}_history.png"))

    # parameter importances
    keys = [e.key for e in tspec.space]
    importances = {}
    if len(done) >= 2 and len(keys) > 1:
        try:
            import optuna
            from optuna.importance import PedAnovaImportanceEvaluator
            import warnings
            with warnings.catch_warnings():   # "importances will be equal" when the trials tie: the bars say so
                warnings.simplefilter("ignore", UserWarning)
                importances = optuna.importance.get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
        except (ValueError, RuntimeError, ZeroDivisionError):   # too few distinct trials to compare
            importances = {}
    fig, ax = plt.subplots(figsize=(6, 1.4 + 0.4 * max(len(keys), 1)))
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[k] for k in names])
        ax.set_xlabel("importance (PED-ANOVA)")
    else:
        ax.text(0.5, 0.5, "not enough complete trials (or one key) to rank the keys", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(f"tune.{model}: parameter importances")
    fig.tight_layout()
    written.append(_save(fig, folder / f"tune_{model}_importance.png"))

    # metric vs each parameter
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2), squeeze=False)
    for ax, e in zip(axes[0], tspec.space):
        for trials, style, colour in ((pruned, "x", "0.6"), (done, "o", "C0")):
            xs = [t.params[e.key] for t in trials if e.key in t.params]
            ys = [(t.value if t.state.name == "COMPLETE" else _last(t)) for t in trials if e.key in t.params]
            if e.form == "choice":
                xs = [list(e.choices).index(x) for x in xs]
            ax.plot(xs, ys, style, ms=4, color=colour)
        if e.form == "choice":
            ax.set_xticks(range(len(e.choices)), [str(c) for c in e.choices])
        if e.form == "log":
            ax.set_xscale("log")
        ax.set_xlabel(e.key)
    axes[0][0].set_ylabel(tspec.metric)
    fig.suptitle(f"tune.{model}: {tspec.metric} vs each key (dots complete, crosses pruned)", fontsize=9)
    fig.tight_layout()
    written.append(_save(fig, folder / f"tune_{model}_slices.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

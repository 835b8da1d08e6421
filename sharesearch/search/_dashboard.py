"""Annotations that make a study read well in optuna-dashboard (when it is installed)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from ._records import TrialRecord

__all__ = ["annotate_for_dashboard"]


def annotate_for_dashboard(study: optuna.Study, top: int = 3) -> bool:
    """Save the best trials' topology figures and notes for optuna-dashboard.

    With ``optuna-dashboard`` installed, the ``top`` best trials' topology
    figures are saved as the study's graph objects and each gets a Markdown
    note with its topology and per-task validation Δ. Returns whether the
    annotations were written (``False`` without optuna-dashboard). The
    objective names are set when the study is made.
    """
    try:
        import optuna_dashboard
    except ImportError:
        return False
    from ..figure import topology_figure

    done = [(t, TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    done = sorted([(t, r) for t, r in done if r.trained], key=lambda tr: -tr[0].values[0])
    for t, rec in done[:top]:
        graph = rec.sharing_graph()
        deltas = rec.val_deltas or {}
        fig = topology_figure(graph, deltas=deltas, title=f"trial {t.number}: validation Δm {t.values[0]:+.2%}")
        optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id=f"topology-trial-{t.number}")
        rows = "\n".join(f"| {name} | {d:+.2%} |" for name, d in deltas.items())
        body = (f"## Trial {t.number}: validation Δm {t.values[0]:+.2%}\n\n"
                f"```\n{graph.describe()}\n```\n\n| task | validation Δ |\n|---|---|\n{rows}\n\n"
                f"Its topology figure is the study's graph object `topology-trial-{t.number}`.")
        optuna_dashboard.save_note(optuna.trial.Trial(study, t._trial_id), body)
    return True

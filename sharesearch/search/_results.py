"""Reading a study back: the JSON-ready results dict the report consumes (schema in ``report.py``)."""

from __future__ import annotations

import logging
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import optuna
from optuna.trial import TrialState

from ..affinity import Affinity, affinity_linkage
from ..verdict import recommend
from ._records import AffinityRecord, BaselineSet, StudyContext, TrialRecord, read_verdict
from ._storage import is_shareable, load_study, storage_url

__all__ = ["load_results", "study_results"]

log = logging.getLogger("sharesearch")

#: packages whose versions the reproducibility section lists
_VERSIONED = ("sharesearch", "torch", "optuna", "networkx", "numpy", "scipy", "pandas", "plotly")


def load_results(storage: str | optuna.storages.BaseStorage, study_name: str) -> dict[str, Any]:
    """Read ``study_name`` from ``storage`` (a URL or an open storage) into the report's results dict."""
    return study_results(load_study(storage, study_name))


def _trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    rec = TrialRecord.from_trial(t)
    return {
        "number": t.number, "state": t.state.name, "values": list(t.values) if t.values else None,
        "params": dict(t.params), "graph": rec.graph, "graph_key": rec.graph_key, "n_params": rec.n_params,
        "flops": rec.flops, "val_metrics": rec.val_metrics, "val_deltas": rec.val_deltas,
        "reference": rec.reference, "affinity_tree": rec.affinity_tree, "tuned_from": rec.tuned_from,
        "status": rec.status, "train": rec.train,
        "duration_s": rec.duration_s or (t.duration.total_seconds() if t.duration else None),
        "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
    }


def _importances(study: optuna.Study, n_complete: int, params: list[str] | None = None) -> dict[str, float]:
    """Optuna's parameter importances for the first objective (empty with fewer than 4 complete trials).

    ``params`` restricts them to those parameters (importances then sum to 1 among them).
    """
    if n_complete < 4:
        return {}
    try:
        with warnings.catch_warnings():  # "few trials in a regime" notes: the report says how many trials
            warnings.simplefilter("ignore")
            return {k: float(v) for k, v in optuna.importance.get_param_importances(
                study, params=params, target=(lambda t: t.values[0]) if len(study.directions) > 1 else None).items()}
    except (RuntimeError, ValueError) as e:  # too few distinct values, a single parameter...
        log.info("parameter importances unavailable: %s", e)
        return {}


def study_results(study: optuna.Study) -> dict[str, Any]:
    """The JSON-ready results dict of an open study (what :func:`load_results` returns)."""
    ctx = StudyContext.from_study(study)
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    baselines = BaselineSet.from_study(study)
    verdict = read_verdict(study)
    storage = study._storage
    return {
        "study": study.study_name, "storage": storage_url(storage) if is_shareable(storage) else "",
        "directions": [d.name.lower() for d in study.directions],
        "objective_names": ctx.objective_names,
        "tasks": list(ctx.data.tasks),
        "data": {"name": ctx.data.name, "fingerprint": ctx.data.fingerprint,
                 "meta": {"source": ctx.data.source, "split_seed": ctx.data.split_seed}},
        "space": {"path": ctx.space_source, "text": ctx.space_text},
        "train_config": ctx.train.to_dict(), "search_config": ctx.search.to_dict(),
        "trials": [_trial_row(t) for t in study.get_trials(deepcopy=False)],
        "best_trials": [t.number for t in study.best_trials] if n_complete else [],
        "importances": _importances(study, n_complete),
        "baselines": {t: {"val_metric": b.val_metric, "config": b.config, "width_scale": b.width_scale}
                      for t, b in (baselines.tasks.items() if baselines else ())},
        "verdict": verdict,
        "recommendation": _recommendation(verdict),
        "affinity": _affinity(study, n_complete),
        "transfer": _transfer(study),
        "reproducibility": _reproducibility(ctx, verdict),
    }


def _transfer(study: optuna.Study) -> dict[str, Any] | None:
    """The few-shot transfer runs stored in the study (:func:`~._transfer_study.run_transfer`), or None."""
    from ._transfer_study import read_transfer  # imported here: _transfer_study imports study_results

    return read_transfer(study)


def _recommendation(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    """The verdict's stored recommendation; for a verdict stored before recommendations, computed from its arms
    (no model saved then); None without a verdict."""
    if not verdict or not verdict.get("candidates"):
        return None
    return verdict.get("recommendation") or recommend(verdict["candidates"]).to_dict()


def _affinity(study: optuna.Study, n_complete: int) -> dict[str, Any] | None:
    """The stored affinity (:meth:`AffinityRecord.to_attr`), its dendrogram and the share parameters' importances.

    ``dendrogram`` holds scipy's drawing coordinates (``icoord``, ``dcoord``,
    the leaf order ``leaves``); ``share_importances`` Optuna's importances of
    the task-tree parameters alone (``share[a~b]`` or ``trunk[t]``), so they
    read beside the affinity of the same pairs.
    """
    from scipy.cluster.hierarchy import dendrogram

    rec = AffinityRecord.from_study(study)
    if rec is None:
        return None
    out = rec.to_attr()
    aff: Affinity = rec.affinity
    if len(aff.tasks) >= 2:
        dn = dendrogram(affinity_linkage(aff, rec.kind), no_plot=True, labels=list(aff.tasks))
        out["dendrogram"] = {"icoord": dn["icoord"], "dcoord": dn["dcoord"], "leaves": list(dn["ivl"])}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = sorted({k for t in complete for k in t.params if k.startswith(("share[", "trunk["))})
    shared = [k for k in names if all(k in t.params for t in complete)]
    out["share_importances"] = _importances(study, n_complete, shared) if shared else {}
    return out


def _reproducibility(ctx: StudyContext, verdict: dict[str, Any] | None) -> dict[str, Any]:
    versions = {}
    for pkg in _VERSIONED:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "versions": versions,
        "seeds": {"search": ctx.search.seed, "split": ctx.data.split_seed,
                  "verdict": (verdict or {}).get("protocol", {}).get("seeds", [])},
        "data_fingerprint": ctx.data.fingerprint,
        "selection_protocol": _selection_protocol(verdict),
        "search_space_file": ctx.space_text,
    }


def _selection_protocol(verdict: dict[str, Any] | None) -> str:
    """The selection protocol in words, with the number of looks at the test split the verdicts recorded."""
    text = "models selected on the validation split; baselines tuned on validation"
    if not verdict:
        return text + "; the test split not used yet (no verdict)"
    proto = verdict.get("protocol") or {}
    looks = int(proto.get("test_looks") or 1)
    used = "used once, by the verdict" if looks == 1 else f"looked at {looks} times (verdicts recomputed)"
    return (f"{text}; the test split {used}, after the search; every arm and the control trained with the same "
            f"seeds and budget; {proto.get('seeds_why', '')}").rstrip("; ")

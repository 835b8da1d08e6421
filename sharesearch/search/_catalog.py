"""Finding a study by what a person knows of it: its run folder, its name or the start of its name.

A local study lives in ``<runs>/<study>/`` (``study.db``, or ``journal.log``
when several local workers wrote at once) beside its reports. This module
lists those studies (:func:`list_studies`), resolves a folder, a name or a
unique prefix to a storage URL and a study name (:func:`resolve_study`),
keeps every verdict's report beside the earlier ones
(:func:`report_dir`: the run folder, then ``verdict-2``, ...), and picks the
architecture a study recommends (:func:`chosen_architecture`).

Example
-------
>>> import tempfile
>>> runs = Path(tempfile.mkdtemp())
>>> for name in ("planted-a1", "planted-b2", "null-c3"):
...     _ = optuna.create_study(study_name=name, storage=open_storage(None, name, runs))  # runs/<name>/study.db
>>> [f.name for f in run_folders(runs)]
['null-c3', 'planted-a1', 'planted-b2']
>>> resolve_study(runs, "null").study_name
'null-c3'
>>> resolve_study(runs, "planted")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
sharesearch.search._config.SearchError: study: 'planted' matches 2 studies under ...: planted-a1, planted-b2; ...
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ._baselines import baseline_study_name
from ._config import SearchError
from ._records import StudyContext, read_verdict
from ._storage import load_study, open_storage, study_names
from ._study import default_study_name, finished_count

__all__ = ["StudyRef", "StudySummary", "Chosen", "run_folders", "resolve_study", "default_name", "list_studies",
           "summarize_study", "format_studies", "recommendation_of", "new_report_dir", "latest_report_dir", "report_dir",
           "chosen_architecture"]

#: the files that make a folder under the runs folder a study's run folder
STORAGE_FILES = ("journal.log", "study.db")
#: the report file whose ``verdict`` says a folder already holds a verdict's report
REPORT_JSON = "report.json"
#: a recomputed verdict's report folder inside the run folder: verdict-2, verdict-3, ...
VERDICT_DIR = "verdict-"


@dataclass(frozen=True)
class StudyRef:
    """Where one study is."""

    storage_url: str  # an Optuna storage URL (sqlite:///..., journal:..., postgresql://...)
    study_name: str  # the study's name in that storage
    run_dir: Path  # the folder its reports go to (the run folder of a local study)


@dataclass(frozen=True)
class StudySummary:
    """One line of ``sharesearch studies``."""

    name: str  # the study's name
    data: str  # the data's name (a built-in source or the data-spec's name)
    space: str  # the search space's name
    done: int  # trials that count towards the target (complete, pruned, failed)
    target: int  # the study's target number of trials
    pruned: int  # of ``done``, trials stopped early by the pruner
    best_delta_m: float | None  # best validation Δm (a fraction; positive beats independent), None before any
    best_trial: int | None  # the trial that reached it
    verdict: bool  # whether a verdict (retraining with seeds, tested once) is stored
    recommendation: str | None  # the verdict's one-line recommendation, when it names one
    ref: StudyRef  # where the study is


@dataclass(frozen=True)
class Chosen:
    """The architecture ``show`` and ``export`` draw or write for a study."""

    graph: dict[str, Any]  # the sharing graph (SharingGraph.to_dict)
    deltas: dict[str, float] | None  # each task's Δ (fraction) on ``delta_split``
    delta_split: str  # "test" (the verdict's recommendation) or "validation" (a trial)
    trial: int | None  # the trial it came from, when it is one
    note: str  # one line saying what was chosen and why


def run_folders(runs_dir: str | Path) -> list[Path]:
    """The folders under ``runs_dir`` that hold a study's storage file, by name (none when it does not exist)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _storage_file(p)), key=lambda p: p.name)


def _storage_file(folder: Path) -> Path | None:
    """The folder's storage file, the journal first (what :func:`open_storage` reuses)."""
    return next((folder / f for f in STORAGE_FILES if (folder / f).is_file()), None)


def _folder_url(folder: Path) -> str:
    path = _storage_file(folder)
    if path is None:
        raise SearchError(f"study: folder {str(folder)!r} holds no study ({' or '.join(STORAGE_FILES)})")
    return f"journal:{path}" if path.name == "journal.log" else f"sqlite:///{path}"


def _searches(storage: str | optuna.storages.BaseStorage) -> list[str]:
    """The studies of a storage, less the baselines' companion studies."""
    names = study_names(storage)
    companions = {baseline_study_name(n) for n in names}
    return [n for n in names if n not in companions]


def _pick(ref: str, names: list[str], where: str) -> str:
    """``ref`` itself, else the one name it starts; :class:`SearchError` naming the matches or the choices."""
    if ref in names:
        return ref
    matches = [n for n in names if n.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SearchError(f"study: {ref!r} matches {len(matches)} studies {where}: {', '.join(matches)}; "
                          "give more of the name")
    raise SearchError(f"study: no study {ref!r} {where}; studies: {', '.join(names) or 'none'}")


def resolve_study(runs_dir: str | Path, ref: str | None = None, storage: str | None = None) -> StudyRef:
    """The study ``ref`` names: a run folder, a study name, or the unique start of one.

    Parameters
    ----------
    runs_dir : str or Path
        The runs folder: names and prefixes are looked up among its run folders.
    ref : str, optional
        A run folder (``runs/planted-tiny-3f2a1b``), a study name or a prefix
        of exactly one. ``None``: the storage's only study.
    storage : str, optional
        A storage URL: ``ref`` is then looked up among its studies (a database
        may hold many); the reports go to ``runs_dir/<study>``. A name the
        storage does not hold (yet) is returned as it is.

    Raises
    ------
    SearchError
        No such study, a prefix that matches several (the line lists them),
        or no ``ref`` where there is more than one study.
    """
    if storage is not None:
        names = _searches(open_storage(storage, must_exist=True))
        if ref is None and len(names) != 1:
            raise SearchError(f"study: give the study's name; studies in {storage!r}: {', '.join(names) or 'none'}")
        known = ref is None or ref in names or not any(n.startswith(ref) for n in names)
        name = names[0] if ref is None else ref if known else _pick(ref, names, f"in {storage!r}")
        return StudyRef(storage, name, Path(runs_dir) / name)  # a name it lacks: loading it says so (or waits)
    folders = run_folders(runs_dir)
    if ref is None:
        raise SearchError(f"study: give a run folder, a study name or its first letters; studies under "
                          f"{str(runs_dir)!r}: {', '.join(f.name for f in folders) or 'none'}")
    path = Path(ref)
    if path.is_dir() and _storage_file(path):
        return _in_folder(path)
    if len(path.parts) > 1:  # a path: the folder itself, or the unique run folder of its parent it starts
        if path.is_dir() or not path.parent.is_dir():
            raise SearchError(f"study: {ref!r} is not a run folder (no {' or '.join(STORAGE_FILES)} in it)"
                              if path.is_dir() else f"study: no such run folder {ref!r}")
        folders, runs_dir = run_folders(path.parent), path.parent
    chosen = _pick(path.name, [f.name for f in folders], f"under {str(runs_dir)!r}")
    return _in_folder(Path(runs_dir) / chosen)


def _in_folder(folder: Path) -> StudyRef:
    """The study of a run folder: the one named like the folder, else the folder's only study."""
    url = _folder_url(folder)
    names = _searches(url)
    if folder.name in names or len(names) == 1:
        return StudyRef(url, folder.name if folder.name in names else names[0], folder)
    if not names:
        raise SearchError(f"study: folder {str(folder)!r} holds no study yet")
    raise SearchError(f"study: folder {str(folder)!r} holds {len(names)} studies ({', '.join(names)}); "
                      "give its storage and the study's name")


def default_name(data, space, runs_dir: str | Path, storage: str | None = None) -> str:
    """The default study name for ``data`` and ``space`` (:func:`default_study_name`), keeping a study's old
    hashed name when it is already there (in ``storage``, else under ``runs_dir``)."""
    if storage is None:
        existing = [p.name for p in Path(runs_dir).iterdir()] if Path(runs_dir).is_dir() else []
    else:
        try:
            existing = study_names(storage)
        except SearchError:  # a storage file not made yet holds no study
            existing = []
    return default_study_name(data, space, existing)


def recommendation_of(study: optuna.Study) -> dict[str, Any] | None:
    """The verdict's recommendation (``results["recommendation"]``), or ``None`` without a verdict or one."""
    verdict = read_verdict(study)
    if not verdict:
        return None
    if isinstance(verdict.get("recommendation"), dict):
        return verdict["recommendation"]
    from ._results import study_results  # the report's own reading, where the recommendation is built

    rec = study_results(study).get("recommendation")
    return rec if isinstance(rec, dict) else None


def summarize_study(ref: StudyRef) -> StudySummary:
    """What ``sharesearch studies`` prints about one study."""
    study = load_study(ref.storage_url, ref.study_name)
    ctx = StudyContext.from_study(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: t.values[0], default=None)
    rec = recommendation_of(study)
    return StudySummary(
        name=ref.study_name, data=ctx.data.name, space=ctx.space.get("name") or ctx.space_source,
        done=finished_count(study),
        target=ctx.search.n_trials, pruned=len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
        best_delta_m=None if best is None else float(best.values[0]), best_trial=None if best is None else best.number,
        verdict=read_verdict(study) is not None, recommendation=(rec or {}).get("overall"), ref=ref)


def list_studies(runs_dir: str | Path) -> list[StudySummary]:
    """One :class:`StudySummary` per study under ``runs_dir``, by name."""
    out = []
    for folder in run_folders(runs_dir):
        url = _folder_url(folder)
        out += [summarize_study(StudyRef(url, name, folder)) for name in _searches(url)]
    return out


def format_studies(summaries: list[StudySummary]) -> str:
    """The table ``sharesearch studies`` prints, and each recommendation on its own line below it.

    >>> ref = StudyRef("sqlite:///runs/a/study.db", "a", Path("runs/a"))
    >>> print(format_studies([StudySummary("a", "synthetic-planted", "tiny", 5, 24, 2, 0.152, 3, False, None, ref)]))
    study  data               space  trials           best Δm (val)  verdict  storage
    a      synthetic-planted  tiny   5/24 (2 pruned)  +15.20% (#3)   no       sqlite:///runs/a/study.db
    """
    from .. import fmt

    header = ["study", "data", "space", "trials", "best Δm (val)", "verdict", "storage"]
    rows = [[s.name, s.data, s.space, f"{s.done}/{s.target} ({s.pruned} pruned)",
             "-" if s.best_delta_m is None or not math.isfinite(s.best_delta_m)
             else f"{fmt.delta(s.best_delta_m)} (#{s.best_trial})", "yes" if s.verdict else "no", s.ref.storage_url]
            for s in summaries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines += [f"{s.name}: {s.recommendation}" for s in summaries if s.recommendation]
    return "\n".join(lines)


def _report_verdict(folder: Path) -> Any:
    """The verdict of ``folder``'s report: ``None`` without one, ``...`` when report.json cannot be read."""
    path = folder / REPORT_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("verdict")
    except (OSError, ValueError, AttributeError):
        return ...


def _holds_verdict(folder: Path) -> bool:
    """Whether ``folder``'s report is a verdict's (a report.json that cannot be read counts: never overwrite it)."""
    return _report_verdict(folder) is not None


def _stamp(verdict: Any) -> tuple | None:
    """What tells one verdict from another: when it was computed and its seeds (``None``: not known)."""
    if not isinstance(verdict, dict) or not verdict.get("computed_at"):
        return None
    return verdict["computed_at"], (verdict.get("protocol") or {}).get("seeds")


def report_dir(base: str | Path, verdict: dict[str, Any] | None) -> Path:
    """The folder for the report of a study whose verdict is ``verdict``: the folder whose report holds this
    same verdict (it is rewritten), else a new one (:func:`new_report_dir`); a verdict recorded without a
    time stamp goes to the latest folder, as before verdicts were kept apart.

    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> v1, v2 = {"computed_at": "2025-01-01T10:00:00"}, {"computed_at": "2025-01-01T11:00:00"}
    >>> report_dir(base, v1) == base
    True
    >>> _ = (base / REPORT_JSON).write_text(json.dumps({"verdict": v1}))
    >>> report_dir(base, v1) == base, report_dir(base, v2).name
    (True, 'verdict-2')
    """
    base = Path(base)
    stamp = _stamp(verdict)
    if verdict is not None and stamp is None:
        return latest_report_dir(base)
    found = _verdict_dirs(base)
    for folder in [*(found[n] for n in sorted(found, reverse=True)), base]:  # the newest first
        if stamp is not None and _stamp(_report_verdict(folder)) == stamp:
            return folder
    return new_report_dir(base)


def _verdict_dirs(base: Path) -> dict[int, Path]:
    found = {}
    for p in base.glob(f"{VERDICT_DIR}*") if base.is_dir() else ():
        number = p.name[len(VERDICT_DIR):]
        if p.is_dir() and number.isdigit():
            found[int(number)] = p
    return found


def new_report_dir(base: str | Path) -> Path:
    """The folder for a new verdict's report: ``base`` while it holds no verdict's report, else the first
    free ``base/verdict-N`` (N >= 2). A verdict is never written over an earlier one.

    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> new_report_dir(base) == base
    True
    >>> _ = (base / REPORT_JSON).write_text('{"verdict": {"arms": []}}')
    >>> new_report_dir(base).name, latest_report_dir(base) == base
    ('verdict-2', True)
    """
    base = Path(base)
    if not _holds_verdict(base) and not _verdict_dirs(base):
        return base
    number = max([1, *_verdict_dirs(base)]) + 1
    return base / f"{VERDICT_DIR}{number}"


def latest_report_dir(base: str | Path) -> Path:
    """The folder of the latest verdict's report: the highest ``base/verdict-N``, else ``base``."""
    found = _verdict_dirs(Path(base))
    return found[max(found)] if found else Path(base)


def chosen_architecture(results: dict[str, Any], trial: int | None = None) -> Chosen:
    """The architecture to draw or export: trial ``trial`` (validation Δ), else the verdict's recommendation
    (test Δ), else -- before a verdict -- the best trial (validation Δ), saying so in ``note``.

    ``results`` is :func:`sharesearch.search.load_results`'s dict.
    """
    trials = {t["number"]: t for t in results["trials"] if t.get("graph")}
    if trial is not None:
        if trial not in trials:
            raise SearchError(f"trial: no trained trial {trial!r} in study {results['study']!r}; "
                              f"trained: {', '.join(map(str, sorted(trials))) or 'none'}")
        return Chosen(trials[trial]["graph"], trials[trial].get("val_deltas"), "validation", trial,
                      f"trial {trial}: Δ on the validation split")
    rec = results.get("recommendation") or {}
    if rec:
        number = rec.get("trial")
        graph = rec.get("graph") or (trials.get(number) or {}).get("graph") or next(
            (t["graph"] for t in trials.values() if t.get("reference") == (rec.get("arm") or "independent")), None)
        if graph is not None:
            return Chosen(graph, rec.get("test_deltas"), "test", number,
                          f"recommended: {rec.get('overall') or rec.get('arm')} (Δ on the test split)")
    best = next((n for n in results.get("best_trials") or [] if n in trials), None)
    if best is None:
        raise SearchError(f"study: {results['study']!r} has no trained trial yet")
    why = "its verdict names no architecture" if rec else "no verdict yet"
    return Chosen(trials[best]["graph"], trials[best].get("val_deltas"), "validation", best,
                  f"{why}: the best trial on validation, trial {best} (Δ on the validation split)")

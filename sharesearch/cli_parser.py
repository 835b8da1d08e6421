"""The command line's arguments: one parser, every command's flags and their help.

Only declarations live here; what each command does is in ``cli.py`` (the
root), which passes its command functions to :func:`build_parser`. A refusal
by argparse is one line, like every other bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from . import __version__

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse whose refusals are one line like every other bad input (not the usage block)."""

    def error(self, message: str):
        self.exit(2, f"sharesearch: error: {self.prog.removeprefix('sharesearch ')}: {message}\n")


def _data_args(p: argparse.ArgumentParser, default: str | None = "synthetic-mmoe") -> None:
    from sharesearch.inputs import builtin_options

    p.add_argument("--data", default=default,
                   help="a data-spec file (.toml/.yaml) or a built-in source: synthetic-mmoe, synthetic-planted, "
                        "synthetic-null, multifashion (default: %(default)s)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of a built-in source (repeatable; values are JSON), e.g. n=2000 or "
                        "root=/path. Options: " + builtin_options().replace("\n", "; ").replace("%", "%%"))


def _study_args(p: argparse.ArgumentParser, graph: bool = False) -> None:
    """STUDY (a run folder, a name or its first letters), or --storage URL --study NAME; with ``graph``,
    --graph FILE instead and --trial N."""
    p.add_argument("ref", nargs="?", default=None, metavar="STUDY",
                   help="a run folder (runs/NAME), a study name, or the first letters of one under --runs")
    if graph:
        p.add_argument("--graph", default=None, help="a graph .json file (instead of a study)")
    p.add_argument("--storage", default=None, metavar="URL", help="an Optuna storage URL (default: the run "
                   "folder's file)")
    p.add_argument("--study", default=None, metavar="NAME", help="the study's name or its first letters "
                   "(instead of STUDY)")
    p.add_argument("--runs", default="runs", help="the runs folder (default: %(default)s)")
    if graph:
        p.add_argument("--trial", type=int, default=None,
                       help="trial number (default: the verdict's recommendation, else the best trial)")


def build_parser(commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The command line's parser; each command's function comes from ``commands`` (name -> function)."""
    p = _Parser(prog="sharesearch", description="Find out what the tasks of a multi-task "
                                "network should share.")
    p.add_argument("--version", action="version", version=f"sharesearch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="search sharing graphs (no arguments: the quick start)")
    _data_args(s)
    s.add_argument("--space", default="default", help="a search-space file or a shipped name "
                   "(default, branching, image, tiny) (default: %(default)s)")
    s.add_argument("--storage", default=None, help="an Optuna storage URL (sqlite:///f.db, postgresql://..., "
                   "journal:path.log); default: a file under --runs, resumed when it exists")
    s.add_argument("--study", default=None, help="study name (default: derived from data and space)")
    s.add_argument("--runs", default="runs", help="folder for local studies and reports (default: %(default)s)")
    s.add_argument("--n-trials", type=int, default=24, help="finished trials to reach (default: %(default)s)")
    s.add_argument("--timeout", type=float, default=None, help="seconds per worker")
    s.add_argument("--objective", action="append", default=[], choices=["params", "flops", "worst_delta"],
                   help="add an objective beside Δm (multi-objective: a Pareto front; no pruning)")
    s.add_argument("--max-params", type=int, default=None, help="budget: trainable parameters")
    s.add_argument("--max-flops", type=int, default=None, help="budget: FLOPs per example")
    s.add_argument("--sampler", default="tpe", choices=["tpe", "random"])
    s.add_argument("--pruner", default="hyperband", choices=["hyperband", "median", "none"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--top-k", type=int, default=3, help="candidates retrained for the verdict")
    s.add_argument("--population", type=int, default=None,
                   help="trials trained together: a topology and its companions with other learning rates "
                        "(default: 1 on a CPU, 8 on a GPU)")
    s.add_argument("--seeds", type=int, default=None, help="seeds of the verdict's retraining (default: as many as "
                   "detect a 10%% loss with 80%% power after Holm at the control's measured spread, 5 to 20)")
    s.add_argument("--workers", type=int, default=1, help="local worker processes (one per GPU with GPUs)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    s.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (off by default: it slowed small models "
                   "on an H200)")
    s.add_argument("--no-verdict", action="store_true", help="stop after the search")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=commands["search"])

    st = sub.add_parser("studies", help="list the studies under the runs folder: data, trials, best Δm, verdict")
    st.add_argument("--runs", default="runs", help="the runs folder (default: %(default)s)")
    st.set_defaults(func=commands["studies"])

    w = sub.add_parser("worker", help="join a study: everything it needs is in the study")
    _study_args(w)
    w.add_argument("--n-trials", type=int, default=None, help="finished trials to reach (default: the study's)")
    w.add_argument("--device", default=None)
    w.add_argument("--worker-index", type=int, default=None,
                   help="this worker's number: seeds its sampler reproducibly (default: from the process id)")
    w.add_argument("--timeout", type=float, default=None, help="seconds this worker starts trials for")
    w.set_defaults(func=commands["worker"])

    v = sub.add_parser("verdict", help="recompute the verdict of a study (retrain with seeds, test once); "
                                       "its report goes beside the earlier ones")
    _study_args(v)
    v.add_argument("--seeds", type=int, default=None)
    v.add_argument("--top-k", type=int, default=None)
    v.add_argument("--device", default=None, help="this process's device for the retraining (default: auto)")
    v.add_argument("--out", default=None, help="report folder (default: the run folder; when it holds a verdict's "
                                               "report already, its first free verdict-N)")
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=commands["verdict"])

    t = sub.add_parser("train", help="train one topology beside its independent baselines")
    _data_args(t)
    t.add_argument("--graph", required=True, help="independent | shared-bottom | mmoe | cross-stitch | "
                   "l2-soft | path/to/graph.json")
    t.add_argument("--widths", default=None, help="stage widths for a named architecture, e.g. 64,64,32")
    t.add_argument("--seeds", type=int, default=1)
    t.add_argument("--epochs", type=int, default=10, help="passes over the training split (the cap without "
                   "--max-steps)")
    t.add_argument("--max-steps", type=int, default=None, help="the budget in optimizer steps (overrides --epochs)")
    t.add_argument("--eval-every", type=int, default=None, help="validate every N steps (default: every epoch)")
    t.add_argument("--patience", type=int, default=0,
                   help="stop after N evaluations without improvement of any task (default 0: never early)")
    t.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine", "plateau"])
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weighting", default="equal")
    t.add_argument("--split", default="val", choices=["val", "test"],
                   help="split to report (default: %(default)s; the test split is meant to be used once)")
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (off by default: it slowed small models "
                   "on an H200)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=commands["train"])

    r = sub.add_parser("report", help="write the report of a study (HTML, JSON, Markdown) into its verdict's "
                                      "folder")
    _study_args(r)
    r.add_argument("--out", default=None, help="report folder (default: the run folder, or its verdict-N that "
                                               "holds the study's latest verdict)")
    r.set_defaults(func=commands["report"])

    sh = sub.add_parser("show", help="draw the recommended architecture of a study, one trial or a graph file")
    _study_args(sh, graph=True)
    sh.add_argument("--out", default="topology.html")
    sh.set_defaults(func=commands["show"])

    e = sub.add_parser("export", help="export a graph (JSON, GraphML, DOT, Mermaid) or the recommended model")
    e.add_argument("--format", required=True, choices=["json", "graphml", "dot", "mermaid", "model"])
    _study_args(e, graph=True)
    e.add_argument("--out", required=True)
    e.set_defaults(func=commands["export"])

    sp = sub.add_parser("space", help="list, show or copy a shipped search-space file (to edit and pass to --space)")
    sp_sub = sp.add_subparsers(dest="action", required=True)
    sp_sub.add_parser("list", help="names of the shipped spaces")
    sp_show = sp_sub.add_parser("show", help="print a shipped space, comments included")
    sp_show.add_argument("name")
    sp_copy = sp_sub.add_parser("copy", help="write a shipped space to PATH (never overwrites)")
    sp_copy.add_argument("name")
    sp_copy.add_argument("path")
    sp.set_defaults(func=commands["space"])

    tr = sub.add_parser("transfer", help="a held-out or new task from a few examples: which trunk of the study "
                                         "gives it the best start (gain vs k against a network from scratch)")
    _study_args(tr)
    tr.add_argument("--tasks", default=None, help="study tasks to hold out, comma-separated (default: every task)")
    tr.add_argument("--task", default=None, metavar="NEW", help="a new target column (with --data: a spec file of "
                    "the same inputs plus that target); trained on the study's trunks without a new search")
    tr.add_argument("--data", default=None, metavar="SPEC", help="the data-spec file holding --task's column")
    tr.add_argument("--ks", default=None, help="labelled rows of the held-out task, e.g. 10,30,100,300,all "
                    "(default: that ladder)")
    tr.add_argument("--seeds", default=None, help="paired seeds, e.g. 0,1,2 (default: 0,1,2)")
    tr.add_argument("--mode", default=None, help="frozen and/or finetune (default: both)")
    tr.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the study's)")
    tr.set_defaults(func=commands["transfer"])
    a = sub.add_parser("affinity", help="measure inter-task affinity in one short shared-bottom pass and print "
                                        "the matrices and the sharing trees it proposes")
    _data_args(a)
    a.add_argument("--space", default="default", help="search-space file or shipped name: its default backbone, "
                   "stage count and training settings (default: %(default)s)")
    a.add_argument("--steps", type=int, default=None, help="optimizer steps of the pass (default: 300, at most "
                   "the space's max_steps)")
    a.add_argument("--lr", type=float, default=None, help="learning rate (default: the space's default)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    a.set_defaults(func=commands["affinity"])
    return p

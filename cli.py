"""The sharesearch command line. Each command parses its arguments and calls the library.

``sharesearch --help`` lists the commands, one line each.

A study is named by its run folder (``runs/NAME``), its name, or the first
letters of exactly one name under ``--runs``; ``--storage URL --study NAME``
names one in any storage.

Bad input (a data-spec or search-space file, a graph file, an option) ends
with one line ``sharesearch: error: ...`` naming the file, field and value,
and exit status 2, before anything is written to a study: the library raises
:class:`sharesearch.errors.SharesearchError` for those. Any other exception is
a bug of ours and keeps its traceback. This file never imports optuna.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sharesearch.errors import SharesearchError

#: what the user can fix: printed as one line, exit status 2 (everything else keeps its traceback)
USER_ERRORS: tuple[type[BaseException], ...] = (SharesearchError, FileNotFoundError)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _check_numbers(args, ints: dict[str, int], floats: tuple[str, ...] = ()) -> None:
    """Each flag's value (unless unset): an integer >= its minimum, or a finite number > 0."""
    from sharesearch.search import check_float, check_int

    for flag, minimum in ints.items():
        check_int(flag, getattr(args, _dest(flag)), minimum, optional=True)
    for flag in floats:
        check_float(flag, getattr(args, _dest(flag)), optional=True)


def _check_place(args, must_exist: bool = False) -> None:
    """--study is a name, --storage a place a study can live (or is, ``must_exist``), --runs a folder, --device."""
    from sharesearch.search import check_device, check_runs_dir, check_storage_url, check_study_name

    if getattr(args, "device", None) is not None:
        check_device(args.device, "--device")
    if getattr(args, "study", None) is not None:
        check_study_name(args.study, "--study")
    if hasattr(args, "storage"):
        check_storage_url(args.storage, "--storage", must_exist=must_exist)
    if getattr(args, "storage", None) is None and hasattr(args, "runs"):
        check_runs_dir(args.runs, "--runs")


def _load_data(args, splits: tuple[str, ...] = ("train", "val", "test")):
    """The data of --data/--data-option, each task labelled in every split of ``splits``; and its source."""
    from sharesearch.inputs import load_data_arg, parse_options

    data, source = load_data_arg(args.data, parse_options(args.data_option, "--data-option"), splits,
                                 where="--data", options_where="--data-option")
    if data.meta.get("feature_note"):  # a spec file without `features`: say which columns became features
        print(data.meta["feature_note"])
    return data, source


def cmd_search(args) -> int:
    from sharesearch.search import SearchConfig, check_study_name, run_search, study_results
    from sharesearch.search import default_name, report_dir
    from sharesearch.space import load_space
    from sharesearch.training import TrainConfig

    # the front door: every argument, the data and the space are checked before anything is written
    _check_numbers(args, {"--n-trials": 1, "--workers": 1, "--top-k": 0, "--seeds": 2, "--population": 1,
                          "--max-params": 1, "--max-flops": 1}, floats=("--timeout",))
    _check_place(args)
    data, source = _load_data(args)
    space = load_space(args.space)
    if args.study is None:  # readable, and the same for the same data and space (a study under its old name keeps it)
        args.study = check_study_name(default_name(data.search_view()[0], space, args.runs, args.storage),
                                      "the default study name (from the data's name; pass --study)")
    objectives = ["delta_m"] + [o for o in args.objective if o != "delta_m"]
    cfg = SearchConfig(n_trials=args.n_trials, timeout=args.timeout, objectives=tuple(objectives),
                       max_params=args.max_params, max_flops=args.max_flops, sampler=args.sampler,
                       pruner=args.pruner, seed=args.seed, top_k=args.top_k, n_seeds=args.seeds,
                       population=args.population)
    train_base = TrainConfig(device=args.device, seed=args.seed, amp=args.amp)
    study = run_search(data, source, space, storage=args.storage, study_name=args.study, runs_dir=args.runs,
                       config=cfg, train_base=train_base, workers=args.workers, progress=not args.quiet,
                       verdict=not args.no_verdict)
    results = study_results(study)
    return _finish(results, out_dir=report_dir(Path(args.runs) / study.study_name, results["verdict"]))


def _finish(results: dict, out_dir: Path) -> int:
    from sharesearch.report import markdown_summary, write_report

    paths = write_report(results, out_dir)
    print(markdown_summary(results))
    print()
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def _study(args):
    """The study of STUDY or --study (a run folder, a name or a unique prefix; in --storage when given)."""
    from sharesearch.search import resolve_study

    if args.ref and args.study:
        raise SharesearchError(f"{args.command}: give the study once: {args.ref!r} or --study {args.study!r}")
    _check_place(args, must_exist=True)
    return resolve_study(args.runs, args.ref or args.study, storage=args.storage)


def cmd_studies(args) -> int:
    from sharesearch.search import format_studies, list_studies

    found = list_studies(args.runs)
    print(format_studies(found) if found else f"no studies under {args.runs!r}")
    return 0


def cmd_worker(args) -> int:
    from sharesearch.search import run_worker

    _check_numbers(args, {"--n-trials": 1, "--worker-index": 0}, floats=("--timeout",))
    ref = _study(args)
    run_worker(ref.storage_url, ref.study_name, device=args.device, n_trials=args.n_trials, worker=args.worker_index,
               timeout=args.timeout)
    return 0


def cmd_verdict(args) -> int:
    from sharesearch.search import load_results, run_verdict
    from sharesearch.search import new_report_dir

    _check_numbers(args, {"--seeds": 2, "--top-k": 0})
    ref = _study(args)
    base = Path(args.out) if args.out else ref.run_dir
    out_dir = new_report_dir(base)  # chosen first: a new verdict never goes over an earlier one's report
    run_verdict(ref.storage_url, ref.study_name, n_seeds=args.seeds, top_k=args.top_k, progress=not args.quiet,
                device=args.device, model_dir=base / "model")
    if out_dir != base:
        print(f"the earlier verdict's report stays in {base}; this one goes to {out_dir}")
    return _finish(load_results(ref.storage_url, ref.study_name), out_dir=out_dir)


def cmd_report(args) -> int:
    from sharesearch.search import load_results
    from sharesearch.search import report_dir

    ref = _study(args)
    results = load_results(ref.storage_url, ref.study_name)
    return _finish(results, out_dir=Path(args.out) if args.out else report_dir(ref.run_dir, results["verdict"]))


def cmd_train(args) -> int:
    from sharesearch.compare import compare_topology, format_comparison
    from sharesearch.inputs import graph_from_arg, parse_widths
    from sharesearch.training import TrainConfig

    _check_numbers(args, {"--seeds": 1})
    _check_place(args)
    widths = parse_widths(args.widths, "--widths")
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weighting=args.weighting,
                      device=args.device, amp=args.amp, max_steps=args.max_steps, eval_every=args.eval_every,
                      patience=args.patience, lr_schedule=args.lr_schedule)
    data, _ = _load_data(args, splits=("train", args.split))
    graph = graph_from_arg(args.graph, data, widths, where="--graph")
    print(graph.describe())
    table = compare_topology(graph, data, cfg, seeds=list(range(args.seeds)), split=args.split,
                             progress=not args.quiet)
    print(format_comparison(table, args.split))
    return 0


def _chosen(args):
    """The graph of --graph, or the study's recommended architecture (--trial N: that trial's)."""
    from sharesearch.graph import SharingGraph
    from sharesearch.inputs import graph_from_arg
    from sharesearch.search import load_results
    from sharesearch.search import Chosen, chosen_architecture

    if args.graph:
        return Chosen(graph_from_arg(args.graph, where="--graph").to_dict(), None, "validation", None, "")
    if not (args.ref or args.study):
        raise SharesearchError(f"{args.command}: give --graph FILE, or a study (a run folder, a name or its first "
                               "letters, or --storage URL --study NAME) [--trial N]")
    ref = _study(args)
    chosen = chosen_architecture(load_results(ref.storage_url, ref.study_name), args.trial)
    SharingGraph.from_dict(chosen.graph)  # a damaged record is one line, not a traceback below
    return chosen


def cmd_show(args) -> int:
    from sharesearch.figure import topology_figure
    from sharesearch.graph import SharingGraph
    from sharesearch.inputs import check_out_file

    out = check_out_file(args.out, "--out")
    chosen = _chosen(args)
    if chosen.note:
        print(chosen.note)
    graph = SharingGraph.from_dict(chosen.graph)
    print(graph.describe())
    split = {"delta_split": chosen.delta_split} if chosen.deltas else {}  # the split the Δ are on, labelled
    fig = topology_figure(graph, deltas=chosen.deltas, **split)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(out), include_plotlyjs=True)
    print(f"wrote figure: {out}")
    return 0


def cmd_export(args) -> int:
    from sharesearch import export
    from sharesearch.graph import SharingGraph
    from sharesearch.inputs import check_out_file

    out = Path(args.out)
    if args.format != "model":
        check_out_file(args.out, "--out")
    elif out.exists() and not out.is_dir():
        raise SharesearchError(f"--out: {args.out!r} is a file; export --format model writes a folder")
    if args.format == "model":
        from sharesearch.search import export_best_model, load_study
        from sharesearch.search import recommendation_of

        if not (args.ref or args.study):
            raise SharesearchError("export --format model: give a study (a run folder, a name or its first "
                                   "letters, or --storage URL --study NAME) [--trial N]")
        ref = _study(args)
        if args.trial is None and recommendation_of(load_study(ref.storage_url, ref.study_name)) is None:
            print("no verdict yet: exporting the best trial on validation (run sharesearch verdict for the "
                  "recommended model)")
        path = export_best_model(ref.storage_url, ref.study_name, out, trial=args.trial)
        print(f"wrote model: {path}")
        return 0
    graph = SharingGraph.from_dict(_chosen(args).graph)
    out.parent.mkdir(parents=True, exist_ok=True)
    write = {"json": lambda g: out.write_text(g.to_json(indent=2)), "graphml": lambda g: export.to_graphml(g, out),
             "dot": lambda g: out.write_text(export.to_dot(g)),
             "mermaid": lambda g: out.write_text(export.to_mermaid(g))}
    write[args.format](graph)
    print(f"wrote {args.format}: {out}")
    return 0


def cmd_transfer(args) -> int:
    from sharesearch.inputs import load_data_arg, parse_list
    from sharesearch.search import load_results, run_transfer
    from sharesearch.search import report_dir

    ref = _study(args)
    if (args.task is None) != (args.data is None):
        raise SharesearchError("transfer: --task NEW and --data SPEC go together (a new target column of the "
                               "study's inputs)")
    data = load_data_arg(args.data, {}, ("train",), where="--data")[0] if args.data else None
    given = {"tasks": parse_list(args.tasks, "--tasks"), "seeds": parse_list(args.seeds, "--seeds", numbers=True),
             "ks": parse_list(args.ks, "--ks", numbers=True, all_word="all"), "mode": parse_list(args.mode, "--mode")}
    result = run_transfer(ref.storage_url, ref.study_name, new_task=args.task, data=data, device=args.device,
                          **{k: v for k, v in given.items() if v is not None})
    print(f"transfer: {len(result.curves)} curves stored in study {ref.study_name!r} (the report's transfer section)")
    results = load_results(ref.storage_url, ref.study_name)
    return _finish(results, out_dir=report_dir(ref.run_dir, results["verdict"]))


def cmd_space(args) -> int:
    from sharesearch.space import copy_space, shipped_spaces, space_text

    if args.action == "list":
        print("\n".join(shipped_spaces()))
    elif args.action == "show":
        print(space_text(args.name), end="")
    else:
        print(f"wrote search space: {copy_space(args.name, args.path)}")
    return 0


def cmd_affinity(args) -> int:
    from sharesearch.affinity import affinity_for_space, format_affinity
    from sharesearch.space import load_space
    from sharesearch.training import TrainConfig

    _check_numbers(args, {"--steps": 1}, floats=("--lr",))
    _check_place(args)
    data, _ = _load_data(args, splits=("train",))
    space = load_space(args.space)
    f = space.fields
    defaults = {k: f[f"train.{k}"].default for k in ("lr", "weight_decay", "batch_size") if f"train.{k}" in f}
    if args.lr is not None:
        defaults["lr"] = args.lr
    config = TrainConfig(**defaults, seed=args.seed, device=args.device)
    aff, trees = affinity_for_space(data, space, config, steps=args.steps)
    print(format_affinity(aff, trees))
    return 0


COMMANDS = {"search": cmd_search, "studies": cmd_studies, "worker": cmd_worker, "verdict": cmd_verdict,
            "train": cmd_train, "report": cmd_report, "show": cmd_show, "export": cmd_export, "space": cmd_space,
            "transfer": cmd_transfer, "affinity": cmd_affinity}


def build_parser():
    """The parser of every command (:mod:`sharesearch.cli_parser`), each bound to its function here."""
    from sharesearch.cli_parser import build_parser as parser_of

    return parser_of(COMMANDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("sharesearch: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"sharesearch: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""run_transfer on a finished (tiny) study: leave one task out, a new column, stored in the study."""

from __future__ import annotations

import pytest

from sharesearch.data import load_data
from sharesearch.search import SearchConfig, SearchError, load_study, run_search
from sharesearch.search._transfer_study import read_transfer, run_transfer
from sharesearch.space import SearchSpace, load_space
from sharesearch.training import TrainConfig
from sharesearch.transfer import TransferConfig, TransferResult

FEW = dict(ks=(10,), seeds=(0, 1), mode=("frozen",), config=TransferConfig(steps=10, eval_every=5, lr_grid=(1e-2,)))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    big = load_data("synthetic-mmoe", n=300, d=8, seed=1, clusters=[[0, 1], [2], [3]])
    data = big.subset_tasks(["t0", "t1", "t2"])
    url = f"sqlite:///{tmp_path_factory.mktemp('transfer') / 'study.db'}"
    space = load_space("tiny").to_dict()
    space["branching"]["affinity"] = False
    space["baseline"].update(trials=1, confirm_seeds=1)
    run_search(data, {"source": "synthetic-mmoe", "options": {}}, SearchSpace.from_dict(space, source="tiny.toml"),
               storage=url, study_name="s", config=SearchConfig(n_trials=3, seed=0),
               train_base=TrainConfig(device="cpu", max_steps=20), progress=False, verdict=False)
    return url, big, data


def test_leave_one_out_covers_the_topologies_and_is_stored(study):
    url, _, data = study
    res = run_transfer(url, "s", tasks=["t2"], data=data, **FEW)
    assert {c.topology for c in res.curves} == {"chosen", "shared-bottom", "mmoe"}
    assert {(p.task, p.k, p.mode, len(p.transfer)) for p in res.points} == {("t2", 10, "frozen", 2)}
    scratch = {p.scratch for p in res.points}
    assert len(scratch) == 1  # one control, shared by every topology
    assert TransferResult.from_dict(read_transfer(load_study(url, "s"))) == res
    with pytest.raises(SearchError, match="'tasks'.*'nope'"):
        run_transfer(url, "s", tasks=["nope"], data=data, **FEW)


def test_a_new_column_joins_the_trunk_root_without_retraining_the_search(study):
    url, big, _ = study
    n_trials = len(load_study(url, "s").trials)
    res = run_transfer(url, "s", new_task="t3", data=big, **FEW)
    assert {c.task for c in res.curves} == {"t3"} and {c.attach_rule for c in res.curves} == {"trunk root"}
    st = load_study(url, "s")
    assert len(st.trials) == n_trials
    assert {p["task"] for p in read_transfer(st)["points"]} >= {"t3"}
    with pytest.raises(SearchError, match="not a target"):
        run_transfer(url, "s", new_task="t9", data=big, **FEW)
    with pytest.raises(SearchError, match="not study 's'"):
        other = load_data("synthetic-mmoe", n=300, d=8, seed=2, clusters=[[0, 1], [2], [3]])
        run_transfer(url, "s", new_task="t3", data=other, **FEW)


def test_report_section_and_markdown_table(study):
    from sharesearch.report import transfer_figure, transfer_info, transfer_markdown, transfer_section_html

    url, _, _ = study
    results = {"transfer": read_transfer(load_study(url, "s"))}
    info = transfer_info(results)
    assert info is not None and {s.topology for s in info.series} == {"chosen", "shared-bottom", "mmoe"}
    fig = transfer_figure(info)
    assert fig.layout.xaxis.type == "log" and all(tr.error_y.array is not None for tr in fig.data)
    html = transfer_section_html(results)
    assert html.startswith('<section id="transfer">') and "transfer-curves" in html
    table = transfer_markdown(results)
    assert table[2].startswith("| topology | task | mode | k=10")
    assert len([row for row in table if row.startswith("| `")]) == len(info.series)
    assert transfer_section_html({}) == "" and transfer_markdown({"transfer": None}) == []

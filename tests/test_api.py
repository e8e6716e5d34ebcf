"""The app's API through gradio_client, against an app this test launches on a free local port.

Runs use the embedded models (the same path a visitor's Run takes): a run streams several updates and
ends stored; a stopped run is stored as cancelled; a bad budget gets the app's own message.
"""
from __future__ import annotations

import time

import pytest

gradio_client = pytest.importorskip("gradio_client")


def client(url: str):
    return gradio_client.Client(url, verbose=False, download_files=False)


RUN = dict(domain="reasoning", model="tiny-arith-s", verifier="tiny-prm", strategy="beam_search", budget=8,
           difficulty=2, problem="", seed=0, aggregation="last", temperature=0.8)


def test_run_streams_updates_and_is_stored(served):
    url, store = served
    c = client(url)
    # hard problems and a wide beam: several steps, so the throttled stream has several updates to send
    job = c.submit(**{**RUN, "budget": 32, "difficulty": 5}, api_name="/run")
    updates = []
    for out in job:
        updates.append(out)
    assert job.status().success
    assert len(updates) >= 3, f"only {len(updates)} streamed updates"
    status_html = updates[-1][0]
    assert "finished" in status_html
    rid = status_html.split("run <code>")[1].split("</code>")[0]
    run = store.get_run(rid)
    assert run is not None and run["status"] == "finished" and run["strategy"] == "beam_search"
    assert run["totals"]["generated_tokens"] > 0
    assert [e["type"] for e in store.events(rid)][-1] in ("RunFinished", "Selected")
    # the last update carries the events for the replay slider: the slider's maximum is the step count
    slider = updates[-1][5]
    assert slider["maximum"] >= 1
    # replaying the stored run through the API gives the same finished status
    opened = c.predict(rid, api_name="/open_run")
    assert "finished" in opened[0]


def test_stop_stores_a_cancelled_run(served):
    url, store = served
    c = client(url)
    before = {r["id"] for r in store.list_runs()}
    job = c.submit(**{**RUN, "strategy": "particle_filtering", "budget": 64, "difficulty": 5}, api_name="/run")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the search has really started (a node is on screen)
        outs = job.outputs()
        if outs and "run <code>" in str(outs[-1][0]):
            break
        time.sleep(0.05)
    c.predict(api_name="/stop")
    outs = job.result(timeout=60)
    new = [r for r in store.list_runs() if r["id"] not in before]
    assert len(new) == 1
    assert new[0]["status"] == "cancelled", new[0]
    assert "cancelled" in outs[0]
    assert store.events(new[0]["id"])  # what was done before the stop is kept


def test_bad_budget_returns_the_apps_message(served):
    url, store = served
    c = client(url)
    n_before = len(store.list_runs())
    with pytest.raises(Exception) as err:
        c.predict(**{**RUN, "budget": 100000}, api_name="/run")
    assert "budget must be a whole number from 1 to 64" in str(err.value)
    with pytest.raises(Exception) as err:
        c.predict(**{**RUN, "budget": "lots"}, api_name="/run")
    assert "budget must be a whole number" in str(err.value)
    assert len(store.list_runs()) == n_before  # refused before anything was stored


def test_bad_inputs_are_refused_server_side(served):
    url, store = served
    c = client(url)
    n_before = len(store.list_runs())
    with pytest.raises(Exception) as err:
        c.predict(**{**RUN, "strategy": "rm -rf"}, api_name="/run")
    assert "strategy must be one of" in str(err.value)
    with pytest.raises(Exception) as err:
        c.predict(**{**RUN, "problem": "What is love?"}, api_name="/run")
    assert "Start with" in str(err.value)  # the engine's message shows an example it understands
    with pytest.raises(Exception) as err:
        c.predict("../../etc/passwd", api_name="/open_run")
    assert "Choose a run" in str(err.value)
    with pytest.raises(Exception) as err:
        c.predict(["r1"], api_name="/compare")
    assert "Choose 2 to 4" in str(err.value)
    with pytest.raises(Exception):  # the slider's own bounds check
        c.predict(**{**RUN, "temperature": 9}, api_name="/run")
    assert len(store.list_runs()) == n_before


def test_export_and_delete(served):
    import json
    from pathlib import Path

    url, store = served
    c = client(url)
    outs = c.predict(**{**RUN, "strategy": "best_of_n", "budget": 4}, api_name="/run")
    rid = outs[0].split("run <code>")[1].split("</code>")[0]
    exported = c.predict(rid, api_name="/export_run")
    path = exported["value"] if isinstance(exported, dict) and "value" in exported else exported
    path = path["path"] if isinstance(path, dict) else path
    data = json.loads(Path(path).read_text())
    assert data["run"]["id"] == rid and data["events"][0]["type"] == "RunStarted"
    assert str(store.path) not in path  # served from gradio's cache, never from the database's folder
    c.predict(rid, "any", "any", "any", "any", api_name="/delete_run")
    assert store.get_run(rid) is None


def test_sweep_from_the_page_and_reopen_it(served):
    url, store = served
    c = client(url)
    outs = c.predict("tiny-arith-s", "tiny-prm", 2, 1, ["greedy", "best_of_n"], [1, 2], "tokens", api_name="/sweep")
    progress, figure, table = outs[0], outs[1], outs[2]
    assert "done" in progress
    rows = table["data"] if isinstance(table, dict) else table
    # a row names its winner, a tie of both, or no winner where both are at 0%
    assert rows and {r[2] for r in rows} <= {"greedy", "best_of_n", "tie: greedy, best_of_n", "none: all at 0%"}
    sweeps = store.list_sweeps()
    assert sweeps and sweeps[0]["status"] == "finished"
    reopened = c.predict(sweeps[0]["id"], "flops", api_name="/open_sweep")
    assert reopened[1]["data"] if isinstance(reopened[1], dict) else reopened[1]
    # the reading settings: eFLOPs at a stated FLOPs per byte, pass@1 bins, matched compute
    table = c.predict(sweeps[0]["id"], "eflops", "pass1", "compute", 100.0, 0.01, api_name="/open_sweep")[1]
    assert table["headers"][0] == "pass@1 level" and table["headers"][4] == "eFLOPs / problem"
    for bad, message in (((sweeps[0]["id"], "joules"), "not in the list of choices"),  # gradio's own check
                         ((sweeps[0]["id"], "eflops", "difficulty", "budget", -1), "FLOPs per byte must be a positive"),
                         ((sweeps[0]["id"], "tokens", "difficulty", "budget", 295, 2), "saturation gain must be"),
                         ((sweeps[0]["id"], "tokens", "labels"), "not in the list of choices")):
        with pytest.raises(Exception) as err:
            c.predict(*bad, api_name="/open_sweep")
        assert message in str(err.value)

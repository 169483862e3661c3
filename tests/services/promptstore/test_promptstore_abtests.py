"""A/B tests: sticky assignment, outcomes, statistics, auto-stop and promotion."""

from __future__ import annotations

import math
from typing import Any

import httpx

from llmdocs.services.promptstore import abtest


async def two_versions(http: httpx.AsyncClient) -> str:
    made = await http.post("/prompts", json={"name": "intro", "content": "Intro {{ x }}"})
    pid: str = made.json()["id"]
    await http.post(f"/prompts/{pid}/versions", json={"content": "Better intro {{ x }}",
                                                     "state": "draft"})
    return pid


async def test_assignment_is_sticky_weighted_and_matches_the_local_hash(
    http: httpx.AsyncClient
) -> None:
    await two_versions(http)
    made = await http.post("/abtests", json={
        "prompt": "intro", "name": "wording", "variants": [
            {"version": 1, "weight": 80}, {"version": 2, "weight": 20}]})
    assert made.status_code == 201
    test = made.json()
    seen: dict[int, int] = {1: 0, 2: 0}
    for i in range(60):
        subject = f"user-{i}"
        first = (await http.get("/prompts/by-name/intro", params={"ab_subject": subject}))
        again = (await http.get("/prompts/by-name/intro", params={"ab_subject": subject}))
        version = first.json()["version"]
        assert again.json()["version"] == version
        assert first.json()["ab_test"]["variant"] == version
        assert version == abtest.assign(test["id"], subject, [(1, 80), (2, 20)])
        seen[version] += 1
    assert seen[1] > seen[2] > 0
    pinned = await http.get("/prompts/by-name/intro", params={"ab_subject": "u", "version": 1})
    assert pinned.json()["version"] == 1
    labelled = await http.get("/prompts/by-name/intro", params={"ab_subject": "u",
                                                                "label": "production"})
    assert labelled.json()["version"] == 1
    assigned = await http.get(f"/abtests/{test['id']}/assignment", params={"subject": "user-3"})
    assert assigned.json()["version"] == abtest.assign(test["id"], "user-3", [(1, 80), (2, 20)])
    second = await http.post("/abtests", json={
        "prompt": "intro", "name": "again", "variants": [
            {"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.5}]})
    assert second.status_code == 409


async def test_a_significant_winner_stops_the_test_and_gets_promoted(
    http: httpx.AsyncClient
) -> None:
    await two_versions(http)
    test = (await http.post("/abtests", json={
        "prompt": "intro", "name": "success", "min_samples": 20, "variants": [
            {"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.5}]})).json()
    outcomes = f"/abtests/{test['id']}/outcomes"
    wrong = await http.post(outcomes, json={"version": 7, "success": True})
    assert wrong.status_code == 422
    status = "running"
    pairs = 0
    while status == "running" and pairs < 40:
        await http.post(outcomes, json={"version": 1, "success": pairs % 4 == 0})
        answer = await http.post(outcomes, json={"version": 2, "success": pairs % 10 != 0})
        status = answer.json()["test"]["status"]
        pairs += 1
    assert status == "completed" and pairs == 20  # min_samples, then significant at once
    results = (await http.get(f"/abtests/{test['id']}/results")).json()
    control, treatment = results["variants"]
    assert (control["n"], treatment["n"]) == (20, 20)
    assert control["mean"] == 0.25 and treatment["mean"] == 0.9
    low, high = treatment["interval"]
    assert low < 0.9 < high <= 1.0
    assert treatment["p_value"] < 0.001 and treatment["significant"]
    assert results["winner"] == 2 and results["test_kind"] == "two_proportion_z"
    # the draft winner was published and now serves production
    resolved = (await http.get("/prompts/by-name/intro")).json()
    assert (resolved["version"], resolved["state"]) == (2, "published")
    late = await http.post(outcomes, json={"version": 1, "success": True})
    assert late.status_code == 409


async def test_welch_results_for_scores_and_manual_stop(http: httpx.AsyncClient) -> None:
    await two_versions(http)
    test = (await http.post("/abtests", json={
        "prompt": "intro", "name": "scores", "metric": "score", "auto_stop": False,
        "variants": [{"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.5}]})).json()
    for score in (1, 2, 3, 4, 5):
        await http.post(f"/abtests/{test['id']}/outcomes", json={"version": 1, "score": score})
        await http.post(f"/abtests/{test['id']}/outcomes",
                        json={"version": 2, "score": 2 * score})
    results = (await http.get(f"/abtests/{test['id']}/results")).json()
    treatment = results["variants"][1]
    assert results["test_kind"] == "welch_t"
    assert math.isclose(treatment["statistic"], 3 / math.sqrt(2.5), rel_tol=1e-9)
    assert 0.05 < treatment["p_value"] < 0.2 and not treatment["significant"]
    stopped = (await http.post(f"/abtests/{test['id']}/stop", params={"promote": "true"}))
    assert stopped.json()["test"]["status"] == "stopped"
    assert stopped.json()["winner"] is None
    assert (await http.get("/prompts/by-name/intro")).json()["version"] == 1
    listed: list[dict[str, Any]] = (await http.get("/abtests", params={"prompt": "intro"})
                                    ).json()
    assert [t["id"] for t in listed] == [test["id"]]


def test_student_t_matches_tables() -> None:
    assert math.isclose(abtest.t_two_sided_p(2.228, 10), 0.05, abs_tol=5e-4)
    assert math.isclose(abtest.t_quantile(0.975, 10), 2.228, abs_tol=1e-3)
    assert math.isclose(abtest.t_quantile(0.975, 1), 12.706, abs_tol=1e-2)
    assert math.isclose(abtest.t_two_sided_p(1.96, math.inf), 0.05, abs_tol=1e-3)
    assert math.isclose(abtest.t_two_sided_p(1.96, 1e6), 0.05, abs_tol=1e-3)


def test_winner_rules() -> None:
    control = abtest.Sample(100, 50, 50)
    better = abtest.Sample(100, 80, 80)
    worse = abtest.Sample(100, 20, 20)
    assert abtest.winner("success", [(1, control), (2, better)], 0.05, 30) == 2
    assert abtest.winner("success", [(1, control), (2, worse)], 0.05, 30) == 1
    assert abtest.winner("success", [(1, control), (2, better)], 0.05, 200) is None
    fast, slow = abtest.Sample(3, 30, 302), abtest.Sample(3, 300, 30002)
    assert abtest.winner("latency_ms", [(1, slow), (2, fast)], 0.05, 3) == 2

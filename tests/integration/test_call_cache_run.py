"""`hive run` with spec.cache against a real redis-server and the scripted model: a second run
of the same team and task, on another machine's disk (its own cache folder), is answered from
the team's Redis (L3) without a model call, and its report counts the hits per level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.scripted_model import scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def test_a_second_run_is_answered_from_the_teams_redis(tmp_path: Path, redis_url: str) -> None:
    team = {
        "goal": "name a colour",
        "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
        "agents": [{"name": "solo", "role": "specialist"}],
        "cache": {"deterministicModel": True, "ttlSeconds": 600, "prefetch": {}},
    }
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(team))
    with scripted_model([{"content": "blue"}]) as model:
        reports = []
        for machine in ("first", "second"):
            env = {
                **os.environ,
                "HIVE_AGENT__ERRORS_REDIS_URL": redis_url,
                "HIVE_AGENT__CACHE_DIR": str(tmp_path / machine),
            }
            report = tmp_path / f"{machine}.json"
            argv = [sys.executable, "-m", "hive", "run", str(tmp_path / "team.yaml")]
            argv += ["--endpoint", model.url, "--no-live", "--report", str(report)]
            run = subprocess.run(
                argv, capture_output=True, text=True, timeout=120, check=False, env=env
            )
            assert run.returncode == 0, run.stdout + run.stderr
            reports.append(json.loads(report.read_text()))
        assert len(model.requests) == 1  # the second run made no model call
    first, second = (r["cache"] for r in reports)
    assert first["computed"] == 1
    assert first["levels"]["l3"]["bytesWritten"] > 0
    assert second["computed"] == 0
    assert second["levels"]["l3"]["hits"] == 1
    assert second["levels"]["l1"]["misses"] == 1
    assert reports[1]["output"] == reports[0]["output"]
    assert second["prefetch"]["started"] == 0  # no tool calls to learn from

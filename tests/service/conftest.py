"""Fixtures of the service tests: one real quick pipeline run on a small synthetic world
(started through the API's job runner, so that path is tested for real), and API clients
on SQLite and on a live PostgreSQL with one user per role."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

RUN_TOML = """
horizon_weeks = 6

[selection]
threshold = 0.1
max_skus = 16

[evaluation]
n_episodes = 40

[policy]
source = "train"

[ppo]
total_timesteps = 4096
"""


@dataclass
class PipelineRun:
    """The session's real pipeline run, made by the API's job runner."""

    folder: Path
    job: dict
    log: str


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> PipelineRun:
    """``deadstock run --quick`` on a 300-SKU synthetic world, started as an API job."""
    from service.db.engine import open_database
    from service.jobs import JobRunner, job_dict, tail
    from service.settings import Settings
    from service.users import add_user
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    root = tmp_path_factory.mktemp("svc-run")
    world = root / "world"
    write_world(generate_world(SyntheticConfig(n_skus=300, n_weeks=52, seed=3)), world)
    (root / "run.toml").write_text(RUN_TOML)
    settings = Settings(db_url=f"sqlite:///{root / 'jobs.db'}", runs_dir=str(root / "runs"),
                        run_command=(sys.executable, "-m", "app.cli"))  # fmt: skip
    db = open_database(settings.db_url)
    with db.session() as s:
        lead, _ = add_user(s, "runner", "pricing_lead")
        s.commit()
    runner = JobRunner(db, settings)
    job = runner.start(lead, {"data": str(world), "config_path": str(root / "run.toml"),
                              "quick": True, "seed": 0})  # fmt: skip
    runner.wait(job.id, timeout=600)
    with db.session() as s:
        from service.db.models import Job

        done = s.get(Job, job.id)
        assert done is not None
        info = job_dict(done)
    log = tail(done.log_path, 400)
    db.dispose()
    assert info["status"] == "succeeded", log
    return PipelineRun(Path(info["out_dir"]), info, log)


ROLE_USERS = {
    "admin": ("admin", ()),
    "lead": ("pricing_lead", ()),
    "viewer": ("viewer", ()),
}


@dataclass
class Api:
    """A TestClient on one database, with a token per role and the imported plan."""

    client: object
    tokens: dict[str, str]
    plan_id: int
    categories: list[str]
    backend: str
    state: object
    settings: object
    app: object
    skus_by_category: dict[str, list[str]] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "admin", **kw):
        return self.client.get(f"/api/v1{path}", headers=self.h(who), **kw)  # type: ignore[attr-defined]

    def post(self, path: str, who: str = "admin", **kw):
        return self.client.post(f"/api/v1{path}", headers=self.h(who), **kw)  # type: ignore[attr-defined]


def make_api(db_url: str, run: PipelineRun, work: Path, backend: str, **limits) -> Iterator[Api]:
    """Build the app on ``db_url``, add one user per role, import the run (via the API)."""
    from fastapi.testclient import TestClient

    from service.api.app import build_state, create_app
    from service.settings import Limits, Settings
    from service.users import add_user

    settings = Settings(
        db_url=db_url,
        runs_dir=str(work / "runs"),
        exports_dir=str(work / "exports"),
        run_command=(sys.executable, "-c", "import sys; sys.exit(0)"),
        limits=Limits(**limits),
    )
    state = build_state(settings)
    summary = pd.read_csv(run.folder / "sku_summary.csv", dtype={"sku": str})
    by_cat = summary.groupby("category")["sku"].apply(list).to_dict()
    cats = sorted(by_cat, key=lambda c: (-len(by_cat[c]), c))
    assert len(cats) >= 2, "the fixture run needs SKUs in two categories"
    tokens = {}
    with state.db.session() as s:
        for who, (role, _) in ROLE_USERS.items():
            _, tokens[who] = add_user(s, f"{who}-{backend}", role)
        _, tokens["cm"] = add_user(s, f"cm-{backend}", "category_manager", [cats[0]])
        s.commit()
    app = create_app(state=state)
    with TestClient(app) as client:
        r = client.post("/api/v1/plans/import", json={"path": str(run.folder)},
                        headers={"Authorization": f"Bearer {tokens['lead']}"})  # fmt: skip
        assert r.status_code == 201, r.text
        yield Api(client, tokens, r.json()["plan"]["id"], cats, backend, state, settings, app,
                  {k: sorted(v) for k, v in by_cat.items()})  # fmt: skip
    state.db.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(request, pipeline_run, tmp_path_factory) -> Iterator[Api]:
    """The API on SQLite and on a live PostgreSQL, each with the run imported."""
    work = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{work / 'service.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield from make_api(url, pipeline_run, work, request.param)

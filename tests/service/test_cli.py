"""``deadstock users``, ``deadstock db`` and ``deadstock serve`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from app.cli.main import main


def test_users_add_list_token_revoke(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["users", "add", "ann", "--role", "category_manager", "--categories", "SOAP",
                 "CANDY", "--db", url]) == 0  # fmt: skip
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert token.startswith("ds_") and len(token) > 40 and "shown only now" in out
    from service.db.engine import open_database
    from service.users import authenticate, hash_token

    db = open_database(url)
    with db.session() as s:
        user = authenticate(s, token)
        assert user is not None and user.categories == ["CANDY", "SOAP"]
        import sqlalchemy as sa

        stored = s.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
        assert stored == [hash_token(token)] and token not in stored
    assert main(["users", "list", "--db", url]) == 0
    assert "ann" in capsys.readouterr().out
    assert main(["users", "token", "ann", "--db", url]) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["users", "revoke", "ann", "--db", url]) == 0
    assert "2 token(s)" in capsys.readouterr().out
    with db.session() as s:
        assert authenticate(s, token) is None and authenticate(s, second) is None
    db.dispose()


def test_users_bad_input_is_one_line_exit_2(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["users", "add", "bob", "--role", "category_manager", "--db", url]) == 2
    assert "needs --categories" in capsys.readouterr().err
    assert main(["users", "add", "bob", "--role", "viewer", "--db", url]) == 0
    assert main(["users", "add", "bob", "--role", "viewer", "--db", url]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["users", "revoke", "nobody", "--db", url]) == 2
    assert main(["db", "upgrade", "--db", "nosuchdialect://x"]) == 2
    assert main(["serve", "--port", "0", "--db", url]) == 2


def test_db_upgrade_and_import(tmp_path, capsys, pipeline_run):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert "at revision" in capsys.readouterr().out
    assert main(["db", "import", str(pipeline_run.folder), "--db", url]) == 0
    assert "imported" in capsys.readouterr().out
    assert main(["db", "import", str(pipeline_run.folder), "--db", url]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert main(["db", "import", str(tmp_path / "none"), "--db", url]) == 2


@pytest.mark.slow
def test_serve_starts_uvicorn_and_answers(tmp_path):
    # two worker processes (`--workers 2`): the database from the environment reaches both
    from service.db.engine import open_database
    from service.users import add_user
    from tests.pg import free_port

    port = free_port()
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    database = open_database(url)
    with database.session() as s:
        _, token = add_user(s, "lead", "pricing_lead")
        s.commit()
    database.dispose()
    env = {**os.environ, "DEADSTOCK_DB_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for _ in range(150):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("deadstock serve did not answer")
        assert r.status_code == 200 and r.json()["database"] == "sqlite"
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/plans").status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as c:
            assert [c.get("/me").status_code for _ in range(10)] == [200] * 10
            assert c.get("/whatif/tasks/abc").status_code == 404
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert out.count("Started server process") == 2, out

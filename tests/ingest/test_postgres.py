"""Round trip through a live PostgreSQL that the test starts itself (initdb + pg_ctl on
127.0.0.1 and a free port). As root (CI), the server runs as the ``postgres`` system user via
``runuser``, because initdb refuses to run as root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.loader import load, save

from .test_loaders import assert_same_tables

pytestmark = pytest.mark.postgres


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("no initdb binary: install Debian's postgresql (.ci/run does)")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="deadstock-pg-"))
    if as_root:
        shutil.chown(root, user="postgres")
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        )
        yield f"postgresql+psycopg2://postgres:pw@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_round_trip(tiny, postgres_url):
    save(tiny, postgres_url)
    back = load(postgres_url)
    assert_same_tables(tiny, back)
    assert "pw" not in back.source and "***" in back.source
    save(tiny, postgres_url)  # replaces, does not append
    again = load(postgres_url)
    assert len(again.sales) == len(tiny.sales)
    assert again.fingerprint == back.fingerprint


def test_postgres_bad_table_is_reported(tiny, postgres_url):
    import sqlalchemy as sa

    save(tiny, postgres_url)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE sales SET units = -1 WHERE sku = 'A2'"))
    engine.dispose()
    from ingest.validate import DataValidationError

    with pytest.raises(DataValidationError) as info:
        load(postgres_url)
    assert "table sales" in str(info.value) and "'units': values below 0" in str(info.value)

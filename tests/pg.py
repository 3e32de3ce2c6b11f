"""A live PostgreSQL server for tests, started by the tests themselves (initdb + pg_ctl on
127.0.0.1 and a free port). As root (CI), the server runs as the ``postgres`` system user via
``runuser``, because initdb refuses to run as root.

The fixtures in ``tests/conftest.py`` use it: ``postgres_server`` starts one server per test
session, ``postgres_url`` gives each test module a fresh database on it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian's newest version first)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(binaries: Path) -> Iterator[str]:
    """Start a throwaway server; yields the URL of its ``postgres`` database."""
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="deadstock-pg-"))
    if as_root:
        shutil.chown(root, user="postgres")
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
            "-w", "start")  # fmt: skip
        yield f"postgresql+psycopg2://postgres:pw@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """Create a new, empty database on the server; returns its URL."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"

"""A throwaway PostgreSQL cluster for the tests that need a real database server (the shared MLflow server,
an Optuna study shared by two processes).

Needs PostgreSQL's server binaries (Debian's ``postgresql`` package: /usr/lib/postgresql/<version>/bin);
:func:`_pg_bindir` is None without them and the tests skip. PostgreSQL refuses to run as root, so under root
initdb and pg_ctl run as the ``postgres`` user (``nobody`` where there is none; subprocess's ``user=``, as
``runuser -u`` would), in a folder made outside pytest's tmp_path, which only root may enter.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path | None:
    """The newest of Debian's PostgreSQL versions (/usr/lib/postgresql/<version>/bin), else initdb's
    folder on PATH; None if there is no initdb and pg_ctl."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None or not (Path(initdb).resolve().parent / "pg_ctl").exists():
        return None
    return Path(initdb).resolve().parent


class Postgres:
    """A PostgreSQL cluster of its own on 127.0.0.1:<free port>, trusting local connections, with a
    database ``mlflow`` owned by the superuser ``mlflow``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = None
        if os.geteuid() == 0:
            names = {p.pw_name for p in pwd.getpwall()}
            self.user = "postgres" if "postgres" in names else "nobody"
        self.root = Path(tempfile.mkdtemp(prefix="softmax_exp_pg_"))
        if self.user:
            owner = pwd.getpwnam(self.user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://mlflow@127.0.0.1:{self.port}/mlflow"

    def _run(self, *cmd: str, as_owner: bool = True) -> None:
        done = subprocess.run([str(self.bindir / cmd[0]), *cmd[1:]], cwd=self.root, capture_output=True,
                              text=True, timeout=120, user=self.user if as_owner else None)
        if done.returncode != 0:
            log = self.root / "postgres.log"
            pytest.fail(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}"
                        + (f"\n{log.read_text()[-2000:]}" if log.exists() else ""))

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "mlflow", "--auth=trust", "--no-locale",
                  "--encoding=UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c full_page_writes=off -c synchronous_commit=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w", "-t", "60",
                  "-o", options, "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "mlflow", "mlflow",
                  as_owner=False)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                            "stop"], cwd=self.root, capture_output=True, timeout=60, user=self.user)
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new database ``name`` of the cluster; its SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "mlflow", name, as_owner=False)
        return self.url.rpartition("/")[0] + "/" + name


@contextlib.contextmanager
def running_postgres():
    """A started :class:`Postgres`, stopped after; the test skips without PostgreSQL's binaries and fails
    without the venv's driver."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: on Debian, "
                    "apt-get install postgresql (.ci/run does where it can)")
    if importlib.util.find_spec("psycopg") is None:
        pytest.fail("the PostgreSQL driver psycopg is not installed in this venv: it is in the dev extra "
                    "(pip install -e '.[dev]', or make venv)")
    pg = Postgres(bindir)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()

"""``make ui``: the MLflow UI over a local store, opened where a training's runs are.

``python -m softmax_exp.ui serve [--db PATH] [--port N]`` checks that 127.0.0.1:N is free (one line and
exit status 1 if not), prints the link to open, then runs a quiet ``mlflow server`` (one worker, no access
log, no job executor) until Ctrl-C. ``python -m softmax_exp.ui link [--db PATH] [--port N]`` prints
the link only.

MLflow 3 opens in its GenAI mode (a traces dashboard); the link asks for its model-training mode
(``workflowType=machine_learning``) on the runs table of the experiment trained last:
``http://127.0.0.1:5000/#/experiments/<id>/runs?workflowType=machine_learning``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from softmax_exp.tracking import DB_NAME, TrackingError, default_artifact_root, get_client, views
from softmax_exp.tracking.links import HOST, experiment_link, ui_record
from softmax_exp.tracking.links import UI_PORT as DEFAULT_PORT
from softmax_exp.util.atomic import write_text
from softmax_exp.util.cli import OneLineParser
from softmax_exp.util.paths import project_root, resolve_path

DEFAULT_EXPERIMENT_ID = "0"  # MLflow's "Default", made with the store: it says nothing of what was trained
# uvicorn (MLflow 3's server) logs a line per request unless told not to
QUIET_SERVER_OPTS = ["--workers", "1", "--uvicorn-opts", "--no-access-log"]


def runs_link(db: str | os.PathLike, port: int = DEFAULT_PORT) -> str:
    """The UI page to open for the SQLite store ``db`` served on ``HOST:port``: the runs table, in
    model-training mode, of :func:`latest_experiment`; the experiments list when there is none."""
    experiment = latest_experiment(db)
    if experiment is None:
        return experiment_link(f"sqlite:///{db}", None, port)
    view = views.EXPERIMENT_VIEW if views.read_view(experiment, views.EXPERIMENT_VIEW) else None
    return experiment_link(f"sqlite:///{db}", experiment.experiment_id, port, view)


def latest_experiment(db: str | os.PathLike):
    """The active experiment of the SQLite store ``db`` trained last: the one of the most recently started
    run, else the most recently created one other than MLflow's Default; None when the store is missing
    (it is not created) or holds neither.

    Two short queries (the experiments, then one run), never a listing of every run.
    """
    if not Path(db).is_file():
        return None

    client = get_client(f"sqlite:///{Path(db).resolve()}")
    experiments, token = [], None
    while True:  # a page is up to 1000 experiments; a store has a few
        page = client.search_experiments(order_by=["creation_time DESC", "experiment_id DESC"],
                                         page_token=token)
        experiments += page
        token = page.token
        if not token:
            break
    if not experiments:
        return None
    last_run = client.search_runs([e.experiment_id for e in experiments], max_results=1,
                                  order_by=["attributes.start_time DESC"])
    if last_run:
        return next(e for e in experiments if e.experiment_id == last_run[0].info.experiment_id)
    made = [e for e in experiments if e.experiment_id != DEFAULT_EXPERIMENT_ID]
    return made[0] if made else None


def db_problem(db: Path) -> str | None:
    """Why ``db`` cannot be served as a SQLite store (a folder, a folder that is missing or is a file),
    in one line with the fix; None if it can (a missing file is a new, empty store)."""
    fix = "give MLFLOW_DB=PATH/mlflow.db (python -m softmax_exp.ui: --db PATH/mlflow.db)"
    if db.is_dir():
        return f"the MLflow store {db} is a folder, not a SQLite file; {fix}"
    if db.exists() and not db.is_file():
        return f"the MLflow store {db} is not a regular file; {fix}"
    if not db.parent.is_dir():
        return f"the folder of the MLflow store {db} does not exist (or is a file); {fix}"
    return None


def port_problem(port: int, host: str = HOST) -> str | None:
    """Why ``mlflow server`` could not listen on ``host:port`` (something answers there, or the port
    cannot be bound), or None if it can. Bound with SO_REUSEADDR, as uvicorn binds, so the TIME_WAIT
    connections of a server just stopped do not count."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((host, port)) == 0:
            return "something is listening there (another mlflow server?)"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "it is in use"
            return e.strerror or str(e)
    return None


def free_port_after(port: int, host: str = HOST, tries: int = 20) -> int:
    """The first port above ``port`` that :func:`port_problem` finds free (``port + 1`` if none is)."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if port_problem(candidate, host) is None:
            return candidate
    return port + 1


def server_command(db: str | os.PathLike, port: int) -> list[str]:
    """``mlflow server`` over ``db`` (runs' files in ``mlartifacts`` beside it) on ``HOST:port``, quiet."""
    uri = f"sqlite:///{Path(db).resolve()}"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    return [str(mlflow_cli), "server", "--backend-store-uri", uri, "--registry-store-uri", uri,
            "--default-artifact-root", default_artifact_root(uri),
            "--host", HOST, "--port", str(port), *QUIET_SERVER_OPTS]


def server_env() -> dict[str, str]:
    """The environment of the server: no job executor (its worker processes are for GenAI jobs); unless
    the caller's environment says otherwise, no usage pings and no starlette warning about the WSGI module
    MLflow imports."""
    return {"MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONWARNINGS": "ignore::UserWarning:mlflow.server.fastapi_app",
            **os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run the server ``command`` until it ends; its exit status (0 after a Ctrl-C or SIGTERM).

    It runs in a process group of its own and gets one signal per Ctrl-C: a terminal sends SIGINT to its
    whole foreground group, and uvicorn, given it twice (directly and forwarded by ``mlflow server``),
    cancels its clean shutdown with a traceback. It gets SIGTERM when this process dies, even by SIGKILL
    (Linux's parent-death signal), so that no server is left holding the port.
    """
    proc = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_dies_with(os.getpid()))
    stopped = []

    def forward(signum, frame) -> None:
        stopped.append(signum)
        if proc.poll() is None:  # mlflow server handles SIGINT and SIGTERM, not SIGHUP
            proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    status = proc.wait()
    return 0 if stopped else (128 - status if status < 0 else status)


@contextlib.contextmanager
def recorded_port(db: Path, port: int):
    """While the server runs: its port and this process in :func:`softmax_exp.tracking.links.ui_record`,
    where a training on the same store reads the port its link is to name; removed at the end (a record
    left by a process killed hard is ignored: its pid is gone)."""
    record = ui_record(db)
    try:
        write_text(record, json.dumps({"port": port, "pid": os.getpid()}))
    except OSError:  # a read-only folder: links name the default port
        yield
        return
    try:
        yield
    finally:
        record.unlink(missing_ok=True)


def _dies_with(parent: int):
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies (``prctl(PR_SET_PDEATHSIG)``, Linux;
    elsewhere nothing), and ends at once if it already has. ``mlflow server`` stops its uvicorn on SIGTERM."""
    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # not Linux
            return
        if os.getppid() != parent:  # the parent died before the call: nothing would tell this child
            os._exit(0)

    return preexec


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 65535; got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m softmax_exp.ui", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("serve", "check the port, print the link, serve the store quietly"),
                            ("link", "print the link to open only")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--db", default=str(project_root() / DB_NAME),
                             help="the SQLite store (default: the project's mlflow.db)")
        command.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port on 127.0.0.1")
    args = parser.parse_args(argv)
    db = resolve_path(args.db)
    problem = db_problem(Path(db))
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    try:
        if args.command == "link":
            try:
                print(runs_link(db, args.port))
            except TrackingError as e:  # not a store, half-made, an older schema: one line, no server
                print(f"error: {e}", file=sys.stderr)
                return 2
            return 0
        problem = port_problem(args.port)
        if problem is not None:
            print(f"error: cannot serve on {HOST}:{args.port}: {problem}; pick another port: "
                  f"make ui UI_PORT={free_port_after(args.port)}", file=sys.stderr)
            return 1
        # looked up in a child: importing mlflow would cost this process, which lives as long as the
        # server, 200 MB
        lookup = subprocess.run([sys.executable, "-m", "softmax_exp.ui", "link", "--db", str(db),
                                 "--port", str(args.port)], stdout=subprocess.PIPE, text=True)
        if lookup.returncode != 0:
            return lookup.returncode
        link = lookup.stdout.strip()
        what = "the runs of the experiment trained last" if "/runs?" in link else "the experiments"
        print(f"MLflow UI: {link}\n  ({what}, in model-training mode; store {db}; Ctrl-C stops it)",
              flush=True)
        with recorded_port(Path(db), args.port):  # a training's printed link finds this port
            return serve(server_command(db, args.port), server_env())
    except KeyboardInterrupt:
        return 130

if __name__ == "__main__":
    sys.exit(main())

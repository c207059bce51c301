"""``python -m chartlib.book --executor``: a bad value or a scheduler that does not answer stops the
build at the top, before any notebook runs; a good value reaches the notebooks' kernels."""
import os
import socket

import pytest

from chartlib.book import build
from chartlib.runs import executors


@pytest.fixture(autouse=True)
def _restore_setting(monkeypatch):
    monkeypatch.delenv(executors.EXECUTOR_ENV, raising=False)
    monkeypatch.setattr(build, "build", lambda *a, **k: pytest.fail("the build must not start"))
    yield
    os.environ.pop(executors.EXECUTOR_ENV, None)        # main() sets it for the kernels


def test_a_bad_executor_stops_the_build_at_the_top(capsys):
    assert build.main(["--executor", "spark", "--profile", "ci"]) == 1
    err = capsys.readouterr().err
    assert "--executor 'spark' is not allowed" in err and "inline, processes, dask-local or dask://host:port" in err


def test_an_unreachable_scheduler_stops_the_build_with_the_address(capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(executors, "CONNECT_SECONDS", 1.0)
    assert build.main(["--executor", f"dask://127.0.0.1:{port}", "--profile", "ci"]) == 1
    err = capsys.readouterr().err
    assert f"no Dask scheduler answered at tcp://127.0.0.1:{port}" in err and "dask scheduler" in err


def test_a_good_executor_is_set_for_the_kernels(monkeypatch):
    started = []
    monkeypatch.setattr(build, "build", lambda *a, **k: started.append(os.environ[executors.EXECUTOR_ENV]))
    assert build.main(["--executor", "inline", "--profile", "ci"]) == 0
    assert started == ["inline"]

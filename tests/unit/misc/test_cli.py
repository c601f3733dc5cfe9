"""The `castmatch` command never shows a person a traceback: an unreachable store is one line
naming it (without its password) and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CASTMATCH = Path(sys.executable).parent / "castmatch"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CASTMATCH), *args], capture_output=True, text=True, env={**os.environ, **env})


class TestUnreachable:
    def test_a_store_that_is_down_is_one_line_with_the_url_and_what_to_do(self):
        out = run("status", CASTMATCH_DATABASE_URL="postgresql+psycopg2://cm:s3cret@127.0.0.1:1/castmatch")
        assert out.returncode == 2 and out.stdout == ""
        [line] = out.stderr.strip().splitlines()
        assert line.startswith("castmatch status: cannot reach the CastMatch store at postgresql+psycopg2://127.0.0.1:1/castmatch")
        assert "Start the database, or point CASTMATCH_DATABASE_URL" in line
        assert "s3cret" not in out.stderr and "Traceback" not in out.stderr

    def test_an_unknown_run_is_one_line(self, pg_url):
        out = run("gates", "--run", "nope", CASTMATCH_DATABASE_URL=pg_url)  # the real store, with no such run
        assert out.returncode == 2 and "no run 'nope' of roadmap 'castmatch': `castmatch runs` lists them" in out.stderr
        assert "Traceback" not in out.stderr

"""jobs.shell_run on real processes: exit codes and output tails, the minimal environment, the
timeout that kills the whole process group (SIGTERM, then SIGKILL), and the user rule."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from jobs import shell_run
from jobs.shell_run import (
    TAIL_BYTES,
    Command,
    exit_error,
    run_command,
    tail_text,
    target_user,
)
from tests.conftest import missing_server

PY = sys.executable
SYSTEM_PY = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


def test_success_keeps_stdout_and_says_exit_0() -> None:
    result = run_command(Command([PY, "-c", "print('backed up 3 tables')"]))
    assert (result.exit_code, result.error, result.stdout) == (0, None, "backed up 3 tables\n")
    assert result.detail().startswith("exit 0 in ")
    assert result.detail().endswith("s\nstdout:\nbacked up 3 tables")


def test_a_failing_command_is_its_exit_code_and_last_stderr_line() -> None:
    script = "import sys; print('partial'); print('warn', file=sys.stderr); sys.exit('disk full')"
    result = run_command(Command([PY, "-c", script]))
    assert result.exit_code == 1
    assert result.error == "exit 1: disk full"
    assert result.stderr == "warn\ndisk full\n"
    assert result.detail().splitlines()[0].startswith("exit 1 in ")
    assert "stderr:\nwarn\ndisk full" in result.detail()


def test_only_the_tail_of_a_long_output_is_kept() -> None:
    script = "import sys; sys.stdout.write('a' * 100000 + 'é' * 2000 + 'END')"
    result = run_command(Command([PY, "-c", script]))
    assert result.stdout.endswith("END")
    assert len(result.stdout.encode()) <= TAIL_BYTES
    assert set(result.stdout[:-3]) == {"é"}  # no half character where the cut fell


def test_no_shell_runs_the_argv() -> None:
    result = run_command(Command(["echo", "$HOME", "; rm -rf /"]))
    assert result.stdout == "$HOME ; rm -rf /\n"


def test_the_environment_is_minimal_plus_the_jobs(tmp_path: Path) -> None:
    worker_env = {"PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8", "SCHEDULER_REDIS_PASSWORD": "x"}
    script = "import os, json; print(json.dumps(dict(os.environ)))"
    result = run_command(
        Command([PY, "-c", script], cwd=str(tmp_path), env={"BACKUP_DIR": "/srv"}),
        worker_env=worker_env,
    )
    seen = eval_json(result.stdout)
    home = pwd.getpwuid(os.geteuid()).pw_dir
    # Python itself may add LC_CTYPE when it coerces a C locale; nothing of the worker's else.
    seen.pop("LC_CTYPE", None)
    assert seen == {
        "PATH": "/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "HOME": home,
        "BACKUP_DIR": "/srv",
    }


def test_cwd_is_where_it_runs(tmp_path: Path) -> None:
    result = run_command(Command([PY, "-c", "import os; print(os.getcwd())"], cwd=str(tmp_path)))
    assert result.stdout == f"{tmp_path}\n"


def test_a_command_that_cannot_start_is_one_line() -> None:
    result = run_command(Command(["/nonexistent/backup.sh", "--full"]))
    assert result.exit_code is None
    assert result.error == "could not start /nonexistent/backup.sh: No such file or directory"
    result = run_command(Command(["true"], cwd="/nonexistent/dir"))
    assert result.error == "could not start true in /nonexistent/dir: No such file or directory"


def test_the_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # The command starts a grandchild and waits for it: both are in the command's group.
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    result = run_command(Command(["sh", "-c", script], timeout_s=0.5))
    assert result.exit_code is None
    assert result.error == "timed out after 0.5s: process group sent SIGTERM"
    assert 0.5 <= result.duration_s < 4
    grandchild = int(pid_file.read_text())
    assert not alive(grandchild)


def test_a_command_ignoring_sigterm_gets_sigkill_after_the_grace() -> None:
    # An ignored signal stays ignored across exec: sleep ignores SIGTERM too.
    command = Command(["sh", "-c", "trap '' TERM; sleep 60"], timeout_s=0.3)
    result = run_command(command, kill_grace_s=0.5)
    assert (
        result.error == "timed out after 0.3s: process group sent SIGTERM, then SIGKILL after 0.5s"
    )
    assert 0.8 <= result.duration_s < 5


def needs_root() -> None:
    """Running as another user needs root: skipped locally without it, failed in CI."""
    if os.geteuid() != 0:
        missing_server("root (to run a command as another user)")


def test_as_root_a_command_runs_as_its_user() -> None:
    needs_root()
    nobody = pwd.getpwnam("nobody")
    result = run_command(Command(["id", "-u"], user="nobody", cwd="/"))
    assert result.stdout == f"{nobody.pw_uid}\n"


def test_without_root_another_user_is_refused_before_anything_runs() -> None:
    needs_root()  # to start a process as nobody
    if not Path(SYSTEM_PY).exists():
        missing_server(f"the system's python3 ({SYSTEM_PY})")
    # The module alone (stdlib only), where nobody may read it, run by the system's Python.
    where = Path(tempfile.mkdtemp(prefix="shell-run-"))
    try:
        where.chmod(0o755)
        shutil.copy(shell_run.__file__, where / "shell_run.py")
        probe = (
            "from shell_run import ShellRefused, target_user\n"
            "try:\n    target_user('root')\nexcept ShellRefused as exc:\n    print(exc)\n"
        )
        done = subprocess.run(
            [SYSTEM_PY, "-c", probe], check=False, user="nobody", capture_output=True, text=True,
            timeout=30, cwd=where, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    finally:
        shutil.rmtree(where)
    assert done.stdout == (
        "user 'root': the worker runs as 'nobody', not root, so it cannot run a command as "
        "another user\n"
    ), done.stderr


def test_an_unknown_user_is_refused() -> None:
    with pytest.raises(Exception, match="user 'no-such-user-here': no such user on this worker"):
        target_user("no-such-user-here")


def test_exit_error_words() -> None:
    assert exit_error(3, "one\ntwo\n\n") == "exit 3: two"
    assert exit_error(2, "") == "exit 2"
    assert exit_error(-11, "") == "killed by SIGSEGV"
    assert tail_text(b"x" * 10) == "x" * 10
    assert tail_text(b"\xff") == "\ufffd"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie not yet reaped by its (dead) parent's reaper counts as gone.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def eval_json(text: str) -> dict[str, str]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value

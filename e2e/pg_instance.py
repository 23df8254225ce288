"""A second, throwaway PostgreSQL server for tests that need two Backends (outage, placement).

Real server from the same Debian binaries as the platform's, in a temporary data dir on its own
port, run as the `postgres` system user when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not found:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql (run make install)")
    return found[-1]


class PostgresInstance:
    def __init__(self, port: int, password: str):
        self.port, self.password = port, password
        self.dir = Path(tempfile.mkdtemp(prefix="tenancy-pg-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen | None = None
        self._as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] if os.getuid() == 0 else []

    def init(self) -> None:
        if self._as:
            shutil.chown(self.dir, "postgres", "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run([*self._as, f"{_bindir()}/initdb", "-D", str(self.data), "-U", "postgres",
                        f"--pwfile={pwfile}", "--auth=scram-sha-256", "--locale=C", "--encoding=UTF8"],
                       check=True, capture_output=True)
        pwfile.unlink()

    def start(self) -> None:
        log = open(self.dir / "postgres.log", "a")
        self.proc = subprocess.Popen([*self._as, f"{_bindir()}/postgres", "-D", str(self.data), "-c",
                                      "listen_addresses=127.0.0.1", "-c", f"port={self.port}", "-c",
                                      "unix_socket_directories="], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run([f"{_bindir()}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"second postgres on {self.port} did not start; see {self.dir}/postgres.log")

    def operator_admin(self) -> dict[str, str]:
        """Make the operator's least-privileged admin here as the platform does (platform/admins/
        postgres-operator.sql); returns the admin Secret's data."""
        password = secrets.token_urlsafe(16)
        sql = Path(__file__).resolve().parent.parent / "platform" / "admins" / "postgres-operator.sql"
        subprocess.run([f"{_bindir()}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                        "-v", "ON_ERROR_STOP=1", "-qAt", "-v", "admin=tenancy_admin", "-v", f"password={password}",
                        "-f", str(sql)], check=True, capture_output=True, env={**os.environ, "PGPASSWORD": self.password})
        return {"username": "tenancy_admin", "password": password}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown; smart (SIGTERM) waits for pooled sessions
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

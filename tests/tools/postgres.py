"""A throwaway PostgreSQL server for the shared-state tests: Debian's package (installed when missing), a new
cluster in a temporary folder, password authentication on a loopback TCP port. No mock: the tests talk to it
through psycopg, as mc_rotation_plan does.

    server = PostgresServer.start()   # server.url: postgresql://mcdev:<password>@127.0.0.1:<port>/mcdev
    server.stop(); server.start_again(); server.close()
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile

USER = "postgres"  # the server refuses to run as root; Debian's package makes this account


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, root, port, password, bindir):
        self.root = root
        self.port = port
        self.password = password
        self.bindir = bindir
        self.data = os.path.join(root, "data")
        self.url = "postgresql://mcdev:%s@127.0.0.1:%d/mcdev" % (password, port)

    def _as_postgres(self, *command):
        subprocess.run(["runuser", "-u", USER, "--"] + list(command), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    @classmethod
    def start(cls):
        bindir = _bin_dir()
        pwd.getpwnam(USER)
        root = tempfile.mkdtemp(prefix="mcdev-pg-")
        os.chmod(root, 0o755)
        password = "pg-" + secrets.token_hex(8)
        server = cls(root, _free_port(), password, bindir)
        pwfile = os.path.join(root, "pw")
        with open(pwfile, "w", encoding="ascii") as handle:
            handle.write(password)
        shutil.chown(root, USER)
        shutil.chown(pwfile, USER)
        server._as_postgres(os.path.join(bindir, "initdb"), "-D", server.data, "-U", "mcdev", "--pwfile", pwfile,
                            "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync")
        os.unlink(pwfile)
        server.start_again()
        subprocess.run([os.path.join(bindir, "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "mcdev",
                        "mcdev"], check=True, env=dict(os.environ, PGPASSWORD=password))
        return server

    def start_again(self):
        self._as_postgres(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-w", "-l",
                          os.path.join(self.root, "log"), "-o",
                          "-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off" % (self.port, self.root), "start")

    def stop(self):
        """Stop at once, as a crashed or unreachable server (connections are cut)."""
        self._as_postgres(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-w", "-m", "immediate", "stop")

    def close(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

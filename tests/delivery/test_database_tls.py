"""TLS to the database under `sslmode=verify-full`, against a real PostgreSQL with ssl on.

A throwaway CA signs the server's certificate; a second CA stands in for the RDS bundle of a
server we must not trust. The server is a temporary cluster made with initdb and pg_ctl of the
machine's PostgreSQL 15 binaries (the embedded pgserver is built without SSL), so the test
never touches a running system server. PG_BIN names another binary folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from order_service.entrypoints.local_servers import free_port
from order_service.settings import Settings

BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class TlsServer:
    port: int
    server_ca: Path  # signed the server's certificate
    other_ca: Path  # a CA that did not

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "db_host": "localhost",
            "db_port": self.port,
            "db_user": "postgres",
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    for ca in ("server-ca", "other-ca"):
        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN=order-service test {ca}",
            "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
            cwd=folder,
        )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=folder,
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-days", "2",
        "-CA", "server-ca.crt", "-CAkey", "server-ca.key", "-CAcreateserial",
        "-extfile", "san.ext", "-out", "server.crt",
        cwd=folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    if not (BIN / "initdb").exists() or shutil.which("openssl") is None:
        pytest.skip(f"needs openssl and PostgreSQL server binaries in {BIN} (set PG_BIN)")
    folder = Path(tempfile.mkdtemp(prefix="order-service-tls-"))
    # PostgreSQL refuses to run as root: run it as the packages' own postgres user.
    user = "postgres" if os.geteuid() == 0 else None
    make_certificates(folder)
    data = folder / "data"
    if user is not None:
        pwd.getpwnam(user)  # KeyError: no such user
        shutil.chown(folder, user)
        for name in ("server.crt", "server.key"):
            shutil.chown(folder / name, user)
    (folder / "server.key").chmod(0o600)
    run = {"check": True, "capture_output": True, "user": user}
    subprocess.run([BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust"], **run)
    port = free_port()
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"ssl = on\nssl_cert_file = '{folder / 'server.crt'}'\n"
            f"ssl_key_file = '{folder / 'server.key'}'\n"
            f"listen_addresses = '127.0.0.1'\nport = {port}\n"
            f"unix_socket_directories = '{folder}'\n"
        )
    pg_ctl = [BIN / "pg_ctl", "-D", data, "-w"]
    started = subprocess.run([*pg_ctl, "-l", folder / "log", "start"], **{**run, "check": False})
    if started.returncode != 0:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL with ssl did not start: {started.stderr!r} {log}")
    try:
        yield TlsServer(port, folder / "server-ca.crt", folder / "other-ca.crt")
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], **run)
        shutil.rmtree(folder, ignore_errors=True)


async def test_verify_full_refuses_a_certificate_from_an_unknown_ca(tls_server):
    settings = tls_server.settings(
        db_sslmode="verify-full", db_sslrootcert=str(tls_server.other_ca)
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(settings.database_dsn())


async def test_verify_full_accepts_the_ca_that_signed_it(tls_server):
    # The positive control: the same settings with the right bundle connect, over TLS.
    settings = tls_server.settings(
        db_sslmode="verify-full", db_sslrootcert=str(tls_server.server_ca)
    )
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()


async def test_verify_full_checks_the_host_name_too(tls_server):
    # The certificate names only "localhost": the right CA is not enough for 127.0.0.1 under
    # verify-full, while verify-ca (which checks no name) connects.
    by_address = {"db_host": "127.0.0.1", "db_sslrootcert": str(tls_server.server_ca)}
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(
            tls_server.settings(db_sslmode="verify-full", **by_address).database_dsn()
        )
    conn = await asyncpg.connect(
        tls_server.settings(db_sslmode="verify-ca", **by_address).database_dsn()
    )
    await conn.close()


def test_local_settings_add_no_tls_parameters():
    dsn = Settings(db_host="localhost", db_user="postgres").database_dsn()
    assert "ssl" not in dsn

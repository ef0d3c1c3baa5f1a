"""The deployment files (deploy/) against a running cluster: the nginx configuration in front of
it (TLS, websockets), the Procfile's processes, the systemd units running the same commands, and
a backup restored into a new database with the data found in it."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import socket as socket_module
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from websockets.sync.client import connect

from tests.cluster.conftest import _database, _wait
from tests.servers import ROOT, free_port

pytestmark = pytest.mark.cluster
DEPLOY = ROOT / "deploy"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light)"
)
def test_the_nginx_configuration_serves_the_cluster_over_tls_websockets_included(cluster, tmp_path):
    cert, key = self_signed(tmp_path, "platform.example.com")
    http_port, tls_port = free_port(), free_port()
    ws_address = cluster.a.ws.removeprefix("ws://")
    site = (DEPLOY / "nginx.conf").read_text()
    for old, new in (
        ("127.0.0.1:8000", cluster.a.http.removeprefix("http://")),
        ("127.0.0.1:8001", ws_address),
        ("/etc/ssl/platform/fullchain.pem", str(cert)),
        ("/etc/ssl/platform/privkey.pem", str(key)),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{tls_port} ssl"),
    ):
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "platform.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\nhttp {\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {tmp_path}/{kind};\n" for kind in TEMP_PATHS)
        + f"  include {tmp_path}/platform.conf;\n}}\n"
    )  # fmt: skip
    proc = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"https://127.0.0.1:{tls_port}"
        host = {"Host": "platform.example.com"}
        with httpx.Client(verify=False, headers=host, timeout=5) as client:  # noqa: S501 - self-signed
            answer = None
            for _ in range(100):
                try:
                    answer = client.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None:
                        pytest.fail(proc.stdout.read().decode())
                    time.sleep(0.1)
            assert (
                answer is not None
                and answer.status_code == 200
                and answer.http_version in ("HTTP/1.1", "HTTP/2")
            )
            redirect = httpx.get(f"http://127.0.0.1:{http_port}/healthz", headers=host)
            assert redirect.status_code == 301
            assert redirect.headers["Location"] == "https://platform.example.com/healthz"
            # an API call and a page: the Host the client used reaches the platform (the upstream's
            # name did, a 400 from ALLOWED_HOSTS; /healthz alone skips that check)
            token = cluster.token(cluster.a)
            me = client.get(f"{base}/api/v1/auth/whoami/", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert client.get(f"{base}/ui/").status_code == 302  # to the sign-in page
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        # The platform's host name in the URI (its Host header), the connection to this nginx
        with connect(
            f"wss://platform.example.com:{tls_port}/ws/config/?access_token={token}",
            sock=socket_module.create_connection(("127.0.0.1", tls_port)), ssl=context,
        ) as socket:  # fmt: skip
            socket.send(json.dumps({"type": "ping"}))
            kinds = {json.loads(socket.recv(timeout=10))["type"] for _ in range(2)}
        assert "pong" in kinds
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=10)


def procfile() -> dict[str, str]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


def test_the_procfile_processes_start_and_answer(cluster, tmp_path):
    env = {
        **cluster.env,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(free_port()),
        "WS_PORT": str(free_port()),
        "WEB_CONCURRENCY": "1",
        "PLATFORM_VAR_DIR": str(tmp_path),
    }
    processes = procfile()
    assert set(processes) == {"release", "web", "ws", "worker", "beat"}
    assert subprocess.run(processes["release"], shell=True, env=env, cwd=ROOT, timeout=300).returncode == 0  # noqa: S602
    started = [
        subprocess.Popen(processes[kind], shell=True, env=env, cwd=ROOT, start_new_session=True)  # noqa: S602
        for kind in ("web", "ws")
    ]
    try:
        for port in (env["PORT"], env["WS_PORT"]):
            _wait(f"http://127.0.0.1:{port}/healthz", started)
    finally:
        for proc in started:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)


def normalized(command: str) -> str:
    """A command as the Procfile and the units should both say it."""
    command = re.sub(r"^\S*python ", "python ", command.strip())
    return re.sub(r"\$\{(\w+):-[^}]*\}", r"${\1}", command)


def test_the_systemd_units_run_the_procfile_commands():
    processes = procfile()
    for kind in ("web", "ws", "worker", "beat"):
        unit = (DEPLOY / "systemd" / f"platform-{kind}.service").read_text()
        exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
        assert normalized(exec_start.removeprefix("ExecStart=")) == normalized(processes[kind]), kind
        assert "EnvironmentFile=/etc/platform/platform.env" in unit
    variables = (DEPLOY / "systemd" / "platform.env").read_text()
    for name in ("HOST", "PORT", "WS_PORT", "WEB_CONCURRENCY", "WORKER_CONCURRENCY", "PLATFORM_VAR_DIR"):
        assert f"\n{name}=" in variables, name


def test_a_backup_restores_into_a_new_database_with_the_data(cluster, tmp_path):
    headers = {"Authorization": f"Bearer {cluster.token(cluster.a)}"}
    created = httpx.post(
        f"{cluster.a.http}/api/v1/config/namespaces/", json={"name": "backed-up"}, headers=headers
    )
    assert created.status_code == 201
    dump = tmp_path / "platform.dump"
    source = cluster.env["DATABASE_URL"]
    subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), source], check=True, timeout=300)
    name = f"{urlsplit(source).path.strip('/')}_restored"
    target = _database(source, name)
    try:
        subprocess.run(["pg_restore", "--no-owner", "--dbname", target, str(dump)], check=True, timeout=300)
        import psycopg

        with psycopg.connect(target) as conn:
            found = conn.execute(
                "SELECT count(*) FROM config_app_namespace WHERE name = 'backed-up'"
            ).fetchone()
        assert found == (1,)
    finally:
        _database(urlunsplit(urlsplit(source)._replace(path="/postgres")), name, drop=True)

"""deploy/: the systemd unit passes `systemd-analyze verify`, the proxy examples pass their own
checkers, and the container file keeps its promises. Each tool's check is skipped, with a message,
where the tool is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here (Debian: apt-get install {name.split('-')[0]}); check not run")
    return path


def test_systemd_unit_verifies(tmp_path: Path):
    """`verify` insists the ExecStart binary exists, and /opt/loaphuong/venv is not on a test machine:
    so a copy of the unit, with only ExecStart's interpreter replaced by the running python, is
    verified (under the same file name, which verify uses as the unit name). Any message fails it:
    verify exits 0 even on an unknown key."""
    analyze = tool("systemd-analyze")
    unit = (DEPLOY / "loaphuong.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/loaphuong/venv/bin/python -m bot run" in unit
    copy = tmp_path / "loaphuong.service"
    copy.write_text(unit.replace("ExecStart=/opt/loaphuong/venv/bin/python", f"ExecStart={sys.executable}"),
                    encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stderr + done.stdout
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
    assert settings["StateDirectory"] == "loaphuong" and settings["Restart"] == "on-failure"
    assert "DATABASE_URL=sqlite:////var/lib/loaphuong/bot.sqlite3" in unit
    assert settings["EnvironmentFile"] == "/etc/loaphuong/env"
    for hardening in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert hardening in settings


def test_caddyfile_validates_and_proxies_only_webhooks_and_admin(tmp_path: Path):
    config = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert "/telegram/webhook /zalo/webhook /zalo-oa/webhook" in config and "handle /admin/*" in config
    assert "/metrics" not in _directives(config) and "/healthz" not in _directives(config)
    caddy = tool("caddy")
    done = subprocess.run([caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                          capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": ""})
    assert done.returncode == 0, done.stderr


def test_nginx_example_passes_nginx_t(tmp_path: Path):
    config = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "/metrics" not in _directives(config) and "/healthz" not in _directives(config)
    nginx = tool("nginx")
    openssl = tool("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-days", "1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    live = "/etc/letsencrypt/live/loaphuong.example.vn/"
    site = config.replace(live + "fullchain.pem", str(tmp_path / "cert.pem")).replace(
        live + "privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{kind}_temp_path {tmp_path};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "main.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp} include {tmp_path}/site.conf; }}\n", encoding="utf-8")
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "main.conf")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_containerfile_is_slim_non_root_one_volume_each_and_checks_health_with_python():
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^USER loaphuong$", text, re.M)
    assert 'VOLUME ["/data", "/content"]' in text
    healthcheck = text[text.index("HEALTHCHECK"):].split("\n\n", 1)[0]
    assert '"python", "-c"' in healthcheck and "/healthz" in healthcheck and "curl" not in healthcheck
    assert "DATABASE_URL=sqlite:////data/bot.sqlite3" in text and "ONE replica" in text


def _directives(config: str) -> str:
    """The config without its comments."""
    return "\n".join(line.split("#", 1)[0] for line in config.splitlines())

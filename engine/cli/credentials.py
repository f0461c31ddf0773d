"""Registry credentials where the docker CLI keeps them: $DOCKER_CONFIG/config.json (default
~/.docker/config.json), "auths" holding base64 user:password per registry, or a credential
helper (docker-credential-<name>, named by "credHelpers" for one registry or "credsStore" for
all) spoken to as docker does: `get`/`erase` with the server on stdin, `store` with JSON."""
from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

HUB_KEY = "https://index.docker.io/v1/"     # docker's key for Docker Hub in config.json


class CredentialsError(Exception):
    pass


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(Path.home(), ".docker")
    return Path(base) / "config.json"


def _load() -> dict:
    try:
        data = json.loads(config_path().read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise CredentialsError(f"{config_path()}: invalid JSON: {e}") from None
    return data if isinstance(data, dict) else {}


def _save(data: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent="\t")
    os.replace(tmp, path)


def key_for(registry: str) -> str:
    """config.json's key for a registry host (Docker Hub's is its v1 URL, as docker's)."""
    return HUB_KEY if registry in ("docker.io", "index.docker.io", "registry-1.docker.io") \
        else registry


def _helper(data: dict, key: str) -> str | None:
    return (data.get("credHelpers") or {}).get(key) or data.get("credsStore") or None


def _run_helper(name: str, action: str, stdin: str) -> str:
    try:
        p = subprocess.run([f"docker-credential-{name}", action], input=stdin.encode(),
                           capture_output=True, timeout=60)
    except FileNotFoundError:
        raise CredentialsError(f"credential helper docker-credential-{name} is not on "
                               "PATH") from None
    out = p.stdout.decode().strip()
    if p.returncode != 0:
        raise CredentialsError(f"docker-credential-{name} {action}: "
                               f"{out or p.stderr.decode().strip()}")
    return out


def get(registry: str) -> dict:
    """An AuthConfig (username, password or identitytoken, serveraddress), {} when none."""
    data = _load()
    key = key_for(registry)
    helper = _helper(data, key)
    if helper:
        try:
            out = _run_helper(helper, "get", key)
        except CredentialsError as e:
            if "credentials not found" in str(e).lower():
                return {}
            raise
        doc = json.loads(out or "{}")
        user, secret = doc.get("Username", ""), doc.get("Secret", "")
        if user == "<token>":
            return {"identitytoken": secret, "serveraddress": key}
        return {"username": user, "password": secret, "serveraddress": key}
    entry = (data.get("auths") or {}).get(key) or {}
    out = {"serveraddress": key}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        out.update(username=user, password=password)
    if entry.get("identitytoken"):
        out["identitytoken"] = entry["identitytoken"]
    return out if len(out) > 1 else {}


def store(registry: str, username: str, password: str) -> None:
    data = _load()
    key = key_for(registry)
    helper = _helper(data, key)
    if helper:
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username,
                                                 "Secret": password}))
        data.setdefault("auths", {})[key] = {}
    else:
        raw = base64.b64encode(f"{username}:{password}".encode()).decode()
        data.setdefault("auths", {})[key] = {"auth": raw}
    _save(data)


def erase(registry: str) -> bool:
    """Forget a registry's credentials; False when there were none."""
    data = _load()
    key = key_for(registry)
    helper = _helper(data, key)
    had = key in (data.get("auths") or {})
    if helper:
        try:
            _run_helper(helper, "erase", key)
            had = True
        except CredentialsError:
            pass
    if had:
        (data.get("auths") or {}).pop(key, None)
        _save(data)
    return had


def header(registry: str) -> str:
    """X-Registry-Auth for a registry: base64url JSON of its AuthConfig ({} when none)."""
    return base64.urlsafe_b64encode(json.dumps(get(registry)).encode()).decode()

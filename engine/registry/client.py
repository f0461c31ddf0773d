"""The OCI distribution API, spoken to one repository of one registry.

Each request carries what the registry asked for: nothing, Basic credentials, or a bearer token
for the repository's scope (fetched from the realm its 401 named, once per scope). The endpoint
(https, or http for an insecure registry that does not speak TLS) is settled by the first request.
Blobs are streamed into a partial file and hashed as they arrive; a connection that breaks or a
registry that stops sending is retried from where it stopped (Range) when the registry allows.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from . import auth, media
from .transport import Endpoint, RegistryConfig

Progress = Callable[[int, int], Awaitable[None]]     # (bytes so far, total)

RETRIES = 3
CHUNK = 1 << 20
_NETWORK_ERRORS = (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                   aiohttp.ClientOSError, asyncio.TimeoutError, ConnectionResetError)


class RegistryError(Exception):
    """A registry's refusal or a transfer that failed: the message is what the user sees."""

    def __init__(self, message: str, status: int = 500, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class DigestMismatch(RegistryError):
    pass


class Client:
    def __init__(self, config: RegistryConfig, host: str, repository: str,
                 creds: auth.Credentials | None = None, *, actions: str = "pull",
                 connect_timeout: float = 30, read_timeout: float = 60,
                 endpoint: Endpoint | None = None):
        self.config = config
        self.host = host
        self.repository = repository            # path inside the registry: library/busybox
        self.creds = creds or auth.Credentials()
        self.actions = actions                  # "pull" or "pull,push"
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                             sock_connect=connect_timeout,
                                             sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._pinned = endpoint                 # a mirror: this endpoint and no other
        self._endpoint: Endpoint | None = None
        self._challenge: auth.Challenge | None = None
        self._tokens: dict[str, auth.Token] = {}

    async def __aenter__(self) -> "Client":
        # trust_env: HTTP(S)_PROXY and NO_PROXY from berthd's environment, as dockerd's
        # registry client honours them
        self._session = aiohttp.ClientSession(timeout=self.timeout, auto_decompress=False,
                                              trust_env=True)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session:
            await self._session.close()

    # endpoint and auth
    async def _settle_endpoint(self) -> Endpoint:
        if self._endpoint:
            return self._endpoint
        candidates = [self._pinned] if self._pinned else self.config.endpoints(self.host)
        last: Exception | None = None
        for ep in candidates:
            try:
                async with self._session.get(ep.url + "/v2/", ssl=ep.ssl) as resp:
                    await resp.read()
                    self._challenge = auth.parse_challenge(resp.headers.get("WWW-Authenticate"))
                self._endpoint = ep
                return ep
            except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, ssl.SSLError,
                    aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                    asyncio.TimeoutError) as e:
                last = e
        raise RegistryError(f"Get \"{candidates[-1].url}/v2/\": {_why(last)}", 500)

    def scope(self, repository: str | None = None, actions: str | None = None) -> str:
        return f"repository:{repository or self.repository}:{actions or self.actions}"

    async def _auth_header(self, scope: str | None) -> dict[str, str]:
        ch = self._challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            if self.creds.anonymous:
                return {}
            return {"Authorization": self.creds.basic_header()}
        if ch.scheme == "bearer":
            if self.creds.registry_token:
                return {"Authorization": "Bearer " + self.creds.registry_token}
            key = scope or ""
            token = self._tokens.get(key)
            if token is None or token.expires < asyncio.get_running_loop().time():
                token = self._tokens[key] = await self._fetch_token(scope)
            return {"Authorization": "Bearer " + token.value}
        return {}

    async def _fetch_token(self, scope: str | None) -> auth.Token:
        ch = self._challenge
        realm = ch.params.get("realm")
        if not realm:
            raise RegistryError("the registry asked for a bearer token without naming a realm")
        query: list[tuple[str, str]] = []
        if ch.params.get("service"):
            query.append(("service", ch.params["service"]))
        # one scope parameter per scope, as docker asks (a mount needs two repositories)
        query += [("scope", one) for one in (scope or "").split(" ") if one]
        headers = {}
        if self.creds.identity_token:
            # docker's refresh-token grant: a POST of the form to the realm
            form = [("grant_type", "refresh_token"),
                    ("refresh_token", self.creds.identity_token), ("client_id", "berth"), *query]
            call = self._session.post(realm, data=form, ssl=self._realm_ssl(realm))
        else:
            if not self.creds.anonymous:
                headers["Authorization"] = self.creds.basic_header()
                query.append(("account", self.creds.username))
            call = self._session.get(realm, params=query, headers=headers,
                                     ssl=self._realm_ssl(realm))
        try:
            async with call as resp:
                body = await resp.read()
                if resp.status in (401, 403):
                    words = _registry_words(body) or "incorrect username or password"
                    if not words.startswith("unauthorized"):
                        words = "unauthorized: " + words
                    raise RegistryError(words, 401, "UNAUTHORIZED")
                if resp.status != 200:
                    raise RegistryError(f"token server {realm} answered {resp.status}", 500)
                try:
                    return auth.token_from_response(json.loads(body))
                except (ValueError, auth.AuthError) as e:
                    raise RegistryError(f"token server {realm}: {e}", 500) from None
        except aiohttp.ClientError as e:
            raise RegistryError(f"Get \"{realm}\": {_why(e)}", 500) from None

    def _realm_ssl(self, realm: str):
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme != "https":
            return None
        host = parts.netloc
        return self.config.ssl_context(host, verify=not self.config.is_insecure(host))

    async def request(self, method: str, path: str, *, scope: str | None = None,
                      headers: dict | None = None, data=None, params=None,
                      read_body: bool = True) -> tuple[aiohttp.ClientResponse, bytes]:
        """One API call, retried once with fresh credentials after a 401. path is relative to
        /v2/ or an absolute URL (an upload's Location). The body is read unless read_body is
        False (then the caller must release the response)."""
        ep = await self._settle_endpoint()
        url = path if "://" in path else ep.url + "/v2/" + path
        scope = scope or self.scope()
        for attempt in range(2):
            hdrs = dict(headers or {})
            hdrs.update(await self._auth_header(scope))
            resp = await self._session.request(method, url, headers=hdrs, data=data,
                                               params=params, ssl=ep.ssl)
            if resp.status == 401 and attempt == 0 and isinstance(data, (bytes, type(None))):
                await resp.read()
                resp.release()
                fresh = auth.parse_challenge(resp.headers.get("WWW-Authenticate"))
                if fresh is None:
                    break
                self._challenge = fresh
                self._tokens.pop(scope, None)
                continue
            if not read_body:
                return resp, b""
            body = await resp.read()
            resp.release()
            return resp, body
        body = await resp.read()
        resp.release()
        return resp, body

    async def check_credentials(self) -> None:
        """docker login's check: a token from the realm with the credentials, or /v2/ with
        Basic auth, as the registry's challenge asks; RegistryError (401) when refused."""
        ep = await self._settle_endpoint()
        ch = self._challenge
        if ch is None:
            return          # the registry asks for nothing
        if ch.scheme == "bearer":
            await self._fetch_token(None)
            return
        resp, _ = await self.request("GET", "", scope="")
        if resp.status != 200:
            raise RegistryError(f"login attempt to {ep.url}/v2/ failed with status: "
                                f"{resp.status} {resp.reason}", 401, "UNAUTHORIZED")

    # manifests
    async def get_manifest(self, ref: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, by tag or digest. The digest is
        computed here; a digest reference must match it."""
        resp, _ = await self.request("GET", f"{self.repository}/manifests/{ref}",
                                     headers={"Accept": media.ACCEPT}, read_body=False)
        try:
            if resp.status != 200:
                body = await resp.content.read(65536)
                raise self.error(resp.status, body, what=ref)
            length = resp.content_length
            if length is not None and length > media.MAX_MANIFEST_BYTES:
                raise media.ManifestError(f"manifest too large: {length} bytes (limit "
                                          f"{media.MAX_MANIFEST_BYTES})")
            data = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                data += chunk
                if len(data) > media.MAX_MANIFEST_BYTES:
                    raise media.ManifestError(f"manifest too large: over "
                                              f"{media.MAX_MANIFEST_BYTES} bytes")
            ctype = resp.headers.get("Content-Type", "")
        finally:
            resp.release()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ref.startswith("sha256:") and ref != digest:
            raise DigestMismatch(f"manifest digest mismatch: asked for {ref}, got {digest}", 500)
        return bytes(data), ctype, digest

    async def put_manifest(self, ref: str, data: bytes, media_type: str) -> str:
        resp, body = await self.request("PUT", f"{self.repository}/manifests/{ref}",
                                        headers={"Content-Type": media_type}, data=data,
                                        scope=self.scope(actions="pull,push"))
        if resp.status not in (200, 201, 202):
            raise self.error(resp.status, body, what=ref)
        return resp.headers.get("Docker-Content-Digest") or \
            "sha256:" + hashlib.sha256(data).hexdigest()

    async def tags(self) -> list[str]:
        resp, body = await self.request("GET", f"{self.repository}/tags/list")
        if resp.status != 200:
            raise self.error(resp.status, body)
        return list(json.loads(body).get("tags") or [])

    # blobs
    async def fetch_blob(self, digest: str, size: int, partial: Path,
                         progress: Progress | None = None) -> None:
        """Stream a blob into partial, hashing it as it arrives (an earlier try's bytes there
        are kept and the rest asked for with Range), and check its sha256 and size: on a
        mismatch partial is removed and DigestMismatch raised. A transfer that breaks or stalls
        is retried RETRIES times from where it stopped."""
        tries = 0
        while True:
            try:
                hexd = await self._fetch_once(digest, size, partial, progress)
                break
            except _NETWORK_ERRORS as e:
                tries += 1
                if tries > RETRIES:
                    raise RegistryError(f"failed to fetch blob {digest}: {_why(e)} (after "
                                        f"{RETRIES} retries)", 500) from None
                await asyncio.sleep(0.2 * tries)
            except DigestMismatch:
                partial.unlink(missing_ok=True)
                raise
        got = partial.stat().st_size
        if got != size or hexd != digest.split(":", 1)[1]:
            partial.unlink(missing_ok=True)
            raise DigestMismatch(f"failed to verify blob {digest}: got sha256:{hexd} "
                                 f"({got} bytes, expected {size})", 500)

    async def _fetch_once(self, digest: str, size: int, partial: Path,
                          progress: Progress | None) -> str:
        """One GET of the blob; returns the sha256 hex of all of partial."""
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:
            partial.unlink()
            have = 0
        if have and have == size:
            return await asyncio.to_thread(_sha256_file, partial)
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp, _ = await self.request("GET", f"{self.repository}/blobs/{digest}",
                                     headers=headers, read_body=False)
        try:
            if resp.status == 200:
                have = 0             # no ranges here: start again
            elif resp.status != 206:
                body = await resp.content.read(65536)
                raise self.error(resp.status, body, what=digest)
            h = await asyncio.to_thread(_sha256_file, partial, have) if have else \
                hashlib.sha256()
            with open(partial, "r+b" if have else "wb") as f:
                f.seek(have)
                f.truncate()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    have += len(chunk)
                    if have > size:
                        raise DigestMismatch(f"failed to verify blob {digest}: more than "
                                             f"its {size} bytes", 500)
                    f.write(chunk)
                    h.update(chunk)
                    if progress:
                        await progress(have, size)
            if have < size:
                raise aiohttp.ClientPayloadError(f"blob ended after {have} of {size} bytes")
            return h.hexdigest()
        finally:
            resp.release()

    async def blob_exists(self, digest: str) -> bool:
        resp, body = await self.request("HEAD", f"{self.repository}/blobs/{digest}",
                                        scope=self.scope(actions="pull,push"))
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise self.error(resp.status, body, what=digest)

    async def mount_blob(self, digest: str, source: str) -> str | None:
        """Ask the registry to mount a blob from another repository. Returns None when it did,
        else the upload URL the registry opened instead (where it could not mount)."""
        scope = f"{self.scope(actions='pull,push')} repository:{source}:pull"
        resp, body = await self.request("POST", f"{self.repository}/blobs/uploads/",
                                        params={"mount": digest, "from": source}, scope=scope)
        if resp.status == 201:
            return None
        if resp.status == 202:
            return self._location(resp)
        raise self.error(resp.status, body, what=digest)

    async def start_upload(self) -> str:
        resp, body = await self.request("POST", f"{self.repository}/blobs/uploads/",
                                        scope=self.scope(actions="pull,push"))
        if resp.status != 202:
            raise self.error(resp.status, body)
        return self._location(resp)

    async def upload_blob(self, digest: str, path: Path, size: int, location: str | None = None,
                          progress: Progress | None = None, chunk: int = 64 << 20) -> None:
        """Upload a blob: one streamed PUT when it is at most chunk bytes, else streamed
        PATCHes of chunk bytes (Content-Range) and a closing PUT. The file is read as it is
        sent, never whole into memory."""
        scope = self.scope(actions="pull,push")
        location = location or await self.start_upload()
        octets = {"Content-Type": "application/octet-stream"}
        if size <= chunk:
            resp, body = await self.request(
                "PUT", _with_query(location, digest=digest), scope=scope,
                headers={**octets, "Content-Length": str(size)},
                data=_file_piece(path, 0, size, size, progress))
            if resp.status != 201:
                raise self.error(resp.status, body, what=digest)
            return
        sent = 0
        while sent < size:
            n = min(chunk, size - sent)
            resp, body = await self.request(
                "PATCH", location, scope=scope, data=_file_piece(path, sent, n, size, progress),
                headers={**octets, "Content-Range": f"{sent}-{sent + n - 1}",
                         "Content-Length": str(n)})
            if resp.status != 202:
                raise self.error(resp.status, body, what=digest)
            location = self._location(resp)
            sent += n
        resp, body = await self.request("PUT", _with_query(location, digest=digest), scope=scope,
                                        headers={"Content-Length": "0"})
        if resp.status != 201:
            raise self.error(resp.status, body, what=digest)

    def _location(self, resp: aiohttp.ClientResponse) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError("the registry opened an upload without a Location", 500)
        return urllib.parse.urljoin(self._endpoint.url + "/", loc)

    # errors
    def error(self, status: int, body: bytes, what: str = "") -> RegistryError:
        words = _registry_words(body)
        name = f"{self.host}/{self.repository}"
        denied = status in (401, 403) or (status == 404 and b"NAME_UNKNOWN" in body)
        if denied and "push" not in self.actions:
            # dockerd's words, and its status: a not-found error (so the CLI does not prompt)
            words = words or "authentication required"
            return RegistryError(f"pull access denied for {name}, repository does not exist or "
                                 f"may require 'docker login': {words}", 404, "DENIED")
        if status == 401:
            return RegistryError(words or "unauthorized: authentication required", 401)
        if status == 403:
            return RegistryError(f"denied: {words or 'requested access to the resource is denied'}",
                                 403)
        if status == 404:
            return RegistryError(f"manifest for {name}:{what} not found: "
                                 f"{words or 'manifest unknown'}" if what and ":" not in what
                                 else f"{what} not found: {words or 'not found'}", 404)
        return RegistryError(f"{words or 'the registry answered ' + str(status)}",
                             500 if status < 500 else 502)


def _registry_words(body: bytes) -> str:
    """The registry's errors as docker shows them: 'manifest unknown: manifest unknown'."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not errs:
        return (doc.get("details") or doc.get("message") or "") if isinstance(doc, dict) else ""
    parts = []
    for e in errs:
        code = str(e.get("code", "")).lower().replace("_", " ")
        msg = e.get("message") or ""
        parts.append(f"{code}: {msg}" if code else msg)
    return "; ".join(parts)


async def _file_piece(path: Path, start: int, length: int, total: int,
                      progress: Progress | None):
    """length bytes of path from start, read as they are sent; progress in the whole blob."""
    with open(path, "rb") as f:
        f.seek(start)
        left, done = length, start
        while left > 0:
            piece = f.read(min(CHUNK, left))
            if not piece:
                raise RegistryError(f"{path.name} ended after {done} of {total} bytes", 500)
            yield piece
            left -= len(piece)
            done += len(piece)
            if progress:
                await progress(done, total)


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


def _sha256_file(path: Path, limit: int | None = None):
    """The sha256 of a file (hex), or with limit the hash object of its first limit bytes."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while left is None or left > 0:
            chunk = f.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest() if limit is None else h


def _why(e: Exception | None) -> str:
    if e is None:
        return "unknown error"
    if isinstance(e, asyncio.TimeoutError):
        return "timeout: the registry stopped answering"
    text = str(e) or type(e).__name__
    return text[:1].lower() + text[1:]


def cleanup_partial(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

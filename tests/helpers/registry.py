"""Debian's docker-registry (distribution 2.8) on 127.0.0.1 for the registry tests, three ways:
plain HTTP, TLS with a private CA plus htpasswd basic auth, and behind a token server the test
runs (an aiohttp app in a thread that signs RS256 JWTs with a certificate the registry trusts).
Also: images made by hand and pushed with skopeo (OCI layouts), and bcrypt htpasswd lines."""
from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

from aiohttp import web

from engine.registry import media
from tests.helpers.netns import free_loopback_port

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
USER, PASSWORD = "berthtest", "s3cret-pass"


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry, as docker-registry's htpasswd auth reads it: with the bcrypt
    package where installed, else glibc's crypt ($2b$ on Debian; Python's crypt module is
    deprecated but present up to 3.12)."""
    try:
        import bcrypt
        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}"
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """An aiohttp token server in a thread: GET /token?service=&scope= with optional Basic auth
    (USER/PASSWORD; anonymous gets pull only), answering {"token": JWT}."""

    def __init__(self, root: Path, service: str = "berth-test-registry"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        self.service, self.issuer = service, "berth-test-issuer"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = root / "token-signer.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.port = free_loopback_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.requests: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _sign(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(self.der).decode()]}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64url(sig)}"

    async def _token(self, request):
        from aiohttp import web
        user = None
        hdr = request.headers.get("Authorization", "")
        if hdr.startswith("Basic "):
            u, _, p = base64.b64decode(hdr[6:]).decode().partition(":")
            if (u, p) != (USER, PASSWORD):
                return web.json_response({"details": "incorrect username or password"},
                                         status=401)
            user = u
        access = []
        for scope in request.query.getall("scope", []):
            for part in scope.split(" "):
                kind, _, rest = part.partition(":")
                name, _, actions = rest.rpartition(":")
                allowed = [a for a in actions.split(",") if user or a == "pull"]
                access.append({"type": kind, "name": name, "actions": allowed})
        self.requests.append({"user": user, "scope": request.query.getall("scope", [])})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + 300,
                  "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        return web.json_response({"token": self._sign(claims), "expires_in": 300})

    def _run(self) -> None:
        from aiohttp import web
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def down():
            await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class Registry:
    """docker-registry serve in a temp dir. mode: 'plain', 'tls' (CA + htpasswd) or 'token'."""

    def __init__(self, mode: str = "plain", client_certs: bool = False):
        """client_certs (tls only): the registry requires a client certificate signed by its
        CA; client/cert.pem and client/key.pem under root are one."""
        self.mode = mode
        self.root = Path(tempfile.mkdtemp(prefix="bt-reg-", dir="/tmp"))
        self.port = free_loopback_port()
        self.host = f"127.0.0.1:{self.port}"
        self.token: TokenServer | None = None
        self.ca_pem: Path | None = None
        self.proc: subprocess.Popen | None = None
        cfg = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
               "storage": {"filesystem": {"rootdirectory": str(self.root / "data")},
                           "delete": {"enabled": True}},
               "http": {"addr": self.host, "secret": "berth-test"}}
        if mode == "tls":
            from engine import tlscerts
            tlscerts.make_ca(self.root / "ca", "berth test registry CA")
            tlscerts.make_leaf(self.root / "server", self.root / "ca", "registry",
                               server_names=["127.0.0.1", "localhost"])
            self.ca_pem = self.root / "ca" / "ca.pem"
            cfg["http"]["tls"] = {"certificate": str(self.root / "server" / "cert.pem"),
                                  "key": str(self.root / "server" / "key.pem")}
            if client_certs:
                tlscerts.make_leaf(self.root / "client", self.root / "ca", "client",
                                   client=True)
                cfg["http"]["tls"]["clientcas"] = [str(self.ca_pem)]
            (self.root / "htpasswd").write_text(htpasswd_line(USER, PASSWORD) + "\n")
            cfg["auth"] = {"htpasswd": {"realm": "berth-test", "path": str(self.root / "htpasswd")}}
        elif mode == "token":
            self.token = TokenServer(self.root)
            cfg["auth"] = {"token": {"realm": self.token.realm, "service": self.token.service,
                                     "issuer": self.token.issuer,
                                     "rootcertbundle": str(self.token.bundle)}}
        # JSON is YAML: the registry reads it as its config
        (self.root / "config.yml").write_text(json.dumps(cfg))
        self.log = self.root / "registry.log"

    @property
    def scheme(self) -> str:
        return "https" if self.mode == "tls" else "http"

    def start(self) -> "Registry":
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.root / "config.yml")],
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        import socket
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.token:
            self.token.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def skopeo_tls_args(self, prefix: str = "") -> list[str]:
        """skopeo's flags to reach it (prefix: 'src-' or 'dest-' for copy)."""
        args = []
        if self.mode == "tls":
            certdir = self.root / "skopeo-certs"
            certdir.mkdir(exist_ok=True)
            shutil.copy(self.ca_pem, certdir / "ca.crt")
            args += [f"--{prefix}cert-dir", str(certdir),
                     f"--{prefix}creds", f"{USER}:{PASSWORD}"]
        else:
            args += [f"--{prefix}tls-verify=false"]
        if self.mode == "token":
            args += [f"--{prefix}creds", f"{USER}:{PASSWORD}"]
        return args

    def skopeo(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True,
                              timeout=timeout, text=True)


# a fake registry for hostile cases


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """A registry faked with aiohttp for hostile cases: serves one image (any name, any tag);
    the test breaks what it wants through the attributes. slow: seconds between 64 KiB pieces
    of the layer."""

    def __init__(self, layer_plain: bytes, compression: str = "gzip"):
        if compression == "gzip":
            self.layer, layer_type = gzip.compress(layer_plain, 1, mtime=0), media.OCI_LAYER_GZIP
        elif compression == "zstd":
            import zstandard
            self.layer = zstandard.ZstdCompressor().compress(layer_plain)
            layer_type = media.OCI_LAYER_ZSTD
        else:
            self.layer, layer_type = layer_plain, media.OCI_LAYER
        cfg = {"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_plain)]}}
        self.config = json.dumps(cfg).encode()
        self.manifest_doc = {
            "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, "digest": sha256_digest(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": layer_type, "digest": sha256_digest(self.layer),
                        "size": len(self.layer)}]}
        self.manifest_type = media.OCI_MANIFEST
        self.manifest_extra = b""
        self.blob_override: bytes | None = None   # served instead of the layer
        self.cut_after: int | None = None          # close the connection after N bytes
        self.cuts_left = 0
        self.hang = False
        self.slow = 0.0
        self.ranges: list[str] = []
        self.extra_layers: dict[str, bytes] = {}   # digest -> blob, added by add_layer

    def add_layer(self, layer_plain: bytes, corrupt: bool = False) -> None:
        """Another (gzip) layer on top; corrupt: one of its bytes is flipped when served."""
        blob = gzip.compress(layer_plain, 1, mtime=0)
        cfg = json.loads(self.config)
        cfg["rootfs"]["diff_ids"].append(sha256_digest(layer_plain))
        self.config = json.dumps(cfg).encode()
        self.manifest_doc["config"].update(digest=sha256_digest(self.config),
                                           size=len(self.config))
        self.manifest_doc["layers"].append({"mediaType": media.OCI_LAYER_GZIP,
                                            "digest": sha256_digest(blob), "size": len(blob)})
        served = bytearray(blob)
        if corrupt:
            served[len(served) // 2] ^= 0xFF
        self.extra_layers[sha256_digest(blob)] = bytes(served)

    @property
    def manifest(self) -> bytes:
        return json.dumps(self.manifest_doc).encode() + self.manifest_extra

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/v2/":
            return web.json_response({})
        if "/manifests/" in path:
            return web.Response(body=self.manifest, headers={"Content-Type": self.manifest_type})
        digest = path.rsplit("/", 1)[1]
        if digest == sha256_digest(self.config):
            return web.Response(body=self.config)
        if digest in self.extra_layers:
            return web.Response(body=self.extra_layers[digest])
        data = self.blob_override if self.blob_override is not None else self.layer
        start = 0
        if "Range" in request.headers:
            self.ranges.append(request.headers["Range"])
            start = int(request.headers["Range"].split("=")[1].split("-")[0])
        resp = web.StreamResponse(status=206 if start else 200,
                                  headers={"Content-Length": str(len(data) - start)})
        await resp.prepare(request)
        if self.hang:
            await asyncio.sleep(3)
        body = data[start:]
        if self.cut_after is not None and self.cuts_left > 0:
            self.cuts_left -= 1
            await resp.write(body[:self.cut_after])
            request.transport.close()
            return resp
        if self.slow:
            for i in range(0, len(body), 65536):
                await resp.write(body[i:i + 65536])
                await asyncio.sleep(self.slow)
            return resp
        await resp.write(body)
        return resp


async def serve_fake(fake: "FakeRegistry", port: int = 0):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port



class FakeRegistryThread:
    """A FakeRegistry served from its own thread (for tests that drive berthd)."""

    def __init__(self, fake: FakeRegistry):
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.port = free_loopback_port()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.runner, _ = self.loop.run_until_complete(serve_fake(fake, self.port))
            ready.set()
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# hand-made images: OCI layouts for skopeo to copy


def layer_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = sorted({str(Path(p).parent) for p in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
            t.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o755, 1_600_000_000
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def busybox_layer() -> bytes:
    """A layer with a static busybox and its applets sh, echo, cat: enough to run."""
    bb = shutil.which("busybox") or "/bin/busybox"
    data = Path(bb).read_bytes()
    return layer_tar({"bin/busybox": data, "bin/sh": data, "bin/echo": data, "bin/cat": data})


class OCILayout:
    """An OCI image layout written by hand: blobs, index.json, oci-layout."""

    def __init__(self, path: Path):
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.index: list[dict] = []

    def blob(self, data: bytes) -> dict:
        hexd = hashlib.sha256(data).hexdigest()
        (self.path / "blobs" / "sha256" / hexd).write_bytes(data)
        return {"digest": "sha256:" + hexd, "size": len(data)}

    def image(self, layer_tars: list[bytes], *, arch: str = "amd64", cmd=("/bin/sh",),
              compress: str = "gzip") -> dict:
        """Write an image; returns its manifest descriptor (with platform)."""
        layers, diff_ids = [], []
        for tar in layer_tars:
            diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
            if compress == "gzip":
                blob, mt = gzip.compress(tar, 1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
            elif compress == "zstd":
                import zstandard
                blob, mt = zstandard.ZstdCompressor().compress(tar), \
                    "application/vnd.oci.image.layer.v1.tar+zstd"
            else:
                blob, mt = tar, "application/vnd.oci.image.layer.v1.tar"
            layers.append({"mediaType": mt, **self.blob(blob)})
        config = {"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
                  "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json",
                 **self.blob(json.dumps(config).encode())}
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cdesc, "layers": layers}
        mdesc = {"mediaType": manifest["mediaType"], **self.blob(json.dumps(manifest).encode()),
                 "platform": {"architecture": arch, "os": "linux"}}
        return mdesc

    def write_index(self, entries: list[dict], tag: str = "latest", nested: bool = False) -> None:
        """index.json naming entries under tag; nested: one entry, an image index of entries."""
        if nested:
            inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": entries}
            entries = [{"mediaType": inner["mediaType"], **self.blob(json.dumps(inner).encode())}]
        for e in entries:
            e.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = tag
        (self.path / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": entries}))


def v2_get(reg: Registry, path: str, accept: str = "") -> tuple[int, dict, bytes]:
    """A plain GET of the registry's API (plain mode only)."""
    req = urllib.request.Request(f"http://{reg.host}/v2/{path}",
                                 headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()

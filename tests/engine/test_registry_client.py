"""The registry client's pieces against real servers: zstd, gzip and plain layers; chunked and
monolithic uploads to docker-registry read back by skopeo; TLS verified against a CA from a
certs.d directory (and refused without it); the parsing it relies on (challenges,
X-Registry-Auth, platforms, insecure registries, login's server address)."""
from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest

from engine.errors import InvalidParameter, NotFound
from engine.images import reference
from engine.images.store import ImageStore
from engine.registry import auth, platforms, pull, push, transport
from engine.registry.client import RegistryError
from engine.registry.login import registry_host
from engine.store import Store
from tests.helpers.registry import (FakeRegistry, OCILayout, Registry, busybox_layer,
                                    layer_tar, serve_fake)

HAS_REGISTRY = os.path.exists("/usr/bin/docker-registry")


@pytest.fixture
def images(tmp_path):
    store = Store(tmp_path / "berth.db")
    yield ImageStore(tmp_path, store)
    store.close()


async def _ignore(msg: dict) -> None:
    pass


@pytest.mark.parametrize("compression", ["zstd", "gzip", "plain"])
def test_layers_of_each_compression_are_pulled_and_unpacked(images, compression):
    if compression == "zstd":
        pytest.importorskip("zstandard")
    fake = FakeRegistry(layer_tar({"etc/what": compression.encode()}), compression)

    async def run():
        runner, port = await serve_fake(fake)
        try:
            ref = reference.parse(f"127.0.0.1:{port}/c/img:1")
            await pull.pull(images, transport.RegistryConfig(), ref, auth.Credentials(), _ignore)
            return images.resolve(str(ref))
        finally:
            await runner.cleanup()
    image = asyncio.run(run())
    top = images.lower_dirs(image)[0]
    assert open(os.path.join(top, "etc/what"), "rb").read() == compression.encode()


@pytest.mark.skipif(not HAS_REGISTRY, reason="Debian's docker-registry is not installed")
@pytest.mark.parametrize("chunk", [64 << 10, 64 << 20], ids=["chunked", "monolithic"])
def test_uploads_chunked_and_monolithic_are_read_back_by_skopeo(images, tmp_path, chunk):
    reg = Registry("plain").start()
    try:
        layout = OCILayout(tmp_path / "oci")
        layout.write_index([layout.image([busybox_layer()])])
        r = reg.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:latest",
                       f"docker://{reg.host}/src/img:1")
        assert r.returncode == 0, r.stderr
        cfg = transport.RegistryConfig()
        src = reference.parse(f"{reg.host}/src/img:1")
        asyncio.run(pull.pull(images, cfg, src, auth.Credentials(), _ignore))
        image = images.resolve(str(src))
        image.record["RepoDigests"] = []        # nothing to mount from: upload
        dest = reference.parse(f"{reg.host}/dest/img:2")
        said: list[dict] = []

        async def keep(m: dict) -> None:
            said.append(m)
        aux = asyncio.run(push.push(images, cfg, dest, image, auth.Credentials(), keep,
                                    chunk=chunk))
        assert any(m.get("status") == "Pushed" for m in said), said
        r = reg.skopeo("inspect", "--tls-verify=false", f"docker://{dest}")
        assert r.returncode == 0 and json.loads(r.stdout)["Digest"] == aux["Digest"]
        r = reg.skopeo("copy", "--src-tls-verify=false", f"docker://{dest}",
                       f"oci:{tmp_path / 'back'}:x")
        assert r.returncode == 0, r.stderr      # skopeo verified every blob it read
    finally:
        reg.stop()


@pytest.mark.skipif(not HAS_REGISTRY, reason="Debian's docker-registry is not installed")
def test_tls_is_verified_against_the_certs_d_ca(images, tmp_path):
    reg = Registry("tls").start()
    try:
        layout = OCILayout(tmp_path / "oci")
        layout.write_index([layout.image([layer_tar({"x": b"y"})])])
        r = reg.skopeo("copy", *reg.skopeo_tls_args("dest-"), f"oci:{layout.path}:latest",
                       f"docker://{reg.host}/tls/img:1")
        assert r.returncode == 0, r.stderr
        creds = auth.Credentials("berthtest", "s3cret-pass")
        ref = reference.parse(f"{reg.host}/tls/img:1")
        # verified: 127.0.0.1 is insecure by default, so make it secure to test verification
        cfg = transport.RegistryConfig(certs_dirs=(tmp_path / "certs.d",))
        cfg.is_insecure = lambda host: False
        with pytest.raises(RegistryError, match="certificate verify failed"):
            asyncio.run(pull.pull(images, cfg, ref, creds, _ignore))
        assert not images.images
        (tmp_path / "certs.d" / reg.host).mkdir(parents=True)
        (tmp_path / "certs.d" / reg.host / "ca.crt").write_bytes(reg.ca_pem.read_bytes())
        asyncio.run(pull.pull(images, cfg, ref, creds, _ignore))
        assert images.find(str(ref)) is not None
        # wrong password: the registry's refusal
        images.untag(str(ref))
        with pytest.raises(RegistryError, match="pull access denied"):
            asyncio.run(pull.pull(images, cfg, ref, auth.Credentials("berthtest", "x"),
                                  _ignore))
    finally:
        reg.stop()


def test_challenges_are_parsed():
    ch = auth.parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                              'scope="repository:a/b:pull,push"')
    assert ch.scheme == "bearer" and ch.params == {
        "realm": "https://auth.example/token", "service": "reg",
        "scope": "repository:a/b:pull,push"}
    assert auth.parse_challenge('Basic realm="x"').scheme == "basic"
    assert auth.parse_challenge("") is None


def test_x_registry_auth_is_base64url_json_with_or_without_padding():
    doc = {"username": "u", "password": "p?>~", "serveraddress": "r:5000"}
    raw = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    assert auth.from_header(raw.rstrip("=")) == auth.Credentials("u", "p?>~")
    assert auth.from_header("").anonymous and auth.from_header("e30=").anonymous
    # dockerd ignores a header it cannot decode: anonymous
    assert auth.from_header("!!!").anonymous
    assert auth.from_header(base64.urlsafe_b64encode(b"[1]").decode()).anonymous
    legacy = {"auth": base64.b64encode(b"me:pw").decode()}
    assert auth.from_auth_config(legacy) == auth.Credentials("me", "pw")


def test_platforms_are_chosen_as_dockerd_chooses():
    entries = [{"digest": "a", "platform": {"os": "linux", "architecture": "amd64"}},
               {"digest": "b", "platform": {"os": "linux", "architecture": "arm64",
                                            "variant": "v8"}},
               {"digest": "c", "platform": {"os": "linux", "architecture": "arm",
                                            "variant": "v7"}}]
    assert platforms.choose(entries, platforms.parse("linux/amd64"))["digest"] == "a"
    assert platforms.choose(entries, platforms.parse("linux/arm64"))["digest"] == "b"
    assert platforms.choose(entries, platforms.parse("linux/arm64/v8"))["digest"] == "b"
    assert platforms.choose(entries, platforms.parse("linux/arm/v7"))["digest"] == "c"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        platforms.choose(entries, platforms.parse("linux/s390x"))
    with pytest.raises(InvalidParameter, match="invalid platform"):
        platforms.parse("linux//")


def test_insecure_registries_as_dockerd_reads_them():
    cfg = transport.RegistryConfig(insecure=["10.1.0.0/16", "reg.example:5000"])
    assert cfg.is_insecure("127.0.0.1:5000") and cfg.is_insecure("127.8.9.1")
    assert cfg.is_insecure("10.1.2.3:443") and cfg.is_insecure("reg.example:5000")
    assert not cfg.is_insecure("10.2.0.1") and not cfg.is_insecure("reg.example")
    assert [e.url for e in cfg.endpoints("10.1.2.3:443")] == ["https://10.1.2.3:443",
                                                               "http://10.1.2.3:443"]
    assert [e.url for e in cfg.endpoints("docker.io")] == ["https://registry-1.docker.io"]
    with pytest.raises(ValueError, match="should not contain '://'"):
        transport.check_insecure_entry("http://reg")


def test_login_server_addresses():
    assert registry_host("https://index.docker.io/v1/") == "docker.io"
    assert registry_host("") == "docker.io"
    assert registry_host("127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_host("https://reg.example/v2/") == "reg.example"


def test_insecure_registries_from_the_flag_and_daemon_json(tmp_path, capsys):
    from engine import daemon_options
    cfg = daemon_options.parse(["--insecure-registry", "10.0.0.0/8", "--insecure-registry",
                                "reg:5000", "--data-root", str(tmp_path / "d"),
                                "--config-file", _write(tmp_path, {})])
    assert cfg.insecure_registries == ["10.0.0.0/8", "reg:5000"]
    cfg = daemon_options.parse(["--data-root", str(tmp_path / "d"), "--config-file",
                                _write(tmp_path, {"insecure-registries": ["reg:5000"]})])
    assert cfg.insecure_registries == ["reg:5000"]
    with pytest.raises(SystemExit):
        daemon_options.parse(["--insecure-registry", "http://reg", "--config-file",
                              _write(tmp_path, {})])
    assert "insecure registry http://reg should not contain '://'" in capsys.readouterr().err


def _write(tmp_path, data: dict) -> str:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_registry_mirrors_as_dockerd_reads_them(tmp_path, capsys):
    from engine import daemon_options
    cfg = daemon_options.parse(["--data-root", str(tmp_path / "d"), "--config-file",
                                _write(tmp_path, {"registry-mirrors": ["https://m.example/"]})])
    assert cfg.registry_mirrors == ["https://m.example"]
    rc = transport.RegistryConfig(mirrors=cfg.registry_mirrors)
    assert [e.url for e in rc.mirror_endpoints("docker.io")] == ["https://m.example"]
    assert rc.mirror_endpoints("127.0.0.1:5000") == []      # mirrors serve docker.io only
    for bad in ("ftp://m", "https://m/path", "m.example"):
        with pytest.raises(ValueError, match="invalid mirror"):
            transport.check_mirror(bad)


@pytest.mark.skipif(not HAS_REGISTRY, reason="Debian's docker-registry is not installed")
def test_a_client_certificate_from_certs_d_is_presented(images, tmp_path):
    """certs.d/<host>/client.cert + client.key, as docker reads them, for a registry that
    requires a client certificate."""
    import shutil
    reg = Registry("tls", client_certs=True).start()
    try:
        ref = reference.parse(f"{reg.host}/cc/img:1")
        cfg = transport.RegistryConfig(certs_dirs=(tmp_path / "certs.d",))
        cfg.is_insecure = lambda host: False
        d = tmp_path / "certs.d" / reg.host
        d.mkdir(parents=True)
        shutil.copy(reg.ca_pem, d / "ca.crt")
        creds = auth.Credentials("berthtest", "s3cret-pass")
        with pytest.raises(RegistryError, match=r"Get \"https://127.0.0.1:\d+/v2/\": "):
            # no client certificate: the TLS handshake fails
            asyncio.run(pull.pull(images, cfg, ref, creds, _ignore))
        shutil.copy(reg.root / "client" / "cert.pem", d / "client.cert")
        (d / "client.key").write_bytes((reg.root / "client" / "key.pem").read_bytes())
        # with it, the registry answers: the image is not there (its words, not a TLS error)
        with pytest.raises(RegistryError, match="not found|manifest unknown|pull access denied"):
            asyncio.run(pull.pull(images, cfg, ref, creds, _ignore))
        # 127.0.0.1 as it is by default (insecure: nothing verified), the pair still presented
        insecure = transport.RegistryConfig(certs_dirs=(tmp_path / "certs.d",))
        with pytest.raises(RegistryError, match="not found|manifest unknown|pull access denied"):
            asyncio.run(pull.pull(images, insecure, ref, creds, _ignore))
        (d / "client.key").unlink()
        with pytest.raises(ValueError, match="missing key client.key"):
            cfg.ssl_context(reg.host)
    finally:
        reg.stop()


def test_a_single_platform_image_of_another_platform_than_asked_is_refused(images):
    fake = FakeRegistry(layer_tar({"x": b"amd64"}))        # its config says linux/amd64

    async def run(platform):
        runner, port = await serve_fake(fake)
        try:
            ref = reference.parse(f"127.0.0.1:{port}/p/img:1")
            return await pull.pull(images, transport.RegistryConfig(), ref, auth.Credentials(),
                                   _ignore, platform=platform)
        finally:
            await runner.cleanup()
    with pytest.raises(InvalidParameter, match="does not match the specified platform: "
                                               "wanted linux/arm64, actual: linux/amd64"):
        asyncio.run(run(platforms.parse("linux/arm64")))
    assert not images.images
    assert asyncio.run(run(platforms.parse("linux/amd64"))).startswith("Status: Downloaded")

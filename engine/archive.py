"""`docker cp` and `docker export`, berthd's side: what the container_fs child is asked (which
view of the container: its live mounts when running, its overlay, binds and volumes when
stopped; for export its root filesystem alone, as dockerd's), the child run under the
container's lock, its answers turned into dockerd's errors, and dockerd's
X-Docker-Container-Path-Stat header.

The lock is the container's own (start, stop, exit handling and removal take it), held until the
stream ends, as dockerd holds its container lock until an archive is read: a stopped container's
overlay is mounted by the child and must not be mounted again by a start meanwhile, nor its
layers removed under it.
"""
from __future__ import annotations

import asyncio
import base64
import errno
import json
import logging
import os
import posixpath
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from . import rootfs, timefmt
from .container import Container
from .errors import Conflict, EngineError, Internal, InvalidParameter, NotFound
from .volumes import mountpoints as volume_mountpoints

log = logging.getLogger("berthd.archive")

CHILD = Path(__file__).with_name("container_fs.py")
CHUNK = 1 << 16
HEADER_LIMIT = 1 << 20          # the longest JSON line the child may answer

# Go's os.FileMode bits (io/fs), as dockerd's PathStat carries them
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20

# the files berthd writes per container and binds over the image's (engine/spec.py)
ETC_FILES = (("hostname", "/etc/hostname"), ("hosts", "/etc/hosts"),
             ("resolv.conf", "/etc/resolv.conf"))


def go_file_mode(st_mode: int) -> int:
    """st_mode as Go's os.FileMode (what os.Lstat gives dockerd): permission bits, type bits,
    and set-id and sticky bits moved to Go's own places."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: GO_MODE_DIR, stat.S_IFLNK: GO_MODE_SYMLINK,
             stat.S_IFBLK: GO_MODE_DEVICE, stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
             stat.S_IFIFO: GO_MODE_NAMED_PIPE, stat.S_IFSOCK: GO_MODE_SOCKET}.get(kind, 0)
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def path_stat(raw: dict) -> dict:
    """The child's stat as dockerd's container.PathStat JSON."""
    return {"name": raw["name"], "size": raw["size"], "mode": go_file_mode(raw["mode"]),
            "mtime": timefmt.rfc3339nano(raw["mtime_ns"]) if raw["mtime_ns"] else
            "1970-01-01T00:00:00Z", "linkTarget": raw["link_target"]}


def path_stat_header(stat_json: dict) -> str:
    """X-Docker-Container-Path-Stat: base64 (standard, padded) of the PathStat JSON."""
    return base64.b64encode(json.dumps(stat_json, separators=(",", ":"))
                            .encode()).decode()


def _user_binds(host_config: dict) -> list[dict]:
    """The user's host binds (-v /host:/path and --mount type=bind): source, destination,
    readonly, in the runtime spec's order. A -v entry that names a volume (NAME:/path, /path)
    is no host path: the container's mount points carry it (_volume_binds)."""
    out = []
    for spec in host_config.get("Binds") or []:
        parts = spec.split(":")
        if len(parts) < 2 or volume_mountpoints.is_volume_bind(spec):
            continue
        opts = parts[2].split(",") if len(parts) > 2 else []
        out.append({"source": parts[0], "destination": parts[1], "readonly": "ro" in opts})
    for m in host_config.get("Mounts") or []:
        if m.get("Type") == "bind":
            out.append({"source": m.get("Source") or "", "destination": m.get("Target") or "",
                        "readonly": bool(m.get("ReadOnly"))})
    return out


def _mount_points(c: Container) -> list[dict]:
    """The container's volume mount points (its named, anonymous and image volumes, and what
    --volumes-from brought: volumes and binds), as its record keeps them."""
    return list(c.record.get("MountPoints") or [])


def _volume_mounts(c: Container) -> list[dict]:
    """What dockerd counts as the container's mount points when it checks a destination is
    writable: binds, volumes and --mount tmpfs (not --tmpfs, nor /etc/hosts and its
    siblings)."""
    mounts = [{"destination": b["destination"], "readonly": b["readonly"]}
              for b in _user_binds(c.host_config)]
    mounts += [{"destination": mp["Destination"], "readonly": not mp.get("RW", True)}
               for mp in _mount_points(c)]
    for m in c.host_config.get("Mounts") or []:
        if m.get("Type") == "tmpfs":
            mounts.append({"destination": m.get("Target") or "",
                           "readonly": bool(m.get("ReadOnly"))})
    return mounts


def _archive_holder(c: Container) -> str:
    """Who holds a volume's --opt mount while a stopped container's files are read or
    written (the container's own id stands for its running self)."""
    return f"{c.id}:archive"


def _volume_binds(daemon, c: Container) -> list[dict]:
    """The stopped container's volumes as binds, each where a start would bind it. A volume
    made with --opt type=... is mounted only while a container using it runs: here it is
    mounted for the copy, as dockerd's openContainerFS mounts the container's volumes, and
    let go after (_release_volumes); without it the copy would see the empty directory under
    the mount."""
    volumes = daemon.containers.volumes
    out = []
    for mp in _mount_points(c):
        source = mp.get("Source") or ""
        if mp.get("Type") == "volume":
            source = volumes.mount(mp["Name"], _archive_holder(c))
        out.append({"source": source, "destination": mp["Destination"],
                    "readonly": not mp.get("RW", True)})
    return out


def _release_volumes(daemon, c: Container) -> None:
    """The --opt mounts made for a stopped container's copy go, unless a running container
    holds them too."""
    daemon.containers.volumes.unmount_all(_archive_holder(c))


def _view(daemon, c: Container, *, clean: bool) -> dict:
    """How the child gets into the container: through its process when it runs, else through
    an overlay of its layers it mounts itself, with what the container would see over it
    (unless clean: export reads the root filesystem alone, as dockerd's). Volumes mounted
    here are let go by _release_volumes, which the caller runs when the child is done."""
    if c.running and c.state.get("Pid"):
        return {"pid": c.state["Pid"], "cid": c.id}
    image = daemon.images.find(c.record["Image"])
    if image is None:
        raise Internal(f"the image {c.record['Image']} of container {c.id[:12]} is gone")
    data_root = daemon.cfg.data_root
    rootfs.prepare(data_root, c.id)
    mountpoint = rootfs.layer_dir(data_root, c.id) / "merged"
    mountpoint.mkdir(mode=0o700, exist_ok=True)
    mount = rootfs.mounts(data_root, c.id, daemon.images.lower_dirs(image))[0]
    binds = []
    if not clean:
        cdir = daemon.containers.container_dir(c.id)
        binds = [{"source": str(cdir / name), "destination": dest, "readonly": False}
                 for name, dest in ETC_FILES if (cdir / name).is_file()]
        binds += _user_binds(c.host_config)
        try:
            binds += _volume_binds(daemon, c)
        except BaseException:
            _release_volumes(daemon, c)
            raise
        # parents before what is mounted in them, as a start orders them (stable: the user's
        # bind at /etc/hosts goes over berthd's file)
        binds.sort(key=lambda b: posixpath.normpath(b["destination"]).count("/"))
    return {"overlay": ",".join(mount["options"]), "mountpoint": str(mountpoint),
            "binds": binds}


@asynccontextmanager
async def _viewing(daemon, c: Container, *, clean: bool) -> AsyncIterator[dict]:
    """_view, and its volumes let go when the child that used it is done."""
    view = _view(daemon, c, clean=clean)
    try:
        yield view
    finally:
        if "pid" not in view and not clean:
            _release_volumes(daemon, c)


class Child:
    """One container_fs child: its answers line by line, then its stream."""

    def __init__(self, proc: asyncio.subprocess.Process, what: str):
        self.proc = proc
        self.what = what
        self.stderr = b""
        self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr())

    @classmethod
    async def start(cls, request: dict, what: str, *, stdin: bool = False) -> "Child":
        request = dict(request, parent=os.getpid())
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-X", "utf8", str(CHILD), json.dumps(request),
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                limit=HEADER_LIMIT)
        except OSError as e:
            raise Internal(f"cannot start the filesystem helper for {what}: {e}") from None
        return cls(proc, what)

    async def _drain_stderr(self) -> None:
        while True:
            chunk = await self.proc.stderr.read(CHUNK)
            if not chunk:
                return
            if len(self.stderr) < CHUNK:
                self.stderr += chunk

    async def answer(self) -> dict:
        """The child's next JSON line; Internal if it ended without one."""
        try:
            line = await self.proc.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            line = b""
        if not line.endswith(b"\n"):
            code = await self.proc.wait()
            await self._stderr_task
            raise Internal(f"{self.what}: the filesystem helper ended (status {code}) without "
                           f"an answer: {self.stderr.decode(errors='replace').strip()[-500:]}")
        return json.loads(line)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.proc.stdout.read(CHUNK)
            if not chunk:
                return
            yield chunk

    async def finish(self) -> int:
        """Its exit status, once it has said all it had to say."""
        while await self.proc.stdout.read(CHUNK):
            pass
        await self._stderr_task
        return await self.proc.wait()

    async def close(self) -> None:
        """End the child if it still runs (its client went away, or an error came first)."""
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        # what is left in the pipes is read to their end: asyncio (3.11) wakes wait() only
        # once every pipe is closed, and a reader paused over unread data never sees its end
        while await self.proc.stdout.read(CHUNK):
            pass
        await self._stderr_task
        await self.proc.wait()
        if self.stderr.strip():
            log.debug("%s: %s", self.what, self.stderr.decode(errors="replace").strip())


def _error(answer: dict, path: str, ref: str) -> EngineError:
    """The child's error as dockerd answers it: a missing path is 404 naming the path and the
    container as the client gave them; bad requests 400; the rest 500."""
    err = answer.get("error") or {}
    message = err.get("message") or "unknown error"
    if err.get("kind") == "gone":
        return Conflict(f"{message}: try again")
    if err.get("kind") == "invalid":
        return InvalidParameter(message)
    code = err.get("errno")
    if code == errno.ENOENT:
        return NotFound(f"Could not find the file {path} in container {ref}")
    if code in (errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EISDIR, errno.EROFS,
                errno.EEXIST, errno.ENOTEMPTY, errno.EXDEV):
        return InvalidParameter(message)
    return Internal(message)


@asynccontextmanager
async def _locked(c: Container, ref: str):
    async with c.lock:
        if c.removed or c.removing:
            raise NotFound(f"No such container: {ref}")
        yield


async def stat_path(daemon, c: Container, ref: str, path: str) -> dict:
    """HEAD /containers/{id}/archive: the PathStat of path in the container."""
    async with _locked(c, ref), _viewing(daemon, c, clean=False) as view:
        child = await Child.start({"op": "stat", "path": path, "view": view}, f"stat of {path}")
        try:
            answer = await child.answer()
            if "stat" not in answer:
                raise _error(answer, path, ref)
            return path_stat(answer["stat"])
        finally:
            await child.close()


@asynccontextmanager
async def archive_path(daemon, c: Container, ref: str,
                       path: str) -> AsyncIterator[tuple[dict, AsyncIterator[bytes]]]:
    """GET /containers/{id}/archive: (PathStat, the tar's chunks), the lock held until the
    caller is done with them."""
    async with _locked(c, ref), _viewing(daemon, c, clean=False) as view:
        child = await Child.start({"op": "archive", "path": path, "view": view},
                                  f"archive of {path} in {c.id[:12]}")
        try:
            answer = await child.answer()
            if "stat" not in answer:
                raise _error(answer, path, ref)
            daemon.events.container(c, "archive-path")
            yield path_stat(answer["stat"]), _checked(child)
        finally:
            await child.close()


async def _checked(child: Child) -> AsyncIterator[bytes]:
    """The child's stream; an error if it did not end well (the client must not take a cut
    tar for a whole one)."""
    async for chunk in child.chunks():
        yield chunk
    code = await child.finish()
    if code != 0:
        raise Internal(f"{child.what}: the filesystem helper failed (status {code}): "
                       f"{child.stderr.decode(errors='replace').strip()[-500:]}")


async def extract_to_dir(daemon, c: Container, ref: str, path: str, body: AsyncIterator[bytes],
                         *, copy_uid_gid: bool, no_overwrite_dir_non_dir: bool) -> None:
    """PUT /containers/{id}/archive: the tar in body extracted into the directory path."""
    request = {"op": "extract", "path": path, "no_overwrite": no_overwrite_dir_non_dir,
               "mounts": _volume_mounts(c),
               "readonly": bool(c.host_config.get("ReadonlyRootfs")),
               # dockerd's copyUIDGID: the container's user owns what is extracted (its
               # absence: the archive's own owners, as without the flag)
               "user": (c.config.get("User") or "") if copy_uid_gid else ""}
    async with _locked(c, ref), _viewing(daemon, c, clean=False) as view:
        request["view"] = view
        child = await Child.start(request, f"extraction into {path} in {c.id[:12]}", stdin=True)
        try:
            answer = await child.answer()
            if not answer.get("ready"):
                raise _error(answer, path, ref)
            stdin = child.proc.stdin
            try:
                async for chunk in body:
                    stdin.write(chunk)
                    await stdin.drain()
                stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass        # the child stopped reading: its answer says why
            answer = await child.answer()
            if not answer.get("ok"):
                raise _error(answer, path, ref)
            await child.finish()
        finally:
            await child.close()
    daemon.events.container(c, "extract-to-dir")


@asynccontextmanager
async def export(daemon, c: Container, ref: str) -> AsyncIterator[AsyncIterator[bytes]]:
    """GET /containers/{id}/export: the tar of its root filesystem (its image's layers and its
    own, nothing mounted over them), the lock held until the caller is done."""
    async with _locked(c, ref), _viewing(daemon, c, clean=True) as view:
        child = await Child.start({"op": "export", "view": view},
                                  f"export of {c.id[:12]}")
        try:
            answer = await child.answer()
            if not answer.get("ok"):
                raise _error(answer, "/", ref)
            daemon.events.container(c, "export")
            yield _checked(child)
        finally:
            await child.close()

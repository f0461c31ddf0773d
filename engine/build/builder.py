"""`docker build` as the classic builder runs it: the Dockerfile's stages in order (those the
target does not need skipped), each instruction a step that makes the next image from the
current one. RUN runs as a container through the same path as `docker run` and its writable
layer is committed; COPY/ADD write a layer straight from the context (layers_from_context);
the other instructions change only the config (an empty layer in the history). A step whose
result is already in the store (cache.lookup) is reused, as "---> Using cache".

The output is the classic builder's stream ("Step 1/6 : FROM busybox", " ---> 1a2b3c4d5e6f",
the RUN's output, "Successfully built ..."), emitted as {"stream": text} messages; errors
raise (the API decides whether the client still gets a status or an in-stream error).

Known differences from dockerd 20.10's classic builder, by choice: stages the target does not
need are skipped (dockerd builds every stage before the target, and counts them in "Step N/M"),
as BuildKit does; metadata steps (ENV, LABEL, ...) make their image without a container, so
their "Running in"/"Removing intermediate container" lines are not printed."""
from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from .. import logs as logreader, rootfs, timefmt
from ..errors import EngineError, InvalidParameter, NotFound
from ..images import commit as image_commit
from ..images import lineage, reference
from ..images.store import Image
from ..registry import platforms
from . import cache, steps
from .dockerfile import DockerfileError, Instruction, Stage, parse
from .expand import expand, predefined_args
from .layers_from_context import Source, list_host, view_lister, write_copy, write_dirs
from .rootfs_view import RootfsView

Emit = Callable[[dict], Awaitable[None]]
Puller = Callable[[str], Awaitable[None]]

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# the fields of a Go container.Config that dockerd's built images always show
RUN_CONFIG_DEFAULTS = (("Hostname", ""), ("Domainname", ""), ("User", ""),
                       ("AttachStdin", False), ("AttachStdout", False), ("AttachStderr", False),
                       ("Tty", False), ("OpenStdin", False), ("StdinOnce", False))
WORK_PREFIX = "commit-build-"       # under <data root>/tmp: swept at start (store.WORK_PREFIXES)
CHMOD_REFUSED = ("the --chmod option requires BuildKit. Refer to "
                 "https://docs.docker.com/go/buildkit/ to learn how to build images with "
                 "BuildKit enabled")
# the flags dockerd 20.10's classic builder knows; any other is its parse error. RUN's BuildKit
# flags are known but refused when the step runs, in BuildKit's words
CLASSIC_FLAGS = {"FROM": {"platform"}, "COPY": {"chown", "from", "chmod"},
                 "ADD": {"chown", "chmod"}, "RUN": {"mount", "network", "security"},
                 "HEALTHCHECK": {"interval", "timeout", "start-period", "retries"}}
URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class StepFailed(EngineError):
    """A RUN whose command exited non-zero: its exit code is the error's code in the stream
    (the docker CLI exits with it)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    quiet: bool = False
    nocache: bool = False
    pull: bool = False
    rm: bool = True
    forcerm: bool = False
    buildargs: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    network_mode: str = ""
    host_config: dict = field(default_factory=dict)     # the RUN containers' resources


def short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _tar_empty(path: Path) -> bool:
    with tarfile.open(path) as tar:
        return tar.next() is None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_hash(view_lister_fn, path: Path, rel: str) -> str:
    """A content checksum of a file or tree of another stage's rootfs (COPY --from's key)."""
    h = hashlib.sha256()

    def walk(p: Path, r: str) -> None:
        st = os.lstat(p)
        h.update(f"{r}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0".encode())
        if os.path.islink(p):
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(_sha256_file(p).encode())
        elif p.is_dir():
            for name, child in sorted(view_lister_fn(p, r).items()):
                walk(child, posixpath.join(r, name))
    walk(path, rel)
    return h.hexdigest()


def _lookup_id(view: RootfsView, file: str, name: str) -> int | None:
    for line in view.read_text(file).splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


def parse_chown(spec: str, view: RootfsView) -> tuple[int, int]:
    """--chown user[:group], by number or by the stage's /etc/passwd and /etc/group."""
    user, _, group = spec.partition(":")
    if user.isdigit():
        uid = int(user)
    else:
        found = _lookup_id(view, "etc/passwd", user)
        if found is None:
            raise InvalidParameter(f"unable to convert uid/gid chown string to host mapping: "
                                   f"can't find uid for user {user}: no such user: {user}")
        uid = found
    if not group:
        if user.isdigit():
            return uid, uid
        for line in view.read_text("etc/passwd").splitlines():
            fields = line.split(":")
            if len(fields) > 3 and fields[0] == user and fields[3].isdigit():
                return uid, int(fields[3])
        return uid, uid
    if group.isdigit():
        return uid, int(group)
    gid = _lookup_id(view, "etc/group", group)
    if gid is None:
        raise InvalidParameter(f"unable to convert uid/gid chown string to host mapping: "
                               f"can't find gid for group {group}: no such group: {group}")
    return uid, gid


class Builder:
    def __init__(self, daemon, context: Path, opts: BuildOptions, emit: Emit, pull: Puller):
        self.images = daemon.images
        self.containers = daemon.containers
        self.data_root = Path(daemon.cfg.data_root)
        self.context = context
        self.opts = opts
        self.emit = emit
        self.pull = pull
        self.declared: set[str] = set()
        self.meta_env: dict[str, str | None] = {}
        self.step = 0
        self.total = 0
        self.escape = "\\"
        self.results: dict[int, str] = {}       # stage index -> image id ("" for scratch)
        self.names: dict[str, int] = {}
        self.maintainer = ""
        self.work: Path | None = None

    async def out(self, text: str) -> None:
        if not self.opts.quiet:
            await self.emit({"stream": text})

    # the whole build -------------------------------------------------------------------------
    def _read_dockerfile(self) -> str:
        name = self.opts.dockerfile or "Dockerfile"
        rel = posixpath.normpath("/" + name).lstrip("/")
        path = self.context / rel
        if not path.is_file():
            raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")
        text = path.read_text(errors="replace")
        # as dockerd: the Dockerfile and .dockerignore leave the context when it names them
        from .context import remove_ignored_build_files
        remove_ignored_build_files(str(self.context), rel)
        if not text.strip():
            raise InvalidParameter(f"the Dockerfile ({name}) cannot be empty")
        return text

    def _needed(self, stages: list[Stage], target: int) -> list[Stage]:
        """The target and the stages it needs (as FROM base or COPY --from), in file order."""
        by_name = {s.name: s.index for s in stages if s.name}
        env = {k: v for k, v in self.meta_env.items() if v is not None}

        def ref_index(ref: str, before: int) -> int | None:
            ref = ref.lower()
            if ref in by_name and by_name[ref] < before:
                return by_name[ref]
            if ref.isdigit() and int(ref) < before:
                return int(ref)
            return None
        need, todo = set(), [target]
        while todo:
            i = todo.pop()
            if i in need:
                continue
            need.add(i)
            stage = stages[i]
            base = ref_index(expand(stage.base, env, self.escape), i)
            if base is not None:
                todo.append(base)
            for ins in stage.instructions:
                if ins.cmd in ("COPY", "ADD") and ins.flags.get("from"):
                    dep = ref_index(ins.flags["from"], i)
                    if dep is not None:
                        todo.append(dep)
        return [s for s in stages if s.index in need]

    async def build(self) -> Image:
        try:
            df = parse(self._read_dockerfile())
        except DockerfileError as e:
            raise InvalidParameter(str(e)) from None
        self.escape = df.escape
        self._check_flags(df.instructions)
        stages = df.stages
        if not stages:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        target = len(stages) - 1
        if self.opts.target:
            found = [s.index for s in stages if s.name == self.opts.target.lower()]
            if not found:
                raise InvalidParameter(
                    f"failed to reach build target {self.opts.target} in Dockerfile")
            target = found[0]
        self._meta_values(df.meta_args)
        chosen = self._needed(stages, target)
        extra_label = len(self.opts.labels)
        self.total = len(df.meta_args) + sum(1 + len(self._body(s)) for s in chosen) + extra_label
        tmp = self.data_root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=tmp))
        try:
            for ins in df.meta_args:
                await self._step_line(ins)
            for stage in chosen:
                self.names.update({stage.name: stage.index} if stage.name else {})
                await self._stage(stage, last=stage.index == target)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        image_id = self.results.get(target) or ""
        if not image_id:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        image = self.images.resolve(image_id)
        unused = sorted(k for k in self.opts.buildargs
                        if k not in self.declared and k not in predefined_args())
        if unused:
            await self.out(f"[Warning] One or more build-args [{' '.join(unused)}] "
                           f"were not consumed\n")
        return image

    @staticmethod
    def _check_flags(instructions: list[Instruction]) -> None:
        for ins in instructions:
            for name, _ in (ins.flag_list or list(ins.flags.items())):
                if name not in CLASSIC_FLAGS.get(ins.cmd, ()):
                    raise InvalidParameter(f"dockerfile parse error line {ins.line}: "
                                           f"Unknown flag: {name}")

    def _meta_values(self, meta_args: list[Instruction]) -> None:
        for ins in meta_args:
            for word in ins.args:
                name, eq, default = word.partition("=")
                env = {k: v for k, v in self.meta_env.items() if v is not None}
                value = expand(default, env, self.escape) if eq else None
                given = self.opts.buildargs.get(name)
                self.meta_env[name] = given if given is not None else value
                self.declared.add(name)

    @staticmethod
    def _body(stage: Stage) -> list[Instruction]:
        return [i for i in stage.instructions if i.cmd != "FROM"]

    async def _step_line(self, ins: Instruction) -> None:
        self.step += 1
        await self.out(f"Step {self.step}/{self.total} : {ins.original}\n")

    # stages ----------------------------------------------------------------------------------
    async def _stage(self, stage: Stage, *, last: bool) -> None:
        self.step += 1
        await self.out(f"Step {self.step}/{self.total} : {self._from_text(stage)}\n")
        state = await self._from(stage)
        self.maintainer = ""
        triggers = list(state.config.get("OnBuild") or [])
        state.config["OnBuild"] = None
        if triggers:
            word = "trigger" if len(triggers) == 1 else "triggers"
            await self.out(f"# Executing {len(triggers)} build {word}\n")
            for text in triggers:
                try:
                    sub = parse("FROM scratch\n" + text).stages[0]
                except DockerfileError as e:
                    raise InvalidParameter(str(e)) from None
                for ins in self._body(sub):
                    await self._dispatch(state, ins, stage)
        for ins in self._body(stage):
            await self._step_line(ins)
            await self._dispatch(state, ins, stage)
        if last:
            # --label: one LABEL step each, by name, after the target's own (as dockerd)
            for key, value in sorted(self.opts.labels.items()):
                self.step += 1
                await self.out(f"Step {self.step}/{self.total} : LABEL {key}={value}\n")
                await self._nop(state, steps.apply_label(state, [(key, value)]))
        self.results[stage.index] = state.image_id

    def _from_text(self, stage: Stage) -> str:
        if stage.original:
            return stage.original
        return f"FROM {stage.base}" + (f" AS {stage.name}" if stage.name else "")

    async def _resolve_base(self, ref: str) -> Image:
        image = None if self.opts.pull else self.images.find(ref)
        if image is None:
            await self.pull(ref)
            image = self.images.find(ref)
            if image is None:
                raise NotFound(f"No such image: {ref}")
        return image

    async def _from(self, stage: Stage) -> steps.StageState:
        env = {k: v for k, v in self.meta_env.items() if v is not None}
        base = expand(stage.base, env, self.escape)
        if not base:
            raise InvalidParameter(f"base name ({stage.base}) should not be blank")
        if stage.platform:
            wanted = expand(stage.platform, env, self.escape)
            if wanted and platforms.parse(wanted) != platforms.host():
                raise InvalidParameter(f"FROM --platform={wanted}: berthd builds only for its "
                                       f"own platform ({platforms.host()})")
        index = None
        if base.lower() in self.names and self.names[base.lower()] < stage.index:
            index = self.names[base.lower()]
        elif base.isdigit() and int(base) < stage.index:
            index = int(base)
        if index is not None:
            image_id = self.results[index]
        elif base.lower() == "scratch":
            image_id = ""
        else:
            image_id = (await self._resolve_base(base)).id
        config: dict = {}
        if image_id:
            config = dict(self.images.resolve(image_id).container_config)
        await self.out(f" ---> {short(image_id)}\n")       # " ---> " alone for scratch
        if not config.get("Env"):
            config["Env"] = [DEFAULT_PATH]
        for key, default in RUN_CONFIG_DEFAULTS:
            config.setdefault(key, default)
        config["Image"] = image_id
        return steps.StageState(config=config, image_id=image_id)

    # instructions ----------------------------------------------------------------------------
    def _env(self, state: steps.StageState) -> dict[str, str]:
        env = {k: v for k, v in state.args.items() if v is not None}
        for e in state.config.get("Env") or []:
            k, _, v = e.partition("=")
            env[k] = v
        return env

    def _x(self, state: steps.StageState, word: str) -> str:
        return expand(word, self._env(state), self.escape)

    def _pairs(self, state: steps.StageState, args: list[str]) -> list[tuple[str, str]]:
        # each pair sees the environment as it was before the instruction, as the builder
        return [(self._x(state, args[i]), self._x(state, args[i + 1]))
                for i in range(0, len(args) - 1, 2)]

    async def _dispatch(self, state: steps.StageState, ins: Instruction, stage: Stage) -> None:
        cmd, args = ins.cmd, ins.args
        if cmd == "RUN":
            return await self._run(state, ins)
        if cmd in ("COPY", "ADD"):
            return await self._copy(state, ins)
        if cmd == "ARG":
            return await self._arg(state, ins)
        if cmd == "WORKDIR":
            return await self._workdir(state, ins)
        if cmd == "ENV":
            comment = steps.apply_env(state, self._pairs(state, args))
        elif cmd == "LABEL":
            comment = steps.apply_label(state, self._pairs(state, args))
        elif cmd == "MAINTAINER":
            self.maintainer = " ".join(args)
            comment = "MAINTAINER " + self.maintainer
        elif cmd == "EXPOSE":
            comment = steps.apply_expose(state, [self._x(state, a) for a in args])
        elif cmd == "USER":
            comment = steps.apply_user(state, self._x(state, args[0]))
        elif cmd == "VOLUME":
            comment = steps.apply_volume(state, [self._x(state, a) for a in args])
        elif cmd == "STOPSIGNAL":
            comment = steps.apply_stopsignal(state, self._x(state, args[0]))
        elif cmd == "CMD":
            comment = steps.apply_cmd(state, args, ins.json)
        elif cmd == "ENTRYPOINT":
            comment = steps.apply_entrypoint(state, args, ins.json)
        elif cmd == "SHELL":
            comment = steps.apply_shell(state, args, ins.json)
        elif cmd == "HEALTHCHECK":
            comment = steps.apply_healthcheck(state, args, ins.json, ins.flags)
        elif cmd == "ONBUILD":
            comment = steps.apply_onbuild(state, args[0] if args else "")
        else:
            raise InvalidParameter(f"unknown instruction: {cmd}")
        await self._nop(state, comment)

    async def _arg(self, state: steps.StageState, ins: Instruction) -> None:
        shown = []
        for word in ins.args:
            name, eq, default = word.partition("=")
            value = self._x(state, default) if eq else None
            shown.append(f"{name}={value}" if eq else name)
            given = self.opts.buildargs.get(name)
            if given is not None:
                value = given
            elif value is None and self.meta_env.get(name) is not None:
                value = self.meta_env[name]
            state.args[name] = value
            self.declared.add(name)
        await self._nop(state, "ARG " + " ".join(shown))

    async def _workdir(self, state: steps.StageState, ins: Instruction) -> None:
        path = steps.workdir_path(state, self._x(state, ins.args[0] if ins.args else ""))
        state.config["WorkingDir"] = path
        comment = "WORKDIR " + path
        probe = self._probe(state, steps.nop_cmd_string(state, comment))
        if await self._cached(state, probe):
            return
        layer = self.work / "workdir.tar"
        await asyncio.to_thread(write_dirs, layer, self._view(state.image_id), path, None)
        await self._commit(state, probe, layer, "")

    async def _nop(self, state: steps.StageState, comment: str) -> None:
        probe = self._probe(state, steps.nop_cmd(state, comment))
        if await self._cached(state, probe):
            return
        await self._commit(state, probe, None, "")

    def _probe(self, state: steps.StageState, cmd: list[str]) -> dict:
        probe = dict(state.config)
        probe["Cmd"] = cmd
        return probe

    async def _cached(self, state: steps.StageState, probe: dict) -> bool:
        if self.opts.nocache:
            return False
        hit = cache.lookup(self.images, state.image_id, probe)
        if hit is None:
            return False
        await self.out(" ---> Using cache\n")
        self._advance(state, hit)
        await self.out(f" ---> {short(hit.id)}\n")
        return True

    def _advance(self, state: steps.StageState, image: Image) -> None:
        state.image_id = image.id
        state.config["Image"] = image.id

    def _view(self, image_id: str) -> RootfsView:
        if not image_id:
            return RootfsView([])
        return RootfsView(self.images.lower_dirs(self.images.resolve(image_id)))

    async def _commit(self, state: steps.StageState, probe: dict, layer: Path | None,
                      container_id: str) -> Image:
        """The step's image: the current one's layers (and layer, unless empty), the run
        config, ContainerConfig probe; its parent recorded for the cache."""
        parent = self.images.resolve(state.image_id) if state.image_id else None
        host = platforms.host()
        base = parent.config if parent else {
            "architecture": host.architecture, "os": host.os,
            **({"variant": host.variant} if host.variant else {}),
            "rootfs": {"type": "layers", "diff_ids": []}}
        empty = layer is None or await asyncio.to_thread(_tar_empty, layer)
        created = timefmt.rfc3339nano(timefmt.now_ns())
        entry = {"created": created, "created_by": " ".join(probe.get("Cmd") or [])}
        if self.maintainer:
            entry["author"] = self.maintainer
        if empty:
            entry["empty_layer"] = True
        diff_ids = list(base["rootfs"]["diff_ids"])
        files: list[Path] = []
        if not empty:
            diff_ids.append("sha256:" + await asyncio.to_thread(_sha256_file, layer))
            files = [layer]
        run_config = dict(state.config)
        config = {k: base[k] for k in ("architecture", "os", "variant", "os.version")
                  if k in base}
        config.update({"created": created, "container": container_id,
                       "container_config": probe, "config": run_config,
                       "rootfs": {"type": "layers", "diff_ids": diff_ids},
                       "history": [*(base.get("history") or []), entry]})
        if self.maintainer:
            config["author"] = self.maintainer
        base_layers = self.images.layer_digests(parent) if parent else []
        image = await asyncio.to_thread(self.images.import_image, config, files, [],
                                        base_layers=base_layers)
        lineage.set_parent(self.images, image, state.image_id, build_step=True)
        self._advance(state, image)
        await self.out(f" ---> {short(image.id)}\n")
        return image

    # RUN -------------------------------------------------------------------------------------
    async def _run(self, state: steps.StageState, ins: Instruction) -> None:
        for flag in ("mount", "network", "security"):
            if flag in ins.flags:
                raise InvalidParameter(f"the --{flag} option requires BuildKit. Refer to "
                                       f"https://docs.docker.com/go/buildkit/ to learn how to "
                                       f"build images with BuildKit enabled")
        cmd = steps.command_of(state, ins.args, ins.json)
        env = state.config.get("Env") or []
        arg_env = sorted(f"{k}={v}" for k, v in state.args.items()
                         if v is not None and steps.env_get(env, k) is None)
        # proxies and the other predefined args reach the command but not the cache key
        extra = [f"{k}={v}" for k, v in sorted(self.opts.buildargs.items())
                 if k in predefined_args() and k not in state.args and v is not None]
        saved = [f"|{len(arg_env)}", *arg_env, *cmd] if arg_env else cmd
        probe = self._probe(state, saved)
        if await self._cached(state, probe):
            return
        if not state.image_id:
            raise InvalidParameter("cannot RUN in a stage FROM scratch that has no files yet: "
                                   f"{' '.join(cmd)}")
        body = {"Image": state.image_id, "Cmd": cmd, "Entrypoint": [],
                "Env": [*env, *arg_env, *extra], "User": state.config.get("User") or "",
                "WorkingDir": state.config.get("WorkingDir") or "",
                "Labels": state.config.get("Labels") or {},
                # the output is read back from the json-file log whatever the daemon's default
                "HostConfig": {**self.opts.host_config,
                               "LogConfig": {"Type": "json-file", "Config": {}},
                               "NetworkMode": self.opts.network_mode or "default"}}
        c, _ = self.containers.create("", body)
        remove = True       # a failure of berthd's own (not the command's): nothing stays
        try:
            await self.out(f" ---> Running in {c.id[:12]}\n")
            await self.containers.start(c)
            async for entry in logreader.read(
                    self.containers.log_path(c.id), logreader.Options(follow=True),
                    running=lambda: c.running and not c.removed, changed=lambda: c.stopped):
                await self.out(entry.data.decode("utf-8", "replace"))
            await self.containers.wait_stopped(c, None)
            code = c.state.get("ExitCode", 0)
            if code:
                # dockerd 20.10 keeps the failed step's container unless --force-rm; berth
                # leaves nothing behind from a failed build unless --rm=false asks for the
                # intermediate containers
                remove = self.opts.rm or self.opts.forcerm
                if remove and not self.opts.quiet:
                    await self.out(f"Removing intermediate container {c.id[:12]}\n")
                raise StepFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: "
                                 f"{code}", code)
            layer = self.work / "run.tar"
            upper = rootfs.upper_dir(self.data_root, c.id)
            async with c.lock:
                await asyncio.to_thread(self._write_diff, upper, layer)
            await self._commit_run(state, probe, layer, c.id)
            remove = self.opts.rm or self.opts.forcerm
        finally:
            if remove:
                await self._remove(c)

    @staticmethod
    def _write_diff(upper: Path, out: Path) -> None:
        with open(out, "wb") as f:
            image_commit.write_diff(upper, f)

    async def _commit_run(self, state, probe, layer, cid) -> None:
        # " ---> <id>" comes after "Removing intermediate container", as the classic builder
        quiet = self.opts.quiet
        lines: list[str] = []

        async def keep(text: str) -> None:
            lines.append(text)
        out, self.out = self.out, keep
        try:
            await self._commit(state, probe, layer, cid)
        finally:
            self.out = out
        if (self.opts.rm or self.opts.forcerm) and not quiet:
            await self.out(f"Removing intermediate container {cid[:12]}\n")
        for text in lines:
            await self.out(text)

    async def _remove(self, c) -> None:
        try:
            await self.containers.remove(c, force=True, ref=c.id, volumes=True)
        except EngineError:
            pass

    # COPY / ADD ------------------------------------------------------------------------------
    def _context_sources(self, cmd: str, pattern: str) -> list[tuple[Source, str]]:
        """(source, checksum) for each context path pattern matches."""
        from .context import checksum_path
        clean = posixpath.normpath("/" + pattern).lstrip("/")
        if posixpath.normpath(pattern).startswith("../") or pattern == "..":
            raise InvalidParameter(f"{cmd} failed: forbidden path outside the build context: "
                                   f"{pattern} ()")
        root = self.context
        if re.search(r"[*?\[]", clean):
            rels = sorted(glob.glob(clean, root_dir=root, include_hidden=True))
            if not rels:
                raise InvalidParameter(f"{cmd} failed: no source files were specified")
        else:
            rels = [clean] if (clean == "" or os.path.lexists(root / clean)) else []
        if not rels:
            raise InvalidParameter(f"{cmd} failed: file not found in build context or "
                                   f"excluded by .dockerignore: stat {pattern}: file does "
                                   f"not exist")
        out = []
        for rel in rels:
            path = root / rel if rel else root
            real = os.path.realpath(path)
            if real != str(root.resolve()) and not real.startswith(str(root.resolve()) + "/"):
                raise InvalidParameter(f"{cmd} failed: forbidden path outside the build "
                                       f"context: {pattern} ()")
            out.append((Source(path, rel, list_host), checksum_path(str(root), rel)))
        return out

    async def _from_view(self, ref: str) -> RootfsView:
        r = ref.lower()
        if r in self.names:
            return self._view(self.results[self.names[r]])
        if r.isdigit() and int(r) in self.results:
            return self._view(self.results[int(r)])
        return self._view((await self._resolve_base(ref)).id)

    async def _view_sources(self, cmd: str, from_ref: str,
                            src: str) -> list[tuple[Source, str]]:
        """(source, checksum) for each path of another stage or image that src matches."""
        view = await self._from_view(from_ref)
        rel = posixpath.normpath("/" + src).lstrip("/")
        lister = view_lister(view)
        if not rel:
            if not view.layers:
                raise InvalidParameter(f"{cmd} failed: stat {src}: file does not exist")
            # the whole rootfs: its merged top directory
            top = Path(view.layers[0])
            return [(Source(top, "", lister),
                     "dir:" + await asyncio.to_thread(_tree_hash, lister, top, ""))]
        if re.search(r"[*?\[]", rel):
            rels = view.glob(rel)
            if not rels:
                raise InvalidParameter(f"{cmd} failed: no source files were specified")
        else:
            rels = [rel]
        out = []
        for r in rels:
            found = view.find(r)
            if found is None:
                raise InvalidParameter(f"{cmd} failed: stat {src}: file does not exist")
            kind = "dir" if found.is_dir() else "file"
            digest = await asyncio.to_thread(_tree_hash, lister, found, r)
            out.append((Source(found, r, lister), f"{kind}:{digest}"))
        return out

    async def _copy(self, state: steps.StageState, ins: Instruction) -> None:
        cmd = ins.cmd
        if "chmod" in ins.flags:
            raise InvalidParameter(CHMOD_REFUSED)
        words = [self._x(state, w) for w in ins.args]
        if len(words) < 2:
            raise InvalidParameter(f"{cmd} requires at least two arguments")
        srcs, dest = words[:-1], words[-1]
        # "." and ".../." name a directory as a trailing "/" does
        as_dir = dest.endswith("/") or dest == "." or dest.endswith("/.")
        if not dest.startswith("/"):
            dest = posixpath.join(state.config.get("WorkingDir") or "/", dest)
        if as_dir and not dest.endswith("/"):
            dest = posixpath.normpath(dest).rstrip("/") + "/"
        from_ref = ins.flags.get("from", "")
        pairs: list[tuple[Source, str]] = []
        for src in srcs:
            if URL_RE.match(src):
                if cmd == "ADD":
                    raise InvalidParameter(
                        f"ADD of a remote URL is refused: berthd downloads nothing ({src}); "
                        f"fetch it into the build context and COPY it")
                raise InvalidParameter(f"source can't be a URL for {cmd}")
            if from_ref:
                pairs.extend(await self._view_sources(cmd, from_ref, src))
            else:
                pairs.extend(self._context_sources(cmd, src))
        if len(pairs) > 1 and not dest.endswith("/"):
            raise InvalidParameter(f"When using {cmd} with more than one source file, the "
                                   f"destination must be a directory and end with a /")
        if len(pairs) == 1:
            src_hash = pairs[0][1]
        else:
            src_hash = "multi:" + hashlib.sha256(",".join(h for _, h in pairs).encode()).hexdigest()
        chown = ins.flags.get("chown", "")
        here = self._view(state.image_id)
        owner = parse_chown(self._x(state, chown), here) if chown else None
        # as the classic builder writes it: the flag glued to the hash, dest as given
        chown_part = f"--chown={chown}" if chown else ""
        comment = f"{cmd} {chown_part}{src_hash} in {words[-1]} "
        probe = self._probe(state, steps.nop_cmd_string(state, comment))
        if await self._cached(state, probe):
            return
        layer = self.work / "copy.tar"
        await asyncio.to_thread(write_copy, layer, here, [s for s, _ in pairs], dest, owner,
                                unpack=(cmd == "ADD" and not from_ref))
        await self._commit(state, probe, layer, "")


async def finish(images, image: Image, tags: list[str], emit: Emit, quiet: bool) -> None:
    """The stream's end: the aux ID, "Successfully built", the tags."""
    await emit({"aux": {"ID": image.id}})
    if quiet:
        await emit({"stream": image.id + "\n"})
        for tag in tags:
            images.tag(image, tag)
        return
    await emit({"stream": f"Successfully built {short(image.id)}\n"})
    for tag in tags:
        images.tag(image, tag)
        shown = reference.familiar(str(reference.parse(tag)))
        await emit({"stream": f"Successfully tagged {shown}\n"})

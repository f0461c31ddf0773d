"""Container lifecycle, the state machine: what dockerd's daemon/ does for create, start, wait,
kill, stop, restart, pause, update, rename, remove and attach, over berth-supervisor's
containerd API, and the restarts a restart policy asks for.

As in dockerd, `create` only makes berthd's record and the writable layer; `start` creates the
supervisor's container and task (the shim mounts the overlay rootfs), and when the task exits its
task and container are deleted again, so the supervisor holds only what is running. Records
survive berthd: on start, `restore()` picks up the containers that kept running meanwhile.

Elsewhere: what a create or update request may ask, and dockerd's defaults, in host_config.py;
the /etc files in etc_files.py; berthd's own restart in restore.py; OOM kills in oom_watch.py.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import signal as signals
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlencode

from supervisor import errors as sup_errors

from . import (container as views, cpu_rt, etc_files, health, host_config, names, oom_watch,
               restore, rootfs, spec as oci_spec, timefmt)
from .config import DaemonConfig
from .container import Container, PendingAttach
from .errors import (Conflict, EngineError, Forbidden, Internal, InvalidParameter, NotFound,
                     NotModified)
from .events import EventLog
from .images.store import ImageStore
from .network import endpoints as network_endpoints, links as network_links
from .network.manager import Networks
from .store import Store
from .supervisor_link import SupervisorLink
from .volumes import (Volumes, copyup, mountpoints as volume_mountpoints,
                      service as volume_service)

log = logging.getLogger("berthd.containers")

KILL_WAIT = 10.0            # how long a SIGKILL may take to show as an exit
DEFAULT_STOP_TIMEOUT = 10

EXIT_EACCES, EXIT_NOT_FOUND, EXIT_UNKNOWN = 126, 127, 128


def _join_netns(spec: dict, ns_path: str | None) -> None:
    """The runtime joins the network namespace berthd made (or the shared container's) by
    path, as containerd's CNI setup has it; None keeps what the spec says (the host's for
    --network host, a new one otherwise)."""
    if ns_path is None:
        return
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = ns_path
            return
    spec["linux"]["namespaces"].append({"type": "network", "path": ns_path})


def exit_code_for_start_error(message: str) -> int:
    """moby's setExitCodeFromError: 126 cannot invoke, 127 not found, 128 anything else."""
    low = message.lower()
    if os.strerror(errno.EACCES).lower() in low or os.strerror(errno.EISDIR).lower() in low:
        return EXIT_EACCES
    if any(s in low for s in ("executable file not found", "no such file or directory",
                              "not a directory")):
        return EXIT_NOT_FOUND
    return EXIT_UNKNOWN


class Containers:
    def __init__(self, cfg: DaemonConfig, store: Store, images: ImageStore, link: SupervisorLink,
                 events: EventLog):
        self.cfg = cfg
        self.store = store
        self.images = images
        self.link = link
        self.events = events
        self.by_id: dict[str, Container] = {}
        self.by_name: dict[str, str] = {}
        # healthcheck monitors (health.py); Execs gives them the exec path to probe with
        self.health = health.HealthMonitors(events, self._save)
        self.containers_dir = cfg.data_root / "containers"
        self.containers_dir.mkdir(parents=True, exist_ok=True)
        # the networks and each running container's sandbox in them (engine/network/)
        self.networks = Networks(cfg.data_root, getattr(cfg, "bip", None), events)
        # volumes: the local driver's, their users found again from the records
        self.volumes = Volumes(cfg.data_root, events)
        for record in store.load_containers():
            c = Container(record)
            self.by_id[c.id] = c
            self.by_name[c.name] = c.id
            self._load_volume_users(c)

    # lookup
    def get(self, ref: str) -> Container:
        """Full ID, name (with or without '/'), or unique ID prefix, as dockerd resolves them."""
        if ref in self.by_id:
            return self.by_id[ref]
        name = ref if ref.startswith("/") else "/" + ref
        if name in self.by_name:
            return self.by_id[self.by_name[name]]
        if ref and re.fullmatch(r"[0-9a-f]+", ref):
            matches = [c for cid, c in self.by_id.items() if cid.startswith(ref)]
            if len(matches) > 1:
                raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
            if matches:
                return matches[0]
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        return sorted(self.by_id.values(), key=lambda c: c.record["Created"], reverse=True)

    def container_dir(self, cid: str) -> Path:
        return self.containers_dir / cid

    def log_path(self, cid: str) -> Path:
        return self.container_dir(cid) / f"{cid}-json.log"

    def rootfs_dirs(self, c: Container) -> list[Path]:
        """The container's layers, the writable one first, to read its files (passwd, group)."""
        image = self.images.find(c.record["Image"])
        lower = self.images.lower_dirs(image) if image else []
        return rootfs.merged_view(self.cfg.data_root, c.id, lower)

    def _save(self, c: Container) -> None:
        self.store.update_container(c.id, c.name, c.record)

    # create
    def create(self, name: str, body: dict, platform: str = "") -> tuple[Container, list[str]]:
        """The new container and the warnings for the client (options dropped, as dockerd)."""
        # as dockerd: the whole body is checked before the image is looked up
        config = host_config.parse_config(body)
        warnings: list[str] = []
        hc = host_config.parse_host_config(body.get("HostConfig") or {}, config, self.cfg,
                                           warnings)
        host_config.check_networking(body.get("NetworkingConfig"), hc["NetworkMode"])
        self._check_network_mode(hc["NetworkMode"])
        self._check_links(hc)
        image_ref = config["Image"]
        image = self.images.resolve(image_ref)
        host_config.check_platform(image_ref, platform, image.config)
        host_config.merge_image_config(config, image.container_config)
        health.merge_image_healthcheck(config, image.container_config)
        host_config.check_merged(config, hc)
        args = host_config.command(config)
        if name:
            name = names.normalize(name)
            if name in self.by_name:
                raise Conflict(
                    f'Conflict. The container name "{name}" is already in use by container '
                    f'"{self.by_name[name]}". You have to remove (or rename) that container '
                    f'to be able to reuse that name.')
        else:
            name = names.generate(lambda n: n in self.by_name)
        cid = os.urandom(32).hex()
        while cid in self.by_id or cid[:12] in {k[:12] for k in self.by_id}:
            cid = os.urandom(32).hex()
        # last of the checks, as it makes the volumes it names (taken back if create fails)
        mount_points, made_volumes = volume_mountpoints.build(config, hc, self.volumes,
                                                              self._volume_source)
        if not config.get("Hostname"):
            config["Hostname"] = os.uname().nodename if hc["NetworkMode"] == "host" else cid[:12]
        record = {
            "Id": cid, "Created": timefmt.now_ns(), "Name": name, "Path": args[0],
            "Args": args[1:], "Config": config, "HostConfig": hc, "Image": image.id,
            "State": views.new_state(), "RestartCount": 0,
            # the networks it joins (network connect adds, disconnect removes) and its
            # settings on each (aliases, a static address), as dockerd's EndpointsConfig
            "EndpointsConfig": network_endpoints.from_create(hc["NetworkMode"],
                                                             body.get("NetworkingConfig")),
            "MountPoints": mount_points,
        }
        cdir = self.container_dir(cid)
        try:
            cdir.mkdir(parents=True)
            rootfs.prepare(self.cfg.data_root, cid)
            self.store.insert_container(cid, name, record["Created"], record)
        except (OSError, sqlite3.Error) as e:
            shutil.rmtree(cdir, ignore_errors=True)
            rootfs.remove(self.cfg.data_root, cid)
            for volume in made_volumes:
                self.volumes.remove(volume, force=True)
            raise Internal(f"cannot create container {cid}: {e}") from None
        for mp in mount_points:
            if mp["Type"] == "volume":
                self.volumes.use(mp["Name"], cid)
        c = Container(record)
        self.by_id[cid] = c
        self.by_name[name] = cid
        log.info("created container %s (%s) from %s", cid[:12], name, image_ref)
        self.events.container(c, "create")
        for warning in warnings:
            log.warning("container %s: %s", cid[:12], warning)
        return c, warnings

    def _check_network_mode(self, mode: str) -> None:
        """The network or container a mode names exists, in dockerd's words. Not a 404: the
        docker CLI takes a 404 from create for a missing image and would try to pull it."""
        try:
            if mode.startswith("container:"):
                self.get(mode.partition(":")[2])
            elif mode not in ("host", "none"):
                self.networks.find(mode)
        except NotFound as e:
            raise InvalidParameter(e.message) from None

    def _check_links(self, hc: dict) -> None:
        """--link's containers exist (dockerd's words); they must run at each start."""
        for link in hc.get("Links") or []:
            name, _ = network_links.parse(link)
            try:
                self.get(name)
            except NotFound:
                raise InvalidParameter(f"could not get container for {name}") from None

    def _legacy_links(self, c: Container) -> tuple[list[str], str]:
        """On the default bridge: each linked container's environment variables and its
        /etc/hosts line (dockerd's legacy links). On a user network links are DNS aliases."""
        if (c.host_config.get("NetworkMode") or "bridge") != "bridge":
            return [], ""
        env, hosts = [], ""
        for link in c.host_config.get("Links") or []:
            name, alias = network_links.parse(link)
            try:
                target = self.get(name)
            except NotFound:
                raise NotFound(f"could not get container for {name}") from None
            if not target.running or target.restarting:
                raise Conflict(f"Cannot link to a non running container: {target.name} AS "
                               f"{c.name}/{alias}")
            box = self.networks.sandbox(target.id) or {}
            bridge_id = self.networks.find("bridge")["Id"]
            ep = (box.get("Networks") or {}).get(bridge_id)
            if ep is None:
                raise Conflict(f"Cannot link to {target.name}, as it does not belong to the "
                               f"default network")
            env += network_links.env(alias, c.name, target.name, ep["IPAddress"],
                                     target.config.get("ExposedPorts"), target.config.get("Env"))
            hosts += network_links.hosts_line(alias, target.name, ep["IPAddress"])
        return env, hosts

    # start
    async def start(self, c: Container) -> None:
        """A user's start: the restart policy begins afresh (RestartCount 0, not stopped by
        the user), as dockerd's ResetRestartManager."""
        async with c.lock:
            if c.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.running:
                raise NotModified("container is already running")
            if c.removing or c.removed or c.state["Dead"]:
                raise Conflict("container is marked for removal and cannot be started")
            self._reset_restart_policy(c)
            await self._start_locked(c)

    def _reset_restart_policy(self, c: Container) -> None:
        c.restart_manager = None
        c.record["RestartCount"] = 0
        c.record.pop("ManuallyStopped", None)

    def _stdio(self, c: Container) -> tuple[str, str]:
        config = c.host_config["LogConfig"]
        log_uri = ""
        if config["Type"] == "json-file":
            query = {}
            if config["Config"].get("max-size"):
                query["max-size"] = host_config.log_max_size(config["Config"]["max-size"])
                query["max-file"] = int(config["Config"].get("max-file") or 1)
            log_uri = f"berth-jsonfile://{self.log_path(c.id)}"
            if query:
                log_uri += "?" + urlencode(query)
        stdin = ""
        if c.config.get("OpenStdin"):
            stdin = "berth-attach:?once=1" if c.config.get("StdinOnce") else "berth-attach:"
        return stdin, log_uri

    def _runtime_args(self, c: Container) -> dict:
        runtime = c.host_config.get("Runtime") or self.cfg.default_runtime
        if runtime.startswith("/"):
            return {"runtime": "io.containerd.runc.v2", "runtime_binary": runtime}
        return {"runtime": runtime}

    async def _start_locked(self, c: Container) -> None:
        t0 = time.monotonic()
        image = self.images.find(c.record["Image"])
        if image is None:
            raise NotFound(f"No such image: {c.record['Image']} (of container {c.id[:12]})")
        lower = self.images.lower_dirs(image)
        rootfs.prepare(self.cfg.data_root, c.id)
        try:
            link_env, link_hosts = self._legacy_links(c)
            ns_path = await self._attach_network(c)
            etc_files.write(c, self.container_dir(c.id), self.networks.first_address(c.id),
                            self.networks.host_gateway(), self.networks.uses_dns(c.id),
                            link_hosts)
            volume_mounts = await self._mount_volumes(c, lower)
            # as dockerd at every start: the parent may be the container's own, or made again
            cpu_rt.init_parent(c.host_config.get("CgroupParent") or self.cfg.cgroup_parent,
                               self.cfg.cpu_rt_period, self.cfg.cpu_rt_runtime)
            spec = oci_spec.build(
                container_id=c.id, config=c.config, host_config=c.host_config,
                rootfs_dirs=rootfs.merged_view(self.cfg.data_root, c.id, lower),
                container_dir=self.container_dir(c.id), cgroup_parent=self.cfg.cgroup_parent,
                cgroup_v2=self.cfg.cgroup_v2,
                init_binary=host_config.init_binary(c.host_config, self.cfg),
                volume_mounts=volume_mounts, daemon_root=self.cfg.data_root)
            _join_netns(spec, ns_path)
            # the links' variables come first; the container's own of the same name win
            own = {e.partition("=")[0] for e in spec["process"]["env"]}
            spec["process"]["env"][:0] = [e for e in link_env if e.partition("=")[0] not in own]
            cwd = spec["process"]["cwd"].lstrip("/")
            if not any((Path(d) / cwd).is_dir() for d in lower):
                # as dockerd, create a missing WorkingDir (in the writable layer)
                (rootfs.upper_dir(self.cfg.data_root, c.id) / cwd).mkdir(parents=True,
                                                                          exist_ok=True)
        except EngineError as e:
            await self._start_failed(c, e.message, EXIT_NOT_FOUND if "find user" in e.message
                                     else EXIT_UNKNOWN)
            raise
        except OSError as e:
            await self._start_failed(c, str(e), EXIT_UNKNOWN)
            raise Internal(f"cannot start container {c.id}: {e}") from None
        stdin, log_uri = self._stdio(c)
        t1 = time.monotonic()
        try:
            client = await self.link.ready_client()
            try:
                await client.create_container(c.id, spec, image=c.config.get("Image", ""),
                                              **self._runtime_args(c))
            except sup_errors.AlreadyExists:
                await self._delete_task(c.id)
                await client.create_container(c.id, spec, image=c.config.get("Image", ""),
                                              **self._runtime_args(c))
            t2 = time.monotonic()
            await client.create_task(
                c.id, rootfs=rootfs.mounts(self.cfg.data_root, c.id, lower), stdin=stdin,
                stdout=log_uri, stderr=log_uri, terminal=c.tty)
            t3 = time.monotonic()
            pending, c.pending_attaches = c.pending_attaches, []
            for p in pending:
                if p.ready.done():      # its client went away meanwhile
                    continue
                try:
                    p.ready.set_result(await client.attach(c.id, stdin=p.stdin, stdout=p.stdout,
                                                           stderr=p.stderr))
                except sup_errors.SupervisorError as e:
                    log.warning("cannot attach to %s: %s", c.id[:12], e)
                    p.ready.set_result(None)
            pid = await client.start(c.id)
        except sup_errors.SupervisorError as e:
            try:
                await self._delete_task(c.id)
            except sup_errors.SupervisorError as cleanup:
                log.error("after the failed start of %s, cannot delete its task: %s",
                          c.id[:12], cleanup)
            code = exit_code_for_start_error(e.message)
            await self._start_failed(c, e.message, code)
            if code in (EXIT_EACCES, EXIT_NOT_FOUND):
                raise InvalidParameter(e.message) from None
            raise Internal(e.message) from None
        s = c.state
        s.update(Running=True, Paused=False, Restarting=False, OOMKilled=False, Dead=False,
                 Pid=pid, ExitCode=0, Error="", StartedAt=timefmt.now_ns())
        c.oom_killed = False
        c.stopped.clear()
        self.health.init(c)
        self._save(c)
        c.monitor = asyncio.get_running_loop().create_task(self._monitor(c))
        self.events.container(c, "start")
        t4 = time.monotonic()
        log.info("started container %s (pid %d)", c.id[:12], pid)
        log.debug("start of %s took %.0f ms: prepare %.0f, create container %.0f, create task "
                  "%.0f, attach and start %.0f", c.id[:12], (t4 - t0) * 1e3, (t1 - t0) * 1e3,
                  (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3)

    async def _attach_network(self, c: Container) -> str | None:
        """The network namespace the container joins: one berthd makes for it (bridge,
        user network, none), the one of the container it shares (container:<id|name>), or
        none for the host's. Its view is kept in the record for inspect."""
        mode = c.host_config.get("NetworkMode") or "bridge"
        if mode.startswith("container:"):
            other = self.get(mode.partition(":")[2])
            if not other.running or other.restarting:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            box = self.networks.sandbox(other.id)
            if box:
                return box["Netns"]
            if (other.host_config.get("NetworkMode") or "") == "host":
                return f"/proc/{os.getpid()}/ns/net"     # the host's, which berthd is in
            return f"/proc/{other.state['Pid']}/ns/net"
        endpoints = dict(c.record.get("EndpointsConfig") or {})
        if mode in c.record.get("Disconnected", []):
            # disconnected from its mode's network while stopped: the first other network it
            # was connected to takes its place (none if there is none)
            others = [n for n in endpoints if n not in ("bridge", "default", "host", "none")
                      and n not in c.record["Disconnected"]]
            mode = others[0] if others else "none"
        ns_path = await self.networks.attach(
            c.id, c.name, mode, endpoints, c.config.get("ExposedPorts"),
            c.host_config.get("PortBindings"), bool(c.host_config.get("PublishAllPorts")))
        view = self.networks.view(c.id)
        if view is not None:
            c.record["Network"] = view
        await self.networks.start_dns(c.id, c.host_config.get("Dns"))
        return ns_path

    async def connect_network(self, c: Container, ref: str, ep_config: dict) -> None:
        """POST /networks/{id}/connect: on the network now if it runs, else from its next
        start."""
        net = self.networks.find(ref)
        network_endpoints.check_connect(c.host_config.get("NetworkMode") or "bridge", net,
                                        ep_config)
        async with c.lock:
            configs = c.record.setdefault("EndpointsConfig", {})
            if c.running:
                await self.networks.connect(c.id, c.name, net["Id"], ep_config)
                c.record["Network"] = self.networks.view(c.id)
                await self.networks.start_dns(c.id, c.host_config.get("Dns"))
            elif net["Name"] in configs or net["Id"] in configs:
                raise Forbidden(f"endpoint with name {c.name.lstrip('/')} already exists in "
                                f"network {net['Name']}")
            configs[net["Name"]] = ep_config
            disconnected = [n for n in c.record.get("Disconnected", []) if n != net["Name"]]
            if disconnected:
                c.record["Disconnected"] = disconnected
            else:
                c.record.pop("Disconnected", None)
            self._save(c)

    async def disconnect_network(self, c: Container, ref: str, force: bool) -> None:
        """POST /networks/{id}/disconnect."""
        net = self.networks.find(ref)
        mode = c.host_config.get("NetworkMode") or "bridge"
        if net["Name"] == "host" or mode == "host":
            raise Forbidden("container cannot be disconnected from host network or connected "
                            "to host network")
        async with c.lock:
            configs = c.record.setdefault("EndpointsConfig", {})
            known = net["Name"] in configs or net["Id"] in configs or mode == net["Name"]
            if c.running:
                await self.networks.disconnect(c.id, net["Id"])
                c.record["Network"] = self.networks.view(c.id)
            elif not known and not force:
                raise Forbidden(f"container {c.id} is not connected to network {net['Name']}")
            configs.pop(net["Name"], None)
            configs.pop(net["Id"], None)
            if mode == net["Name"]:
                # as dockerd: the mode stays; the container starts on no network but lo
                c.record["Disconnected"] = sorted(set(c.record.get("Disconnected", []))
                                                  | {net["Name"]})
            self._save(c)

    async def _detach_network(self, c: Container) -> None:
        """Its sandbox goes: veths, namespace, addresses, ports, rules."""
        c.record.pop("Network", None)
        try:
            await self.networks.detach(c.id)
        except EngineError as e:
            log.error("cleaning up the network of %s: %s", c.id[:12], e.message)

    async def _start_failed(self, c: Container, message: str, code: int) -> None:
        """As dockerd: the exit code says why (126/127/128), the error is kept in State.Error,
        waiters and pending attaches are released, and an AutoRemove container goes away."""
        log.warning("cannot start container %s: %s", c.id[:12], message)
        await self._detach_network(c)
        self._unmount_volumes(c)
        c.state.update(Running=False, Restarting=False, ExitCode=code, Error=message)
        self._save(c)
        for p in c.pending_attaches:
            if not p.ready.done():
                p.ready.set_result(None)
        c.pending_attaches.clear()
        c.notify_stopped()
        if c.host_config.get("AutoRemove") and not c.removing:
            try:
                await self._remove_locked(c, volumes=True)
            except EngineError as e:
                log.error("auto-remove of %s failed: %s", c.id[:12], e.message)

    async def _delete_task(self, cid: str) -> tuple[int, int] | None:
        """Delete the supervisor's task and container for cid, killing a live task first.
        Returns the task's (exit status, exited at) when there was one."""
        client = await self.link.ready_client()
        result = None
        try:
            _, status, exited_at = await client.delete_task(cid)
            result = (status, exited_at)
        except sup_errors.NotFound:
            pass
        except sup_errors.FailedPrecondition:
            try:
                await client.kill(cid, signals.SIGKILL, all=True)
                status, exited_at = await client.wait(cid)
                await client.delete_task(cid)
                result = (status, exited_at)
            except sup_errors.NotFound:
                pass
        try:
            await client.delete_container(cid)
        except sup_errors.NotFound:
            pass
        return result

    # exits
    async def _monitor(self, c: Container) -> None:
        delay = 0.1
        while True:
            try:
                client = await self.link.ready_client()
                status, exited_at = await client.wait(c.id)
                break
            except sup_errors.NotFound:
                log.error("container %s: its task is gone from berth-supervisor", c.id[:12])
                status, exited_at = 255, timefmt.now_ns()
                c.state["Error"] = "the container's task was lost (its shim died)"
                break
            except sup_errors.SupervisorError as e:
                # the supervisor is restarting (Unavailable, or our channel was cancelled)
                log.debug("waiting on %s: %s; retrying", c.id[:12], e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        await self._handle_exit(c, status, exited_at)

    async def _handle_exit(self, c: Container, status: int, exited_at: int) -> None:
        async with c.lock:
            if not c.running or c.restarting:
                return
            # as dockerd, probes stop first; they begin again with its next start
            self.health.stop(c)
            try:
                deleted = await self._delete_task(c.id)
                if deleted and deleted[1]:
                    status, exited_at = deleted
            except sup_errors.SupervisorError as e:
                log.error("cannot delete the task of %s: %s", c.id[:12], e)
            await self._detach_network(c)
            self._unmount_volumes(c)        # the --opt mounts it was the last to hold go
            finished = exited_at or timefmt.now_ns()
            ran_for = max(0.0, (finished - c.state["StartedAt"]) / 1e9)
            delay = c.restart_policy().should_restart(status, c.manually_stopped, ran_for)
            if delay is not None:
                c.record["RestartCount"] = c.record.get("RestartCount", 0) + 1
            # while a restart is pending it counts as running, as in dockerd (State.Restarting)
            c.state.update(Running=delay is not None, Restarting=delay is not None, Paused=False,
                           Pid=0, ExitCode=status, OOMKilled=c.oom_killed, FinishedAt=finished)
            self._save(c)
            c.monitor = None
            c.execs.clear()         # as dockerd's Cleanup: its unfinished execs are forgotten
            log.info("container %s exited with %d%s", c.id[:12], status,
                     f"; restarting it in {delay:.1f}s" if delay is not None else "")
            self.events.container(c, "die", exitCode=str(status), execDuration=str(int(ran_for)))
            c.notify_stopped()
            if delay is not None:
                c.pending_restart = asyncio.get_running_loop().create_task(
                    self._restart_after(c, delay))
            elif c.host_config.get("AutoRemove") and not c.removing and not c.manually_restarted:
                try:
                    await self._remove_locked(c, volumes=True)
                except EngineError as e:
                    log.error("auto-remove of %s failed: %s", c.id[:12], e.message)

    async def _restart_after(self, c: Container, delay: float) -> None:
        """The restart its policy asked for, after the backoff; `_cancel_restart_locked` (a
        stop, kill or rm by the user) takes it back until it has begun."""
        await asyncio.sleep(delay)
        async with c.lock:
            if c.pending_restart is not asyncio.current_task() or c.removing or c.removed:
                return
            c.pending_restart = None
            try:
                await self._start_locked(c)
            except EngineError as e:
                log.error("restart of %s failed: %s", c.id[:12], e.message)

    def _cancel_restart_locked(self, c: Container) -> bool:
        """Take back a pending restart (the container then stays stopped); False if none."""
        task = c.pending_restart
        if task is None:
            return False
        c.pending_restart = None
        task.cancel()
        c.state.update(Running=False, Restarting=False)
        self._save(c)
        c.notify_stopped()
        log.info("container %s: its pending restart was canceled", c.id[:12])
        return True

    async def wait_stopped(self, c: Container, timeout: float | None) -> bool:
        if not c.running:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(c.stopped.wait()), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # wait
    def waiter(self, c: Container, condition: str) -> asyncio.Future:
        """A future of (exit code, error or None) for POST /containers/{id}/wait."""
        fut = asyncio.get_running_loop().create_future()
        result = (c.state["ExitCode"], c.state["Error"] or None)
        if condition == "not-running" and not c.running:
            fut.set_result(result)
        elif condition == "removed":
            if c.removed:
                fut.set_result(result)
            else:
                c.remove_waiters.append(fut)
        else:
            c.stop_waiters.append(fut)
        return fut

    # signals
    async def kill(self, c: Container, sig: int, ref: str) -> None:
        if not c.running:
            raise Conflict(f"cannot kill container: {ref}: container {c.id} is not running")
        await self._send_signal(c, sig)
        if sig == signals.SIGKILL:
            await self.wait_stopped(c, KILL_WAIT)

    async def _send_signal(self, c: Container, sig: int) -> None:
        """dockerd's killWithSignal: a signal from the user. The stop signal (any signal when
        the container names none) or SIGKILL also means "do not restart it after this exit",
        takes back a pending restart, and resumes a paused container so the signal lands."""
        async with c.lock:
            if not c.running:
                return          # it exited meanwhile
            try:
                own = host_config.parse_signal(c.config.get("StopSignal"), 0)
            except InvalidParameter:
                own = 0
            final = sig == signals.SIGKILL or not own or sig == own
            if final:
                c.restart_policy().cancel()
            c.record["ManuallyStopped"] = True
            self._save(c)
            if c.restarting:
                if final:
                    self._cancel_restart_locked(c)
                return
            resume = final and c.paused
            await self._signal(c, sig)
            if resume:
                client = await self.link.ready_client()
                try:
                    await client.resume(c.id)
                    c.state["Paused"] = False
                    self.health.update(c)
                    self._save(c)
                except sup_errors.SupervisorError as e:
                    log.warning("cannot resume %s after signalling it: %s", c.id[:12], e)
        self.events.container(c, "kill", signal=str(sig))

    async def _signal(self, c: Container, sig: int) -> None:
        client = await self.link.ready_client()
        try:
            await client.kill(c.id, sig)
        except (sup_errors.NotFound, sup_errors.FailedPrecondition):
            pass   # it exited meanwhile; the monitor records the exit
        except sup_errors.SupervisorError as e:
            raise Internal(f"cannot kill container {c.id}: {e.message}") from None

    async def stop(self, c: Container, timeout: int | None, sig: str | None) -> None:
        if not c.running:
            raise NotModified("container is already stopped")
        stop_sig = host_config.parse_signal(sig or c.config.get("StopSignal"), signals.SIGTERM)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = DEFAULT_STOP_TIMEOUT if timeout is None else timeout
        await self._send_signal(c, stop_sig)
        if not await self.wait_stopped(c, None if timeout < 0 else timeout):
            log.info("container %s did not stop within %ds; killing it", c.id[:12], timeout)
            await self._send_signal(c, signals.SIGKILL)
            if not await self.wait_stopped(c, KILL_WAIT * 3):
                raise Internal(f"cannot stop container: {c.name.lstrip('/')}: tried to kill "
                               f"container, but did not receive an exit event")
        self.events.container(c, "stop")

    async def restart(self, c: Container, timeout: int | None, sig: str | None) -> None:
        """Stop (if running) and start again; an AutoRemove container is not removed between."""
        c.manually_restarted = True
        try:
            if c.running:
                try:
                    await self.stop(c, timeout, sig)
                except NotModified:
                    pass
            await self.start(c)
        except EngineError as e:
            raise type(e)(f"Cannot restart container {c.name.lstrip('/')}: {e.message}") from None
        finally:
            c.manually_restarted = False
        self.events.container(c, "restart")

    # pause
    async def pause(self, c: Container) -> None:
        async with c.lock:
            if not c.running:
                raise Conflict(f"container {c.id} is not running")
            if c.paused:
                raise Conflict(f"Container {c.id} is already paused")
            if c.restarting:
                raise Conflict(f"Container {c.id} is restarting, wait until the container is "
                               f"running")
            client = await self.link.ready_client()
            try:
                await client.pause(c.id)
            except sup_errors.SupervisorError as e:
                raise Internal(f"cannot pause container {c.id}: {e.message}") from None
            c.state["Paused"] = True
            self.health.update(c)       # no probes while paused (dockerd's updateHealthMonitor)
            self._save(c)
        self.events.container(c, "pause")

    async def unpause(self, c: Container) -> None:
        async with c.lock:
            if not c.paused:
                raise Internal(f"Container {c.id} is not paused")   # a plain error in dockerd
            client = await self.link.ready_client()
            try:
                await client.resume(c.id)
            except sup_errors.SupervisorError as e:
                raise Internal(f"Cannot unpause container {c.id}: {e.message}") from None
            c.state["Paused"] = False
            self.health.update(c)
            self._save(c)
        self.events.container(c, "unpause")

    # update
    async def update(self, c: Container, body: dict) -> list[str]:
        """docker update: resources take effect at once in a running container (through the
        supervisor's Tasks.Update) and are kept for its later starts; so is a restart policy."""
        async with c.lock:
            warnings: list[str] = []
            hc, changed = host_config.parse_update(c.id, c.host_config, body, self.cfg,
                                                   warnings)
            if c.running and changed:
                resources = oci_spec.resources(hc)
                resources.pop("devices", None)   # the device rules stay as they were made
                client = await self.link.ready_client()
                try:
                    await client.update(c.id, resources)
                except sup_errors.SupervisorError as e:
                    raise Internal(f"Cannot update container {c.id}: {e.message}") from None
            c.record["HostConfig"] = hc
            self._save(c)
        self.events.container(c, "update")
        return warnings

    # rename
    def rename(self, c: Container, new_name: str) -> None:
        new_name = new_name.strip()
        if not new_name.lstrip("/"):
            raise InvalidParameter("Neither old nor new names may be empty")
        new_name = new_name if new_name.startswith("/") else "/" + new_name
        if new_name == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        if not names.VALID_NAME.match(new_name):
            raise InvalidParameter(
                f"Error when allocating new name: Invalid container name ({new_name}), only "
                f"[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if new_name in self.by_name:
            raise Conflict(
                f'Error when allocating new name: Conflict. The container name "{new_name}" is '
                f'already in use by container "{self.by_name[new_name]}". You have to remove '
                f'(or rename) that container to be able to reuse that name.')
        old_name = c.name
        c.record["Name"] = new_name
        try:
            self._save(c)
        except sqlite3.Error as e:
            c.record["Name"] = old_name
            raise Internal(f"cannot rename container {c.id}: {e}") from None
        del self.by_name[old_name]
        self.by_name[new_name] = c.id
        log.info("renamed container %s from %s to %s", c.id[:12], old_name, new_name)
        self.events.container(c, "rename", oldName=old_name)

    # remove
    async def remove(self, c: Container, *, force: bool, ref: str,
                     volumes: bool = False) -> None:
        """volumes: `rm -v`, its anonymous volumes go with it."""
        if c.removing:
            raise Conflict(f"removal of container {ref} is already in progress")
        if c.running:
            if not force:
                raise Conflict(f'cannot remove container "{ref}": container is {c.status()}: '
                               f'stop the container before removing or force remove')
            c.removing = True
            try:
                await self._send_signal(c, signals.SIGKILL)
                if not await self.wait_stopped(c, KILL_WAIT * 3):
                    raise Internal(f'cannot remove container "{ref}": could not kill container')
            except BaseException:
                c.removing = False
                raise
        async with c.lock:
            if c.removed:
                return
            await self._remove_locked(c, volumes=volumes)

    async def _remove_locked(self, c: Container, *, volumes: bool = False) -> None:
        c.removing = True
        self.health.stop(c)
        try:
            await self._delete_task(c.id)
        except sup_errors.SupervisorError as e:
            # keep the record (as dockerd keeps a container it cannot clean up) so that a
            # later `rm` can try again, rather than forget a task that may still be there
            c.removing = False
            c.state.update(Dead=True, Error=f"cannot delete its task: {e.message}")
            self._save(c)
            raise Internal(f"cannot remove container {c.name.lstrip('/')}: cannot delete its "
                           f"task: {e.message}") from None
        await self._detach_network(c)
        self.store.delete_container(c.id)
        self.by_id.pop(c.id, None)
        if self.by_name.get(c.name) == c.id:
            del self.by_name[c.name]
        shutil.rmtree(self.container_dir(c.id), ignore_errors=True)
        rootfs.remove(self.cfg.data_root, c.id)
        self._release_volumes(c, remove_anonymous=volumes)
        c.removing = False
        c.notify_removed()
        log.info("removed container %s", c.id[:12])
        self.events.container(c, "destroy")

    # volumes
    def _load_volume_users(self, c: Container) -> None:
        """At load: the volumes c's record names are used by it, and held mounted while it
        runs (its exit, seen by restore's monitor, lets them go)."""
        for mp in c.record.get("MountPoints") or []:
            if mp.get("Type") != "volume" or mp.get("Name") not in self.volumes.by_name:
                continue
            self.volumes.use(mp["Name"], c.id)
            if c.state.get("Running"):
                self.volumes.held(mp["Name"], c.id)

    async def _mount_volumes(self, c: Container, lower: list[str]) -> list[dict]:
        """At start: c's mount points as OCI binds, each volume's --opt mount made where c is
        its first running user, and an empty volume filled from the container's content at
        its destination (dockerd's copy-up) unless its mount said nocopy."""
        out = []
        for mp in c.record.get("MountPoints") or []:
            source = mp["Source"]
            if mp["Type"] == "volume":
                source = self.volumes.mount(mp["Name"], c.id)
                self.events.log("volume", "mount", mp["Name"], {
                    "container": c.id, "destination": mp["Destination"], "driver": "local",
                    "propagation": mp.get("Propagation") or "",
                    "read/write": "true" if mp["RW"] else "false"})
                if mp.get("CopyData", True) and volume_service.is_empty(source):
                    layers = rootfs.merged_view(self.cfg.data_root, c.id, lower)
                    await asyncio.to_thread(copyup.copy_up, layers, mp["Destination"], source)
            out.append({"destination": mp["Destination"], "type": "bind", "source": source,
                        "options": ["rbind", "rw" if mp["RW"] else "ro",
                                    mp.get("Propagation") or "rprivate"]})
        return out

    def _unmount_volumes(self, c: Container) -> None:
        """c stopped (or did not start): its volumes are let go, each with dockerd's unmount
        event, and the --opt mounts it was the last to hold are unmounted."""
        self.volumes.unmount_all(c.id)
        for mp in c.record.get("MountPoints") or []:
            if mp["Type"] == "volume":
                self.events.log("volume", "unmount", mp["Name"],
                                {"container": c.id, "driver": "local"})

    def _volume_source(self, ref: str) -> tuple[list[dict], dict]:
        """--volumes-from ref: its mount points and HostConfig."""
        other = self.get(ref)
        return [dict(mp) for mp in other.record.get("MountPoints") or []], other.host_config

    def _release_volumes(self, c: Container, *, remove_anonymous: bool) -> None:
        """c is gone: it uses its volumes no more; with `rm -v` or --rm its anonymous ones
        go too, unless another container still uses one (named volumes are kept)."""
        self.volumes.unmount_all(c.id)
        released = self.volumes.release(c.id)
        if not remove_anonymous:
            return
        own = {mp.get("Name") for mp in c.record.get("MountPoints") or []
               if mp.get("Type") == "volume" and mp.get("Anonymous")}
        for volume in released:
            if volume.name not in own or volume.users or volume.active:
                continue
            try:
                self.volumes.remove(volume.name)
            except EngineError as e:
                log.warning("container %s: cannot remove its volume %s: %s", c.id[:12],
                            volume.name, e.message)

    # attach
    async def attach(self, c: Container, *, stdin: bool, stdout: bool, stderr: bool):
        """A supervisor attachment to the container's stdio: now if it runs, else at its next
        start. None when it never starts (removed) or has exited meanwhile."""
        stdin = stdin and bool(c.config.get("OpenStdin"))
        if c.running:
            client = await self.link.ready_client()
            try:
                return await client.attach(c.id, stdin=stdin, stdout=stdout, stderr=stderr)
            except (sup_errors.NotFound, sup_errors.FailedPrecondition):
                return None
        pending = PendingAttach(stdin, stdout, stderr,
                                asyncio.get_running_loop().create_future())
        c.pending_attaches.append(pending)
        try:
            return await pending.ready
        except asyncio.CancelledError:
            if pending in c.pending_attaches:
                c.pending_attaches.remove(pending)
            raise

    async def resize(self, c: Container, height: int, width: int) -> None:
        if not c.running:
            raise Conflict(f"cannot resize container {c.id}: it is not running")
        client = await self.link.ready_client()
        try:
            await client.resize_pty(c.id, width, height)
        except sup_errors.SupervisorError as e:
            if await self.wait_stopped(c, 0.5):   # it exited meanwhile: nothing to resize
                raise Conflict(f"cannot resize container {c.id}: it is not running") from None
            raise Internal(f"cannot resize container {c.id}: {e.message}") from None

    # what runs in it
    async def pids(self, c: Container) -> list[int]:
        if not c.running or c.restarting:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running"
                           if c.restarting else f"container {c.id} is not running")
        client = await self.link.ready_client()
        try:
            return await client.pids(c.id)
        except sup_errors.NotFound:
            raise Conflict(f"container {c.id} is not running") from None
        except sup_errors.SupervisorError as e:
            raise Internal(f"cannot list the processes of container {c.id}: {e.message}") \
                from None

    async def metrics(self, c: Container) -> dict | None:
        """The cgroup stats of a running container; None when it does not run (any more)."""
        if not c.running or c.restarting:
            return None
        client = await self.link.ready_client()
        try:
            return await client.metrics(c.id)
        except (sup_errors.NotFound, sup_errors.FailedPrecondition):
            return None
        except sup_errors.SupervisorError as e:
            raise Internal(f"cannot read the stats of container {c.id}: {e.message}") from None

    # restart of berthd
    async def restore(self) -> None:
        """See restore.py: what outlived berthd is watched again, or cleaned up."""
        await restore.restore(self)

    async def watch_oom(self) -> None:
        """See oom_watch.py: OOM kills into State.OOMKilled, until cancelled."""
        await oom_watch.watch(self)

    async def shutdown(self) -> None:
        """Stop watching; the containers themselves keep running (live restore)."""
        await self.health.shutdown()
        await self.networks.shutdown()
        for c in self.by_id.values():
            if c.monitor:
                c.monitor.cancel()
            if c.pending_restart:
                c.pending_restart.cancel()     # still Restarting in the record: see restore()
            for p in c.pending_attaches:
                if not p.ready.done():
                    p.ready.set_result(None)
        monitors = [t for c in self.by_id.values() for t in (c.monitor, c.pending_restart) if t]
        if monitors:
            await asyncio.gather(*monitors, return_exceptions=True)

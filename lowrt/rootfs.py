"""The container's filesystem: the config's mounts, device nodes, pivot_root, and what follows it.

Runs in the container's init, in its new mount namespace, before and after pivot_root. The order
is runc's: propagation of "/", rootfs bound onto itself, mounts, devices, [createContainer hooks],
pivot_root; after it read-only remounts, masked and read-only paths.
"""
from __future__ import annotations

import errno
import os
import stat

from lowrt.errors import LowrtError
from lowrt.linux import mount as mnt
from lowrt.securejoin import secure_join

# The devices every container gets (OCI runtime spec, "Default Devices").
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


class MountOptions:
    """An OCI mount's options split into mount(2) flags, propagation, recursive attrs and data."""

    def __init__(self, options: list[str]) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.attr_set = 0
        self.attr_clr = 0
        data = []
        for opt in options:
            if opt in mnt.FLAGS:
                clear, flag = mnt.FLAGS[opt]
                self.flags = self.flags & ~flag if clear else self.flags | flag
            elif opt in mnt.PROPAGATION:
                self.propagation.append(mnt.PROPAGATION[opt])
            elif opt in mnt.RECURSIVE_ATTRS:
                s, c = mnt.RECURSIVE_ATTRS[opt]
                self.attr_set |= s
                self.attr_clr |= c
            elif opt in ("tmpcopyup", "idmap", "ridmap"):
                raise LowrtError(f"mount option {opt!r} is not supported by lowrt")
            else:
                data.append(opt)
        self.data = ",".join(data)


class Rootfs:
    """Sets up one container's rootfs; `spec` is the validated config."""

    def __init__(self, spec: dict, *, userns: bool, cgroupns: bool, cgroups) -> None:
        """cgroups() returns the container's cgroup hierarchies (lowrt.hierarchies' shape); it
        may block until lowrt has put the init into its cgroup, so it is called only when a
        "cgroup" mount is reached."""
        self.spec = spec
        self.root = spec["root"]["path"]
        self.userns = userns
        self.cgroupns = cgroupns
        self.cgroups = cgroups
        self.linux = spec.get("linux") or {}
        self.mounts = spec.get("mounts") or []
        self.late_readonly: list[str] = []  # mounts made rw now and read-only once all are done
        self.setup_dev = not any(m["destination"].rstrip("/") == "/dev"
                                 and _is_bind(m) for m in self.mounts)

    # --- before pivot_root ------------------------------------------------------------------
    def prepare(self) -> None:
        prop = self.linux.get("rootfsPropagation")
        first = mnt.MS_SLAVE | mnt.MS_REC
        if prop in ("private", "rprivate"):
            first = mnt.PROPAGATION[prop]
        elif prop and prop not in mnt.PROPAGATION:
            raise LowrtError(f"invalid rootfsPropagation {prop!r}")
        mnt.mount(None, "/", None, first)
        mnt.mount(self.root, self.root, "bind", mnt.MS_BIND | mnt.MS_REC)
        # A cgroup mount needs the cgroup, which lowrt may still be making: it comes last
        # unless a later mount goes inside it (order is otherwise the config's).
        deferred = []
        for i, m in enumerate(self.mounts):
            if m.get("type") == "cgroup" and not any(
                    _inside(later["destination"], m["destination"]) for later in self.mounts[i + 1:]):
                deferred.append(m)
            else:
                self._mount_or_fail(m)
        if self.setup_dev:
            self._devices()
        for m in deferred:
            self._mount_or_fail(m)

    def _mount_or_fail(self, m: dict) -> None:
        try:
            self._mount(m)
        except OSError as e:
            raise LowrtError(f"error mounting {m.get('source', '')!r} to rootfs at "
                             f"{m['destination']!r}: {e.strerror}") from None

    def _mount(self, m: dict) -> None:
        opts = MountOptions(m.get("options") or [])
        typ = m.get("type") or ""
        dest_rel = m["destination"]
        dest = secure_join(self.root, dest_rel)
        source = m.get("source") or ""
        if _is_bind(m):
            source = os.path.abspath(source)
            if not os.path.exists(source):
                raise OSError(errno.ENOENT, f"bind source {source}: no such file or directory")
            _make_mountpoint(dest, os.path.isdir(source))
            mnt.mount(source, dest, "bind", mnt.MS_BIND | (opts.flags & mnt.MS_REC))
            extra = opts.flags & ~(mnt.MS_BIND | mnt.MS_REC | mnt.MS_REMOUNT)
            if extra:
                self._remount(dest, extra)
        elif typ == "cgroup":
            self._mount_cgroup(dest, opts)
        else:
            # Looked at as the image has it, before symlinks are followed: a /proc that is a
            # link would put proc elsewhere, out of reach of maskedPaths.
            literal = os.path.join(self.root, dest_rel.lstrip("/"))
            if typ in ("proc", "sysfs") and os.path.lexists(literal) and (
                    os.path.islink(literal) or not os.path.isdir(literal)):
                raise OSError(errno.ENOTDIR, f"{typ} must be mounted on ordinary directory: "
                                             f"{dest_rel}")
            data = opts.data
            if typ == "tmpfs" and os.path.isdir(dest):
                # as runc: the tmpfs keeps the mode of the directory it covers, unless the
                # options say otherwise (a later mode= wins)
                mode = f"mode={stat.S_IMODE(os.stat(dest).st_mode):04o}"
                data = f"{mode},{data}" if data else mode
            _make_mountpoint(dest, True)
            flags = opts.flags
            if flags & mnt.MS_RDONLY and (typ == "tmpfs" or dest_rel.rstrip("/") == "/dev"):
                # Other mounts and device nodes may still go inside: read-only comes at the end.
                flags &= ~mnt.MS_RDONLY
                self.late_readonly.append(dest_rel)
            try:
                mnt.mount(source or typ, dest, typ, flags, data)
            except OSError as e:
                if typ != "sysfs" or e.errno != errno.EPERM:
                    raise
                # sysfs cannot be mounted in a user namespace without its own network
                # namespace; the host's, bound read-only, is what runc gives instead.
                mnt.mount("/sys", dest, "bind", mnt.MS_BIND | mnt.MS_REC)
                self._remount(dest, flags | mnt.MS_RDONLY)
        for p in opts.propagation:
            mnt.mount(None, dest, None, p)
        if opts.attr_set or opts.attr_clr:
            mnt.setattr_recursive(dest, opts.attr_set, opts.attr_clr)

    @staticmethod
    def _remount(dest: str, flags: int) -> None:
        flags = (flags & ~mnt.MS_REC) | mnt.MS_BIND | mnt.MS_REMOUNT
        try:
            mnt.mount(None, dest, None, flags)
        except OSError as e:
            if e.errno != errno.EPERM:
                raise
            # A mount locked by a user namespace keeps nosuid/nodev/...: ask for them too.
            mnt.mount(None, dest, None, flags | mnt.locked_flags(dest))

    def _mount_cgroup(self, dest: str, opts: MountOptions) -> None:
        flags = opts.flags | mnt.MS_NOSUID | mnt.MS_NODEV | mnt.MS_NOEXEC
        _make_mountpoint(dest, True)
        hierarchies = self.cgroups()
        if len(hierarchies) == 1 and hierarchies[0]["fstype"] == "cgroup2":  # pure v2
            self._mount_hierarchy(hierarchies[0], dest, flags)
            return
        mnt.mount("tmpfs", dest, "tmpfs", flags & ~mnt.MS_RDONLY, "mode=755")
        for h in hierarchies:
            name = os.path.basename(h["point"])
            sub = os.path.join(dest, name)
            os.makedirs(sub, 0o755, exist_ok=True)
            self._mount_hierarchy(h, sub, flags)
            controllers = [c for c in h["controllers"] if not c.startswith("name=")]
            if len(controllers) > 1:  # "cpu,cpuacct" is also reachable as "cpu" and "cpuacct"
                for c in controllers:
                    link = os.path.join(dest, c)
                    if not os.path.lexists(link):
                        os.symlink(name, link)
        if flags & mnt.MS_RDONLY:
            self._remount(dest, flags)

    def _mount_hierarchy(self, h: dict, dest: str, flags: int) -> None:
        if self.cgroupns and h["fstype"] == "cgroup2":
            mnt.mount("cgroup2", dest, "cgroup2", flags)
        elif self.cgroupns and not self.userns:
            data = ",".join(h["controllers"]) if h["controllers"] else "none"
            mnt.mount("cgroup", dest, "cgroup", flags, data)
        else:
            mnt.mount(h["source"], dest, "bind", mnt.MS_BIND | mnt.MS_REC)
            self._remount(dest, flags)

    def _devices(self) -> None:
        old = os.umask(0)
        try:
            for path, major, minor in DEFAULT_DEVICES:
                self._device({"path": path, "type": "c", "major": major, "minor": minor,
                              "fileMode": 0o666, "uid": 0, "gid": 0})
            for dev in self.linux.get("devices") or []:
                self._device(dev)
        finally:
            os.umask(old)
        dev_dir = secure_join(self.root, "/dev")
        ptmx = os.path.join(dev_dir, "ptmx")
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)
        links = list(DEV_SYMLINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "/dev/core"))
        for target, link in links:
            try:
                os.symlink(target, secure_join(self.root, link))
            except FileExistsError:
                pass

    def _device(self, dev: dict) -> None:
        path = dev.get("path") or ""
        if not path.startswith("/dev/"):
            raise LowrtError(f"device path {path!r} must be under /dev")
        kind = dev.get("type")
        if kind not in _DEVICE_TYPES:
            raise LowrtError(f"device {path}: unknown type {kind!r}")
        dest = secure_join(self.root, path)
        os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
        mode = dev.get("fileMode", 0o666) & 0o7777
        if self.userns:
            # mknod is not allowed in a user namespace: bind the host's node instead.
            if not os.path.exists(dest):
                os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            mnt.mount(path, dest, "bind", mnt.MS_BIND)
            return
        if os.path.lexists(dest):
            os.unlink(dest)
        rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if kind != "p" else 0
        try:
            os.mknod(dest, mode | _DEVICE_TYPES[kind], rdev)
        except OSError as e:
            raise OSError(e.errno, f"mknod {path}: {e.strerror}") from None
        os.chown(dest, dev.get("uid", 0), dev.get("gid", 0))

    # --- the switch -------------------------------------------------------------------------
    def pivot(self, no_pivot: bool) -> None:
        if no_pivot:
            os.chdir(self.root)
            mnt.mount(self.root, "/", None, mnt.MS_MOVE)
            os.chroot(".")
        else:
            old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            new_root = os.open(self.root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                # pivot_root(".", ".") stacks the old root on top of the new one. The old
                # root is made a slave before it is detached, so that the unmount does not
                # propagate to the host; fchdir to it first, as "." after pivot_root is not
                # promised to be either root.
                os.fchdir(new_root)
                mnt.pivot_root(".", ".")
                os.fchdir(old_root)
                mnt.mount(None, ".", None, mnt.MS_SLAVE | mnt.MS_REC)
                mnt.umount(".", mnt.MNT_DETACH)
            finally:
                os.close(old_root)
                os.close(new_root)
        os.chdir("/")
        # The config's propagation for the root, now that it is "/" (set before, on the old
        # root, it would have reached the host's mounts).
        prop = self.linux.get("rootfsPropagation")
        if prop and prop not in ("private", "rprivate"):
            mnt.mount(None, "/", None, mnt.PROPAGATION[prop])

    # --- after pivot_root -------------------------------------------------------------------
    def mount_console(self, slave_path: str) -> None:
        """The pty's slave appears as /dev/console, as on a real machine."""
        console = "/dev/console"
        if not os.path.lexists(console):
            os.close(os.open(console, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        mnt.mount(slave_path, console, "bind", mnt.MS_BIND)

    def finalize(self) -> None:
        for dest in self.late_readonly:
            self._remount(dest, mnt.MS_RDONLY)
        if (self.spec.get("root") or {}).get("readonly"):
            self._remount("/", mnt.MS_RDONLY | mnt.MS_REC)

    def restrict(self) -> None:
        """linux.readonlyPaths, then linux.maskedPaths (after sysctls, which need /proc/sys)."""
        for path in self.linux.get("readonlyPaths") or []:
            if not os.path.exists(path):
                continue
            mnt.mount(path, path, "bind", mnt.MS_BIND | mnt.MS_REC)
            self._remount(path, mnt.MS_RDONLY)
        for path in self.linux.get("maskedPaths") or []:
            if not os.path.lexists(path):
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                mnt.mount("tmpfs", path, "tmpfs", mnt.MS_RDONLY)
            else:
                mnt.mount("/dev/null", path, "bind", mnt.MS_BIND)


def write_sysctls(sysctl: dict) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise LowrtError(f"write sysctl {key}={value!r}: {e.strerror.lower()}") from None


def _inside(path: str, top: str) -> bool:
    path, top = os.path.normpath(path), os.path.normpath(top)
    return path == top or path.startswith(top.rstrip("/") + "/")


def _is_bind(m: dict) -> bool:
    opts = m.get("options") or []
    return m.get("type") == "bind" or "bind" in opts or "rbind" in opts


def _make_mountpoint(dest: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(dest, 0o755, exist_ok=True)
    elif not os.path.exists(dest):
        os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))

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
from lowrt.securejoin import open_in_root, path_of

_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

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
    """Sets up one container's rootfs; `spec` is the validated config.

    Every destination is resolved inside the rootfs to an O_PATH fd (lowrt.securejoin) and the
    mount is made onto that fd through /proc/self/fd/N, then checked: the fd must lie inside
    the rootfs, and the destination, looked up again, must now be the root of a new mount at the
    same place; anything else is refused (a symlink swapped in meanwhile, CVE-2021-30465).
    /proc/self/fd/N rather than open_tree/move_mount: one way for every kind of mount (new
    filesystems, binds, remounts and propagation changes alike), and the fd's link gives the
    check its path for free. After pivot_root it is the container's /proc that resolves those
    links; a container without one gets path strings instead, which can then name nothing but
    the container's own files.

    Without a mount namespace (runc's and crun's behaviour, see lowrt/config.py) the mounts
    are made in the caller's namespace, where they stay, and the init chroots into the rootfs;
    the caller's "/" keeps its propagation.
    """

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
        self.mountns = any(n.get("type") == "mount" for n in self.linux.get("namespaces") or [])
        self.mounts = spec.get("mounts") or []
        self.late_readonly: list[str] = []  # mounts made rw now and read-only once all are done
        self.setup_dev = not any(m["destination"].rstrip("/") == "/dev"
                                 and _is_bind(m) for m in self.mounts)
        self.root_fd = -1     # O_PATH fd of the rootfs: of the self-bind, then of the new "/"
        self.top = self.root  # the rootfs's path as /proc/self/fd links show it
        self.by_fd = True     # mount through /proc/self/fd/N (False: a container without /proc)

    # --- before pivot_root ------------------------------------------------------------------
    def prepare(self) -> None:
        prop = self.linux.get("rootfsPropagation")
        first = mnt.MS_SLAVE | mnt.MS_REC
        if prop in ("private", "rprivate"):
            first = mnt.PROPAGATION[prop]
        elif prop and prop not in mnt.PROPAGATION:
            raise LowrtError(f"invalid rootfsPropagation {prop!r}")
        if self.mountns:
            mnt.mount(None, "/", None, first)
        mnt.mount(self.root, self.root, "bind", mnt.MS_BIND | mnt.MS_REC)
        # opened after the bind: what is mounted below this fd lands on the bind, which becomes
        # the container's "/"
        self.root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
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

    def _open(self, dest: str, make: str = "") -> int:
        return open_in_root(self.root_fd, dest, make)

    def _target(self, fd: int, dest: str) -> str:
        return mnt.fd_path(fd) if self.by_fd else os.path.normpath("/" + dest)

    def _mount_on(self, fd: int, dest: str, source: str | None, fstype: str | None, flags: int,
                  data: str | None = None, reopen=None) -> int:
        """Mount onto what fd (which this closes) refers to; returns an O_PATH fd of the new
        mount, found again by reopen() (default: dest looked up in the rootfs)."""
        try:
            if self.by_fd:
                where = path_of(fd)
                if not _inside(where, self.top):
                    raise LowrtError(f"mount destination {dest!r} resolved to {where}, outside "
                                     f"the rootfs {self.top}: refusing to mount there")
            mnt.mount(source, self._target(fd, dest), fstype, flags, data, name=dest)
            new = reopen() if reopen else self._open(dest)
            if self.by_fd and not (path_of(new) == where and _covered(fd, new)):
                found = path_of(new)
                os.close(new)
                raise LowrtError(f"mount on {dest!r} did not land where it was aimed ({where}; "
                                 f"now {found}): the rootfs changed under lowrt, refusing it")
        finally:
            os.close(fd)
        return new

    def _mount(self, m: dict) -> None:
        opts = MountOptions(m.get("options") or [])
        typ = m.get("type") or ""
        dest = m["destination"]
        source = m.get("source") or ""
        if _is_bind(m):
            source = os.path.abspath(source)
            if not os.path.exists(source):
                raise OSError(errno.ENOENT, f"bind source {source}: no such file or directory")
            fd = self._open(dest, "dir" if os.path.isdir(source) else "file")
            fd = self._mount_on(fd, dest, source, "bind", mnt.MS_BIND | (opts.flags & mnt.MS_REC))
            extra = opts.flags & ~(mnt.MS_BIND | mnt.MS_REC | mnt.MS_REMOUNT)
            if extra:
                self._remount(fd, dest, extra)
        elif typ == "cgroup":
            fd = self._mount_cgroup(dest, opts)
        else:
            fd = self._mount_fs(m, typ, dest, source, opts)
        try:
            for p in opts.propagation:
                mnt.mount(None, self._target(fd, dest), None, p, name=dest)
            if opts.attr_set or opts.attr_clr:
                mnt.setattr_recursive(fd, opts.attr_set, opts.attr_clr, name=dest)
        finally:
            os.close(fd)

    def _mount_fs(self, m: dict, typ: str, dest: str, source: str, opts: MountOptions) -> int:
        if typ in ("proc", "sysfs"):
            # Looked at as the image has it, before a last symlink is followed: a /proc that
            # is a link would put proc elsewhere, out of reach of maskedPaths.
            try:
                st = _stat_closed(open_in_root(self.root_fd, dest, follow=False))
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, f"{typ} must be mounted on ordinary directory: {dest}")
        data = opts.data
        try:
            fd = self._open(dest)
        except FileNotFoundError:
            fd = self._open(dest, "dir")
        else:
            mode = os.fstat(fd).st_mode
            if typ == "tmpfs" and stat.S_ISDIR(mode):
                # as runc: the tmpfs keeps the mode of the directory it covers, unless the
                # options say otherwise (a later mode= wins)
                data = f"mode={stat.S_IMODE(mode):04o},{data}" if data else \
                    f"mode={stat.S_IMODE(mode):04o}"
        flags = opts.flags
        if flags & mnt.MS_RDONLY and (typ == "tmpfs" or dest.rstrip("/") == "/dev"):
            # Other mounts and device nodes may still go inside: read-only comes at the end.
            flags &= ~mnt.MS_RDONLY
            self.late_readonly.append(dest)
        if typ != "sysfs":
            return self._mount_on(fd, dest, source or typ, typ, flags, data)
        try:
            spare = os.dup(fd)  # _mount_on closes fd; the fallback needs it
            try:
                return self._mount_on(fd, dest, source or typ, typ, flags, data)
            except OSError as e:
                if e.errno != errno.EPERM:
                    raise
            # sysfs cannot be mounted in a user namespace without its own network namespace;
            # the host's, bound read-only, is what runc gives instead.
            new = self._mount_on(spare, dest, "/sys", "bind", mnt.MS_BIND | mnt.MS_REC)
            spare = -1
            self._remount(new, dest, flags | mnt.MS_RDONLY)
            return new
        finally:
            if spare >= 0:
                os.close(spare)

    def _remount(self, fd: int, dest: str, flags: int) -> None:
        flags = (flags & ~mnt.MS_REC) | mnt.MS_BIND | mnt.MS_REMOUNT
        target = self._target(fd, dest)
        try:
            mnt.mount(None, target, None, flags, name=dest)
        except OSError as e:
            if e.errno != errno.EPERM:
                raise
            # A mount locked by a user namespace keeps nosuid/nodev/...: ask for them too.
            mnt.mount(None, target, None, flags | mnt.locked_flags(fd), name=dest)

    def _mount_cgroup(self, dest: str, opts: MountOptions) -> int:
        flags = opts.flags | mnt.MS_NOSUID | mnt.MS_NODEV | mnt.MS_NOEXEC
        fd = self._open(dest, "dir")
        try:
            hierarchies = self.cgroups()
        except BaseException:
            os.close(fd)
            raise
        if len(hierarchies) == 1 and hierarchies[0]["fstype"] == "cgroup2":  # pure v2
            return self._mount_hierarchy(hierarchies[0], fd, dest, flags)
        top = self._mount_on(fd, dest, "tmpfs", "tmpfs", flags & ~mnt.MS_RDONLY, "mode=755")
        try:
            for h in hierarchies:
                # a fresh tmpfs of lowrt's: nothing of the image's is below it
                name = os.path.basename(h["point"])
                try:
                    os.mkdir(name, 0o755, dir_fd=top)
                except FileExistsError:
                    pass

                def reopen(name: str = name) -> int:
                    return os.open(name, _O_PATH_DIR, dir_fd=top)

                os.close(self._mount_hierarchy(h, reopen(), f"{dest}/{name}", flags, reopen))
                controllers = [c for c in h["controllers"] if not c.startswith("name=")]
                if len(controllers) > 1:  # "cpu,cpuacct" is also reachable as "cpu" and "cpuacct"
                    for c in controllers:
                        try:
                            os.symlink(name, c, dir_fd=top)
                        except FileExistsError:
                            pass
            if flags & mnt.MS_RDONLY:
                self._remount(top, dest, flags)
        except BaseException:
            os.close(top)
            raise
        return top

    def _mount_hierarchy(self, h: dict, fd: int, dest: str, flags: int, reopen=None) -> int:
        if self.cgroupns and h["fstype"] == "cgroup2":
            return self._mount_on(fd, dest, "cgroup2", "cgroup2", flags, reopen=reopen)
        if self.cgroupns and not self.userns:
            data = ",".join(h["controllers"]) if h["controllers"] else "none"
            return self._mount_on(fd, dest, "cgroup", "cgroup", flags, data, reopen=reopen)
        new = self._mount_on(fd, dest, h["source"], "bind", mnt.MS_BIND | mnt.MS_REC, reopen=reopen)
        try:
            self._remount(new, dest, flags)
        except BaseException:
            os.close(new)
            raise
        return new

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
        dev_fd = self._open("/dev", "dir")
        try:
            try:
                os.unlink("ptmx", dir_fd=dev_fd)
            except FileNotFoundError:
                pass
            os.symlink("pts/ptmx", "ptmx", dir_fd=dev_fd)
            links = list(DEV_SYMLINKS)
            if os.path.exists("/proc/kcore"):
                links.append(("/proc/kcore", "/dev/core"))
            for target, link in links:
                try:
                    os.symlink(target, link[len("/dev/"):], dir_fd=dev_fd)
                except FileExistsError:
                    pass
        finally:
            os.close(dev_fd)

    def _device(self, dev: dict) -> None:
        path = dev.get("path") or ""
        if not path.startswith("/dev/"):
            raise LowrtError(f"device path {path!r} must be under /dev")
        kind = dev.get("type")
        if kind not in _DEVICE_TYPES:
            raise LowrtError(f"device {path}: unknown type {kind!r}")
        mode = dev.get("fileMode", 0o666) & 0o7777
        if self.userns:
            # mknod is not allowed in a user namespace: bind the host's node instead.
            fd = self._open(path, "file")
            os.close(self._mount_on(fd, path, path, "bind", mnt.MS_BIND))
            return
        parent, name = path.rsplit("/", 1)
        pfd = self._open(parent, "dir")
        try:
            try:
                os.unlink(name, dir_fd=pfd)
            except FileNotFoundError:
                pass
            rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if kind != "p" else 0
            try:
                os.mknod(name, mode | _DEVICE_TYPES[kind], rdev, dir_fd=pfd)
            except OSError as e:
                raise OSError(e.errno, f"mknod {path}: {e.strerror}") from None
            os.chown(name, dev.get("uid", 0), dev.get("gid", 0), dir_fd=pfd,
                     follow_symlinks=False)
        finally:
            os.close(pfd)

    # --- the switch -------------------------------------------------------------------------
    def pivot(self, no_pivot: bool) -> None:
        if not self.mountns:
            # the caller's mount namespace: a chroot, as runc and crun (pivot_root or MS_MOVE
            # would replace the root of every process in it)
            os.fchdir(self.root_fd)
            os.chroot(".")
        elif no_pivot:
            os.fchdir(self.root_fd)
            mnt.mount(self.root, "/", None, mnt.MS_MOVE)
            os.chroot(".")
        else:
            old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                # pivot_root(".", ".") stacks the old root on top of the new one. The old
                # root is made a slave before it is detached, so that the unmount does not
                # propagate to the host; fchdir to it first, as "." after pivot_root is not
                # promised to be either root.
                os.fchdir(self.root_fd)
                mnt.pivot_root(".", ".")
                os.fchdir(old_root)
                mnt.mount(None, ".", None, mnt.MS_SLAVE | mnt.MS_REC)
                mnt.umount(".", mnt.MNT_DETACH)
            finally:
                os.close(old_root)
        os.chdir("/")
        os.close(self.root_fd)
        self.root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.top = "/"
        self.by_fd = proc_reaches(self.root_fd)
        # The config's propagation for the root, now that it is "/" (set before, on the old
        # root, it would have reached the host's mounts).
        prop = self.linux.get("rootfsPropagation")
        if prop and prop not in ("private", "rprivate"):
            mnt.mount(None, "/", None, mnt.PROPAGATION[prop])

    # --- after pivot_root -------------------------------------------------------------------
    def mount_console(self, slave_path: str) -> None:
        """The pty's slave appears as /dev/console, as on a real machine."""
        fd = self._open("/dev/console", "file")
        os.close(self._mount_on(fd, "/dev/console", slave_path, "bind", mnt.MS_BIND))

    def finalize(self) -> None:
        for dest in self.late_readonly:
            fd = self._open(dest)
            try:
                self._remount(fd, dest, mnt.MS_RDONLY)
            finally:
                os.close(fd)
        if (self.spec.get("root") or {}).get("readonly"):
            fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self._remount(fd, "/", mnt.MS_RDONLY | mnt.MS_REC)
            finally:
                os.close(fd)

    def restrict(self) -> None:
        """linux.readonlyPaths, then linux.maskedPaths (after sysctls, which need /proc/sys);
        the last thing done in the rootfs: its fd is closed here."""
        for path in self.linux.get("readonlyPaths") or []:
            try:
                fd = self._open(path)
            except FileNotFoundError:
                continue
            target = self._target(fd, path)
            new = self._mount_on(fd, path, target, "bind", mnt.MS_BIND | mnt.MS_REC)
            try:
                self._remount(new, path, mnt.MS_RDONLY)
            finally:
                os.close(new)
        for path in self.linux.get("maskedPaths") or []:
            try:
                fd = self._open(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                new = self._mount_on(fd, path, "tmpfs", "tmpfs", mnt.MS_RDONLY)
            else:
                new = self._mount_on(fd, path, "/dev/null", "bind", mnt.MS_BIND)
            os.close(new)
        os.close(self.root_fd)
        self.root_fd = -1


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


def _covered(below: int, top: int) -> bool:
    """Whether top is another file than below, or on another mount: below is covered by a
    mount. The mount ids are read only when the files are the same (a path bound onto itself)."""
    a, b = os.fstat(below), os.fstat(top)
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        return True
    return mnt.mount_id(below) != mnt.mount_id(top)


def _stat_closed(fd: int) -> os.stat_result:
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def proc_reaches(fd: int) -> bool:
    """Whether /proc/self/fd/<fd> leads to fd's file here: a procfs of this process's pid
    namespace is mounted on /proc (the container's, after pivot_root), not an image's
    directory of that name or nothing."""
    try:
        a, b = os.stat(mnt.fd_path(fd)), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

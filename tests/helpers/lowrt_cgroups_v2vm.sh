#!/usr/bin/env bash
# Run the cgroups tests on a pure cgroup v2 kernel: a qemu guest booting Debian's kernel whose
# root is this machine's own filesystem, shared read-only over 9p (so the checkout, its venv
# and python are the host's), with cgroup2 mounted alone at /sys/fs/cgroup.
#
#   tests/helpers/lowrt_cgroups_v2vm.sh [pytest args...]     # default: the cgroups tests
#
# Needs qemu-system-x86 (software emulation by default: this host's nested KVM runs no stock
# kernel; LOWRT_V2VM_ACCEL=kvm where KVM works), kmod (depmod, modprobe) and Debian's archive
# for the kernel package (apt-get download; nothing is installed on the host). Work files go to
# $LOWRT_V2VM_DIR (default /tmp/bt-v2vm) and are kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
WORK=${LOWRT_V2VM_DIR:-/tmp/bt-v2vm}
KPKG=${LOWRT_V2VM_KERNEL:-$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')}
mkdir -p "$WORK"
cd "$WORK"
if [ ! -d kernel/boot ]; then
    apt-get download -q "$KPKG" >/dev/null
    dpkg -x "$KPKG"_*.deb kernel
fi
KVER=$(ls kernel/lib/modules | head -1)
rm -rf initramfs && mkdir -p initramfs/bin initramfs/mods initramfs/proc initramfs/sys \
    initramfs/dev initramfs/host
cp /bin/busybox initramfs/bin/busybox
# The modules the guest needs (virtio PCI, 9p over virtio, loop) and what each depends on, in
# the order modules.dep gives: the package's dependencies change between kernel updates, so
# nothing here names them. depmod makes modules.dep (the package leaves that to its postinst).
[ -f kernel/lib/modules/"$KVER"/modules.dep ] || depmod -b kernel "$KVER"
for m in virtio_pci 9pnet_virtio 9p loop; do
    modprobe -d kernel -S "$KVER" --show-depends "$m" || { echo "v2vm: no module $m" >&2; exit 1; }
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' > mods.list
: > initramfs/mods/order
while read -r ko; do
    name=$(basename "$ko"); name=${name%%.ko*}
    case "$ko" in      # busybox insmod takes plain modules
        *.ko.xz) xz -dc "$ko" ;; *.ko.zst) zstd -dc "$ko" ;; *.ko.gz) gzip -dc "$ko" ;; *) cat "$ko" ;;
    esac > initramfs/mods/"$name".ko
    echo "$name" >> initramfs/mods/order
done < mods.list
[ $# -gt 0 ] || set -- tests/lowrt/test_cgroups_units.py tests/lowrt/test_cgroups_v2.py \
    tests/lowrt/test_cgroups_v2host.py tests/lowrt/test_seccomp_kernel.py
# pytest's arguments travel NUL-separated in a file, so `-k "a or b"` arrives intact.
printf '%s\0' "$@" > initramfs/pytest-args
cat > initramfs/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in \$(cat /mods/order); do insmod /mods/\$m.ko || echo "v2vm: insmod \$m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
mount -t devtmpfs dev /host/dev
# The guest's /tmp and /run are fresh tmpfs; a checkout that lives under one of them (a CI
# runner's clone in /tmp) is bound back in at its own path over the new mount.
mkdir /repo; mount --bind /host$REPO /repo
mount -t tmpfs tmp /host/tmp
cp /pytest-args /host/tmp/pytest-args
mount -t tmpfs run /host/run
[ -d /host$REPO/.venv ] || { mkdir -p /host$REPO; mount --bind /repo /host$REPO; }
chroot /host /bin/sh -c 'cd $REPO && echo "guest: \$(uname -r), cgroup2 controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)" && PYTHONDONTWRITEBYTECODE=1 HOME=/tmp .venv/bin/python -c "import sys, pytest; sys.exit(pytest.main([\"-p\", \"no:cacheprovider\", \"--color=no\", \"-q\", \"-rs\"] + open(\"/tmp/pytest-args\").read().split(\"\\0\")[:-1]))"; echo "V2VM-RC=\$?"'
poweroff -f
INIT
chmod +x initramfs/init
(cd initramfs && find . | /bin/busybox cpio -o -H newc 2>/dev/null) > initramfs.cpio
[ "${LOWRT_V2VM_BOOT:-1}" = 1 ] || exit 0    # LOWRT_V2VM_BOOT=0: make the initramfs only
# Software emulation on a loaded host can stall a guest's CPUs: once (the suite's 7th boot in
# a day here) the guest's kernel stuck in a soft lockup inside cgroup mkdir and never returned.
# softlockup_panic turns such a stall into a panic, and panic=-1 with -no-reboot ends qemu; a
# guest that stalled so is booted once more. Any guest is ended after LOWRT_V2VM_TIMEOUT, so a
# hang fails the run instead of holding its caller's pipe open for ever.
for attempt in 1 2; do
    timeout --foreground --kill-after=10 "${LOWRT_V2VM_TIMEOUT:-1100}" \
    qemu-system-x86_64 -accel "${LOWRT_V2VM_ACCEL:-tcg,thread=multi}" -cpu max -smp 2 -m 3G \
        -nographic -no-reboot -kernel kernel/boot/vmlinuz-"$KVER" -initrd initramfs.cpio \
        -append "console=ttyS0 panic=-1 softlockup_panic=1 systemd.unified_cgroup_hierarchy=1" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        | tee run.log || true
    if grep -q "V2VM-RC=" run.log || ! grep -q "soft lockup" run.log || [ $attempt = 2 ]; then
        break
    fi
    echo "v2vm: the guest's kernel stalled (soft lockup under emulation); booting it once more" >&2
done
grep -q "V2VM-RC=0" run.log

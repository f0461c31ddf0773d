/* lowrt_probe: run inside a container by lowrt's tests; prints what the process sees as one
 * JSON object on stdout. Built static (gcc -static) so it needs nothing from the rootfs.
 *
 * Extra arguments ask for more: "file:PATH" adds the file's content, "stat:PATH" its mode,
 * owner and device numbers, "write:PATH" whether it can be opened for writing,
 * "sleep:N" sleeps N seconds before exiting, "exit:N" exits with N.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

extern char **environ;
static int first = 1;

static void key(const char *k) {
    printf("%s\"%s\": ", first ? "{" : ", ", k);
    first = 0;
}

static void str(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void kv_str(const char *k, const char *v) { key(k); str(v); }
static void kv_int(const char *k, long long v) { key(k); printf("%lld", v); }

static void kv_file(const char *k, const char *path) {
    char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    key(k);
    if (fd < 0) { printf("null"); return; }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    str(buf);
}

static void caps(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    unsigned long long eff = d[0].effective | ((unsigned long long)d[1].effective << 32);
    unsigned long long prm = d[0].permitted | ((unsigned long long)d[1].permitted << 32);
    unsigned long long inh = d[0].inheritable | ((unsigned long long)d[1].inheritable << 32);
    unsigned long long bnd = 0, amb = 0;
    for (int c = 0; c < 64; c++) {
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bnd |= 1ULL << c;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) amb |= 1ULL << c;
    }
    kv_int("cap_effective", eff);
    kv_int("cap_permitted", prm);
    kv_int("cap_inheritable", inh);
    kv_int("cap_bounding", bnd);
    kv_int("cap_ambient", amb);
}

static void fds(void) {
    DIR *d = opendir("/proc/self/fd");
    key("fds");
    printf("{");
    if (d) {
        struct dirent *e;
        int n = 0, self = dirfd(d);
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
            char path[64], target[4096];
            snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
            ssize_t len = readlink(path, target, sizeof target - 1);
            target[len < 0 ? 0 : len] = 0;
            printf("%s\"%s\": ", n++ ? ", " : "", e->d_name);
            str(target);
        }
        closedir(d);
    }
    printf("}");
}

static void namespaces(void) {
    const char *names[] = {"pid", "mnt", "net", "uts", "ipc", "user", "cgroup", "time"};
    key("ns");
    printf("{");
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        ssize_t len = readlink(path, target, sizeof target - 1);
        target[len < 0 ? 0 : len] = 0;
        printf("%s\"%s\": ", i ? ", " : "", names[i]);
        str(target);
    }
    printf("}");
}

int main(int argc, char **argv) {
    struct utsname u;
    char cwd[4096];
    gid_t groups[256];
    int ngroups = getgroups(256, groups);
    mode_t mask = umask(0);
    umask(mask);
    uname(&u);

    kv_int("pid", getpid());
    kv_int("ppid", getppid());
    kv_int("uid", getuid());
    kv_int("euid", geteuid());
    kv_int("gid", getgid());
    kv_int("egid", getegid());
    key("groups");
    printf("[");
    for (int i = 0; i < ngroups; i++) printf("%s%d", i ? ", " : "", groups[i]);
    printf("]");
    caps();
    kv_int("no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    kv_int("seccomp", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    kv_int("dumpable", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    char keyring[256] = "";
    long serial = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    if (serial > 0) {
        long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, serial, keyring, sizeof keyring - 1);
        keyring[n > 0 ? n : 0] = 0;
    }
    kv_str("session_keyring", keyring);
    kv_str("hostname", u.nodename);
    kv_str("domainname", u.domainname);
    kv_str("cwd", getcwd(cwd, sizeof cwd) ? cwd : "");
    kv_int("umask", mask);
    kv_int("sid", getsid(0));
    kv_int("pgid", getpgid(0));
    kv_int("isatty0", isatty(0));
    kv_str("tty0", isatty(0) ? ttyname(0) : "");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    kv_int("nofile_soft", (long long)rl.rlim_cur);
    kv_int("nofile_hard", (long long)rl.rlim_max);
    getrlimit(RLIMIT_CORE, &rl);
    kv_int("core_soft", rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur);
    kv_file("oom_score_adj", "/proc/self/oom_score_adj");
    kv_file("uid_map", "/proc/self/uid_map");
    kv_file("gid_map", "/proc/self/gid_map");
    kv_file("cgroup", "/proc/self/cgroup");
    kv_file("mountinfo", "/proc/self/mountinfo");
    namespaces();
    fds();
    key("env");
    printf("[");
    for (char **e = environ; *e; e++) { printf("%s", e == environ ? "" : ", "); str(*e); }
    printf("]");

    int code = 0, nap = 0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "file:", 5)) {
            kv_file(argv[i], argv[i] + 5);
        } else if (!strncmp(argv[i], "stat:", 5)) {
            struct stat st;
            key(argv[i]);
            if (lstat(argv[i] + 5, &st) < 0) printf("null");
            else printf("{\"mode\": %u, \"uid\": %u, \"gid\": %u, \"major\": %u, \"minor\": %u}",
                        st.st_mode, st.st_uid, st.st_gid, major(st.st_rdev), minor(st.st_rdev));
        } else if (!strncmp(argv[i], "write:", 6)) {
            int fd = open(argv[i] + 6, O_WRONLY | O_CLOEXEC);
            key(argv[i]);
            if (fd >= 0) { printf("0"); close(fd); } else printf("%d", errno);
        } else if (!strncmp(argv[i], "sleep:", 6)) {
            nap = atoi(argv[i] + 6);
        } else if (!strncmp(argv[i], "exit:", 5)) {
            code = atoi(argv[i] + 5);
        }
    }
    printf("}\n");
    fflush(stdout);
    if (nap) sleep(nap);
    return code;
}

/* seccomp_probe: run inside a container by the seccomp tests; tries the system calls named on
 * its command line and prints one line for each, "NAME ok" or "NAME errno N", so that a test
 * sees which the container's filter let through and what it answered for the others. Built
 * static (gcc -static) so it needs nothing from the image.
 *
 *   keyctl      keyctl(KEYCTL_GET_KEYRING_ID, session keyring)   docker's profile: EPERM
 *   unshare     unshare(CLONE_NEWUSER)                           EPERM unless CAP_SYS_ADMIN
 *                (the kernel refuses it to a chrooted caller whatever the filter says)
 *   unshare-uts unshare(CLONE_NEWUTS)                            needs CAP_SYS_ADMIN as well
 *   vsock       socket(AF_VSOCK, SOCK_STREAM)                    EPERM (the family is denied)
 *   alg         socket(AF_ALG, SOCK_SEQPACKET)                   EPERM (docker 29 and later)
 *   inet        socket(AF_INET, SOCK_STREAM)                     allowed
 *   clone3      clone3(NULL, 0)                                  ENOSYS unless CAP_SYS_ADMIN
 *   persona     personality(0xffffffff): the query               allowed
 *   persona-rx  personality(READ_IMPLIES_EXEC)                   EPERM
 *   mkdir       mkdir("/tmp/seccomp-probe")                      allowed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

static long try(const char *name) {
    if (!strcmp(name, "keyctl"))
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    if (!strcmp(name, "unshare"))
        return unshare(CLONE_NEWUSER);
    if (!strcmp(name, "unshare-uts"))
        return unshare(CLONE_NEWUTS);
    if (!strcmp(name, "vsock"))
        return socket(AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "alg"))
        return socket(AF_ALG, SOCK_SEQPACKET, 0);
    if (!strcmp(name, "inet"))
        return socket(AF_INET, SOCK_STREAM, 0);
    if (!strcmp(name, "clone3"))
        return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(name, "persona"))
        return syscall(SYS_personality, 0xffffffffUL);
    if (!strcmp(name, "persona-rx"))
        return syscall(SYS_personality, (unsigned long)READ_IMPLIES_EXEC);
    if (!strcmp(name, "mkdir"))
        return mkdir("/tmp/seccomp-probe", 0755);
    errno = 0;
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = try(argv[i]);
        if (r == -2 && errno == 0)
            printf("%s unknown\n", argv[i]);
        else if (r < 0)
            printf("%s errno %d\n", argv[i], errno);
        else
            printf("%s ok\n", argv[i]);
    }
    return 0;
}

/*
 * berth's hello-world: a static program with no libc dependencies at run time, so its image is a
 * single file. It says how it was started and shows evidence read from the kernel: its pid in its
 * own pid namespace, the hostname of its uts namespace, its namespace ids and its cgroup.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>

static void print_ns(const char *name)
{
	char path[64], target[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		printf("    %-4s (unreadable: /proc not mounted)\n", name);
		return;
	}
	target[n] = '\0';
	printf("    %-4s %s\n", name, target);
}

static void print_cgroup(void)
{
	char line[512], first[512] = "";
	FILE *f = fopen("/proc/self/cgroup", "r");

	if (!f) {
		printf("  cgroup:    (unreadable)\n");
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!first[0])
			snprintf(first, sizeof(first), "%s", line);
		/* cgroup v1: the memory controller's line; v2: the single "0::" line */
		if (strstr(line, ":memory:") || strncmp(line, "0::", 3) == 0) {
			snprintf(first, sizeof(first), "%s", line);
			break;
		}
	}
	fclose(f);
	printf("  cgroup:    %s\n", first);
}

int main(void)
{
	struct utsname uts;
	static const char *const namespaces[] = { "pid", "mnt", "uts", "ipc", "net" };
	unsigned i;

	if (uname(&uts) != 0)
		strcpy(uts.nodename, "?");

	printf("\n"
	       "Hello from berth!\n"
	       "This message shows that your installation appears to be working correctly.\n"
	       "\n"
	       "To print it, this is the path your command took:\n"
	       " 1. The client (the berth CLI, or the docker CLI) sent Docker Engine API calls to\n"
	       "    berthd, the berth engine, over its unix socket.\n"
	       " 2. berthd found the \"hello-world\" image in its own store (it is built into berth\n"
	       "    from source, no registry needed), prepared an overlay root filesystem and an OCI\n"
	       "    runtime spec, and asked berth-supervisor over containerd's gRPC API to create\n"
	       "    and start a task.\n"
	       " 3. berth-supervisor started a berth-shim for the container. The shim ran lowrt,\n"
	       "    berth's OCI runtime, and keeps the container's output in its log.\n"
	       " 4. lowrt created new pid, mount, uts, ipc and network namespaces and a cgroup,\n"
	       "    pivoted into the image's root filesystem and executed this program.\n"
	       " 5. The shim streamed this output back up through berth-supervisor and berthd to\n"
	       "    your terminal.\n"
	       "\n"
	       "Evidence, as this process sees it:\n"
	       "  pid:       %d (%s)\n"
	       "  hostname:  %s (the container's own, in its uts namespace)\n",
	       (int)getpid(),
	       getpid() == 1 ? "the first process of its own pid namespace"
			     : "not 1: this is not a pid namespace of its own",
	       uts.nodename);
	print_cgroup();
	printf("  namespaces:\n");
	for (i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++)
		print_ns(namespaces[i]);
	printf("\n"
	       "To try something more ambitious, run a command in a busybox container:\n"
	       " $ berth run --rm busybox uname -a\n"
	       "\n");
	return 0;
}

#define _GNU_SOURCE
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

/* The runner's cgroup (spoolrun-PID): its path, an fd, and the path below
 * the cgroup2 mount that /proc/PID/cgroup shows for its tasks. */
static struct {
	bool on;
	int fd;
	char path[PATH_MAX];
	char rel[PATH_MAX];
	unsigned next_seq;
} cg = { .fd = -1 };

/* The mount point of the cgroup2 file system, from /proc/self/mountinfo. */
static bool find_mount(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		/* id parent major:minor root mountpoint options [optional...] - fstype ... */
		char *dash = strstr(line, " - ");
		char root[PATH_MAX], point[PATH_MAX], fstype[64];
		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) == 2 && !strcmp(root, "/")) {
			snprintf(out, len, "%s", point);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* The runner's own cgroup v2 path ("0::/PATH" in /proc/self/cgroup). */
static bool own_cgroup(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", strcmp(line + 3, "/") ? line + 3 : "");
			found = true;
		}
	fclose(f);
	return found;
}

/* spoolrun-PID/ groups of runners that were killed outright (kill -9)
 * stay behind: remove those of dead runners, and their empty task groups. */
static void remove_stale(const char *parent)
{
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		int pid;
		char rest;
		if (sscanf(de->d_name, "spoolrun-%d%c", &pid, &rest) != 1 || pid <= 0 ||
		    (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s/%s", parent, de->d_name) >= (int)sizeof path)
			continue;
		DIR *t = opendir(path);
		struct dirent *te;
		while (t && (te = readdir(t)))
			if (!strncmp(te->d_name, "task-", 5)) {
				char sub[PATH_MAX + 300];
				if (snprintf(sub, sizeof sub, "%s/%s", path, te->d_name) <
				    (int)sizeof sub)
					rmdir(sub);
			}
		if (t)
			closedir(t);
		if (rmdir(path) == 0)
			log_info("removed cgroup %s left by a runner that was killed", path);
	}
	closedir(d);
}

bool cgroup_setup(void)
{
	char mount[PATH_MAX], own[PATH_MAX];
	const char *env = getenv("SPOOLRUN_CGROUP");
	if (env && !strcmp(env, "off")) {
		log_info("SPOOLRUN_CGROUP=off: orphans are charged by session id");
		return false;
	}
	if (!find_mount(mount, sizeof mount) || !own_cgroup(own, sizeof own)) {
		log_debug("no cgroup v2 mounted: orphans are charged by session id");
		return false;
	}
	if (snprintf(cg.rel, sizeof cg.rel, "%s/spoolrun-%d", own, (int)getpid()) >=
		    (int)sizeof cg.rel ||
	    snprintf(cg.path, sizeof cg.path, "%s%s", mount, cg.rel) >= (int)sizeof cg.path)
		return false;
	char parent[PATH_MAX];
	if (snprintf(parent, sizeof parent, "%s%s", mount, own) < (int)sizeof parent)
		remove_stale(parent);
	if (mkdir(cg.path, 0755) < 0 && errno != EEXIST) {
		log_info("cannot create cgroup %s (%s): orphans are charged by session id",
			 cg.path, strerror(errno));
		return false;
	}
	if ((cg.fd = open_dir(cg.path)) < 0) {
		rmdir(cg.path);
		return false;
	}
	cg.on = true;
	log_debug("a cgroup per task below %s", cg.path);
	return true;
}

void cgroup_teardown(void)
{
	if (!cg.on)
		return;
	close(cg.fd);
	cg.fd = -1;
	if (rmdir(cg.path) < 0 && errno != ENOENT)
		log_warn("cannot remove cgroup %s", cg.path);
	cg.on = false;
}

bool cgroup_enabled(void)
{
	return cg.on;
}

const char *cgroup_path(void)
{
	return cg.on ? cg.path : "";
}

void cgroup_task_create(struct cgroup_task *t)
{
	t->dirfd = t->procs_fd = -1;
	if (!cg.on)
		return;
	char name[32];
	t->seq = ++cg.next_seq;
	snprintf(name, sizeof name, "task-%u", t->seq);
	if (mkdirat(cg.fd, name, 0755) < 0 && errno != EEXIST) {
		log_warn("cannot create cgroup %s/%s; the task runs without one", cg.path, name);
		return;
	}
	t->dirfd = openat(cg.fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd >= 0)
		t->procs_fd = openat(t->dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (t->procs_fd < 0) {
		log_warn("cannot open cgroup %s/%s; the task runs without one", cg.path, name);
		cgroup_task_remove(t);
	}
}

/* Reads a small file of the task's cgroup into buf; false on failure. */
static bool read_small(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = xread(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

bool cgroup_task_populated(const struct cgroup_task *t)
{
	char buf[256];
	if (t->dirfd < 0 || !read_small(t->dirfd, "cgroup.events", buf, sizeof buf))
		return false;
	const char *p = strstr(buf, "populated ");
	return p && p[10] == '1';
}

bool cgroup_task_has(const struct cgroup_task *t, pid_t pid)
{
	if (t->dirfd < 0)
		return false;
	char path[64], line[PATH_MAX + 8], want[PATH_MAX + 32];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	snprintf(want, sizeof want, "0::%s/task-%u\n", cg.rel, t->seq);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool in = false;
	while (!in && fgets(line, sizeof line, f))
		in = !strcmp(line, want);
	fclose(f);
	return in;
}

void cgroup_task_signal(const struct cgroup_task *t, int sig)
{
	if (t->dirfd < 0)
		return;
	if (sig == SIGKILL) {
		int fd = openat(t->dirfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
		bool done = fd >= 0 && write(fd, "1", 1) == 1;
		if (fd >= 0)
			close(fd);
		if (done)
			return;
	}
	int fd = openat(t->dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 1 && pid != getpid())
			kill(pid, sig);
	fclose(f);
}

bool cgroup_task_cpu(const struct cgroup_task *t, uint64_t *user_us, uint64_t *system_us)
{
	char buf[1024];
	if (t->dirfd < 0 || !read_small(t->dirfd, "cpu.stat", buf, sizeof buf))
		return false;
	const char *u = strstr(buf, "user_usec "), *s = strstr(buf, "system_usec ");
	if (!u || !s)
		return false;
	*user_us = strtoull(u + 10, NULL, 10);
	*system_us = strtoull(s + 12, NULL, 10);
	return true;
}

void cgroup_task_remove(struct cgroup_task *t)
{
	if (t->procs_fd >= 0)
		close(t->procs_fd);
	if (t->dirfd >= 0) {
		close(t->dirfd);
		char name[32];
		snprintf(name, sizeof name, "task-%u", t->seq);
		/* EBUSY: a process is still in it (one that escaped a kill by
		 * being unkillable, say); the runner's teardown retries. */
		if (unlinkat(cg.fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			log_warn("cannot remove cgroup %s/%s", cg.path, name);
	}
	t->dirfd = t->procs_fd = -1;
}

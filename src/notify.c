#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static struct sockaddr_un target;
static socklen_t target_len; /* 0: no socket */

int notify_address(const char *value, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = value ? strlen(value) : 0;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (n < 2 || n > sizeof sa->sun_path - 1 || (value[0] != '/' && value[0] != '@'))
		return -1;
	memcpy(sa->sun_path, value, n);
	/* An abstract name's length is exact: no terminating NUL is counted. */
	if (value[0] == '@') {
		sa->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

bool notify_init(void)
{
	const char *v = getenv("NOTIFY_SOCKET");
	target_len = 0;
	if (!v)
		return false;
	if (notify_address(v, &target, &target_len) < 0) {
		log_warnx("NOTIFY_SOCKET=\"%s\": not an absolute path or @name; not notifying", v);
		target_len = 0;
	}
	unsetenv("NOTIFY_SOCKET");
	return target_len != 0;
}

int notify_send(const char *msg)
{
	if (!target_len)
		return 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&target, target_len);
	while (n < 0 && errno == EINTR);
	int saved = errno;
	close(fd);
	errno = saved;
	return n < 0 ? -1 : 0;
}

/* notify: NOTIFY_SOCKET addresses (paths and abstract names) and the one
 * datagram a message is. */
#include "testutil.h"

#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"

static void test_addresses(void **state)
{
	(void)state;
	struct sockaddr_un sa;
	socklen_t len;
	assert_int_equal(notify_address("/run/systemd/notify", &sa, &len), 0);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
	assert_int_equal(notify_address("@abstract-name", &sa, &len), 0);
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "abstract-name", 13);
	/* Exact length: no trailing NUL is part of an abstract name. */
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 14);
	char longname[200];
	memset(longname, 'a', sizeof longname - 1);
	longname[0] = '/';
	longname[sizeof longname - 1] = '\0';
	static const char *const bad[] = { "", "@", "relative/path", "x" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(notify_address(bad[i], &sa, &len), -1);
	assert_int_equal(notify_address(longname, &sa, &len), -1);
	assert_int_equal(notify_address(NULL, &sa, &len), -1);
}

static void test_sends_one_datagram_and_hides_the_socket(void **state)
{
	(void)state;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64];
	snprintf(name, sizeof name, "spoolrun-unit-notify-%d", (int)getpid());
	memcpy(sa.sun_path + 1, name, strlen(name));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))), 0);
	char env[80];
	snprintf(env, sizeof env, "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_true(notify_init());
	assert_null(getenv("NOTIFY_SOCKET")); /* tasks and hooks never see it */
	assert_int_equal(notify_send("READY=1\nSTATUS=0 queued"), 0);
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
	assert_int_equal(n, strlen("READY=1\nSTATUS=0 queued"));
	assert_memory_equal(buf, "READY=1\nSTATUS=0 queued", (size_t)n);
	close(fd);
	/* Without the variable, sending does nothing and succeeds. */
	assert_false(notify_init());
	assert_int_equal(notify_send("READY=1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_sends_one_datagram_and_hides_the_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

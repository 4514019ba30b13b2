/* names: the spool's name family (never truncates, copies always fit,
 * numbering in O(log n)), a symlinked layout directory, the task file
 * pipeline's choice of id, arrival of files without a close event, and
 * seconds that must never round to "none". */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <unistd.h>

#include "arrival.h"
#include "spool_fixture.h"
#include "taskfile.h"
#include "timeutil.h"

static void test_name_family(void **state)
{
	(void)state;
	char out[SPOOL_NAME_SIZE];
	assert_int_equal(spool_name_result("abc", 1, out), 0);
	assert_string_equal(out, "abc.json");
	assert_int_equal(spool_name_result("abc", 0, out), 0);
	assert_string_equal(out, "abc.json");
	assert_int_equal(spool_name_result("abc", 17, out), 0);
	assert_string_equal(out, "abc@17.json");
	assert_int_equal(spool_name_log("abc", "stderr", out), 0);
	assert_string_equal(out, "abc.stderr");
	assert_int_equal(spool_name_state("a.json", out), 0);
	assert_string_equal(out, ".a.json.state");
	/* Too long: an error, never a cut name. */
	char longname[NAME_MAX + 1];
	memset(longname, 'x', NAME_MAX);
	longname[NAME_MAX] = '\0';
	errno = 0;
	assert_int_equal(spool_name_state(longname, out), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_string_equal(out, "");
	/* The longest task name taken still has every derived name. */
	char taken[SPOOL_TASK_NAME_MAX + 1];
	memset(taken, 't', SPOOL_TASK_NAME_MAX);
	taken[SPOOL_TASK_NAME_MAX] = '\0';
	spool_name_copy(taken, 100000, out);
	char st[SPOOL_NAME_SIZE];
	assert_int_equal(spool_name_state(out, st), 0);
}

static void test_copies_always_fit(void **state)
{
	(void)state;
	char out[SPOOL_NAME_SIZE], name[NAME_MAX + 1];
	memset(name, 'n', NAME_MAX);
	name[NAME_MAX] = '\0';
	spool_name_copy(name, 1, out);
	assert_string_equal(out, name);
	unsigned ns[] = { 2, 10, 99999, 4000000000u };
	for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
		spool_name_copy(name, ns[i], out);
		assert_int_equal(strlen(out), NAME_MAX);
		char suffix[16];
		snprintf(suffix, sizeof suffix, ".%u", ns[i]);
		assert_string_equal(out + NAME_MAX - strlen(suffix), suffix);
	}
	spool_name_copy("a.json", 3, out);
	assert_string_equal(out, "a.json.3");
}

/* A 255-byte name rejected twice: the second copy gets a name that fits. */
static void test_keep_rejected_long_name(void **state)
{
	struct fixture *f = *state;
	char name[NAME_MAX + 1], kept[SPOOL_NAME_SIZE];
	memset(name, 'r', NAME_MAX - 5);
	strcpy(name + NAME_MAX - 5, ".json");
	for (int i = 0; i < 3; i++) {
		int fd = openat(f->s.active_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(spool_keep_rejected(&f->s, name, kept, sizeof kept), 0);
		assert_true(strlen(kept) <= NAME_MAX);
	}
	char *rej = tu_join(f->dir, "rejected");
	assert_int_equal(tu_count_entries(rej), 3);
	free(rej);
	assert_int_equal(faccessat(f->s.active_fd, name, F_OK, AT_SYMLINK_NOFOLLOW), -1);
}

/* Many results of one id: each published once, numbered without gaps. */
static void test_publish_many_of_one_id(void **state)
{
	struct fixture *f = *state;
	json_t *doc = json_pack("{s:i}", "n", 1);
	char published[SPOOL_NAME_SIZE], want[SPOOL_NAME_SIZE];
	for (unsigned n = 1; n <= 70; n++) {
		assert_int_equal(spool_publish(&f->s, "dup", doc, published, sizeof published), 0);
		spool_name_result("dup", n, want);
		assert_string_equal(published, want);
	}
	json_decref(doc);
	char *res = tu_join(f->dir, "results");
	assert_int_equal(tu_count_entries(res), 70);
	free(res);
	char *tmp = tu_join(f->dir, "tmp");
	assert_int_equal(tu_count_entries(tmp), 0);
	free(tmp);
}

static void test_symlinked_layout_refused(void **state)
{
	struct fixture *f = *state;
	char *logs = tu_join(f->dir, "logs"), *other = tu_join(f->dir, "elsewhere");
	assert_int_equal(rmdir(logs), 0);
	assert_int_equal(mkdir(other, 0755), 0);
	assert_int_equal(symlink(other, logs), 0);
	struct spool s;
	char err[512] = "";
	assert_int_equal(spool_open(&s, &f->cfg, f->dir, err, sizeof err), -1);
	assert_contains(err, "logs is a symbolic link");
	spool_close(&s);
	free(logs);
	free(other);
}

/* The pipeline's id: the file's own when valid, even when the rest is not. */
static void test_taskfile_ids(void **state)
{
	struct fixture *f = *state;
	struct { const char *name, *body, *id; enum taskfile_stage stage; } cases[] = {
		{ "x.json", "{\"id\":\"abc\",\"command\":5}", "abc", TASKFILE_INVALID },
		{ "x.json", "{\"id\":\"abc\",\"command\":[\"true\"]}", "abc", TASKFILE_OK },
		{ "x.json", "{\"id\":\"a b\",\"command\":[\"true\"]}", "x", TASKFILE_INVALID },
		{ "y.json", "{\"command\":[\"true\"]}", "y", TASKFILE_OK },
		{ "z y.json", "not json", "z_y", TASKFILE_INVALID },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int fd = openat(f->s.active_fd, cases[i].name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, cases[i].body, strlen(cases[i].body)),
				 (ssize_t)strlen(cases[i].body));
		close(fd);
		struct taskfile tf;
		assert_int_equal(taskfile_load_at(&tf, f->s.active_fd, cases[i].name, &f->cfg, NULL),
				 cases[i].stage);
		assert_string_equal(tf.id, cases[i].id);
		if (cases[i].stage != TASKFILE_OK) {
			struct result_context ctx = { .task_file = tf.name };
			json_t *r = taskfile_rejection(&tf, &ctx, NULL);
			assert_string_equal(json_string_value(json_object_get(r, "id")), cases[i].id);
			assert_string_equal(json_string_value(json_object_get(r, "status")), "rejected");
			json_decref(r);
		}
		taskfile_clear(&tf);
		unlinkat(f->s.active_fd, cases[i].name, 0);
	}
}

static void test_taskfile_refuses_a_long_name(void **state)
{
	struct fixture *f = *state;
	char name[SPOOL_TASK_NAME_MAX + 7];
	memset(name, 'l', SPOOL_TASK_NAME_MAX - 4);
	strcpy(name + SPOOL_TASK_NAME_MAX - 4, ".json"); /* one byte too long */
	const char body[] = "{\"id\":\"ok\",\"command\":[\"true\"]}";
	int fd = openat(f->s.active_fd, name, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
	close(fd);
	struct taskfile tf;
	assert_int_equal(taskfile_load_at(&tf, f->s.active_fd, name, &f->cfg, NULL),
			 TASKFILE_BAD_NAME);
	assert_string_equal(tf.error.code, "invalid_file");
	assert_string_equal(tf.id, "ok");
	taskfile_clear(&tf);
}

static void take(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
}

static void test_arrival(void **state)
{
	struct fixture *f = *state;
	int in = f->s.incoming_fd, taken = 0;
	struct arrivals a = { 0 };
	/* Open for writing: waited for; closed: taken. */
	int fd = openat(in, "w.json", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(arrival_note(&a, "w.json", 1000), 0);
	assert_int_equal(arrival_timeout_ms(&a, 1000), 0);
	arrival_poll(&a, in, 1000, take, &taken);
	assert_int_equal(taken, 0);
	assert_int_equal(arrival_count(&a), 1);
	assert_int_equal(arrival_timeout_ms(&a, 1000), 10);
	close(fd);
	arrival_poll(&a, in, 1010, take, &taken);
	assert_int_equal(taken, 1);
	assert_int_equal(arrival_count(&a), 0);
	assert_int_equal(arrival_timeout_ms(&a, 1010), -1);
	/* Two links: waited for, until the grace ends. */
	assert_int_equal(linkat(in, "w.json", in, "l.json", 0), 0);
	assert_int_equal(arrival_note(&a, "l.json", 2000), 0);
	arrival_poll(&a, in, 2000, take, &taken);
	assert_int_equal(taken, 1);
	arrival_poll(&a, in, 2000 + ARRIVAL_LINK_GRACE_MS, take, &taken);
	assert_int_equal(taken, 2);
	/* Gone: forgotten without being taken. */
	assert_int_equal(arrival_note(&a, "gone.json", 3000), 0);
	arrival_poll(&a, in, 3000, take, &taken);
	assert_int_equal(taken, 2);
	assert_int_equal(arrival_count(&a), 0);
	arrival_clear(&a);
}

static void test_seconds_never_round_to_none(void **state)
{
	(void)state;
	assert_int_equal(time_seconds_to_ns(0), 0);
	assert_int_equal(time_seconds_to_ns(-1), 0);
	assert_int_equal(time_seconds_to_ns(1e-10), 1);
	assert_int_equal(time_seconds_to_ns(4.9e-324), 1);
	assert_int_equal(time_seconds_to_ns(1.5), 1500000000);
	assert_int_equal(time_seconds_to_ns(1e300), INT64_MAX);
	assert_int_equal(time_ms_to_ns(INT64_C(10000000000000)), INT64_MAX);
	assert_int_equal(time_ms_to_ns(INT64_MAX), INT64_MAX);
	assert_int_equal(time_ms_to_ns(INT64_MIN), INT64_MIN);
	assert_int_equal(time_ms_to_ns(1500), INT64_C(1500000000));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_family),
		cmocka_unit_test(test_copies_always_fit),
		T(test_keep_rejected_long_name),
		T(test_publish_many_of_one_id),
		T(test_symlinked_layout_refused),
		T(test_taskfile_ids),
		T(test_taskfile_refuses_a_long_name),
		T(test_arrival),
		cmocka_unit_test(test_seconds_never_round_to_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

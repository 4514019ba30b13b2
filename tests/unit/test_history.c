/* history: recorded run times per key, and the timeout they imply. */
#include "testutil.h"

#include "history.h"

struct fx {
	char *dir;
	int root;
	struct history h;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	f->dir = tu_mkdtemp();
	f->root = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->root < 0 || history_open(&f->h, f->root, false) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	history_close(&f->h);
	close(f->root);
	tu_rmtree(f->dir); /* frees it */
	free(f);
	return 0;
}

/* The one file in history/, as text (and its name). */
static char *only_file(struct fx *f, char name[64])
{
	DIR *d = fdopendir(dup(f->h.dir_fd));
	struct dirent *de;
	int found = 0;
	rewinddir(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(name, 64, "%.63s", de->d_name);
			found++;
		}
	closedir(d);
	assert_int_equal(found, 1);
	char path[4096];
	snprintf(path, sizeof path, "%s/history/%s", f->dir, name);
	return tu_read_file(path, NULL);
}

static void test_record_and_load(void **state)
{
	struct fx *f = *state;
	double runs[HISTORY_RUNS];
	assert_int_equal(history_load(&f->h, "make all", runs), 0);
	assert_int_equal(history_record(&f->h, "make all", 1.5), 0);
	assert_int_equal(history_record(&f->h, "make all", 2.5), 0);
	assert_int_equal(history_load(&f->h, "make all", runs), 2);
	assert_true(runs[0] == 1.5 && runs[1] == 2.5);
	/* Another key has its own history. */
	assert_int_equal(history_load(&f->h, "make test", runs), 0);
	/* It survives reopening (a restart). */
	history_close(&f->h);
	assert_int_equal(history_open(&f->h, f->root, true), 0);
	assert_int_equal(history_load(&f->h, "make all", runs), 2);
	assert_int_equal(history_record(&f->h, "make all", 3), 0); /* durable path */
	assert_int_equal(history_load(&f->h, "make all", runs), 3);
}

static void test_bounded_to_last_runs(void **state)
{
	struct fx *f = *state;
	double runs[HISTORY_RUNS];
	for (int i = 1; i <= 45; i++)
		assert_int_equal(history_record(&f->h, "k", i), 0);
	assert_int_equal(history_load(&f->h, "k", runs), HISTORY_RUNS);
	assert_true(runs[0] == 26 && runs[HISTORY_RUNS - 1] == 45);
	char name[64];
	char *text = only_file(f, name);
	assert_true(strlen(text) < 1024);
	assert_contains(text, "\"key\":\"k\"");
	free(text);
	assert_int_equal(strlen(name), 32 + 5); /* 128-bit hash + .json */
}

static void test_long_key_kept_short(void **state)
{
	struct fx *f = *state;
	char key[5000];
	memset(key, 'x', sizeof key - 1);
	key[sizeof key - 1] = '\0';
	double runs[HISTORY_RUNS];
	assert_int_equal(history_record(&f->h, key, 7), 0);
	key[4000] = 'y'; /* differs after the stored prefix: another key */
	assert_int_equal(history_load(&f->h, key, runs), 0);
	key[4000] = 'x';
	assert_int_equal(history_load(&f->h, key, runs), 1);
	char name[64];
	char *text = only_file(f, name);
	assert_true(strlen(text) < 400);
	free(text);
}

/* Gives the file just written (the only one with a current mtime) the
 * mtime `age` seconds after the epoch, so the order is known. */
static void age_new_file(struct fx *f, int age)
{
	DIR *d = fdopendir(dup(f->h.dir_fd));
	struct dirent *de;
	struct stat st;
	rewinddir(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && fstatat(f->h.dir_fd, de->d_name, &st, 0) == 0 &&
		    st.st_mtime > 100000) {
			struct timespec ts[2] = { { age, 0 }, { age, 0 } };
			assert_int_equal(utimensat(f->h.dir_fd, de->d_name, ts, 0), 0);
		}
	closedir(d);
}

static void test_bounded_number_of_keys(void **state)
{
	struct fx *f = *state;
	f->h.max_keys = 5;
	char key[32], path[4096];
	double runs[HISTORY_RUNS];
	snprintf(path, sizeof path, "%s/history", f->dir);
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "key%d", i);
		assert_int_equal(history_record(&f->h, key, i), 0);
		age_new_file(f, 1000 + i);
		assert_true(tu_count_entries(path) <= 5);
	}
	assert_int_equal(tu_count_entries(path), 5);
	/* The most recently updated keys are kept, the others forgotten. */
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "key%d", i);
		assert_int_equal(history_load(&f->h, key, runs), i >= 3 ? 1 : 0);
	}
	/* Updating a known key never removes another. */
	assert_int_equal(history_record(&f->h, "key3", 1), 0);
	assert_int_equal(tu_count_entries(path), 5);
	assert_int_equal(history_load(&f->h, "key4", runs), 1);
}

static void write_history_file(struct fx *f, const char *key, const char *text)
{
	/* Find the key's file name by recording once, then overwrite it. */
	char name[64], path[4096];
	assert_int_equal(history_record(&f->h, key, 1), 0);
	free(only_file(f, name));
	snprintf(path, sizeof path, "%s/history/%s", f->dir, name);
	tu_write_file(path, text, strlen(text));
}

static void test_corrupt_file_ignored(void **state)
{
	struct fx *f = *state;
	static const char *const corrupt[] = {
		"{not json", "[1, 2]", "{\"runs_s\": \"fast\"}", "{\"runs_s\": [1, -2]}",
		"{\"runs_s\": [1, \"x\"]}", "",
	};
	double runs[HISTORY_RUNS];
	for (size_t i = 0; i < sizeof corrupt / sizeof *corrupt; i++) {
		write_history_file(f, "k", corrupt[i]);
		assert_int_equal(history_load(&f->h, "k", runs), 0);
		/* The next run replaces it with a good file. */
		assert_int_equal(history_record(&f->h, "k", 4), 0);
		assert_int_equal(history_load(&f->h, "k", runs), 1);
		assert_true(runs[0] == 4);
		char path[4096], name[64];
		free(only_file(f, name));
		snprintf(path, sizeof path, "%s/history/%s", f->dir, name);
		unlink(path);
	}
}

static void test_p90(void **state)
{
	(void)state;
	double one[] = { 4 };
	assert_true(history_p90(one, 1) == 4);
	assert_true(history_p90(NULL, 0) == 0);
	double ten[] = { 10, 1, 9, 2, 8, 3, 7, 4, 6, 5 };
	assert_true(history_p90(ten, 10) == 9);  /* rank ceil(9) = 9 */
	double five[] = { 1, 1, 1, 1, 100 };
	assert_true(history_p90(five, 5) == 100); /* rank ceil(4.5) = 5 */
	double twenty[20];
	for (int i = 0; i < 20; i++)
		twenty[i] = 20 - i;
	assert_true(history_p90(twenty, 20) == 18);
	double input_kept[] = { 3, 1, 2 };
	history_p90(input_kept, 3);
	assert_true(input_kept[0] == 3 && input_kept[1] == 1); /* not sorted in place */
}

static const struct task_defaults dflt = {
	.timeout = 3600, .auto_timeout_factor = 3, .auto_timeout_min = 60,
	.auto_timeout_default = 1800,
};

static void test_timeout_resolution(void **state)
{
	(void)state;
	static const double fast[] = { 30, 30, 30, 30, 40 }, tiny[] = { 1, 1, 1, 1, 1, 1 };
	static const struct {
		const char *why;
		bool given, is_auto;
		double task_timeout;
		const double *runs;
		size_t n;
		double factor;
		double want;
		enum timeout_source source;
	} cases[] = {
		{ "the task's own number", true, false, 5, fast, 5, 3, 5, TIMEOUT_TASK },
		{ "[task] timeout", false, false, 0, fast, 5, 3, 3600, TIMEOUT_DEFAULT },
		{ "auto with 5 runs: 3 x p90", false, true, 0, fast, 5, 3, 120, TIMEOUT_AUTO },
		{ "auto with a factor of 2", false, true, 0, fast, 5, 2, 80, TIMEOUT_AUTO },
		{ "auto, at least auto_timeout_min", false, true, 0, tiny, 6, 3, 60, TIMEOUT_AUTO },
		{ "auto with 4 runs: the default", false, true, 0, fast, 4, 3, 1800, TIMEOUT_AUTO_DEFAULT },
		{ "auto with none", false, true, 0, NULL, 0, 3, 1800, TIMEOUT_AUTO_DEFAULT },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct task t = { .timeout = cases[i].task_timeout, .timeout_given = cases[i].given,
				  .timeout_auto = cases[i].is_auto };
		struct task_defaults d = dflt;
		d.auto_timeout_factor = cases[i].factor;
		struct timeout_choice c = history_timeout(&t, &d, cases[i].runs, cases[i].n);
		if (c.seconds != cases[i].want || c.source != cases[i].source)
			print_error("%s: %g s (%s)\n", cases[i].why, c.seconds,
				    timeout_source_name(c.source));
		assert_true(c.seconds == cases[i].want);
		assert_int_equal(c.source, cases[i].source);
	}
}

static void test_key_of(void **state)
{
	(void)state;
	static const struct { const char *doc, *key; } cases[] = {
		{ "{\"command\": [\"make\", \"all\"]}", "[\"make\",\"all\"]" },
		{ "{\"command\": \"sleep 1 && echo\"}", "sleep 1 && echo" },
		{ "{\"command\": [\"make\"], \"history_key\": \"build\"}", "build" },
	};
	struct task_defaults d = dflt;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct task t;
		struct task_error e;
		assert_int_equal(task_parse(cases[i].doc, strlen(cases[i].doc), "k.json", &d, &t, &e), 0);
		char *key = history_key_of(&t);
		assert_string_equal(key, cases[i].key);
		free(key);
		task_clear(&t);
	}
}

/* Around a run: succeeded results feed the history, the sixth auto task
 * gets 3 x p90; failures are not recorded; no history means auto_default. */
static void test_settle_and_note(void **state)
{
	struct fx *f = *state;
	static const char doc[] = "{\"id\": \"x\", \"command\": [\"build\"], \"timeout\": \"auto\"}";
	struct task t;
	struct task_error e;
	struct task_defaults d = dflt;
	assert_int_equal(task_parse(doc, strlen(doc), "x.json", &d, &t, &e), 0);
	for (int i = 0; i < 5; i++) {
		history_settle_timeout(&f->h, &d, &t);
		assert_int_equal(t.timeout_source, TIMEOUT_AUTO_DEFAULT);
		assert_true(t.timeout == 1800);
		json_t *ok = json_pack("{s:s, s:i}", "status", "succeeded", "duration_ms", 40000);
		json_t *bad = json_pack("{s:s, s:i}", "status", "failed", "duration_ms", 900000);
		history_note_result(&f->h, &t, ok);
		history_note_result(&f->h, &t, bad);
		json_decref(ok);
		json_decref(bad);
	}
	history_settle_timeout(&f->h, &d, &t);
	assert_int_equal(t.timeout_source, TIMEOUT_AUTO);
	assert_true(t.timeout == 120);
	history_settle_timeout(NULL, &d, &t);
	assert_int_equal(t.timeout_source, TIMEOUT_AUTO_DEFAULT);
	task_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_record_and_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_to_last_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_key_kept_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_number_of_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_file_ignored, setup, teardown),
		cmocka_unit_test(test_p90),
		cmocka_unit_test(test_timeout_resolution),
		cmocka_unit_test(test_key_of),
		cmocka_unit_test_setup_teardown(test_settle_and_note, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

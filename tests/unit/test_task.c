/* task: parsing and validation of task files (format 1). */
#include "testutil.h"

#include <math.h>

#include "task.h"

static const struct task_defaults dflt = { .timeout = 3600, .kill_grace = 5 };

/* Parses the NUL-terminated JSON text s as if read from file name. */
static int parse_as(const char *s, const char *name, struct task *t, struct task_error *e)
{
	return task_parse(s, strlen(s), name, &dflt, t, e);
}

static int parse(const char *s, struct task *t, struct task_error *e)
{
	return parse_as(s, "t1.json", t, e);
}

/* Expects s to parse. */
static void ok(const char *s, struct task *t)
{
	struct task_error e;
	int rc = parse(s, t, &e);
	if (rc != 0)
		print_error("unexpected error for %s: [%s] %s: %s\n", s, e.code, e.field, e.message);
	assert_int_equal(rc, 0);
}

/* Expects s to be refused with the given code and field, the message
 * naming the field (when there is one) and the file. */
static void refused(const char *s, const char *code, const char *field)
{
	struct task t;
	struct task_error e;
	int rc = parse(s, &t, &e);
	if (rc == 0)
		print_error("accepted: %s\n", s);
	assert_int_equal(rc, -1);
	assert_string_equal(e.code, code);
	assert_string_equal(e.field, field);
	assert_true(strlen(e.message) > 0);
	assert_null(strchr(e.message, '\n'));
	assert_contains(e.message, "t1.json");
	if (*field)
		assert_contains(e.message, field);
	task_clear(&t);
}

#define INVALID(s, field) refused(s, "invalid_task", field)

/* --- well-formed tasks ------------------------------------------------ */

static void test_minimal(void **state)
{
	(void)state;
	struct task t;
	ok("{\"command\": [\"echo\", \"hi\"]}", &t);
	assert_string_equal(t.id, "t1");
	assert_non_null(t.json);
	assert_non_null(t.argv);
	assert_string_equal(t.argv[0], "echo");
	assert_string_equal(t.argv[1], "hi");
	assert_null(t.argv[2]);
	assert_false(t.shell);
	assert_null(t.cwd);
	assert_int_equal(t.env_count, 0);
	assert_null(t.stdin_data);
	assert_int_equal(t.stdin_len, 0);
	assert_true(t.timeout == 3600);
	assert_true(t.kill_grace == 5);
	assert_int_equal(t.priority, 0);
	task_clear(&t);
	assert_null(t.json);
	assert_null(t.argv);
}

static void test_all_fields(void **state)
{
	(void)state;
	struct task t;
	ok("{\"format\": 1, \"id\": \"job_7.x-y\", \"command\": [\"/bin/true\"],"
	   " \"cwd\": \"/tmp\", \"env\": {\"A\": \"1\", \"B\": null},"
	   " \"stdin\": \"in\\u0000put\", \"timeout\": 12.5, \"kill_grace\": 0,"
	   " \"priority\": -3, \"meta\": {\"who\": [1, 2]}}", &t);
	assert_string_equal(t.id, "job_7.x-y");
	assert_string_equal(t.argv[0], "/bin/true");
	assert_null(t.argv[1]);
	assert_string_equal(t.cwd, "/tmp");
	assert_int_equal(t.env_count, 2);
	/* Object order is not part of the contract: look each one up. */
	bool seen_a = false, seen_b = false;
	for (size_t i = 0; i < t.env_count; i++) {
		if (!strcmp(t.env[i].name, "A")) {
			assert_string_equal(t.env[i].value, "1");
			seen_a = true;
		} else if (!strcmp(t.env[i].name, "B")) {
			assert_null(t.env[i].value);
			seen_b = true;
		}
	}
	assert_true(seen_a && seen_b);
	assert_int_equal(t.stdin_len, 6);
	assert_memory_equal(t.stdin_data, "in\0put", 6);
	assert_true(t.timeout == 12.5);
	assert_true(t.kill_grace == 0);
	assert_int_equal(t.priority, -3);
	task_clear(&t);
}

static void test_array_command(void **state)
{
	(void)state;
	struct task t;
	ok("{\"command\": [\"printf\", \"%s\\n\", \"a b\", \"\"]}", &t);
	assert_false(t.shell);
	assert_string_equal(t.argv[0], "printf");
	assert_string_equal(t.argv[1], "%s\n");
	assert_string_equal(t.argv[2], "a b");
	assert_string_equal(t.argv[3], ""); /* empty arguments are fine */
	assert_null(t.argv[4]);
	task_clear(&t);
}

static void test_string_command(void **state)
{
	(void)state;
	struct task t;
	ok("{\"command\": \"echo hi | tr a-z A-Z\"}", &t);
	assert_true(t.shell);
	assert_string_equal(t.argv[0], "/bin/sh");
	assert_string_equal(t.argv[1], "-c");
	assert_string_equal(t.argv[2], "echo hi | tr a-z A-Z");
	assert_null(t.argv[3]);
	task_clear(&t);
}

static void test_default_id_from_file_name(void **state)
{
	(void)state;
	struct task t;
	struct task_error e;
	assert_int_equal(parse_as("{\"command\": [\"x\"]}", "build-42.json", &t, &e), 0);
	assert_string_equal(t.id, "build-42");
	task_clear(&t);
	/* An explicit id wins over the file name. */
	assert_int_equal(parse_as("{\"id\": \"other\", \"command\": [\"x\"]}", "build-42.json", &t, &e), 0);
	assert_string_equal(t.id, "other");
	task_clear(&t);
}

static void test_default_id_invalid_file_name(void **state)
{
	(void)state;
	struct task t;
	struct task_error e;
	assert_int_equal(parse_as("{\"command\": [\"x\"]}", "bad name.json", &t, &e), -1);
	assert_string_equal(e.code, "invalid_task");
	assert_string_equal(e.field, "id");
	assert_contains(e.message, "bad name.json");
	task_clear(&t);
	/* ".json" alone leaves nothing valid. */
	assert_int_equal(parse_as("{\"command\": [\"x\"]}", ".json", &t, &e), -1);
	assert_string_equal(e.field, "id");
	task_clear(&t);
	/* But an explicit id rescues it. */
	assert_int_equal(parse_as("{\"id\": \"ok\", \"command\": [\"x\"]}", "bad name.json", &t, &e), 0);
	assert_string_equal(t.id, "ok");
	task_clear(&t);
}

static void test_defaults_applied(void **state)
{
	(void)state;
	const struct task_defaults d = { .timeout = 7.25, .kill_grace = 2 };
	struct task t;
	struct task_error e;
	const char *s = "{\"command\": [\"x\"]}";
	assert_int_equal(task_parse(s, strlen(s), "d.json", &d, &t, &e), 0);
	assert_true(t.timeout == 7.25);
	assert_true(t.kill_grace == 2);
	task_clear(&t);
	s = "{\"command\": [\"x\"], \"timeout\": 1, \"kill_grace\": 0.25}";
	assert_int_equal(task_parse(s, strlen(s), "d.json", &d, &t, &e), 0);
	assert_true(t.timeout == 1);
	assert_true(t.kill_grace == 0.25);
	task_clear(&t);
	s = "{\"command\": [\"x\"], \"timeout\": 0}";
	assert_int_equal(task_parse(s, strlen(s), "d.json", &d, &t, &e), 0);
	assert_true(t.timeout == 0);
	assert_true(t.kill_grace == 2);
	task_clear(&t);
}

static void test_meta_any_type(void **state)
{
	(void)state;
	const char *metas[] = { "{\"a\": {\"b\": [1, null]}}", "[1, \"x\"]", "\"s\"", "3",
				"-1.5e300", "true", "false", "null", "{}" };
	for (size_t i = 0; i < sizeof metas / sizeof *metas; i++) {
		char buf[128];
		snprintf(buf, sizeof buf, "{\"command\": [\"x\"], \"meta\": %s}", metas[i]);
		struct task t;
		ok(buf, &t);
		assert_non_null(json_object_get(t.json, "meta"));
		task_clear(&t);
	}
}

static void test_format_one(void **state)
{
	(void)state;
	struct task t;
	ok("{\"format\": 1, \"command\": [\"x\"]}", &t);
	task_clear(&t);
	INVALID("{\"format\": 2, \"command\": [\"x\"]}", "format");
	INVALID("{\"format\": \"1\", \"command\": [\"x\"]}", "format");
	INVALID("{\"format\": 1.5, \"command\": [\"x\"]}", "format");
	INVALID("{\"format\": null, \"command\": [\"x\"]}", "format");
}

/* --- ids -------------------------------------------------------------- */

static void test_id_valid(void **state)
{
	(void)state;
	char id[TASK_ID_MAX + 2];
	assert_true(task_id_valid("a", 1));
	assert_true(task_id_valid("A-z_0.9", 7));
	assert_true(task_id_valid("a..b", 4));
	assert_false(task_id_valid("-x", 2)); /* would read as an option */
	assert_true(task_id_valid("x-", 2));
	assert_true(task_id_valid("_", 1));
	memset(id, 'x', sizeof id);
	assert_true(task_id_valid(id, TASK_ID_MAX));
	assert_false(task_id_valid(id, TASK_ID_MAX + 1));
	assert_false(task_id_valid("", 0));
	assert_false(task_id_valid(".", 1));
	assert_false(task_id_valid("..", 2));
	assert_false(task_id_valid(".hidden", 7));
	assert_false(task_id_valid("a/b", 3));
	assert_false(task_id_valid("a b", 3));
	assert_false(task_id_valid("a\0b", 3));
	assert_false(task_id_valid("caf\xC3\xA9", 5));
	assert_false(task_id_valid("a@2", 3));
	assert_false(task_id_valid("x:y", 3));
	/* len is what counts, not the NUL. */
	assert_true(task_id_valid("ab/", 2));
}

static void test_id_field_rules(void **state)
{
	(void)state;
	struct task t;
	char buf[512], id[TASK_ID_MAX + 2];
	memset(id, 'k', TASK_ID_MAX);
	id[TASK_ID_MAX] = '\0';
	snprintf(buf, sizeof buf, "{\"id\": \"%s\", \"command\": [\"x\"]}", id);
	ok(buf, &t);
	assert_string_equal(t.id, id);
	task_clear(&t);
	id[TASK_ID_MAX] = 'k';
	id[TASK_ID_MAX + 1] = '\0';
	snprintf(buf, sizeof buf, "{\"id\": \"%s\", \"command\": [\"x\"]}", id);
	INVALID(buf, "id");
	INVALID("{\"id\": \"a/b\", \"command\": [\"x\"]}", "id");
	INVALID("{\"id\": \"..\", \"command\": [\"x\"]}", "id");
	INVALID("{\"id\": \"\", \"command\": [\"x\"]}", "id");
	INVALID("{\"id\": \".x\", \"command\": [\"x\"]}", "id");
	INVALID("{\"id\": \"a\\u0000b\", \"command\": [\"x\"]}", "id");
	INVALID("{\"id\": 42, \"command\": [\"x\"]}", "id");
	INVALID("{\"id\": null, \"command\": [\"x\"]}", "id");
}

static void test_id_from_filename(void **state)
{
	(void)state;
	char out[TASK_ID_MAX + 1];
	task_id_from_filename("build-42.json", out);
	assert_string_equal(out, "build-42");
	task_id_from_filename("plain", out);
	assert_string_equal(out, "plain");
	task_id_from_filename("a b/c.json", out);
	assert_string_equal(out, "a_b_c");
	task_id_from_filename(".hidden.json", out);
	assert_string_equal(out, "_hidden");
	task_id_from_filename("x.json.json", out);
	assert_string_equal(out, "x.json");
	task_id_from_filename("caf\xC3\xA9.json", out);
	assert_string_equal(out, "caf__");
	task_id_from_filename("", out);
	assert_true(task_id_valid(out, strlen(out)));
	task_id_from_filename(".json", out);
	assert_true(task_id_valid(out, strlen(out)));
	task_id_from_filename("..", out);
	assert_true(task_id_valid(out, strlen(out)));

	char longname[300];
	memset(longname, 'n', 200);
	strcpy(longname + 200, ".json");
	task_id_from_filename(longname, out);
	assert_int_equal(strlen(out), TASK_ID_MAX);
	assert_true(task_id_valid(out, strlen(out)));
}

/* Whatever the file name, the derived id is a valid id. */
static void test_id_from_filename_always_valid(void **state)
{
	(void)state;
	struct tu_rng rng = { 42 };
	char name[200], out[TASK_ID_MAX + 1];
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)tu_rand_range(&rng, 0, sizeof name - 1);
		for (size_t i = 0; i < n; i++)
			name[i] = (char)tu_rand_range(&rng, 1, 255);
		name[n] = '\0';
		task_id_from_filename(name, out);
		assert_true(task_id_valid(out, strlen(out)));
	}
}

/* --- JSON errors ------------------------------------------------------ */

static void test_invalid_json(void **state)
{
	(void)state;
	struct task t;
	struct task_error e;
	assert_int_equal(parse("{\n  \"command\": [\"x\",]\n}", &t, &e), -1);
	assert_string_equal(e.code, "invalid_json");
	assert_string_equal(e.field, "");
	assert_contains(e.message, "t1.json");
	assert_contains(e.message, "line");
	assert_contains(e.message, "column");
	assert_contains(e.message, "line 2");
	assert_null(strchr(e.message, '\n'));
	assert_null(t.json);
	task_clear(&t);

	refused("", "invalid_json", "");
	refused("{", "invalid_json", "");
	refused("{\"command\": [\"x\"]} trailing", "invalid_json", "");
	refused("\xEF\xBB\xBF{\"command\": [\"x\"]", "invalid_json", "");
	refused("{\"command\": [\"\xC3\"]}", "invalid_json", ""); /* not UTF-8 */
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	refused("{\"command\": [\"a\"], \"command\": [\"b\"]}", "invalid_json", "");
	refused("{\"command\": [\"a\"], \"meta\": {\"k\": 1, \"k\": 2}}", "invalid_json", "");
}

static void test_non_object_top_level(void **state)
{
	(void)state;
	INVALID("[\"echo\", \"hi\"]", "");
	INVALID("[]", "");
	/* Scalars are refused too, whichever code they get. */
	const char *scalars[] = { "\"echo hi\"", "42", "null", "true" };
	for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++) {
		struct task t;
		struct task_error e;
		assert_int_equal(parse(scalars[i], &t, &e), -1);
		assert_true(!strcmp(e.code, "invalid_json") || !strcmp(e.code, "invalid_task"));
		task_clear(&t);
	}
}

static void test_unknown_field(void **state)
{
	(void)state;
	INVALID("{\"command\": [\"x\"], \"bogus\": 1}", "bogus");
	INVALID("{\"command\": [\"x\"], \"Command\": [\"y\"]}", "Command");
	INVALID("{\"command\": [\"x\"], \"timeout_s\": 5}", "timeout_s");
	INVALID("{\"command\": [\"x\"], \"\": 5}", "");
}

static void test_json_kept_on_validation_error(void **state)
{
	(void)state;
	struct task t;
	struct task_error e;
	assert_int_equal(parse("{\"command\": 5, \"meta\": \"m\"}", &t, &e), -1);
	assert_non_null(t.json);
	assert_string_equal(json_string_value(json_object_get(t.json, "meta")), "m");
	task_clear(&t);
	assert_null(t.json);
}

/* --- field types ------------------------------------------------------ */

static void test_command_types(void **state)
{
	(void)state;
	INVALID("{}", "command");
	INVALID("{\"command\": null}", "command");
	INVALID("{\"command\": 5}", "command");
	INVALID("{\"command\": true}", "command");
	INVALID("{\"command\": {\"a\": \"b\"}}", "command");
	INVALID("{\"command\": [\"x\", 1]}", "command");
	INVALID("{\"command\": [\"x\", null]}", "command");
	INVALID("{\"command\": [[\"x\"]]}", "command");
	INVALID("{\"command\": []}", "command");
	INVALID("{\"command\": \"\"}", "command");
	INVALID("{\"command\": [\"\"]}", "command");
}

static void test_command_embedded_nul(void **state)
{
	(void)state;
	INVALID("{\"command\": [\"ec\\u0000ho\"]}", "command");
	INVALID("{\"command\": [\"echo\", \"a\\u0000b\"]}", "command");
	INVALID("{\"command\": \"echo hi\\u0000; rm -rf /\"}", "command");
	INVALID("{\"command\": [\"\\u0000\"]}", "command");
}

static void test_cwd_types(void **state)
{
	(void)state;
	INVALID("{\"command\": [\"x\"], \"cwd\": 1}", "cwd");
	INVALID("{\"command\": [\"x\"], \"cwd\": null}", "cwd");
	INVALID("{\"command\": [\"x\"], \"cwd\": [\"/tmp\"]}", "cwd");
	INVALID("{\"command\": [\"x\"], \"cwd\": \"\"}", "cwd");
	INVALID("{\"command\": [\"x\"], \"cwd\": \"/tmp\\u0000/x\"}", "cwd");
}

static void test_env(void **state)
{
	(void)state;
	struct task t;
	ok("{\"command\": [\"x\"], \"env\": {\"GONE\": null}}", &t);
	assert_int_equal(t.env_count, 1);
	assert_string_equal(t.env[0].name, "GONE");
	assert_null(t.env[0].value);
	task_clear(&t);
	ok("{\"command\": [\"x\"], \"env\": {\"E\": \"\"}}", &t);
	assert_int_equal(t.env_count, 1);
	assert_string_equal(t.env[0].value, "");
	task_clear(&t);
	ok("{\"command\": [\"x\"], \"env\": {}}", &t);
	assert_int_equal(t.env_count, 0);
	task_clear(&t);
	ok("{\"command\": [\"x\"], \"env\": {\"V\": \"a=b=c\"}}", &t);
	assert_string_equal(t.env[0].value, "a=b=c");
	task_clear(&t);
}

static void test_env_types(void **state)
{
	(void)state;
	INVALID("{\"command\": [\"x\"], \"env\": [\"A=1\"]}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": \"A=1\"}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": null}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"A\": 1}}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"A\": true}}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"A\": [\"1\"]}}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"A\": {}}}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"A\": \"1\\u00002\"}}", "env");
}

static void test_env_names(void **state)
{
	(void)state;
	INVALID("{\"command\": [\"x\"], \"env\": {\"A=B\": \"1\"}}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"=\": \"1\"}}", "env");
	INVALID("{\"command\": [\"x\"], \"env\": {\"\": \"1\"}}", "env");
	/* jansson itself refuses NUL in object keys: refused either way. */
	struct task t;
	struct task_error e;
	assert_int_equal(parse("{\"command\": [\"x\"], \"env\": {\"A\\u0000B\": \"1\"}}", &t, &e), -1);
	task_clear(&t);
}

static void test_stdin_types(void **state)
{
	(void)state;
	struct task t;
	ok("{\"command\": [\"x\"], \"stdin\": \"\"}", &t);
	assert_non_null(t.stdin_data);
	assert_int_equal(t.stdin_len, 0);
	task_clear(&t);
	INVALID("{\"command\": [\"x\"], \"stdin\": 1}", "stdin");
	INVALID("{\"command\": [\"x\"], \"stdin\": null}", "stdin");
	INVALID("{\"command\": [\"x\"], \"stdin\": [\"a\"]}", "stdin");
	INVALID("{\"command\": [\"x\"], \"stdin\": {\"a\": \"b\"}}", "stdin");
}

static void test_seconds_fields(void **state)
{
	(void)state;
	const char *fields[] = { "timeout", "kill_grace" };
	for (size_t i = 0; i < 2; i++) {
		const char *f = fields[i];
		char buf[128];
		struct task t;
		const char *good[] = { "0", "0.5", "1", "60", "0.001", "86400" };
		const double goodv[] = { 0, 0.5, 1, 60, 0.001, 86400 };
		for (size_t j = 0; j < sizeof good / sizeof *good; j++) {
			snprintf(buf, sizeof buf, "{\"command\": [\"x\"], \"%s\": %s}", f, good[j]);
			ok(buf, &t);
			assert_true((i == 0 ? t.timeout : t.kill_grace) == goodv[j]);
			task_clear(&t);
		}
		const char *bad[] = { "-1", "-0.5", "1e300", "\"5\"", "null", "true", "[1]", "{}" };
		for (size_t j = 0; j < sizeof bad / sizeof *bad; j++) {
			snprintf(buf, sizeof buf, "{\"command\": [\"x\"], \"%s\": %s}", f, bad[j]);
			INVALID(buf, f);
		}
	}
}

static void test_priority(void **state)
{
	(void)state;
	struct task t;
	ok("{\"command\": [\"x\"], \"priority\": 1000000000}", &t);
	assert_int_equal(t.priority, 1000000000);
	task_clear(&t);
	ok("{\"command\": [\"x\"], \"priority\": -1000000000}", &t);
	assert_true(t.priority == -1000000000);
	task_clear(&t);
	ok("{\"command\": [\"x\"], \"priority\": 0}", &t);
	assert_int_equal(t.priority, 0);
	task_clear(&t);
	INVALID("{\"command\": [\"x\"], \"priority\": 1000000001}", "priority");
	INVALID("{\"command\": [\"x\"], \"priority\": -1000000001}", "priority");
	INVALID("{\"command\": [\"x\"], \"priority\": 9223372036854775807}", "priority");
	INVALID("{\"command\": [\"x\"], \"priority\": 1.5}", "priority");
	INVALID("{\"command\": [\"x\"], \"priority\": \"1\"}", "priority");
	INVALID("{\"command\": [\"x\"], \"priority\": null}", "priority");
	INVALID("{\"command\": [\"x\"], \"priority\": true}", "priority");
}

/* The buffer is taken by length, not up to a NUL. */
static void test_buffer_length_respected(void **state)
{
	(void)state;
	const char buf[] = "{\"command\": [\"x\"]}GARBAGE";
	struct task t;
	struct task_error e;
	assert_int_equal(task_parse(buf, LIT_LEN(buf) - 7, "t.json", &dflt, &t, &e), 0);
	task_clear(&t);
}

/* "slurm": refused unless the executor is slurm, then validated strictly. */
static void test_slurm_field(void **state)
{
	(void)state;
	INVALID("{\"command\":\"true\",\"slurm\":{}}", "slurm");
	struct task_defaults d = dflt;
	d.slurm_allowed = true;
	struct task t;
	struct task_error e;
	const char *good = "{\"command\":\"true\",\"slurm\":{\"cpus_per_task\":2,\"args\":[\"-x\"]}}";
	assert_int_equal(task_parse(good, strlen(good), "t1.json", &d, &t, &e), 0);
	assert_true(t.slurm.present);
	assert_int_equal(t.slurm.cpus_per_task, 2);
	assert_string_equal(t.slurm.args[0], "-x");
	task_clear(&t);
	const char *bad = "{\"command\":\"true\",\"slurm\":{\"mem_mb\":0}}";
	assert_int_equal(task_parse(bad, strlen(bad), "t1.json", &d, &t, &e), -1);
	assert_string_equal(e.code, "invalid_task");
	assert_string_equal(e.field, "slurm.mem_mb");
	assert_contains(e.message, "t1.json: field \"slurm.mem_mb\": must be");
	task_clear(&t);
	ok("{\"command\":\"true\"}", &t); /* absent: a local-style task */
	assert_false(t.slurm.present);
	task_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_all_fields),
		cmocka_unit_test(test_array_command),
		cmocka_unit_test(test_string_command),
		cmocka_unit_test(test_default_id_from_file_name),
		cmocka_unit_test(test_default_id_invalid_file_name),
		cmocka_unit_test(test_defaults_applied),
		cmocka_unit_test(test_meta_any_type),
		cmocka_unit_test(test_format_one),
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_id_field_rules),
		cmocka_unit_test(test_id_from_filename),
		cmocka_unit_test(test_id_from_filename_always_valid),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_non_object_top_level),
		cmocka_unit_test(test_unknown_field),
		cmocka_unit_test(test_json_kept_on_validation_error),
		cmocka_unit_test(test_command_types),
		cmocka_unit_test(test_command_embedded_nul),
		cmocka_unit_test(test_cwd_types),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_env_types),
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_stdin_types),
		cmocka_unit_test(test_seconds_fields),
		cmocka_unit_test(test_priority),
		cmocka_unit_test(test_buffer_length_respected),
		cmocka_unit_test(test_slurm_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

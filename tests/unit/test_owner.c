/* owner: allowed_owners, run_as_owner and the decision for a file's owner. */
#include "testutil.h"

#include <pwd.h>
#include <sys/wait.h>

#include "config.h"
#include "owner.h"

#define NOBODY ((uid_t)65534)
#define STRANGER ((uid_t)54321) /* no passwd entry on the test machine */

static void cfg_with(struct config *c, const char *allowed)
{
	config_defaults(c);
	free(c->allowed_owners);
	c->allowed_owners = allowed ? strdup(allowed) : NULL;
	if (allowed)
		assert_non_null(c->allowed_owners);
}

static bool has_uid(const struct owner_policy *p, uid_t uid)
{
	for (size_t i = 0; i < p->nallowed; i++)
		if (p->allowed[i] == uid)
			return true;
	return false;
}

/* --- owner_policy_init -------------------------------------------------- */

static void test_init_resolves_names_and_uids(void **state)
{
	(void)state;
	struct config c;
	cfg_with(&c, "root, 65534");
	struct owner_policy p;
	char err[256] = "";
	assert_int_equal(owner_policy_init(&p, &c, err, sizeof err), 0);
	assert_int_equal(p.self, geteuid());
	assert_int_equal(p.nallowed, 2);
	assert_int_equal(p.allowed[0], 0);
	assert_int_equal(p.allowed[1], NOBODY);
	assert_false(p.run_as_owner);
	owner_policy_clear(&p);
	owner_policy_clear(&p); /* twice is harmless */
	config_clear(&c);

	cfg_with(&c, "  nobody\t1000,,root  ");
	assert_int_equal(owner_policy_init(&p, &c, err, sizeof err), 0);
	assert_int_equal(p.nallowed, 3);
	assert_true(has_uid(&p, NOBODY));
	assert_true(has_uid(&p, 1000));
	assert_true(has_uid(&p, 0));
	owner_policy_clear(&p);
	config_clear(&c);
}

static void test_init_without_list(void **state)
{
	(void)state;
	struct config c;
	cfg_with(&c, NULL);
	struct owner_policy p;
	char err[256] = "";
	assert_int_equal(owner_policy_init(&p, &c, err, sizeof err), 0);
	assert_int_equal(p.nallowed, 0);
	owner_policy_clear(&p);
	config_clear(&c);
}

static void test_init_unknown_user(void **state)
{
	(void)state;
	struct config c;
	cfg_with(&c, "root, no-such-user-spoolrun, 65534");
	struct owner_policy p;
	char err[256] = "";
	assert_int_equal(owner_policy_init(&p, &c, err, sizeof err), -1);
	assert_contains(err, "[spool] allowed_owners");
	assert_contains(err, "no-such-user-spoolrun");
	assert_null(strchr(err, '\n'));
	assert_null(p.allowed); /* nothing left to free */
	assert_int_equal(p.nallowed, 0);
	config_clear(&c);

	/* A negative number is not a uid (and no user is called that). */
	cfg_with(&c, "-1");
	assert_int_equal(owner_policy_init(&p, &c, err, sizeof err), -1);
	assert_contains(err, "[spool] allowed_owners");
	owner_policy_clear(&p);
	config_clear(&c);
}

/* owner_policy_init with run_as_owner, as the current user: 0 or -1, and
 * whether the message names the key. */
static int init_run_as_owner(bool *names_key)
{
	struct config c;
	cfg_with(&c, "65534");
	c.run_as_owner = true;
	c.allow_root_tasks = true;
	struct owner_policy p;
	char err[256] = "";
	int rc = owner_policy_init(&p, &c, err, sizeof err);
	*names_key = strstr(err, "[spool] run_as_owner") != NULL;
	if (rc == 0) {
		*names_key = p.run_as_owner && p.allow_root && p.self == 0 && p.nallowed == 1;
	}
	owner_policy_clear(&p);
	config_clear(&c);
	return rc;
}

/* run_as_owner needs root. Run as root (as the test machine does), both
 * sides are checked: the init succeeds here, and fails in a child that
 * gave up root for nobody. (No skip(): tests/run.sh counts "not ok # SKIP"
 * as a failure.) */
static void test_run_as_owner_needs_root(void **state)
{
	(void)state;
	bool named;
	if (geteuid() != 0) {
		assert_int_equal(init_run_as_owner(&named), -1);
		assert_true(named);
		return;
	}
	assert_int_equal(init_run_as_owner(&named), 0);
	assert_true(named); /* the policy fields were set */
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		bool n = false;
		int rc = init_run_as_owner(&n);
		_exit(rc == -1 && n ? 0 : rc == 0 ? 11 : 12);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		print_error("as uid 65534: status %d (11: accepted, 12: message without the key)\n",
			    WEXITSTATUS(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- owner_check -------------------------------------------------------- */

/* A policy built by hand, so the checks do not depend on running as root. */
static void policy(struct owner_policy *p, uid_t *allowed, size_t n, bool as_owner,
		   bool allow_root)
{
	memset(p, 0, sizeof *p);
	p->self = geteuid();
	p->allowed = allowed;
	p->nallowed = n;
	p->run_as_owner = as_owner;
	p->allow_root = allow_root;
}

static void test_check_own_uid(void **state)
{
	(void)state;
	struct owner_policy p;
	policy(&p, NULL, 0, false, false);
	struct identity who;
	memset(&who, 0, sizeof who);
	bool as_user = true;
	char why[512] = "";
	assert_int_equal(owner_check(&p, geteuid(), &who, &as_user, why, sizeof why), 0);
	assert_false(as_user);
}

static void test_check_other_uid_refused(void **state)
{
	(void)state;
	uid_t other = geteuid() == NOBODY ? 0 : NOBODY;
	struct owner_policy p;
	policy(&p, NULL, 0, false, false);
	struct identity who;
	bool as_user = true;
	char why[512] = "";
	assert_int_equal(owner_check(&p, other, &who, &as_user, why, sizeof why), -1);
	assert_false(as_user);
	assert_contains(why, "allowed_owners");
	char uidtext[32];
	snprintf(uidtext, sizeof uidtext, "uid %u", (unsigned)other);
	assert_contains(why, uidtext);

	/* An owner without a passwd entry is named by uid. */
	assert_int_equal(owner_check(&p, STRANGER, &who, &as_user, why, sizeof why), -1);
	assert_contains(why, "54321");
	assert_contains(why, "allowed_owners");
}

static void test_check_allowed_uid(void **state)
{
	(void)state;
	uid_t allowed[] = { 1000, NOBODY };
	struct owner_policy p;
	policy(&p, allowed, 2, false, false);
	struct identity who;
	bool as_user = true;
	char why[512] = "";
	assert_int_equal(owner_check(&p, NOBODY, &who, &as_user, why, sizeof why), 0);
	assert_false(as_user);
	assert_int_equal(owner_check(&p, 1000, &who, &as_user, why, sizeof why), 0);
	assert_false(as_user);
	if (geteuid() != 1001)
		assert_int_equal(owner_check(&p, 1001, &who, &as_user, why, sizeof why), -1);
}

static void test_check_root_with_run_as_owner(void **state)
{
	(void)state;
	uid_t allowed[] = { 0 };
	struct owner_policy p;
	policy(&p, allowed, 1, true, false);
	struct identity who;
	memset(&who, 0, sizeof who);
	bool as_user = true;
	char why[512] = "";
	assert_int_equal(owner_check(&p, 0, &who, &as_user, why, sizeof why), -1);
	assert_false(as_user);
	assert_contains(why, "allow_root_tasks");

	p.allow_root = true;
	assert_int_equal(owner_check(&p, 0, &who, &as_user, why, sizeof why), 0);
	assert_true(as_user);
	assert_int_equal(who.uid, 0);
	assert_int_equal(who.gid, 0);
	assert_true(who.ngroups >= 1);
	identity_clear(&who);
	assert_null(who.groups);
}

static void test_check_nobody_identity(void **state)
{
	(void)state;
	struct passwd *pw = getpwuid(NOBODY);
	if (!pw)
		return; /* no such user here: nothing to check */
	gid_t pw_gid = pw->pw_gid;
	uid_t allowed[] = { NOBODY };
	struct owner_policy p;
	policy(&p, allowed, 1, true, false);
	struct identity who;
	memset(&who, 0, sizeof who);
	bool as_user = false;
	char why[512] = "";
	int rc = owner_check(&p, NOBODY, &who, &as_user, why, sizeof why);
	if (rc != 0)
		print_error("refused: %s\n", why);
	assert_int_equal(rc, 0);
	assert_true(as_user);
	assert_int_equal(who.uid, NOBODY);
	assert_int_equal(who.gid, pw_gid);
	assert_non_null(who.groups);
	assert_true(who.ngroups >= 1);
	bool primary = false;
	for (int i = 0; i < who.ngroups; i++)
		primary |= who.groups[i] == pw_gid;
	assert_true(primary);
	identity_clear(&who);
	assert_null(who.groups);
	identity_clear(&who); /* twice is harmless */
}

static void test_check_no_passwd_entry_with_run_as_owner(void **state)
{
	(void)state;
	if (getpwuid(STRANGER))
		return; /* the uid exists here: nothing to check */
	uid_t allowed[] = { STRANGER };
	struct owner_policy p;
	policy(&p, allowed, 1, true, false);
	struct identity who;
	memset(&who, 0, sizeof who);
	bool as_user = true;
	char why[512] = "";
	assert_int_equal(owner_check(&p, STRANGER, &who, &as_user, why, sizeof why), -1);
	assert_false(as_user);
	assert_contains(why, "54321");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_resolves_names_and_uids),
		cmocka_unit_test(test_init_without_list),
		cmocka_unit_test(test_init_unknown_user),
		cmocka_unit_test(test_run_as_owner_needs_root),
		cmocka_unit_test(test_check_own_uid),
		cmocka_unit_test(test_check_other_uid_refused),
		cmocka_unit_test(test_check_allowed_uid),
		cmocka_unit_test(test_check_root_with_run_as_owner),
		cmocka_unit_test(test_check_nobody_identity),
		cmocka_unit_test(test_check_no_passwd_entry_with_run_as_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

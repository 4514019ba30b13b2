#define _GNU_SOURCE
#include "owner.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int add_owner(struct owner_policy *p, const char *tok, const struct config *c,
		     char *err, size_t errlen)
{
	uid_t uid;
	char *end;
	errno = 0;
	unsigned long v = strtoul(tok, &end, 10);
	if (isdigit((unsigned char)*tok) && !*end && !errno && v < (unsigned long)(uid_t)-1)
		uid = (uid_t)v;
	else {
		struct passwd *pw = getpwnam(tok);
		if (!pw) {
			snprintf(err, errlen, "%s: [spool] allowed_owners: no such user \"%s\"",
				 c->path ? c->path : "config", tok);
			return -1;
		}
		uid = pw->pw_uid;
	}
	uid_t *grown = realloc(p->allowed, (p->nallowed + 1) * sizeof *grown);
	if (!grown) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->allowed = grown;
	p->allowed[p->nallowed++] = uid;
	return 0;
}

int owner_policy_init(struct owner_policy *p, const struct config *c, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->self = geteuid();
	p->run_as_owner = c->run_as_owner;
	p->allow_root = c->allow_root_tasks;
	if (p->run_as_owner && p->self != 0) {
		snprintf(err, errlen, "%s: [spool] run_as_owner: needs the runner to run as root",
			 c->path ? c->path : "config");
		return -1;
	}
	if (!c->allowed_owners)
		return 0;
	char *list = strdup(c->allowed_owners), *save = NULL;
	if (!list) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	for (char *tok = strtok_r(list, ", \t", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ", \t", &save))
		rc = add_owner(p, tok, c, err, errlen);
	free(list);
	if (rc < 0)
		owner_policy_clear(p);
	return rc;
}

void owner_policy_clear(struct owner_policy *p)
{
	free(p->allowed);
	p->allowed = NULL;
	p->nallowed = 0;
}

/* getpwuid and getgrouplist here, in the parent: the child of a fork may
 * only make async-signal-safe calls, which initgroups() is not. */
static int resolve_identity(uid_t uid, struct identity *who, char *why, size_t whylen)
{
	struct passwd *pw = getpwuid(uid);
	if (!pw) {
		snprintf(why, whylen, "is owned by uid %u, which has no user entry to run it as",
			 (unsigned)uid);
		return -1;
	}
	int n = 32;
	gid_t *groups = NULL;
	for (;;) {
		gid_t *g = realloc(groups, (size_t)n * sizeof *g);
		if (!g) {
			free(groups);
			snprintf(why, whylen, "out of memory resolving the groups of %s", pw->pw_name);
			return -1;
		}
		groups = g;
		int want = n;
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &want) >= 0) {
			n = want;
			break;
		}
		n = want > n ? want : n * 2;
	}
	*who = (struct identity){ pw->pw_uid, pw->pw_gid, groups, n };
	return 0;
}

int owner_check(const struct owner_policy *p, uid_t uid, struct identity *who, bool *as_user,
		char *why, size_t whylen)
{
	*as_user = false;
	bool allowed = uid == p->self;
	for (size_t i = 0; i < p->nallowed && !allowed; i++)
		allowed = p->allowed[i] == uid;
	if (!allowed) {
		struct passwd *pw = getpwuid(uid);
		snprintf(why, whylen,
			 "is owned by %s (uid %u), not by the runner's user; list the owner in "
			 "[spool] allowed_owners to accept it",
			 pw ? pw->pw_name : "an unknown user", (unsigned)uid);
		return -1;
	}
	if (!p->run_as_owner)
		return 0;
	if (uid == 0 && !p->allow_root) {
		snprintf(why, whylen, "is owned by root; set [spool] allow_root_tasks = yes to run "
				      "root-owned tasks");
		return -1;
	}
	if (resolve_identity(uid, who, why, whylen) < 0)
		return -1;
	*as_user = true;
	return 0;
}

void identity_clear(struct identity *who)
{
	free(who->groups);
	who->groups = NULL;
}

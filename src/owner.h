/* owner: who may submit tasks, and who a task runs as.
 *
 * A task file owned by another user than the runner's is refused unless
 * [spool] allowed_owners lists that user: on a shared spool, the owner of
 * a file is the only identity the runner can trust. A runner started as
 * root with [spool] run_as_owner = yes runs each task as its file's owner
 * (groups, gid, then uid, in the child), and root-owned tasks only with
 * [spool] allow_root_tasks = yes. */
#ifndef SPOOLRUN_OWNER_H
#define SPOOLRUN_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "spawn.h"

struct owner_policy {
	uid_t self;           /* the runner's effective uid */
	uid_t *allowed;       /* from allowed_owners */
	size_t nallowed;
	bool run_as_owner;
	bool allow_root;
};

/* Resolves allowed_owners (names or numeric uids, separated by commas or
 * spaces). -1 with a message naming the config key for an unknown user, or
 * for run_as_owner without root. */
int owner_policy_init(struct owner_policy *p, const struct config *c, char *err, size_t errlen);
void owner_policy_clear(struct owner_policy *p);

/* Decides for a file owned by uid. 0: accepted; *as_user says whether it
 * runs as *who (then release it with identity_clear). -1: refused, with a
 * reason in why. */
int owner_check(const struct owner_policy *p, uid_t uid, struct identity *who, bool *as_user,
		char *why, size_t whylen);

void identity_clear(struct identity *who);

#endif

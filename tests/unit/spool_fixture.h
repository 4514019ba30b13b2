/* spool_fixture: a fresh spool in a temporary directory for each test, for
 * the unit tests of spool.c (fsync and permission checks off). */
#ifndef SPOOL_FIXTURE_H
#define SPOOL_FIXTURE_H

#include "testutil.h"

#include "spool.h"

struct fixture {
	char *dir;
	struct config cfg;
	struct spool s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->dir = tu_mkdtemp();
	config_defaults(&f->cfg);
	f->cfg.fsync = false;
	f->cfg.check_perms = false;
	char err[512];
	if (spool_open(&f->s, &f->cfg, f->dir, err, sizeof err) < 0) {
		print_error("%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	spool_close(&f->s);
	config_clear(&f->cfg);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

#endif

/* clean: retention of finished results (`spoolrun clean`, [spool] keep_results).
 *
 * Removes results/ID.json files finished before a cutoff (optionally only
 * some statuses), each with what belongs to it alone: its logs
 * (logs/ID.stdout, logs/ID.stderr, as the result names them) and the
 * original of a rejected task (rejected/NAME). The result itself goes
 * last, so while anything of a task is left its id stays taken and no new
 * task of that id can start and write logs of the same name. Only
 * results are read: nothing in incoming/, active/ or deferred/ is touched,
 * and a result whose task file is still in active/ (published a moment
 * ago, bookkeeping not done) is skipped. Results of a duplicate (ID@N.json)
 * have no logs of their own; only the result and the rejected copy go.
 *
 * For each removed ID.json an empty marker cleaned/ID is left (its mtime
 * is the time of the clean), so `spoolrun wait ID` can say the result was
 * removed instead of waiting forever; markers follow the same retention,
 * and a new result of that id removes its marker. */
#ifndef SPOOLRUN_CLEAN_H
#define SPOOLRUN_CLEAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct clean_filter {
	int64_t cutoff_ms;             /* results finished before this go */
	const char *const *statuses;   /* only these statuses; none: every status */
	size_t nstatuses;
};

/* What was (or, dry, would be) removed for one result. */
struct clean_item {
	const char *result_name;  /* in results/ */
	const char *id;
	const char *status;
	int64_t finished_ms;
	const char *files[4];     /* absolute paths, the result's last */
	size_t nfiles;
};

/* The pure decision: whether a result with status that finished at
 * finished_ms is selected. */
bool clean_selects(const struct clean_filter *f, const char *status, int64_t finished_ms);

/* "2026-11-24T05:32:56.123Z" (fraction optional, Z or +hh:mm) to epoch
 * ms; -1 when it is not such a time. */
int clean_parse_time(const char *s, int64_t *ms);

/* Removes (dry: only lists) every selected result; calls fn for each.
 * Returns how many were selected, or -1 with errno when results/ cannot
 * be listed. Problems with single files are logged and skipped. */
long clean_run(struct spool *s, const struct clean_filter *f, bool dry,
	       void (*fn)(void *ctx, const struct clean_item *item), void *ctx);

/* When cleaned/ID was left by a clean: 0 and *when_ms, -1 when not. */
int clean_marker(struct spool *s, const char *id, int64_t *when_ms);

/* For a client waiting for id: when a clean removed its result, says so
 * on stderr ("spoolrun CMD: ID: its result was removed by spoolrun clean
 * at TIME") and returns true. */
bool clean_said_removed(struct spool *s, const char *id, const char *cmd);

/* A result of id was just published: its marker goes. */
void clean_forget(struct spool *s, const char *id);

/* `spoolrun clean [--older-than D] [--status S]... [--dry-run] [--json]`. */
int clean_command(int argc, char **argv);

#endif

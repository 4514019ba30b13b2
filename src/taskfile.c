#define _GNU_SOURCE
#include "taskfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "spool.h"

static enum taskfile_stage refuse(struct taskfile *tf, enum taskfile_stage stage,
				  const char *code)
{
	tf->stage = stage;
	snprintf(tf->error.code, sizeof tf->error.code, "%s", code);
	return stage;
}

/* name -> parse -> id, once the bytes are read. */
static enum taskfile_stage check_and_parse(struct taskfile *tf, const char *buf, size_t len,
					   const struct config *cfg)
{
	size_t n = strlen(tf->name);
	if (n > SPOOL_TASK_NAME_MAX) {
		/* Parsed all the same, for the id the rejection goes under. */
		tf->task.json = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
		snprintf(tf->error.message, sizeof tf->error.message,
			 "%.40s...: the file name is %zu bytes; task file names are at most %d "
			 "bytes, so that the names the spool derives from them fit", tf->name, n,
			 SPOOL_TASK_NAME_MAX);
		return refuse(tf, TASKFILE_BAD_NAME, "invalid_file");
	}
	if (task_parse(buf, len, tf->name, &cfg->task, &tf->task, &tf->error) < 0)
		return tf->stage = TASKFILE_INVALID;
	memcpy(tf->id, tf->task.id, sizeof tf->id);
	return tf->stage = TASKFILE_OK;
}

static void begin(struct taskfile *tf, const char *name)
{
	memset(tf, 0, sizeof *tf);
	snprintf(tf->name, sizeof tf->name, "%s", name);
	task_id_from_filename(tf->name, tf->id);
}

static enum taskfile_stage finish(struct taskfile *tf, char *buf, size_t len,
				  const struct config *cfg)
{
	if (tf->stage == TASKFILE_OK)
		check_and_parse(tf, buf, len, cfg);
	if (tf->stage != TASKFILE_OK && buf && !tf->task.json)
		tf->task.json = json_loadb(buf, len, JSON_ALLOW_NUL, NULL); /* for its id */
	free(buf);
	if (tf->stage != TASKFILE_OK)
		task_id_of_file(tf->task.json, tf->name, tf->id);
	return tf->stage;
}

enum taskfile_stage taskfile_load_at(struct taskfile *tf, int dirfd, const char *name,
				     const struct config *cfg, const struct owner_policy *owners)
{
	char *buf = NULL, why[400];
	size_t len = 0;
	begin(tf, name);
	if (spool_read_task(dirfd, name, cfg->max_task_bytes, true, &buf, &len, &tf->st,
			    tf->error.message, sizeof tf->error.message) < 0) {
		if (fstatat(dirfd, name, &tf->st, AT_SYMLINK_NOFOLLOW) < 0)
			memset(&tf->st, 0, sizeof tf->st);
		refuse(tf, TASKFILE_UNREADABLE, "invalid_file");
	} else if (owners && owner_check(owners, tf->st.st_uid, &tf->user, &tf->as_user, why,
					 sizeof why) < 0) {
		snprintf(tf->error.message, sizeof tf->error.message, "%s: %s", name, why);
		refuse(tf, TASKFILE_BAD_OWNER, "invalid_owner");
	}
	return finish(tf, buf, len, cfg);
}

static const char *kind_of(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
	     : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

/* Reads a path the user named, as cat would: followed, and a FIFO is read
 * (`spoolrun exec <(make-task)` is documented); a directory or a device is
 * refused with its kind rather than read as nothing. */
static int read_user_path(const char *path, size_t max, char **buf, size_t *len,
			  struct stat *st, char *why, size_t whylen)
{
	bool is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = -1;
	if (fd < 0)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (fstat(fd, st) < 0)
		snprintf(why, whylen, "cannot stat: %s", strerror(errno));
	else if (!is_stdin && !S_ISREG(st->st_mode) && !S_ISFIFO(st->st_mode))
		snprintf(why, whylen, "is %s, not a task file", kind_of(st->st_mode));
	else if (read_fd_bounded(fd, max, buf, len) < 0)
		snprintf(why, whylen, "%s", errno == EFBIG ? "larger than max_task_bytes"
							  : strerror(errno));
	else
		rc = 0;
	if (fd >= 0 && !is_stdin)
		close(fd);
	return rc;
}

enum taskfile_stage taskfile_load_path(struct taskfile *tf, const char *path,
				       const struct config *cfg)
{
	char *copy = strdup(path), *buf = NULL;
	size_t len = 0;
	begin(tf, strcmp(path, "-") && copy ? basename(copy) : "stdin");
	free(copy);
	if (read_user_path(path, cfg->max_task_bytes, &buf, &len, &tf->st, tf->error.message,
			   sizeof tf->error.message) < 0)
		refuse(tf, TASKFILE_UNREADABLE, "invalid_file");
	return finish(tf, buf, len, cfg);
}

json_t *taskfile_rejection(const struct taskfile *tf, const struct result_context *ctx,
			   const char *kept_as)
{
	return result_rejected(tf->id, &tf->error, tf->task.json, ctx, kept_as);
}

void taskfile_clear(struct taskfile *tf)
{
	task_clear(&tf->task);
	if (tf->as_user)
		identity_clear(&tf->user);
	memset(tf, 0, sizeof *tf);
}

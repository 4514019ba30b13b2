#define _GNU_SOURCE
#include "slurm.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

/* Room above timeout + kill grace for the node to start spoolrun, read the
 * task, write logs and the result on a shared file system. */
#define SLURM_TIME_MARGIN_S 60
#define SLURM_MAX_CPUS 1000000
#define SLURM_MAX_MEM_MB (UINT64_C(1) << 40)
#define SLURM_MAX_TIME_S (UINT64_C(10) * 365 * 24 * 3600)

void slurm_config_defaults(struct slurm_config *c)
{
	memset(c, 0, sizeof *c);
	c->poll_interval = 2;
	c->sbatch = strdup("sbatch");
	c->squeue = strdup("squeue");
	c->scontrol = strdup("scontrol");
	c->scancel = strdup("scancel");
	c->sacct = strdup("sacct");
}

static void free_words(char **w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

void slurm_config_clear(struct slurm_config *c)
{
	free(c->partition);
	free_words(c->args, c->n_args);
	free(c->sbatch);
	free(c->squeue);
	free(c->scontrol);
	free(c->scancel);
	free(c->sacct);
	memset(c, 0, sizeof *c);
}

static int dup_or_null(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
}

int slurm_config_copy(struct slurm_config *dst, const struct slurm_config *src)
{
	memset(dst, 0, sizeof *dst);
	dst->poll_interval = src->poll_interval;
	if (dup_or_null(&dst->partition, src->partition) < 0 || dup_or_null(&dst->sbatch, src->sbatch) < 0 ||
	    dup_or_null(&dst->squeue, src->squeue) < 0 || dup_or_null(&dst->scontrol, src->scontrol) < 0 ||
	    dup_or_null(&dst->scancel, src->scancel) < 0 || dup_or_null(&dst->sacct, src->sacct) < 0)
		goto fail;
	if (src->n_args) {
		dst->args = calloc(src->n_args, sizeof *dst->args);
		if (!dst->args)
			goto fail;
		for (; dst->n_args < src->n_args; dst->n_args++)
			if (!(dst->args[dst->n_args] = strdup(src->args[dst->n_args])))
				goto fail;
	}
	return 0;
fail:
	slurm_config_clear(dst);
	errno = ENOMEM;
	return -1;
}

int slurm_split_args(const char *s, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	while (*s) {
		while (*s && isspace((unsigned char)*s))
			s++;
		size_t len = 0;
		while (s[len] && !isspace((unsigned char)s[len]))
			len++;
		if (!len)
			break;
		char **grown = realloc(*out, (*n + 1) * sizeof **out);
		char *word = strndup(s, len);
		if (!grown || !word) {
			free(word);
			free_words(grown ? grown : *out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
		*out = grown;
		(*out)[(*n)++] = word;
		s += len;
	}
	return 0;
}

/* ---- the task field "slurm" ---------------------------------------------- */

static int bad(char *field, size_t fieldlen, char *msg, size_t msglen, const char *name,
	       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int bad(char *field, size_t fieldlen, char *msg, size_t msglen, const char *name,
	       const char *fmt, ...)
{
	snprintf(field, fieldlen, "slurm%s%s", *name ? "." : "", name);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return -1;
}

#define BAD(name, ...) bad(field, fieldlen, msg, msglen, name, __VA_ARGS__)

/* A string Slurm can take as one argument: non-empty, no NUL, no white
 * space or control characters (they would split or corrupt the argument). */
static const char *word_value(const json_t *v)
{
	if (!json_is_string(v) || !json_string_length(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	for (const char *p = json_string_value(v); *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return NULL;
	return json_string_value(v);
}

static int parse_count(json_t *v, uint64_t max, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 || (uint64_t)json_integer_value(v) > max)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_args(json_t *v, struct slurm_request *r, char *field, size_t fieldlen,
		      char *msg, size_t msglen)
{
	if (!json_is_array(v))
		return BAD("args", "must be an array of strings (sbatch arguments)");
	r->args = calloc(json_array_size(v) + 1, sizeof *r->args);
	if (!r->args)
		return BAD("args", "out of memory");
	for (size_t i = 0; i < json_array_size(v); i++) {
		const char *a = json_string_value(json_array_get(v, i));
		if (!a || !*a || strlen(a) != json_string_length(json_array_get(v, i)))
			return BAD("args", "element %zu must be a non-empty string without NUL bytes", i);
		r->args[r->n_args++] = a;
	}
	return 0;
}

int slurm_request_parse(json_t *v, struct slurm_request *r, char *field, size_t fieldlen,
			char *msg, size_t msglen)
{
	memset(r, 0, sizeof *r);
	if (!json_is_object(v))
		return BAD("", "must be an object (partition, cpus_per_task, mem_mb, gres, time_limit_s, args)");
	r->present = true;
	for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
		const char *key = json_object_iter_key(it);
		json_t *val = json_object_iter_value(it);
		uint64_t n;
		if (!strcmp(key, "partition")) {
			if (!(r->partition = word_value(val)))
				return BAD(key, "must be a partition name (a non-empty string without spaces)");
		} else if (!strcmp(key, "gres")) {
			if (!(r->gres = word_value(val)))
				return BAD(key, "must be a generic resource such as \"gpu:1\" (a non-empty string without spaces)");
		} else if (!strcmp(key, "cpus_per_task")) {
			if (parse_count(val, SLURM_MAX_CPUS, &n) < 0)
				return BAD(key, "must be a whole number from 1 to %d", SLURM_MAX_CPUS);
			r->cpus_per_task = (unsigned)n;
		} else if (!strcmp(key, "mem_mb")) {
			if (parse_count(val, SLURM_MAX_MEM_MB, &r->mem_mb) < 0)
				return BAD(key, "must be a whole number of MiB from 1 to %llu",
					   (unsigned long long)SLURM_MAX_MEM_MB);
		} else if (!strcmp(key, "time_limit_s")) {
			if (parse_count(val, SLURM_MAX_TIME_S, &r->time_limit_s) < 0)
				return BAD(key, "must be a whole number of seconds from 1 to %llu",
					   (unsigned long long)SLURM_MAX_TIME_S);
		} else if (!strcmp(key, "args")) {
			if (parse_args(val, r, field, fieldlen, msg, msglen) < 0)
				return -1;
		} else {
			return BAD(key, "unknown field (known: partition, cpus_per_task, mem_mb, gres, time_limit_s, args)");
		}
	}
	return 0;
}

#undef BAD

void slurm_request_clear(struct slurm_request *r)
{
	free(r->args);
	memset(r, 0, sizeof *r);
}

/* ---- sbatch ---------------------------------------------------------------- */

uint64_t slurm_time_limit_s(const struct slurm_request *r, double timeout, double kill_grace)
{
	uint64_t want = r ? r->time_limit_s : 0;
	if (timeout > 0) {
		uint64_t ours = (uint64_t)(timeout + kill_grace) + 1 + SLURM_TIME_MARGIN_S;
		if (ours > want)
			want = ours;
	}
	return want;
}

char *slurm_shell_quote(const char *word)
{
	size_t n = 3;
	for (const char *p = word; *p; p++)
		n += *p == '\'' ? 4 : 1;
	char *q = malloc(n), *o = q;
	if (!q)
		return NULL;
	*o++ = '\'';
	for (const char *p = word; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else
			*o++ = *p;
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

/* "exec 'w0' 'w1' ..." for sbatch --wrap (which runs it with /bin/sh). */
static char *wrap_script(const char *const *argv)
{
	char *script = strdup("exec");
	for (size_t i = 0; script && argv[i]; i++) {
		char *q = slurm_shell_quote(argv[i]), *joined = NULL;
		if (q && asprintf(&joined, "%s %s", script, q) < 0)
			joined = NULL;
		free(q);
		free(script);
		script = joined;
	}
	return script;
}

struct argv_builder {
	char **v;
	size_t n, cap;
	bool failed;
};

static void add(struct argv_builder *b, char *owned)
{
	if (!owned || b->failed) {
		free(owned);
		b->failed = true;
		return;
	}
	char **v = grow(b->v, &b->cap, b->n + 2, sizeof *v, 32);
	if (!v) {
		free(owned);
		b->failed = true;
		return;
	}
	b->v = v;
	b->v[b->n++] = owned;
	b->v[b->n] = NULL;
}

static void addf(struct argv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void addf(struct argv_builder *b, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	add(b, s);
}

char **slurm_sbatch_argv(const struct slurm_config *c, const struct slurm_request *r,
			 const struct slurm_submission *s)
{
	struct argv_builder b = { 0 };
	add(&b, strdup(c->sbatch));
	add(&b, strdup("--parsable"));
	add(&b, strdup("--no-requeue")); /* spoolrun retries, Slurm must not run it twice */
	addf(&b, "--job-name=%s", s->job_name);
	addf(&b, "--output=%s", s->output_path);
	addf(&b, "--error=%s", s->output_path);
	addf(&b, "--chdir=%s", s->workdir);
	const char *partition = r && r->partition ? r->partition : c->partition;
	if (partition)
		addf(&b, "--partition=%s", partition);
	uint64_t limit = slurm_time_limit_s(r, s->timeout, s->kill_grace);
	if (limit)
		addf(&b, "--time=%llu", (unsigned long long)((limit + 59) / 60)); /* minutes */
	if (r && r->cpus_per_task)
		addf(&b, "--cpus-per-task=%u", r->cpus_per_task);
	if (r && r->mem_mb)
		addf(&b, "--mem=%lluM", (unsigned long long)r->mem_mb);
	if (r && r->gres)
		addf(&b, "--gres=%s", r->gres);
	for (size_t i = 0; i < c->n_args; i++)
		add(&b, strdup(c->args[i]));
	for (size_t i = 0; r && i < r->n_args; i++)
		add(&b, strdup(r->args[i]));
	char *script = wrap_script(s->node_argv);
	addf(&b, "--wrap=%s", script ? script : "");
	b.failed |= !script;
	free(script);
	if (b.failed) {
		slurm_argv_free(b.v);
		errno = ENOMEM;
		return NULL;
	}
	return b.v;
}

void slurm_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int slurm_parse_job_id(const char *out, char *id)
{
	while (*out && isspace((unsigned char)*out))
		out++;
	size_t n = 0;
	while (isdigit((unsigned char)out[n]) && n < SLURM_JOB_ID_MAX)
		n++;
	if (!n || (out[n] && out[n] != ';' && !isspace((unsigned char)out[n])))
		return -1;
	memcpy(id, out, n);
	id[n] = '\0';
	return 0;
}

bool slurm_submit_transient(const char *err)
{
	static const char *const transient[] = {
		"Socket timed out", "Unable to contact slurm controller",
		"Slurm temporarily unable", "Resource temporarily unavailable",
		"Connection refused", "Connection timed out", "Zero Bytes were transmitted",
		"Communication connection failure", "Transport endpoint is not connected",
		"slurmctld is not responding", "in standby mode", "Requested operation is presently disabled",
		"Job submit/allocate failed: Resource temporarily",
	};
	for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
		if (strcasestr(err, transient[i]))
			return true;
	return false;
}

/* ---- polls ----------------------------------------------------------------- */

static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Slurm's words for "nothing": a reason "None", a node list "(null)". */
static void blank_nothing(char *s)
{
	if (!strcmp(s, "None") || !strcmp(s, "(null)") || !strcmp(s, "None assigned"))
		*s = '\0';
}

/* Splits one "a|b|c|d" line into the four fields of a job; the last field
 * takes the rest of the line (a reason may hold '|'). */
static bool split_line(const char *line, size_t len, struct slurm_job_info *j)
{
	const char *f[4];
	size_t flen[4];
	const char *p = line, *end = line + len;
	for (int i = 0; i < 4; i++) {
		const char *bar = i < 3 ? memchr(p, '|', (size_t)(end - p)) : NULL;
		if (i < 3 && !bar)
			return false;
		f[i] = p;
		flen[i] = (size_t)((bar ? bar : end) - p);
		p = bar ? bar + 1 : end;
	}
	while (flen[3] && isspace((unsigned char)f[3][flen[3] - 1]))
		flen[3]--;
	memset(j, 0, sizeof *j);
	if (!flen[0] || flen[0] > SLURM_JOB_ID_MAX)
		return false;
	for (size_t i = 0; i < flen[0]; i++)
		if (!isdigit((unsigned char)f[0][i]))
			return false; /* a step (12.batch) or an array element: not ours */
	copy_field(j->job_id, sizeof j->job_id, f[0], flen[0]);
	size_t slen = 0; /* sacct says "CANCELLED by 0": the state is the first word */
	while (slen < flen[1] && f[1][slen] != ' ')
		slen++;
	if (!slen)
		return false;
	copy_field(j->state, sizeof j->state, f[1], slen);
	copy_field(j->node, sizeof j->node, f[2], flen[2]);
	copy_field(j->reason, sizeof j->reason, f[3], flen[3]);
	blank_nothing(j->node);
	blank_nothing(j->reason);
	return true;
}

static size_t parse_lines(const char *text, struct slurm_job_info *out, size_t max)
{
	size_t n = 0;
	while (*text && n < max) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		if (split_line(text, len, &out[n]))
			n++;
		text += len + (nl ? 1 : 0);
	}
	return n;
}

size_t slurm_parse_squeue(const char *text, struct slurm_job_info *out, size_t max)
{
	return parse_lines(text, out, max);
}

size_t slurm_parse_sacct(const char *text, struct slurm_job_info *out, size_t max)
{
	return parse_lines(text, out, max); /* a header line, if any, has no numeric id */
}

/* The value of " KEY=" in one scontrol -o line, up to the next space. */
static void scontrol_value(const char *line, size_t len, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	*out = '\0';
	for (const char *p = line; p + klen <= line + len; p++) {
		if ((p == line || p[-1] == ' ') && !strncmp(p, key, klen)) {
			const char *v = p + klen, *e = v;
			while (e < line + len && *e != ' ' && *e != '\n')
				e++;
			copy_field(out, size, v, (size_t)(e - v));
			return;
		}
	}
}

size_t slurm_parse_scontrol(const char *text, struct slurm_job_info *out, size_t max)
{
	size_t n = 0;
	while (*text && n < max) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		struct slurm_job_info *j = &out[n];
		memset(j, 0, sizeof *j);
		scontrol_value(text, len, "JobId=", j->job_id, sizeof j->job_id);
		scontrol_value(text, len, "JobState=", j->state, sizeof j->state);
		scontrol_value(text, len, "NodeList=", j->node, sizeof j->node);
		scontrol_value(text, len, "Reason=", j->reason, sizeof j->reason);
		blank_nothing(j->node);
		blank_nothing(j->reason);
		bool numeric = *j->job_id != '\0';
		for (const char *p = j->job_id; *p; p++)
			numeric &= isdigit((unsigned char)*p) != 0;
		if (numeric && *j->state)
			n++;
		text += len + (nl ? 1 : 0);
	}
	return n;
}

/* ---- what a state means ------------------------------------------------------ */

enum slurm_phase slurm_state_phase(const char *state)
{
	static const char *const queued[] = {
		"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
		"SUSPENDED", "STOPPED", "CONFIGURING",
	};
	static const char *const ended[] = {
		"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
		"OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT", "VANISHED",
	};
	for (size_t i = 0; i < sizeof queued / sizeof *queued; i++)
		if (!strcmp(state, queued[i]))
			return SLURM_QUEUED;
	for (size_t i = 0; i < sizeof ended / sizeof *ended; i++)
		if (!strcmp(state, ended[i]))
			return SLURM_ENDED;
	return SLURM_RUNNING; /* RUNNING, COMPLETING, SIGNALING, STAGE_OUT, RESIZING, unknown */
}

static const struct {
	const char *state, *status, *code;
	enum slurm_retry_as retry_as;
} ends[] = {
	{ "CANCELLED", "killed", "slurm_cancelled", SLURM_RETRY_AS_SIGNAL },
	{ "NODE_FAIL", "killed", "slurm_node_fail", SLURM_RETRY_AS_SIGNAL },
	{ "PREEMPTED", "killed", "slurm_preempted", SLURM_RETRY_AS_SIGNAL },
	{ "OUT_OF_MEMORY", "killed", "slurm_out_of_memory", SLURM_RETRY_AS_SIGNAL },
	{ "BOOT_FAIL", "killed", "slurm_boot_fail", SLURM_RETRY_AS_SIGNAL },
	{ "TIMEOUT", "killed", "slurm_timeout", SLURM_RETRY_AS_TIMEOUT },
	{ "DEADLINE", "killed", "slurm_deadline", SLURM_RETRY_AS_TIMEOUT },
	{ "REVOKED", "error", "slurm_revoked", SLURM_RETRY_AS_NONE },
	{ "SPECIAL_EXIT", "error", "slurm_special_exit", SLURM_RETRY_AS_NONE },
	{ "VANISHED", "error", "slurm_vanished", SLURM_RETRY_AS_SIGNAL },
};

void slurm_state_end(const char *state, struct slurm_end *e)
{
	for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
		if (!strcmp(state, ends[i].state)) {
			*e = (struct slurm_end){ ends[i].status, ends[i].code, ends[i].retry_as };
			return;
		}
	}
	/* COMPLETED or FAILED, yet no result from node-run: it never ran the task. */
	*e = (struct slurm_end){ "error", "slurm_no_result", SLURM_RETRY_AS_NONE };
}

enum slurm_retry_as slurm_code_retry_as(const char *code)
{
	for (size_t i = 0; i < sizeof ends / sizeof *ends; i++)
		if (!strcmp(code, ends[i].code))
			return ends[i].retry_as;
	return SLURM_RETRY_AS_NONE;
}

void slurm_end_message(const struct slurm_job_info *j, const struct slurm_end *e,
		       char *out, size_t len)
{
	const char *hint = "";
	if (!strcmp(e->code, "slurm_no_result"))
		hint = ": spoolrun node-run left no result; is the spool on a file system the node shares? (the job's own output is in logs/<id>.slurm)";
	else if (!strcmp(e->code, "slurm_vanished"))
		hint = ": the job is known neither to the controller nor to accounting";
	snprintf(out, len, "Slurm job %s ended %s%s%s%s%s%s%s", j->job_id, j->state,
		 *j->reason ? " (reason: " : "", j->reason, *j->reason ? ")" : "",
		 *j->node ? " on node " : "", j->node, hint);
}

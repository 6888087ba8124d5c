/*
 * apply_util.c -- the small helpers the parts of apply share: setting an
 * outcome, and reading the fields of an APPLY's kvlist.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "storage/apply_int.h"

void
apply_fail(struct apply_outcome *out, enum result_code code, const char *fmt,
    ...)
{
	va_list ap;

	out->code = code;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
}

void
apply_storage_error(struct apply_outcome *out, struct shadow *s, int r)
{
	apply_fail(out, RESULT_UNKNOWN, "shadow: %s (%s)", strerror(-r),
	    shadow_errmsg(s));
}

/* Ends a handler whose one change returned r. */
void
apply_changed(struct apply_outcome *out, struct shadow *s, int r)
{
	if (r < 0) {
		apply_storage_error(out, s, r);
		return;
	}
	out->changed = true;
	out->code = RESULT_OK;
}

/* A required string field (NIL refused). */
const char *
apply_req_str(const struct dlist *kv, const char *key)
{
	const char *s;

	if (dlist_get_str(kv, key, &s) < 0)
		return NULL;
	return s;
}

int
apply_req_num(const struct dlist *kv, const char *key, uint64_t *v)
{
	return dlist_get_num(kv, key, v);
}

uint64_t
apply_opt_num(const struct dlist *kv, const char *key)
{
	uint64_t v = 0;

	return dlist_get_num(kv, key, &v) == 0 ? v : 0;
}
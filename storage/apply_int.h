/*
 * apply_int.h -- what the parts of apply (apply.c, apply_meta.c,
 * apply_util.c) share.  apply.c dispatches; apply_meta.c holds the
 * handlers of quota, annotation and sieve APPLYs; apply_util.c the
 * helpers both use.  They call one way: apply.c -> apply_meta.c ->
 * apply_util.c.
 */
#ifndef SR_APPLY_INT_H
#define SR_APPLY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/dlist.h"
#include "protocol/result.h"
#include "storage/apply.h"
#include "storage/shadow.h"

/* Sets out's code and the reason logged with it. */
void apply_fail(struct apply_outcome *out, enum result_code code,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A shadow failure r (a negative errno): NO Unknown error. */
void apply_storage_error(struct apply_outcome *out, struct shadow *s, int r);
/* Ends a handler whose one change returned r. */
void apply_changed(struct apply_outcome *out, struct shadow *s, int r);
/* A required string field of kv (NULL if absent or NIL). */
const char *apply_req_str(const struct dlist *kv, const char *key);
/* A required number field of kv: 0 or a negative errno. */
int apply_req_num(const struct dlist *kv, const char *key, uint64_t *v);
/* An optional number field of kv, 0 if absent. */
uint64_t apply_opt_num(const struct dlist *kv, const char *key);

/* APPLY QUOTA (set) and UNQUOTA. */
void apply_quota(struct shadow *s, const struct dlist *e, bool set,
    struct apply_outcome *out);
/* APPLY ANNOTATION (set) and UNANNOTATION. */
void apply_annotation(struct shadow *s, const struct dlist *e, bool set,
    bool replay, struct apply_outcome *out);
/* APPLY SIEVE, UNSIEVE, ACTIVATE_SIEVE, UNACTIVATE_SIEVE (sub). */
void apply_sieve(struct shadow *s, const char *sub, const struct dlist *e,
    struct apply_outcome *out);

#endif

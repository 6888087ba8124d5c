/*
 * audit_int.h -- what the parts of an audit share (not for use outside
 * relay/ops/audit*.c): a mailbox found to differ, and one replica's
 * audit.  audit.c asks the replica and repairs; audit_cmp.c compares
 * its answers with the shadow and calls nothing of audit.c.
 */
#ifndef SR_AUDIT_INT_H
#define SR_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "storage/shadow.h"

enum diff_kind { DK_DIFFERS, DK_MISSING, DK_ONLY_REPLICA, DK_NOT_AUDITED,
	DK_USER };

struct diff {
	enum diff_kind kind;
	char *name, *uniqueid, *user;
	struct buf what;	/* "; " between items */
	bool records;		/* the summary differs: compare records */
	bool replace;		/* the replica changed records itself */
	bool more;		/* it holds what the master lacks */
	unsigned nobody;	/* live bodies no longer in the journal */
	char *rname;		/* the replica's name for it, if other */
	int stage;		/* of a replacement: 1 renamed back */
	/* Bodies retention dropped, from another replica: which one holds
	 * them all (GET FULLMAILBOX there), or what it lacks. */
	bool src_asked;
	double src_since;	/* first looked for one (0: not yet) */
	char *src;
	char *src_why;		/* why the others asked cannot ("; ") */
	char **tried;		/* the replicas asked so far */
	size_t ntried;
	char *repair;		/* what --repair did */
	bool shared;		/* a shared mailbox (no owner; user "") */
	bool taken;		/* DK_MISSING: another UNIQUEID holds its name */
	/* DK_USER: the APPLY entries (SUB, UNSUB, QUOTA, SEEN) a repair
	 * sends, and what it leaves alone. */
	struct dlist *ops;
	struct buf left;
};

struct run {
	char *replica;
	struct diff *d;
	size_t nd;
	char **users;
	size_t nusers, next_user, next_full, next_repair;
	char **shared_names;	/* shared mailboxes the shadow holds */
	size_t nshared, next_shared;
	size_t mailboxes;	/* compared (shared ones too) */
	size_t shared;		/* shared mailboxes compared */
	size_t shared_not_audited;	/* not asked before the deadline */
	uint64_t lsn;		/* the shadow's LSN at the last comparison */
	char *error;
	int phase;		/* 0 users and shared mailboxes, 1 records,
				 * 2 repair, 3 done */
};

/* Adds a diff to r (strings copied); notes what differs, "; " between. */
struct diff *audit_diff_add(struct run *r, enum diff_kind kind,
    const char *name, const char *uniqueid, const char *user);
void audit_diff_note(struct diff *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Compares one shadow mailbox with the replica's answer rmbs (GET USER's
 * or GET MAILBOXES' untagged list: found by UNIQUEID, else its name
 * looked for); counts it in r->mailboxes.  Returns the diff added to r,
 * or NULL when its summary is the same.
 */
struct diff *audit_compare_mailbox(struct shadow *sh, struct run *r,
    const struct shadow_mailbox *mb, const char *user,
    const struct dlist *rmbs);
/*
 * Compares GET USER's answer (rmbs, its untagged list) for user with the
 * shadow: each mailbox the shadow holds for the user, and the user's
 * folders only the replica has; adds a diff to r for each difference.
 */
void audit_compare_user(struct shadow *sh, struct run *r, const char *user,
    const struct dlist *rmbs);
/*
 * A GET FULLMAILBOX answer compared with the shadow record by record as
 * it arrives (audit_rec.c), in bounded memory.  audit_rec_new() takes a
 * snapshot of sh for the mailbox uniqueid when the question goes out
 * (lacking: count the bodies another replica lacks rather than compare);
 * audit_rec_record() is the link reader's record hook (arg: the
 * audit_rec; it takes elem); after the reply, audit_rec_finish() adds
 * what differs to d (as the answer list's MAILBOX entry, its RECORD
 * list emptied by the hook, allows), or audit_rec_lacking() returns how
 * many live shadow records have no body in the journal and are not
 * (same UID and GUID) on that replica, UINT32_MAX if it lacks the
 * mailbox.  At most MAX_NOTES (6) record differences are spelled out,
 * the others counted.
 */
struct audit_rec;
struct audit_rec *audit_rec_new(struct shadow *sh, const char *uniqueid,
    bool lacking);
void audit_rec_free(struct audit_rec **arp);
int audit_rec_record(void *arg, struct dlist *elem, size_t index);
void audit_rec_finish(struct audit_rec *ar, struct diff *d,
    const struct dlist *list);
unsigned audit_rec_lacking(struct audit_rec *ar, const struct dlist *list);

#endif

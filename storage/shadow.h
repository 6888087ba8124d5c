/*
 * shadow.h -- a store's shadow: the state the master believes its replica
 * has, in SQLite.
 *
 * It holds mailboxes (every header field, strings verbatim), their
 * records, mailbox annotations, seen state, subscriptions, sieve scripts
 * and quota roots, plus the index of message bodies in the journal and
 * the LSN of the last journal record it reflects.  Each mailbox keeps its
 * SYNC_CRC and SYNC_CRC_ANNOT up to date as records change (the XOR of
 * its live records' contributions, kept per record).
 *
 * The shadow is a materialised view of the journal: changes are made in
 * a transaction that ends with shadow_commit(lsn), and after a crash the
 * owner replays journal records past shadow_lsn().  SQLite runs in WAL
 * mode with synchronous=NORMAL: a crash may lose the newest transactions
 * but never corrupts the file, and the journal brings it forward again.
 */
#ifndef SR_SHADOW_H
#define SR_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/dlist.h"

struct shadow;

struct shadow_mailbox {
	char *uniqueid;
	char *name;		/* internal name */
	char *mbtype;		/* MBOXTYPE letters; NULL for plain email */
	uint32_t sync_crc;	/* maintained from the records */
	uint32_t sync_crc_annot;
	uint32_t last_uid;
	uint64_t highestmodseq;
	uint32_t recentuid;
	uint64_t recenttime;
	uint64_t last_appenddate;
	uint64_t pop3_last_login;
	uint64_t pop3_show_after;
	uint64_t xconvmodseq;
	uint64_t raclmodseq;
	uint32_t uidvalidity;
	char *partition;	/* NULL for intermediates */
	char *acl;		/* verbatim */
	char *options;		/* verbatim */
	char *quotaroot;	/* NULL if none */
	uint64_t createdmodseq;
	uint64_t foldermodseq;
};

struct shadow_record {
	uint32_t uid;
	uint64_t modseq;
	uint64_t last_updated;
	uint64_t internaldate;
	uint32_t size;
	char guid[41];
	char *flags;		/* "\Seen Work": as given, space-separated */
	bool expunged;
	char *annotations;	/* dlist text of the ANNOTATIONS list, or NULL */
	uint32_t crc_basic;	/* this record's contributions */
	uint32_t crc_annot;
};

/* Annotations, seen and sieve entries are views: callers own nothing. */
struct shadow_annot {
	const char *entry;
	const char *userid;
	uint64_t modseq;
	const char *value;	/* may hold NUL bytes; NULL: remove */
	size_t value_len;
};

/*
 * Opens (creating) the shadow database at path.  Returns 0, or a negative
 * errno with a reason in err.
 */
int shadow_open(const char *path, struct shadow **out, char *err,
    size_t err_len);
void shadow_close(struct shadow **sp);
/* Frees the page cache lines no statement is using (for an idle store). */
void shadow_release_memory(struct shadow *s);
/*
 * The store is idle: closes the SQLite connection (descriptors, cache,
 * WAL index mapping) unless a transaction is open.  Any later call
 * opens it again; nothing committed is lost.
 */
void shadow_idle(struct shadow *s);
/* At most n connections of the process stay open (least recently used
 * ones outside a transaction are closed); 0 counts as 1. */
void shadow_set_max_open(size_t n);
/* Connections open now, and how often s was opened again after idling. */
size_t shadow_open_count(void);
uint64_t shadow_reopens(const struct shadow *s);
/* The LSN of the last journal record reflected (0: none). */
uint64_t shadow_lsn(struct shadow *s);
/* The last SQLite error message, for logs. */
const char *shadow_errmsg(struct shadow *s);

/*
 * A read-only view of s as committed now (shadow_snap.c): every read
 * function works on *out and answers from that instant until it is
 * closed, whatever s commits meanwhile.  0, or -EIO with err.
 */
int shadow_snapshot_open(struct shadow *s, struct shadow **out, char *err,
    size_t err_len);
void shadow_snapshot_close(struct shadow **snap);

/* Transactions: every change happens between begin and commit(lsn). */
int shadow_begin(struct shadow *s);
int shadow_commit(struct shadow *s, uint64_t lsn);
void shadow_rollback(struct shadow *s);
/* Is a transaction open (a change waiting for the journal)? */
bool shadow_in_transaction(const struct shadow *s);

/* ---- mailboxes -------------------------------------------------------- */

/* Fills *mb (caller frees with shadow_mailbox_free); 0 or -ENOENT. */
int shadow_mailbox_by_name(struct shadow *s, const char *name,
    struct shadow_mailbox *mb);
int shadow_mailbox_by_uniqueid(struct shadow *s, const char *uniqueid,
    struct shadow_mailbox *mb);
/*
 * Inserts or replaces the mailbox with mb->uniqueid.  The CRC fields of
 * mb are ignored: they always reflect the stored records.
 */
int shadow_mailbox_put(struct shadow *s, const struct shadow_mailbox *mb);
/* Deletes a mailbox with its records and annotations; 0 or -ENOENT. */
int shadow_mailbox_delete(struct shadow *s, const char *uniqueid);
/* Notes that a mailbox left name (0 or a negative errno); a mailbox put
 * under the name clears it.  Deleting a mailbox notes its name. */
int shadow_gone_put(struct shadow *s, const char *name);
/* Did a mailbox leave name (and none came back)? */
bool shadow_gone_has(struct shadow *s, const char *name);
/* Gives a user flag of the mailbox a slot unless one has it, compared
 * without case (a replica's flag slots); 0 or a negative errno. */
int shadow_uflag_add(struct shadow *s, const char *uniqueid,
    const char *flag);
/* Calls cb with the mailbox's user flags in slot order, as first spelled;
 * stops at a non-zero return, which it returns. */
int shadow_uflag_each(struct shadow *s, const char *uniqueid,
    int (*cb)(void *arg, const char *flag), void *arg);
/* Calls fn for each mailbox owned by userid, by name. */
int shadow_mailbox_each_user(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const struct shadow_mailbox *mb), void *arg);
void shadow_mailbox_free(struct shadow_mailbox *mb);
/* Calls fn with each user owning a mailbox, in order; stops at (and
 * returns) a non-zero return. */
int shadow_owner_each(struct shadow *s, int (*fn)(void *arg,
    const char *userid), void *arg);
/* Calls fn with the name of each mailbox no user owns (a shared one), in
 * order; stops at (and returns) a non-zero return. */
int shadow_shared_each(struct shadow *s, int (*fn)(void *arg,
    const char *name), void *arg);

/* ---- records ---------------------------------------------------------- */

/* Fills *rec (free with shadow_record_free); 0 or -ENOENT. */
int shadow_record_get(struct shadow *s, const char *uniqueid, uint32_t uid,
    struct shadow_record *rec);
/*
 * Inserts or replaces the record uid of the mailbox, computing its CRC
 * contributions from the other fields (rec's crc fields are ignored) and
 * updating the mailbox's CRCs.  Returns 0, -ENOENT (no such mailbox) or
 * -EINVAL (fields the CRCs cannot be computed from).
 */
int shadow_record_put(struct shadow *s, const char *uniqueid,
    const struct shadow_record *rec);
/*
 * The RECORD kvlist of rec as a replica prints it (flags in Cyrus's
 * order, annotations parsed back), or NULL if its stored annotations do
 * not parse.  Caller frees.
 */
struct dlist *shadow_record_dlist(const struct shadow_record *rec);
/* Calls fn for each record of the mailbox with uid >= from, in UID order. */
int shadow_record_each(struct shadow *s, const char *uniqueid, uint32_t from,
    int (*fn)(void *arg, const struct shadow_record *rec), void *arg);
void shadow_record_free(struct shadow_record *rec);

/* ---- mailbox annotations ---------------------------------------------- */

/* Replaces the whole annotation set of a mailbox (n entries). */
int shadow_annots_set(struct shadow *s, const char *uniqueid,
    const struct shadow_annot *a, size_t n);
/* Sets (value != NULL) or removes one annotation. */
int shadow_annot_put(struct shadow *s, const char *uniqueid,
    const struct shadow_annot *a);
/* Calls fn per annotation of the mailbox, ordered by (entry, userid). */
int shadow_annot_each(struct shadow *s, const char *uniqueid,
    int (*fn)(void *arg, const struct shadow_annot *a), void *arg);

/* ---- per-user state --------------------------------------------------- */

struct shadow_seen {
	const char *userid, *uniqueid;
	uint64_t lastread;
	uint32_t lastuid;
	uint64_t lastchange;
	const char *seenuids;
};

struct shadow_sieve {
	const char *userid, *filename;
	uint64_t last_update;
	char guid[41];
	bool active;
	const char *content;
	size_t content_len;
};

int shadow_seen_put(struct shadow *s, const struct shadow_seen *seen);
int shadow_seen_each(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const struct shadow_seen *seen), void *arg);
/* Subscriptions: add (on = true) or remove one. */
int shadow_sub_set(struct shadow *s, const char *userid, const char *mboxname,
    bool on);
int shadow_sub_each(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const char *mboxname), void *arg);
int shadow_sieve_put(struct shadow *s, const struct shadow_sieve *sv);
int shadow_sieve_delete(struct shadow *s, const char *userid,
    const char *filename);
/* Marks filename active (NULL: none) for userid. */
int shadow_sieve_activate(struct shadow *s, const char *userid,
    const char *filename);
int shadow_sieve_each(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const struct shadow_sieve *sv), void *arg);
/* Quota roots, kept as the dlist text of their fields. */
int shadow_quota_put(struct shadow *s, const char *root, const char *fields);
int shadow_quota_delete(struct shadow *s, const char *root);
/* Fills *fields (caller frees); 0 or -ENOENT. */
int shadow_quota_get(struct shadow *s, const char *root, char **fields);
/* Removes all of a user's seen, subscriptions, sieve scripts. */
int shadow_user_forget(struct shadow *s, const char *userid);

/*
 * Which users' mailbox lists are complete: the master's whole list, not
 * only the mailboxes it happened to send.  A rolling master sends just
 * what changed, so a shadow is partial unless the master ran a user-level
 * sync (GET USER and everything after it, without a refusal) in its
 * current session; the session marks such a user, and every new master
 * login forgets them all (the master may have changed, as in a
 * failover).  Only for a complete user may a link remove or rename on a
 * replica what the master never named (design invariant 9).  Kept in
 * memory: a restart starts with none.
 */
void shadow_user_set_complete(struct shadow *s, const char *userid);
bool shadow_user_is_complete(const struct shadow *s, const char *userid);
size_t shadow_complete_users(const struct shadow *s);
void shadow_forget_complete(struct shadow *s);

/* ---- the body index --------------------------------------------------- */

/*
 * A body is found in the journal by the LSN of its record.  needed_lsn
 * is the newest command that appended a record with this GUID: until
 * every replica is past it, the body must stay readable.
 */
struct shadow_body {
	char guid[41];
	uint64_t lsn;		/* the body record */
	uint32_t size;
	uint64_t needed_lsn;
};

/* Adds or moves a body (needed_lsn is kept when it exists). */
int shadow_body_put(struct shadow *s, const struct shadow_body *b);
/*
 * Notes that the command being applied needs guid; shadow_commit(lsn)
 * then sets the body's needed_lsn to lsn.
 */
void shadow_body_need(struct shadow *s, const char *guid);
/*
 * Records the bodies noted since the last call as needed by the command
 * at lsn, without committing (a fold applies many commands per
 * transaction).  0 or a negative errno.
 */
int shadow_body_needed_by(struct shadow *s, uint64_t lsn);
/*
 * Calls fn for each body whose record is below lsn and that is still
 * needed after min_needed (needed_lsn > min_needed).
 */
int shadow_body_each_needed(struct shadow *s, uint64_t lsn,
    uint64_t min_needed, int (*fn)(void *arg, const struct shadow_body *b),
    void *arg);
/* 0 and *b, or -ENOENT: is this GUID's body in the journal? */
int shadow_body_get(struct shadow *s, const char *guid, struct shadow_body *b);
/*
 * The lowest LSN of a body still needed by a command after min_needed
 * (needed_lsn > min_needed), or 0 if there is none.
 */
uint64_t shadow_body_min_needed(struct shadow *s, uint64_t min_needed);
/* Forgets bodies whose records are below lsn (their segments are gone). */
int shadow_body_drop_before(struct shadow *s, uint64_t lsn);

#endif

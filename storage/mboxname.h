/*
 * mboxname.h -- who owns a Cyrus internal mailbox name.
 *
 * Internal names use "." as separator: "user.alice", "user.alice.Sent",
 * "example.com!user.bob.Trash", "DELETED.user.alice.Old.5F3A0B1C",
 * "user.alice.#sieve".  Shared mailboxes ("shared.folder") have no owner.
 */
#ifndef SR_MBOXNAME_H
#define SR_MBOXNAME_H

#include <stddef.h>

/*
 * Writes the owning userid of name into out ("alice", or
 * "bob@example.com" for a domain mailbox) and returns 0, or returns -1
 * for a mailbox no user owns.
 */
int mboxname_userid(const char *name, char *out, size_t len);
/*
 * Writes into out the internal name of userid's INBOX ("user.alice",
 * "example.com!user.bob"); returns 0, or -1 if it does not fit.
 */
int mboxname_inbox(const char *userid, char *out, size_t len);

#endif

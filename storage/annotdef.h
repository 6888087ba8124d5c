/*
 * annotdef.h -- the mailbox and server annotations a 3.6 replica lets
 * APPLY ANNOTATION / UNANNOTATION write.
 */
#ifndef SR_ANNOTDEF_H
#define SR_ANNOTDEF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Would a 3.6 replica store value (len bytes; NULL or empty removes the
 * annotation) for entry, shared when userid is "" and private otherwise,
 * on a mailbox (server false) or on the server?  Returns true if so, and
 * sets *canon to the value as the replica stores it ("true"/"false" for
 * a boolean) or NULL when it stores the value as given.
 */
bool annotdef_writable(bool server, const char *entry, const char *userid,
    const char *value, size_t len, const char **canon);
/* Does a replica's GET ANNOTATION list entry (false for the server
 * entries it keeps in files, /motd and .../shutdown)? */
bool annotdef_listed(bool server, const char *entry);

#endif

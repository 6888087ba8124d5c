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
/*
 * Also accepts the mailbox and server entries of a Cyrus
 * annotation_definitions file at path (its format: "name, scope, type,
 * proxy type, attributes, acl" a line); "" forgets them.  Returns 0, or
 * -1 with err set (the entries loaded before stay).  Not thread-safe:
 * called on the loop, at start and on reload.
 */
int annotdef_load(const char *path, char *err, size_t err_len);
/* Does a replica's GET ANNOTATION list entry (false for the server
 * entries it keeps in files, /motd and .../shutdown)? */
bool annotdef_listed(bool server, const char *entry);

#endif

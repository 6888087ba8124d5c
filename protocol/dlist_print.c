/*
 * dlist_print.c -- the dlist printer.
 *
 * Output is byte-for-byte what Cyrus 3.6 emits for the same tree, so that
 * a master or replica cannot tell the relay from a real peer.  Printing
 * walks the tree with an explicit stack, like the parser.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "protocol/dlist_print.h"

/* Cyrus's atom test: 1..1023 bytes, no specials, not "NIL". */
static bool
is_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= 1024)
		return false;
	if (n == 3 && memcmp(s, "NIL", 3) == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x7f || c < 0x1f)
			return false;
		switch (c) {
		case ' ': case '{': case '(': case ')': case '"': case '%':
		case '*': case '\\':
			return false;
		default:
			break;
		}
	}
	return true;
}

/* Cyrus's quotable test: under 1024 bytes, no 8-bit, CR, LF, " % \ . */
static bool
is_quotable(const char *s, size_t n)
{
	size_t i;

	if (n >= 1024)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || c == '\r' || c == '\n' || c == '"' ||
		    c == '%' || c == '\\' || c == 0)
			return false;
	}
	return true;
}

int
dlist_print_astring(struct buf *out, const char *s, size_t n,
    enum dlist_print_mode mode)
{
	int r;

	if (s == NULL)
		return buf_puts(out, "NIL");
	if (is_atom(s, n))
		return buf_append(out, s, n);
	if (is_quotable(s, n)) {
		if ((r = buf_reserve(out, n + 2)) < 0)
			return r;
		buf_putc(out, '"');
		buf_append(out, s, n);
		return buf_putc(out, '"');
	}
	if ((r = buf_printf(out, mode == DLIST_PRINT_CLIENT ? "{%zu+}\r\n" :
	    "{%zu}\r\n", n)) < 0)
		return r;
	return buf_append(out, s, n);
}

static int
print_scalar(const struct dlist *dl, struct buf *out,
    const struct dlist_printer *pr)
{
	int r;

	switch (dl->type) {
	case DL_NIL:
		return buf_puts(out, "NIL");
	case DL_ATOM:
		return dlist_print_astring(out, dl->s, dl->len, pr->mode);
	case DL_FLAG:
	case DL_GUID:
		return buf_append(out, dl->s, dl->len);
	case DL_NUM:
		return buf_put_u64(out, dl->num);
	case DL_HEX:
		return buf_printf(out, "%016llx", (unsigned long long)dl->num);
	case DL_FILE:
		if (pr->file_body == NULL)
			return -EINVAL;
		if ((r = buf_puts(out, "%{")) < 0 ||
		    (r = dlist_print_astring(out, dl->s, dl->len, pr->mode)) < 0 ||
		    (r = buf_printf(out, " %s %llu}\r\n", dl->guid,
		    (unsigned long long)dl->num)) < 0)
			return r;
		return pr->file_body(pr->arg, dl, out);
	default:
		return -EINVAL;
	}
}

int
dlist_print_value(const struct dlist *dl, struct buf *out,
    const struct dlist_printer *pr)
{
	const struct dlist *stack[64];
	const struct dlist *root = dl;
	int depth = 0, r;

	for (;;) {
		/* Below the root, depth >= 1: the parent is on the stack. */
		if (dl != root && depth > 0 && dl->key != NULL &&
		    stack[depth - 1]->type == DL_KVLIST) {
			if ((r = dlist_print_astring(out, dl->key,
			    strlen(dl->key), pr->mode)) < 0 ||
			    (r = buf_putc(out, ' ')) < 0)
				return r;
		}
		if (dlist_is_container(dl)) {
			if ((r = buf_puts(out, dl->type == DL_KVLIST ? "%(" :
			    "(")) < 0)
				return r;
			if (dl->head != NULL) {
				if (depth == 64)
					return -E2BIG;
				stack[depth++] = dl;
				dl = dl->head;
				continue;
			}
			if ((r = buf_putc(out, ')')) < 0)
				return r;
		} else if ((r = print_scalar(dl, out, pr)) < 0) {
			return r;
		}
		/* Close finished containers, then move to the next sibling. */
		for (;;) {
			if (dl == root)
				return 0;
			if (dl->next != NULL) {
				if ((r = buf_putc(out, ' ')) < 0)
					return r;
				dl = dl->next;
				break;
			}
			dl = stack[--depth];
			if ((r = buf_putc(out, ')')) < 0)
				return r;
		}
	}
}

int
dlist_print_entry(const struct dlist *dl, struct buf *out,
    const struct dlist_printer *pr)
{
	int r;

	if (dl->key == NULL)
		return -EINVAL;
	if ((r = dlist_print_astring(out, dl->key, strlen(dl->key),
	    pr->mode)) < 0 || (r = buf_putc(out, ' ')) < 0)
		return r;
	return dlist_print_value(dl, out, pr);
}

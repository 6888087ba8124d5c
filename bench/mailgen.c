/*
 * mailgen.c -- realistic-looking mail for benchmarks (see mailgen.h).
 */
#include "autoconf.h"

#include <string.h>

#include "bench/mailgen.h"

static const char *const words[] = {
	"the", "of", "and", "to", "a", "in", "is", "you", "that", "it", "he",
	"was", "for", "on", "are", "as", "with", "his", "they", "I", "at",
	"be", "this", "have", "from", "or", "one", "had", "by", "word", "but",
	"not", "what", "all", "were", "we", "when", "your", "can", "said",
	"there", "use", "an", "each", "which", "she", "do", "how", "their",
	"if", "will", "up", "other", "about", "out", "many", "then", "them",
	"these", "so", "some", "her", "would", "make", "like", "him", "into",
	"time", "has", "look", "two", "more", "write", "go", "see", "number",
	"no", "way", "could", "people", "my", "than", "first", "water",
	"been", "call", "who", "oil", "its", "now", "find", "long", "down",
	"day", "did", "get", "come", "made", "may", "part", "meeting",
	"project", "report", "budget", "schedule", "review", "please",
	"thanks", "attached", "document", "question", "customer", "server",
	"update", "release", "deadline", "monday", "tuesday", "wednesday",
	"thursday", "friday", "week", "month", "quarter", "team", "manager",
	"account", "invoice", "payment", "order", "shipping", "delivery",
	"contract", "agreement", "proposal", "draft", "final", "version",
	"change", "request", "issue", "problem", "solution", "support",
	"service", "system", "network", "database", "backup", "storage",
	"mailbox", "folder", "message", "replication", "maintenance",
	"window", "outage", "incident", "ticket", "priority", "urgent",
	"follow", "discuss", "agenda", "minutes", "notes", "summary",
	"results", "analysis", "data", "numbers", "figures", "chart", "table",
	"slide", "presentation", "conference", "travel", "hotel", "flight",
	"booking", "lunch", "dinner", "coffee", "office", "building", "room",
	"floor", "desk", "phone", "call", "email", "address", "contact",
	"information", "details", "attachment", "link", "website", "page",
	"login", "password", "security", "access", "permission", "policy",
	"process", "procedure", "training", "course", "session", "workshop",
	"feedback", "comments", "suggestions", "ideas", "plan", "strategy",
	"goal", "target", "progress", "status", "milestone", "task", "action",
	"item", "owner", "responsible", "approval", "sign", "confirm",
	"available", "possible", "important", "necessary", "current", "new",
	"previous", "next", "last", "early", "late", "soon", "today",
	"tomorrow", "yesterday", "morning", "afternoon", "evening", "hope",
	"well", "good", "great", "sure", "sorry", "happy", "glad", "best",
	"regards", "kind", "cheers", "hello", "hi", "dear", "team", "all",
	"everyone", "colleagues", "friends", "family", "weekend", "holiday",
	"vacation", "leave", "sick", "home", "work", "remote", "site",
	"visit", "client", "partner", "vendor", "supplier", "price", "cost",
	"quote", "estimate", "total", "amount", "tax", "fee", "discount",
	"offer", "deal", "sale", "purchase", "product", "feature", "bug",
	"fix", "patch", "test", "testing", "deploy", "production", "staging",
	"environment", "config", "settings", "option", "default", "value",
	"error", "warning", "log", "monitor", "alert", "metric", "graph",
	"dashboard", "usage", "capacity", "performance", "latency", "speed",
	"memory", "disk", "cpu", "load", "traffic", "user", "users", "group",
	"list", "archive", "search", "index", "sync", "copy", "move", "delete",
	"restore", "recover", "fail", "failover", "replica", "master",
	"machine", "slot", "store", "queue", "delay", "lag", "catch", "wait",
};

static const char *const names[] = { "Alice Martin", "Bob Chen",
	"Carol Diaz", "Dave Okafor", "Erin Novak", "Frank Muller",
	"Grace Kim", "Henry Singh", "Ines Rossi", "Jack Brown" };

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static uint64_t
rnd(struct mailgen *g)
{
	g->state ^= g->state << 13;
	g->state ^= g->state >> 7;
	g->state ^= g->state << 17;
	return g->state;
}

void
mailgen_init(struct mailgen *g, uint64_t seed)
{
	g->state = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
}

/* A word index with a skewed distribution: low indexes are common. */
static const char *
word(struct mailgen *g)
{
	size_t n = sizeof(words) / sizeof(words[0]);
	uint64_t r = rnd(g) % 1000000;

	/* square of a uniform variate leans towards 0 */
	return words[(size_t)((r * r / 1000000) * n / 1000000)];
}

static void
sentence(struct mailgen *g, struct buf *b, size_t *col, const char *prefix)
{
	int n = 5 + (int)(rnd(g) % 14), i;

	for (i = 0; i < n; i++) {
		const char *w = word(g);
		size_t wl = strlen(w);

		if (*col + wl + 1 > 72) {
			buf_puts(b, "\r\n");
			buf_puts(b, prefix);
			*col = strlen(prefix);
		} else if (*col > strlen(prefix)) {
			buf_putc(b, ' ');
			(*col)++;
		}
		if (i == 0) {
			buf_putc(b, (char)(w[0] >= 'a' ? w[0] - 32 : w[0]));
			buf_puts(b, w + 1);
		} else {
			buf_puts(b, w);
		}
		*col += wl;
	}
	buf_putc(b, rnd(g) % 6 ? '.' : '?');
	(*col)++;
}

static void
paragraphs(struct mailgen *g, struct buf *b, size_t target, const char *prefix)
{
	size_t start = b->len, col;

	while (b->len - start < target) {
		int s = 2 + (int)(rnd(g) % 5);

		buf_puts(b, prefix);
		col = strlen(prefix);
		while (s--)
			sentence(g, b, &col, prefix);
		buf_puts(b, "\r\n");
		buf_puts(b, prefix);
		buf_puts(b, "\r\n");
	}
}

static void
base64_block(struct mailgen *g, struct buf *b, size_t bytes)
{
	size_t i, col = 0;

	for (i = 0; i < bytes * 4 / 3; i++) {
		buf_putc(b, b64[rnd(g) & 63]);
		if (++col == 76) {
			buf_puts(b, "\r\n");
			col = 0;
		}
	}
	buf_puts(b, "\r\n");
}

void
mailgen_message(struct mailgen *g, struct buf *out, uint64_t n,
    size_t target, bool attachments)
{
	const char *from = names[rnd(g) % 10], *to = names[rnd(g) % 10];
	unsigned hour = (unsigned)(rnd(g) % 24), min = (unsigned)(rnd(g) % 60);
	bool attach = attachments && rnd(g) % 3 == 0;
	size_t text;
	int i;

	buf_reset(out);
	buf_printf(out, "Return-Path: <%s@example.com>\r\n", "sender");
	for (i = 0; i < 3; i++)
		buf_printf(out, "Received: from mx%d.example.net (mx%d.example."
		    "net [192.0.2.%u])\r\n\tby mail%d.example.com (Cyrus "
		    "3.6.1) with LMTPA;\r\n\tMon, %u Nov 2026 %02u:%02u:%02u "
		    "+0000\r\n", i + 1, i + 1, (unsigned)(rnd(g) % 250), i,
		    (unsigned)(1 + n % 28), hour, min, (unsigned)(rnd(g) % 60));
	buf_puts(out, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
	    "d=example.net;\r\n\ts=selector1; h=from:to:subject:date:message-"
	    "id;\r\n\tbh=");
	base64_block(g, out, 32);
	buf_puts(out, "\tb=");
	base64_block(g, out, 256);
	buf_printf(out, "Message-ID: <%llx.%llx@example.net>\r\n",
	    (unsigned long long)rnd(g), (unsigned long long)n);
	buf_printf(out, "Date: Mon, %u Nov 2026 %02u:%02u:00 +0000\r\n",
	    (unsigned)(1 + n % 28), hour, min);
	buf_printf(out, "From: %s <%c.%s@example.net>\r\n", from, from[0] + 32,
	    strchr(from, ' ') + 1);
	buf_printf(out, "To: %s <%c.%s@example.com>\r\n", to, to[0] + 32,
	    strchr(to, ' ') + 1);
	buf_printf(out, "Subject: Re: %s %s %s\r\nMIME-Version: 1.0\r\n",
	    word(g), word(g), word(g));
	text = target > out->len ? target - out->len : 200;
	if (!attach) {
		buf_puts(out, "Content-Type: text/plain; charset=us-ascii\r\n"
		    "\r\n");
		paragraphs(g, out, text * 2 / 3, "");
		buf_printf(out, "On Fri, %s wrote:\r\n", to);
		paragraphs(g, out, text / 3, "> ");
		buf_printf(out, "-- \r\n%s\r\n", from);
		return;
	}
	buf_puts(out, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
	paragraphs(g, out, text / 6, "");
	buf_puts(out, "--b1\r\nContent-Type: text/html; charset=us-ascii\r\n"
	    "\r\n<html><body><p>\r\n");
	paragraphs(g, out, text / 6, "");
	buf_puts(out, "</p></body></html>\r\n--b1\r\nContent-Type: "
	    "application/pdf; name=\"report.pdf\"\r\nContent-Transfer-"
	    "Encoding: base64\r\n\r\n");
	base64_block(g, out, text * 3 / 5);
	buf_puts(out, "--b1--\r\n");
}

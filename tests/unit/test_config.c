/*
 * test_config.c -- syncrelay.conf parsing, checks, the sample file and
 * the man page.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <unistd.h>

#include "lib/buf.h"
#include "relay/config.h"
#include "tests/unit/test.h"

static char tmpdir[] = "/tmp/syncrelay-test-config-XXXXXX";
static char err[512];

static struct config *
load_text(const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	err[0] = '\0';
	return config_load(path, err, sizeof(err));
}

/* Expects text to be refused with "t.conf:<line>: ...<msg>...". */
static void
expect_error(const char *text, int line, const char *msg)
{
	struct config *c = load_text(text);
	char where[32];

	test_assert(c == NULL);
	config_free(&c);
	snprintf(where, sizeof(where), "t.conf:%d: ", line);
	if (strstr(err, where) == NULL || strstr(err, msg) == NULL) {
		fprintf(stderr, "want \"%s%s\", got \"%s\"\n", where, msg, err);
		test_assert(0);
	}
}

static void
defaults_and_values(void)
{
	struct config *c = load_text(
	    "# comment\n"
	    "\n"
	    "listen: 0.0.0.0:3005\n"
	    "  sync_timeout:   10m  \n"
	    "max_literal_bytes: 1M\n"
	    "log_level: DEBUG\n"
	    "replica_compress: on\n");

	test_assert(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	test_assert_str(config_str(c, OPT_listen), "0.0.0.0:3005");
	test_assert_int(config_num(c, OPT_sync_timeout), 600);
	test_assert_int(config_num(c, OPT_max_literal_bytes), 1 << 20);
	test_assert_int(config_num(c, OPT_log_level), 3);
	test_assert(config_bool(c, OPT_replica_compress));
	test_assert(config_is_set(c, OPT_listen));
	test_assert(!config_is_set(c, OPT_datadir));
	test_assert_str(config_str(c, OPT_datadir), "/var/lib/syncrelay");
	test_assert_int(config_num(c, OPT_max_nesting_depth), 16);
	test_assert_int(config_num(c, OPT_max_line_bytes), 256 << 20);
	test_assert_int(config_nstores(c), 0);
	config_free(&c);
	test_assert(c == NULL);
}

static void
stores_and_replicas(void)
{
	struct config *c = load_text(
	    "replica_authname: relay\n"
	    "replica_password_file: /etc/syncrelay/replica.pw\n"
	    "replica_tls: starttls\n"
	    "store.s1.identity: repl-s1\n"
	    "store.s1.replica.r1: 10.0.0.5:2017\n"
	    "store.s1.replica.r2: [2001:db8::1]:2005\n"
	    "store.s1.replica.r2.tls: no\n"
	    "store.s1.replica.r2.authname: other\n"
	    "store.s2.replica.main: host2\n"
	    "store.s2.identity: repl-s2\n");
	const struct store_conf *s;

	test_assert(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	test_assert_int(config_nstores(c), 2);
	s = config_store_by_identity(c, "repl-s1");
	test_assert(s && !strcmp(s->name, "s1") && s->nreplicas == 2);
	if (s && s->nreplicas == 2) {
		test_assert_str(s->replicas[0].host, "10.0.0.5");
		test_assert_int(s->replicas[0].port, 2017);
		test_assert_int(s->replicas[0].tls, REPLICA_TLS_STARTTLS);
		test_assert_str(s->replicas[0].authname, "relay");
		test_assert_str(s->replicas[0].password_file,
		    "/etc/syncrelay/replica.pw");
		test_assert_str(s->replicas[1].host, "2001:db8::1");
		test_assert_int(s->replicas[1].tls, REPLICA_TLS_NO);
		test_assert_str(s->replicas[1].authname, "other");
	}
	s = config_store_by_name(c, "s2");
	test_assert(s && s->nreplicas == 1 && s->replicas[0].port == 2005);
	test_assert(config_store_by_identity(c, "nobody") == NULL);
	config_free(&c);
}

static void
errors_name_file_and_line(void)
{
	expect_error("listen: x\nbogus: 1\n", 2, "unknown option \"bogus\"");
	expect_error("no colon here\n", 1, "expected \"key: value\"");
	expect_error(": value\n", 1, "missing key");
	expect_error("listen: a\n\nlisten: b\n", 3,
	    "\"listen\" set twice (first at line 1)");
	expect_error("replica_compress: maybe\n", 1, "wants yes or no");
	expect_error("max_connections: 12x\n", 1, "wants a whole number");
	expect_error("max_connections: 0\n", 1, "must be between 1 and 100000");
	expect_error("max_connections: 99999999999999999999\n", 1,
	    "wants a whole number");
	expect_error("sync_timeout: 2s\n", 1, "must be between 3 and");
	expect_error("sync_timeout: soon\n", 1, "wants a duration");
	expect_error("max_line_bytes: 1Q\n", 1, "wants a size");
	expect_error("log_level: loud\n", 1,
	    "wants one of error|warning|info|debug");
	expect_error("store.s1.replica.r1: h:1\n", 1, "store s1 has no identity");
	expect_error("store.s1.identity: a\n", 1, "store s1 has no replica");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h\n"
	    "store.s2.identity: a\nstore.s2.replica.r: h2\n", 3,
	    "stores s1 and s2 share the identity \"a\"");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h:7\n"
	    "store.s2.identity: b\nstore.s2.replica.x: H:7\n", 4,
	    "replica address H:7 is also store s1 replica r (line 2)");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h:7\n"
	    "store.s1.replica.r: h:8\n", 3, "replica r declared twice");
	expect_error("store.s1.identity: a\nstore.s1.identity: b\n", 2,
	    "identity given twice");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h\n"
	    "store.s1.replica.q.tls: yes\n", 3, "wants one of no|starttls");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h\n"
	    "store.s1.replica.q.tls: no\n", 3, "store s1 has no replica q");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h\n"
	    "store.s1.replica.r.color: red\n", 3, "unknown replica setting");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h\n"
	    "store.s1.replica.r.port: 9\n", 3, "unknown replica setting");
	expect_error("store.s/1.identity: a\n", 1, "bad store key");
	expect_error("store.s1.ident: a\n", 1, "unknown store setting");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h:99999\n", 2,
	    "bad port");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: ::1\n", 2,
	    "needs brackets");
	expect_error("store.s1.identity: a\nstore.s1.replica.r: h\n"
	    "store.s1.replica.r.password: x\n"
	    "store.s1.replica.r.password_file: /y\n", 2,
	    "set password or password_file, not both");
	expect_error("store.s1.identity:\n", 1, "empty identity");
}

/* A file with 200 stores is plain to write and checked as a whole. */
static void
two_hundred_stores(void)
{
	struct buf b = BUF_INIT;
	struct config *c;
	int i;

	buf_puts(&b, "replica_authname: relay\nreplica_password: pw\n");
	for (i = 1; i <= 200; i++)
		buf_printf(&b, "store.s%d.identity: repl-s%d\n"
		    "store.s%d.replica.r1: replica%d.example.com:%d\n",
		    i, i, i, (i % 20) + 1, 2000 + i);
	c = load_text(b.s);
	test_assert(c != NULL);
	if (c != NULL) {
		const struct store_conf *s;

		test_assert_int(config_nstores(c), 200);
		s = config_store_by_identity(c, "repl-s137");
		test_assert(s && !strcmp(s->name, "s137"));
		test_assert(s && s->replicas[0].port == 2137);
		test_assert_str(s ? s->replicas[0].password : NULL, "pw");
	}
	config_free(&c);
	/* One copy-paste slip among 200 is caught with its line. */
	buf_printf(&b, "store.s201.identity: repl-s201\n"
	    "store.s201.replica.r1: replica18.example.com:2137\n");
	c = load_text(b.s);
	test_assert(c == NULL);
	test_assert(strstr(err, "t.conf:404: replica address "
	    "replica18.example.com:2137 is also store s137") != NULL);
	config_free(&c);
	buf_free(&b);
}

static const char *
srcdir(void)
{
	return getenv("SRCDIR") ? getenv("SRCDIR") : "..";
}

/*
 * conf/syncrelay.conf.sample shows every option of the table exactly
 * once as "#name: default", names nothing else, and its commented
 * examples form a valid configuration.
 */
static void
sample_matches_table(void)
{
	char path[4096], *line = NULL;
	size_t cap = 0;
	int seen[OPT__COUNT] = { 0 }, i;
	struct buf uncommented = BUF_INIT, b_defaults = BUF_INIT;
	FILE *fp;
	struct config *c;

	snprintf(path, sizeof(path), "%s/conf/syncrelay.conf.sample",
	    srcdir());
	fp = fopen(path, "r");
	test_assert(fp != NULL);
	if (fp == NULL)
		return;
	while (getline(&line, &cap, fp) > 0) {
		char *p = line, *colon;
		size_t klen;

		if (*p == '#')
			p++;
		colon = strchr(p, ':');
		if (colon == NULL)
			continue;
		for (klen = 0; p + klen < colon; klen++)
			if (!isalnum((unsigned char)p[klen]) && p[klen] != '_' &&
			    p[klen] != '.' && p[klen] != '-')
				break;
		if (p + klen != colon || klen == 0)
			continue;
		buf_append(&uncommented, p, strlen(p));
		if (strncmp(p, "store.", 6) == 0)
			continue;
		for (i = 0; i < OPT__COUNT; i++) {
			const char *name = config_options[i].name;
			char want[512];

			if (strlen(name) != klen || strncmp(p, name, klen))
				continue;
			seen[i]++;
			snprintf(want, sizeof(want), "#%s:%s%s\n", name,
			    *config_options[i].def ? " " : "",
			    config_options[i].def);
			if (strcmp(line, want) != 0) {
				fprintf(stderr, "sample shows \"%.*s\", table "
				    "says \"%.*s\"\n",
				    (int)strcspn(line, "\n"), line,
				    (int)strcspn(want, "\n"), want);
				test_assert(0);
			}
			break;
		}
		if (i == OPT__COUNT) {
			fprintf(stderr, "sample names unknown option %.*s\n",
			    (int)klen, p);
			test_assert(0);
		}
	}
	free(line);
	fclose(fp);
	for (i = 0; i < OPT__COUNT; i++)
		if (seen[i] != 1) {
			fprintf(stderr, "sample shows %s %d times\n",
			    config_options[i].name, seen[i]);
			test_assert(0);
		}
	/* The option block is exactly what "syncrelay -D" prints, so the
	 * help texts cannot drift from the table either. */
	{
		struct buf whole = BUF_INIT;
		char tmp[4096];
		size_t n;
		FILE *dp = tmpfile();

		fp = fopen(path, "r");
		while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
			buf_append(&whole, tmp, n);
		fclose(fp);
		config_print_defaults(dp);
		rewind(dp);
		buf_reset(&b_defaults);
		while ((n = fread(tmp, 1, sizeof(tmp), dp)) > 0)
			buf_append(&b_defaults, tmp, n);
		fclose(dp);
		if (strstr(buf_cstring(&whole), buf_cstring(&b_defaults)) ==
		    NULL) {
			fprintf(stderr, "conf/syncrelay.conf.sample does not "
			    "contain the output of \"syncrelay -D\"\n");
			test_assert(0);
		}
		buf_free(&whole);
		buf_free(&b_defaults);
	}
	c = load_text(uncommented.s);
	if (c == NULL)
		fprintf(stderr, "sample, uncommented: %s\n", err);
	test_assert(c != NULL && config_nstores(c) >= 2);
	config_free(&c);
	buf_free(&uncommented);
}

/* Reads a whole file into b; false if it cannot be opened. */
static bool
read_file(const char *path, struct buf *b)
{
	char tmp[4096];
	size_t n;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return false;
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		buf_append(b, tmp, n);
	fclose(fp);
	return true;
}

/*
 * man/syncrelay.conf.5 documents every option of the table exactly once,
 * as scripts/regen-man-options writes it:
 *
 *   .TP
 *   .B name
 *   Default: \fBdefault\fR (type, min..max; reloadable).
 *
 * ("Default: empty (...)" for an empty default), and documents no option
 * the table does not have.  Adding an option without documenting it
 * fails here.
 */
static void
man_page_lists_every_option(void)
{
	static const char *const tnames[] = { "string", "yes/no", "number",
		"size", "duration", "word" };
	char path[4096];
	struct buf page = BUF_INIT, want = BUF_INIT;
	const char *p, *prev;
	int i;

	snprintf(path, sizeof(path), "%s/man/syncrelay.conf.5", srcdir());
	test_assert(read_file(path, &page));
	if (page.len == 0)
		return;
	buf_cstring(&page);
	for (i = 0; i < OPT__COUNT; i++) {
		const struct config_option *o = &config_options[i];
		const char *at;

		buf_reset(&want);
		buf_printf(&want, "\n.TP\n.B %s\nDefault: ", o->name);
		if (*o->def)
			buf_printf(&want, "\\fB%s\\fR", o->def);
		else
			buf_puts(&want, "empty");
		buf_printf(&want, " (%s", tnames[o->type]);
		if (o->type == CONFIG_ENUM)
			buf_printf(&want, ": %s", o->words);
		else if (o->type != CONFIG_STRING && o->type != CONFIG_BOOL)
			buf_printf(&want, ", %llu..%llu",
			    (unsigned long long)o->min,
			    (unsigned long long)o->max);
		buf_printf(&want, "%s).\n", o->reloadable ? "; reloadable" : "");
		at = strstr(page.s, buf_cstring(&want));
		if (at == NULL || strstr(at + 1, buf_cstring(&want)) != NULL) {
			fprintf(stderr, "man/syncrelay.conf.5 must document %s "
			    "once, as:%s(run scripts/regen-man-options "
			    "BUILDDIR)\n", o->name, buf_cstring(&want));
			test_assert(0);
		}
	}
	/* Every "Default:" line belongs to an option of the table. */
	for (prev = page.s; (p = strstr(prev, "\nDefault: ")) != NULL;
	    prev = p + 1) {
		const char *start = p;
		size_t len;

		while (start > page.s && start[-1] != '\n')
			start--;
		if (strncmp(start, ".B ", 3) != 0) {
			fprintf(stderr, "man/syncrelay.conf.5: a Default: line "
			    "not after \".B name\"\n");
			test_assert(0);
			continue;
		}
		start += 3;
		len = (size_t)(p - start);
		for (i = 0; i < OPT__COUNT; i++)
			if (strlen(config_options[i].name) == len &&
			    strncmp(config_options[i].name, start, len) == 0)
				break;
		if (i == OPT__COUNT) {
			fprintf(stderr, "man/syncrelay.conf.5 documents unknown "
			    "option %.*s\n", (int)len, start);
			test_assert(0);
		}
	}
	buf_free(&page);
	buf_free(&want);
}

/* What "syncrelay -D" prints is a valid file giving the defaults. */
static void
printed_defaults_parse(void)
{
	char path[256];
	FILE *fp;
	struct buf b = BUF_INIT;
	char *line = NULL;
	size_t cap = 0;
	struct config *c, *d = config_defaults();
	int i;

	snprintf(path, sizeof(path), "%s/defaults", tmpdir);
	fp = fopen(path, "w+");
	config_print_defaults(fp);
	rewind(fp);
	while (getline(&line, &cap, fp) > 0)
		if (line[0] == '#' && line[1] != ' ')
			buf_puts(&b, line + 1);
	fclose(fp);
	free(line);
	c = load_text(b.s);
	test_assert(c != NULL);
	for (i = 0; c && i < OPT__COUNT; i++) {
		test_assert(config_is_set(c, (enum config_opt)i));
		test_assert_str(config_text(c, (enum config_opt)i),
		    config_text(d, (enum config_opt)i));
		test_assert(config_num(c, (enum config_opt)i) ==
		    config_num(d, (enum config_opt)i));
	}
	config_free(&c);
	config_free(&d);
	buf_free(&b);
}

static void
missing_file(void)
{
	struct config *c = config_load("/nonexistent/syncrelay.conf", err,
	    sizeof(err));

	test_assert(c == NULL);
	test_assert(strstr(err, "/nonexistent/syncrelay.conf: No such file")
	    != NULL);
}

static void
setup(void)
{
	test_assert(mkdtemp(tmpdir) != NULL);
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	test_assert(system(cmd) == 0);
}

TEST_MAIN(T(setup), T(defaults_and_values), T(stores_and_replicas),
    T(errors_name_file_and_line), T(two_hundred_stores),
    T(sample_matches_table), T(man_page_lists_every_option),
    T(printed_defaults_parse), T(missing_file),
    T(teardown))

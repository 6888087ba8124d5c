/*
 * config.c -- reading and checking syncrelay.conf.
 *
 * One pass reads "key: value" lines into option slots and store/replica
 * declarations, refusing unknown keys, bad values and duplicates at the
 * line where they occur; a second pass checks the stores as a whole
 * (identity present and unique, at least one replica, no replica address
 * claimed twice) and fills each replica's settings from the replica_*
 * defaults.  Nothing here touches the network or the data directory.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "lib/xmalloc.h"
#include "relay/config.h"

#define OPT(name, type, def, words, min, max, reload, help) \
	{ #name, CONFIG_##type, def, words, min, max, reload, help },
const struct config_option config_options[OPT__COUNT] = {
#include "relay/options.def"
};
#undef OPT

#define NAME_MAX_LEN 64

struct value {
	char *text;		/* NULL: default */
	uint64_t num;
	int line;
};

/* A per-replica override, kept until the replica list is complete. */
struct override {
	char *store, *replica, *field, *value;
	int line;
};

struct config {
	struct value values[OPT__COUNT];
	struct store_conf *stores;
	size_t nstores;
	struct override *overrides;
	size_t noverrides;
	const char *path;
	char *err;
	size_t err_len;
};

static int cerr(struct config *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cerr(struct config *c, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, c->err_len, "%s:%d: ", c->path, line);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < c->err_len)
		vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
parse_scaled(const char *text, const char *units, const uint64_t *scale,
    uint64_t *out)
{
	size_t n = strlen(text);
	uint64_t mult = 1, v;
	const char *u;

	if (n > 0 && (u = strchr(units, tolower((unsigned char)text[n - 1]))) &&
	    *u != '\0') {
		mult = scale[u - units];
		n--;
	}
	if (parse_u64(text, n, &v) < 0 || (v && mult > UINT64_MAX / v))
		return -1;
	*out = v * mult;
	return 0;
}

int
config_parse_value(const struct config_option *o, const char *text,
    uint64_t *num, char *err, size_t err_len)
{
	static const uint64_t size_scale[] = { 1024, 1024 * 1024,
		1024 * 1024 * 1024 };
	static const uint64_t time_scale[] = { 1, 60, 3600, 86400 };
	uint64_t v = 0;

	switch (o->type) {
	case CONFIG_STRING:
		*num = 0;
		return 0;
	case CONFIG_BOOL:
		if (!strcasecmp(text, "yes") || !strcasecmp(text, "on") ||
		    !strcasecmp(text, "true") || !strcmp(text, "1"))
			v = 1;
		else if (!strcasecmp(text, "no") || !strcasecmp(text, "off") ||
		    !strcasecmp(text, "false") || !strcmp(text, "0"))
			v = 0;
		else {
			snprintf(err, err_len, "%s wants yes or no, not \"%s\"",
			    o->name, text);
			return -1;
		}
		break;
	case CONFIG_ENUM: {
		const char *w = o->words;
		size_t len = strlen(text);

		for (v = 0;; v++) {
			const char *bar = strchr(w, '|');
			size_t wl = bar ? (size_t)(bar - w) : strlen(w);

			if (wl == len && strncasecmp(w, text, len) == 0)
				break;
			if (bar == NULL) {
				snprintf(err, err_len,
				    "%s wants one of %s, not \"%s\"", o->name,
				    o->words, text);
				return -1;
			}
			w = bar + 1;
		}
		break;
	}
	case CONFIG_INT:
		if (parse_u64(text, strlen(text), &v) < 0) {
			snprintf(err, err_len, "%s wants a whole number, not "
			    "\"%s\"", o->name, text);
			return -1;
		}
		break;
	case CONFIG_SIZE:
		if (parse_scaled(text, "kmg", size_scale, &v) < 0) {
			snprintf(err, err_len, "%s wants a size such as 64K or "
			    "256M, not \"%s\"", o->name, text);
			return -1;
		}
		break;
	case CONFIG_DURATION:
		if (parse_scaled(text, "smhd", time_scale, &v) < 0) {
			snprintf(err, err_len, "%s wants a duration such as 30s "
			    "or 30m, not \"%s\"", o->name, text);
			return -1;
		}
		break;
	}
	if ((o->type == CONFIG_INT || o->type == CONFIG_SIZE ||
	    o->type == CONFIG_DURATION) && (v < o->min || v > o->max)) {
		snprintf(err, err_len, "%s must be between %llu and %llu, not "
		    "%s", o->name, (unsigned long long)o->min,
		    (unsigned long long)o->max, text);
		return -1;
	}
	*num = v;
	return 0;
}

static const struct config_option *
option_by_name(const char *name, enum config_opt *id)
{
	int i;

	for (i = 0; i < OPT__COUNT; i++)
		if (strcmp(config_options[i].name, name) == 0) {
			if (id)
				*id = (enum config_opt)i;
			return &config_options[i];
		}
	return NULL;
}

static bool
valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static struct store_conf *
store_get(struct config *c, const char *name, int line)
{
	size_t i;
	struct store_conf *s;

	for (i = 0; i < c->nstores; i++)
		if (strcmp(c->stores[i].name, name) == 0)
			return &c->stores[i];
	c->stores = xreallocarray(c->stores, c->nstores + 1,
	    sizeof(*c->stores));
	s = &c->stores[c->nstores++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	s->line = line;
	return s;
}

int
config_split_address(const char *text, uint16_t defport, char **host,
    uint16_t *port, char *err, size_t err_len)
{
	const char *colon, *hend;
	uint64_t p = defport;

	if (text[0] == '[') {
		hend = strchr(text, ']');
		if (hend == NULL || hend == text + 1) {
			snprintf(err, err_len, "bad address \"%s\"", text);
			return -1;
		}
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (hend[1] != '\0' && colon == NULL) {
			snprintf(err, err_len, "bad address \"%s\"", text);
			return -1;
		}
		*host = xmemdup0(text + 1, (size_t)(hend - text - 1));
	} else {
		colon = strrchr(text, ':');
		if (colon && strchr(text, ':') != colon) {
			snprintf(err, err_len, "IPv6 address \"%s\" needs "
			    "brackets: [addr]:port", text);
			return -1;
		}
		hend = colon ? colon : text + strlen(text);
		if (hend == text) {
			snprintf(err, err_len, "bad address \"%s\"", text);
			return -1;
		}
		*host = xmemdup0(text, (size_t)(hend - text));
	}
	if (colon && (parse_u64(colon + 1, strlen(colon + 1), &p) < 0 ||
	    p == 0 || p > 65535)) {
		free(*host);
		*host = NULL;
		snprintf(err, err_len, "bad port in \"%s\"", text);
		return -1;
	}
	*port = (uint16_t)p;
	return 0;
}

/* "store.<s>.identity", "store.<s>.replica.<r>[.<field>]". */
static int
parse_store_key(struct config *c, const char *key, const char *value,
    int line)
{
	const char *s = key + strlen("store."), *dot, *r, *rdot;
	char sname[NAME_MAX_LEN + 1], rname[NAME_MAX_LEN + 1];
	struct store_conf *st;

	dot = strchr(s, '.');
	if (dot == NULL || !valid_name(s, (size_t)(dot - s)))
		return cerr(c, line, "bad store key \"%s\": use "
		    "store.NAME.identity or store.NAME.replica.NAME (names: "
		    "letters, digits, _ and -, at most %d)", key,
		    NAME_MAX_LEN);
	memcpy(sname, s, (size_t)(dot - s));
	sname[dot - s] = '\0';
	if (strcmp(dot + 1, "identity") == 0) {
		st = store_get(c, sname, line);
		if (st->identity != NULL)
			return cerr(c, line, "store %s: identity given twice",
			    sname);
		if (*value == '\0')
			return cerr(c, line, "store %s: empty identity", sname);
		st->identity = xstrdup(value);
		return 0;
	}
	if (strncmp(dot + 1, "replica.", 8) != 0)
		return cerr(c, line, "unknown store setting \"%s\" (known: "
		    "identity, replica.NAME)", dot + 1);
	r = dot + 9;
	rdot = strchr(r, '.');
	if (!valid_name(r, rdot ? (size_t)(rdot - r) : strlen(r)))
		return cerr(c, line, "bad replica name in \"%s\"", key);
	snprintf(rname, sizeof(rname), "%.*s",
	    (int)(rdot ? (size_t)(rdot - r) : strlen(r)), r);
	st = store_get(c, sname, line);
	if (rdot == NULL) {
		struct replica_conf *rc;
		size_t i;
		char e[200];

		for (i = 0; i < st->nreplicas; i++)
			if (strcmp(st->replicas[i].name, rname) == 0)
				return cerr(c, line, "store %s: replica %s "
				    "declared twice (first at line %d)", sname,
				    rname, st->replicas[i].line);
		st->replicas = xreallocarray(st->replicas, st->nreplicas + 1,
		    sizeof(*st->replicas));
		rc = &st->replicas[st->nreplicas];
		memset(rc, 0, sizeof(*rc));
		if (config_split_address(value, 0, &rc->host, &rc->port, e,
		    sizeof(e)) < 0)
			return cerr(c, line, "store %s replica %s: %s", sname,
			    rname, e);
		rc->name = xstrdup(rname);
		rc->line = line;
		st->nreplicas++;
		return 0;
	}
	/* A per-replica override; checked once all replicas are known. */
	{
		char *opt = xasprintf("replica_%s", rdot + 1);
		const struct config_option *o = option_by_name(opt, NULL);
		struct override *ov;
		uint64_t num;
		char e[200];
		size_t i;

		if (o == NULL || strcmp(opt, "replica_port") == 0) {
			free(opt);
			return cerr(c, line, "unknown replica setting \"%s\" "
			    "(known: authname, password, password_file, realm, "
			    "tls, tls_ca_file, compress, restart_bytes, "
			    "max_bytes_per_second, max_records_per_second, "
			    "timeout, timeout_rate, keepalive, seed, "
			    "audit_interval)",
			    rdot + 1);
		}
		if (config_parse_value(o, value, &num, e, sizeof(e)) < 0) {
			free(opt);
			return cerr(c, line, "%s", e);
		}
		free(opt);
		for (i = 0; i < c->noverrides; i++) {
			ov = &c->overrides[i];
			if (!strcmp(ov->store, sname) &&
			    !strcmp(ov->replica, rname) &&
			    !strcmp(ov->field, rdot + 1))
				return cerr(c, line, "\"%s\" set twice (first at "
				    "line %d)", key, ov->line);
		}
		c->overrides = xreallocarray(c->overrides, c->noverrides + 1,
		    sizeof(*c->overrides));
		ov = &c->overrides[c->noverrides++];
		ov->store = xstrdup(sname);
		ov->replica = xstrdup(rname);
		ov->field = xstrdup(rdot + 1);
		ov->value = xstrdup(value);
		ov->line = line;
		return 0;
	}
}

static int
parse_line(struct config *c, char *text, int line)
{
	char *colon, *key, *value;
	enum config_opt id;
	const struct config_option *o;
	char e[300];

	key = str_trim(text);
	if (*key == '\0' || *key == '#')
		return 0;
	colon = strchr(key, ':');
	if (colon == NULL)
		return cerr(c, line, "expected \"key: value\"");
	*colon = '\0';
	value = str_trim(colon + 1);
	key = str_trim(key);
	if (*key == '\0')
		return cerr(c, line, "missing key before \":\"");
	if (strncmp(key, "store.", 6) == 0)
		return parse_store_key(c, key, value, line);
	o = option_by_name(key, &id);
	if (o == NULL)
		return cerr(c, line, "unknown option \"%s\"", key);
	if (c->values[id].text != NULL)
		return cerr(c, line, "option \"%s\" set twice (first at line "
		    "%d)", key, c->values[id].line);
	if (config_parse_value(o, value, &c->values[id].num, e, sizeof(e)) < 0)
		return cerr(c, line, "%s", e);
	c->values[id].text = xstrdup(value);
	c->values[id].line = line;
	return 0;
}

static char *
replica_string(const struct config *c, const char *store, const char *rep,
    const char *field, enum config_opt opt)
{
	size_t i;

	for (i = 0; i < c->noverrides; i++)
		if (!strcmp(c->overrides[i].store, store) &&
		    !strcmp(c->overrides[i].replica, rep) &&
		    !strcmp(c->overrides[i].field, field))
			return xstrdup(c->overrides[i].value);
	return xstrdup(config_text(c, opt));
}

/* A replica's numeric setting (checked when it was read). */
static uint64_t
replica_num(const struct config *c, const char *store, const char *rep,
    const char *field, enum config_opt opt)
{
	char *v = replica_string(c, store, rep, field, opt), e[200];
	uint64_t num = 0;

	config_parse_value(&config_options[opt], v, &num, e, sizeof(e));
	free(v);
	return num;
}

/* Whole-file checks, and replica settings from defaults + overrides. */
static int
check_stores(struct config *c)
{
	size_t i, j, k;

	for (i = 0; i < c->noverrides; i++) {
		const struct store_conf *st =
		    config_store_by_name(c, c->overrides[i].store);
		bool found = false;

		for (j = 0; st && j < st->nreplicas; j++)
			found |= !strcmp(st->replicas[j].name,
			    c->overrides[i].replica);
		if (!found)
			return cerr(c, c->overrides[i].line, "store %s has no "
			    "replica %s (declare store.%s.replica.%s: host:port)",
			    c->overrides[i].store, c->overrides[i].replica,
			    c->overrides[i].store, c->overrides[i].replica);
	}
	for (i = 0; i < c->nstores; i++) {
		struct store_conf *st = &c->stores[i];

		if (st->identity == NULL)
			return cerr(c, st->line, "store %s has no identity "
			    "(add store.%s.identity: <master's sync_authname>)",
			    st->name, st->name);
		if (st->nreplicas == 0)
			return cerr(c, st->line, "store %s has no replica (add "
			    "store.%s.replica.NAME: host:port)", st->name,
			    st->name);
		for (j = 0; j < i; j++)
			if (strcmp(c->stores[j].identity, st->identity) == 0)
				return cerr(c, st->line, "stores %s and %s "
				    "share the identity \"%s\"",
				    c->stores[j].name, st->name, st->identity);
		for (j = 0; j < st->nreplicas; j++) {
			struct replica_conf *rc = &st->replicas[j];

			if (rc->port == 0)
				rc->port = (uint16_t)config_num(c,
				    OPT_replica_port);
#define RSTR(field) replica_string(c, st->name, rc->name, #field, \
    OPT_replica_##field)
			rc->authname = RSTR(authname);
			rc->password = RSTR(password);
			rc->password_file = RSTR(password_file);
			rc->realm = RSTR(realm);
			rc->tls_ca_file = RSTR(tls_ca_file);
#define RNUM(field) replica_num(c, st->name, rc->name, #field, \
    OPT_replica_##field)
			rc->tls = (enum replica_tls)RNUM(tls);
			rc->compress = RNUM(compress) != 0;
			rc->restart_bytes = RNUM(restart_bytes);
			rc->max_bytes_per_second = RNUM(max_bytes_per_second);
			rc->max_records_per_second = RNUM(max_records_per_second);
			rc->timeout = (double)RNUM(timeout);
			rc->timeout_rate = RNUM(timeout_rate);
			rc->keepalive = (double)RNUM(keepalive);
			rc->seed = RNUM(seed) != 0;
			rc->audit_interval = (double)RNUM(audit_interval);
#undef RNUM
#undef RSTR
			if (*rc->password != '\0' && *rc->password_file != '\0')
				return cerr(c, rc->line, "store %s replica %s: "
				    "set password or password_file, not both",
				    st->name, rc->name);
		}
	}
	/* A replica instance serves one store: no address twice. */
	for (i = 0; i < c->nstores; i++)
		for (j = 0; j < c->stores[i].nreplicas; j++)
			for (k = 0; k <= i; k++) {
				const struct store_conf *o = &c->stores[k];
				size_t m, lim = k == i ? j : o->nreplicas;
				const struct replica_conf *a =
				    &c->stores[i].replicas[j];

				for (m = 0; m < lim; m++)
					if (a->port == o->replicas[m].port &&
					    !strcasecmp(a->host,
					    o->replicas[m].host))
						return cerr(c, a->line,
						    "replica address %s:%u is "
						    "also store %s replica %s "
						    "(line %d)", a->host,
						    a->port, o->name,
						    o->replicas[m].name,
						    o->replicas[m].line);
			}
	return 0;
}

struct config *
config_defaults(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char e[200];
	int i;

	for (i = 0; i < OPT__COUNT; i++)
		if (config_parse_value(&config_options[i], config_options[i].def,
		    &c->values[i].num, e, sizeof(e)) < 0)
			abort();	/* the table itself is wrong */
	return c;
}

struct config *
config_load(const char *path, char *err, size_t err_len)
{
	struct config *c = config_defaults();
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, r = 0;

	c->path = path;
	c->err = err;
	c->err_len = err_len;
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		config_free(&c);
		return NULL;
	}
	while (r == 0 && (n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL)
			r = cerr(c, lineno, "NUL byte in line");
		else
			r = parse_line(c, line, lineno);
	}
	if (r == 0 && ferror(fp))
		r = cerr(c, lineno, "read error: %s", strerror(errno));
	free(line);
	fclose(fp);
	if (r == 0)
		r = check_stores(c);
	c->path = NULL;
	c->err = NULL;
	if (r < 0)
		config_free(&c);
	return c;
}

void
config_free(struct config **cp)
{
	struct config *c = *cp;
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < OPT__COUNT; i++)
		free(c->values[i].text);
	for (i = 0; i < c->nstores; i++) {
		struct store_conf *st = &c->stores[i];

		for (j = 0; j < st->nreplicas; j++) {
			struct replica_conf *rc = &st->replicas[j];

			free(rc->name);
			free(rc->host);
			free(rc->authname);
			free(rc->password);
			free(rc->password_file);
			free(rc->realm);
			free(rc->tls_ca_file);
		}
		free(st->replicas);
		free(st->name);
		free(st->identity);
	}
	free(c->stores);
	for (i = 0; i < c->noverrides; i++) {
		free(c->overrides[i].store);
		free(c->overrides[i].replica);
		free(c->overrides[i].field);
		free(c->overrides[i].value);
	}
	free(c->overrides);
	free(c);
	*cp = NULL;
}

const char *
config_text(const struct config *c, enum config_opt opt)
{
	return c->values[opt].text ? c->values[opt].text :
	    config_options[opt].def;
}

const char *
config_str(const struct config *c, enum config_opt opt)
{
	return config_text(c, opt);
}

bool
config_bool(const struct config *c, enum config_opt opt)
{
	return c->values[opt].num != 0;
}

uint64_t
config_num(const struct config *c, enum config_opt opt)
{
	return c->values[opt].num;
}

const char *
config_text_by_name(const struct config *c, const char *name)
{
	enum config_opt id;

	if (option_by_name(name, &id) == NULL)
		return NULL;
	return config_text(c, id);
}

bool
config_is_set(const struct config *c, enum config_opt opt)
{
	return c->values[opt].text != NULL;
}

size_t
config_nstores(const struct config *c)
{
	return c->nstores;
}

const struct store_conf *
config_store(const struct config *c, size_t i)
{
	return i < c->nstores ? &c->stores[i] : NULL;
}

const struct store_conf *
config_store_by_identity(const struct config *c, const char *identity)
{
	size_t i;

	for (i = 0; i < c->nstores; i++)
		if (strcmp(c->stores[i].identity, identity) == 0)
			return &c->stores[i];
	return NULL;
}

const struct store_conf *
config_store_by_name(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nstores; i++)
		if (strcmp(c->stores[i].name, name) == 0)
			return &c->stores[i];
	return NULL;
}

void
config_print_defaults(FILE *fp)
{
	static const char *const tnames[] = { "string", "yes/no", "number",
		"size", "duration", "word" };
	int i;

	for (i = 0; i < OPT__COUNT; i++) {
		const struct config_option *o = &config_options[i];

		fprintf(fp, "# %s (%s", o->help, tnames[o->type]);
		if (o->type == CONFIG_ENUM)
			fprintf(fp, ": %s", o->words);
		else if (o->type != CONFIG_STRING && o->type != CONFIG_BOOL)
			fprintf(fp, ", %llu..%llu", (unsigned long long)o->min,
			    (unsigned long long)o->max);
		fprintf(fp, "%s)\n#%s:%s%s\n\n", o->reloadable ? "; reloadable" :
		    "", o->name, *o->def ? " " : "", o->def);
	}
}

/*
 * config.h -- syncrelay.conf: global options, stores and replicas.
 *
 * The file uses Cyrus's "key: value" syntax.  Global options come from
 * the table in options.def.  Stores and their replicas are declared with
 * dotted keys:
 *
 *   store.s17.identity: repl-s17          # the master's SASL authname
 *   store.s17.replica.r1: 10.0.0.5:2017   # a replica's address
 *   store.s17.replica.r1.tls: starttls    # per-replica override of replica_tls
 *
 * config_load() checks everything it can without touching the network:
 * unknown keys, bad values, duplicates, a store without identity or
 * replica, an identity or replica address claimed twice.  Each error
 * names file:line.
 */
#ifndef SR_CONFIG_H
#define SR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum config_type {
	CONFIG_STRING, CONFIG_BOOL, CONFIG_INT, CONFIG_SIZE, CONFIG_DURATION,
	CONFIG_ENUM
};

#define OPT(name, type, def, words, min, max, reload, help) OPT_##name,
enum config_opt {
#include "relay/options.def"
	OPT__COUNT
};
#undef OPT

struct config_option {
	const char *name;
	enum config_type type;
	const char *def;	/* default, as written in the file */
	const char *words;	/* ENUM: "a|b|c" */
	uint64_t min, max;	/* INT/SIZE/DURATION bounds */
	bool reloadable;
	const char *help;
};

/* The option table, indexed by enum config_opt. */
extern const struct config_option config_options[OPT__COUNT];

/* Per-replica settings: the replica_* options, maybe overridden. */
enum replica_tls { REPLICA_TLS_NO, REPLICA_TLS_STARTTLS, REPLICA_TLS_IMPLICIT };

struct replica_conf {
	char *name;
	char *host;
	uint16_t port;
	char *authname;
	char *password;
	char *password_file;
	char *realm;
	enum replica_tls tls;
	char *tls_ca_file;
	bool compress;
	uint64_t restart_bytes;	/* RESTART after this many body bytes */
	uint64_t max_bytes_per_second;		/* 0: no limit */
	uint64_t max_records_per_second;	/* 0: no limit */
	bool seed;		/* may answer for what the relay lacks */
	double timeout;		/* seconds: connection, banner, reply */
	uint64_t timeout_rate;	/* bytes/s each command's deadline allows */
	double keepalive;	/* seconds idle before a NOOP (0: never) */
	double audit_interval;	/* seconds between audits (0: none) */
	int line;		/* where it was declared */
};

struct store_conf {
	char *name;
	char *identity;
	struct replica_conf *replicas;
	size_t nreplicas;
	int line;		/* first line mentioning the store */
};

struct config;

/*
 * Reads and checks path.  Returns the config, or NULL with a message
 * "path:line: reason" in err (err_len bytes).
 */
struct config *config_load(const char *path, char *err, size_t err_len);
/* Returns a config holding only defaults (no stores). */
struct config *config_defaults(void);
void config_free(struct config **cp);

/* Option values; the type must match the option's. */
const char *config_str(const struct config *c, enum config_opt opt);
bool config_bool(const struct config *c, enum config_opt opt);
uint64_t config_num(const struct config *c, enum config_opt opt);
/* The raw text of a value, as written (or the default). */
const char *config_text(const struct config *c, enum config_opt opt);
/* The text of the option called name (default if unset), or NULL. */
const char *config_text_by_name(const struct config *c, const char *name);
/* Was the option set in the file? */
bool config_is_set(const struct config *c, enum config_opt opt);

size_t config_nstores(const struct config *c);
const struct store_conf *config_store(const struct config *c, size_t i);
/* Returns the store whose master identity is identity, or NULL. */
const struct store_conf *config_store_by_identity(const struct config *c,
    const char *identity);
/* Returns the store called name, or NULL. */
const struct store_conf *config_store_by_name(const struct config *c,
    const char *name);

/*
 * Splits "host", "host:port" or "[v6]:port" into a new *host string and
 * a port (defport when none is given).  Returns 0 or -1 with err set.
 */
int config_split_address(const char *text, uint16_t defport, char **host,
    uint16_t *port, char *err, size_t err_len);

/* Writes every option with its default and help, in config-file form. */
void config_print_defaults(FILE *fp);

/*
 * Parses a value of the given type (for INT/SIZE/DURATION into *num,
 * checking min..max; BOOL into *num as 0/1; ENUM into *num as the index
 * of the word).  Returns 0 or -1 with a reason in err.
 */
int config_parse_value(const struct config_option *o, const char *text,
    uint64_t *num, char *err, size_t err_len);

#endif

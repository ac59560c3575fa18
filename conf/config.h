/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_CONTROL_PORTS 16
#define CONFIG_DEFAULT_PATH	 "/etc/ftp-alg/ftp-alg.conf"

#define CONFIG_MAX_WORKERS  16
#define CONFIG_MAX_SERVERS  32
#define CONFIG_MAX_CLASSES  16
#define CONFIG_MAX_PREFIXES 8
#define CONFIG_MAX_OUTSIDE  8

/* Where a setting came from: origin:line in a file, or a command-line flag named by origin (line 0). */
struct cfg_where {
	const char *origin; /* NULL: the default */
	int line;
};

/* [server NAME]: a published FTP server; ftp-alg forwards its control port too. */
struct cfg_server {
	char name[32];
	int family;
	uint8_t pub[16];
	uint16_t pub_port;
	uint8_t addr[16];
	uint16_t port;
	uint16_t passive_lo, passive_hi;
	unsigned max_sessions; /* 0: no limit of its own */
	bool has_masq;
	int masq_family;
	uint8_t masq[16];
	int line; /* where the section starts, for messages */
	int passive_line, masq_line;
};

/* [class NAME]: what clients from some prefixes are told (split horizon). */
struct cfg_class {
	char name[32];
	struct {
		int family;
		uint8_t net[16];
		uint8_t plen;
	} from[CONFIG_MAX_PREFIXES];
	unsigned nfrom;
	bool no_rewrite;
	bool has_masq;
	int masq_family;
	uint8_t masq[16];
	int line;
	int masq_line;
};

struct alg_config {
	uint16_t control_ports[CONFIG_MAX_CONTROL_PORTS];
	unsigned ncontrol_ports;
	bool has_public4;
	uint8_t public4[4];		 /* MasqueradeAddress */
	uint16_t passive_lo, passive_hi; /* PassivePorts; 0 = keep the server's port */
	uint16_t queue;
	unsigned workers;	  /* queue threads; worker k uses queues queue+2k and queue+2k+1 */
	uint32_t pinhole_timeout; /* seconds */
	uint16_t min_data_port;	  /* PORT/EPRT below this are refused */
	bool keep_reply_length;	  /* 227/229 rewritten at their own length where their text allows */
	bool high_availability;	  /* pinholes recorded in conntrack labels for a peer gateway */
	/* Not a setting: the bench's floor queues the server's SYN-ACK too, every control packet but bare ACKs. */
	bool queue_synack;
	unsigned max_pinholes_per_session;
	unsigned max_pinholes_per_client;
	unsigned max_pinholes; /* all sessions together */
	unsigned max_sessions;
	unsigned max_sessions_per_client;
	/* Held segments (a partial PORT/EPRT, a split 227): all clients, and one client address. */
	unsigned hold_max;
	unsigned hold_max_per_client;
	int log_level;
	char table[32];
	char user[32]; /* run as this user after start-up */
	/* Outside: interfaces whose far side is outside, besides those of the default routes. */
	char outside[CONFIG_MAX_OUTSIDE][16];
	unsigned noutside;
	char control_group[32]; /* the control socket's group; empty: ftp-alg if that group exists */
	struct cfg_server servers[CONFIG_MAX_SERVERS];
	unsigned nservers;
	struct cfg_class classes[CONFIG_MAX_CLASSES];
	unsigned nclasses;
	const char *file; /* the file the sections came from */
	struct cfg_where at_control_ports, at_public4, at_passive, at_queue, at_workers, at_user, at_control_group;
};

/* The [server] section whose public address and port a connection was made to, or NULL. */
const struct cfg_server *config_server_for(const struct alg_config *c, int family, const uint8_t *addr, uint16_t port);
/* The first [class] whose From contains addr, or NULL. */
const struct cfg_class *config_class_for(const struct alg_config *c, int family, const uint8_t *addr);

void config_defaults(struct alg_config *c);

/* A problem with a setting: origin:line, or the flag named by origin when line is 0. */
typedef void config_report_fn(void *ctx, const char *origin, int line, const char *msg);

/*
 * One global "Key = value" setting, from a file line or from the flag named
 * by origin (line 0): the file and the flags go through this one setter.
 * A bad value is reported and leaves the setting as it was; returns 0 or a
 * negative errno.
 */
int config_set(struct alg_config *c, const char *key, const char *value, const char *origin, int line,
	       config_report_fn *report, void *ctx);

/*
 * Parse a whole file's text (pure: no I/O). Every bad line and every bad
 * section is reported; returns 0 or -EINVAL. The sections are replaced.
 */
int config_parse(struct alg_config *c, const char *buf, size_t len, const char *origin, config_report_fn *report,
		 void *ctx);

/* Read and parse a file: 0, -EINVAL after reporting, or -errno if it cannot be read (a directory: -EISDIR). */
int config_load(struct alg_config *c, const char *path, config_report_fn *report, void *ctx);
/* The same from an open file (read from offset 0, not closed); path names it in messages. */
int config_load_fd(struct alg_config *c, int fd, const char *path, config_report_fn *report, void *ctx);

/*
 * What start-up and --check-config both refuse once the file and the flags
 * are in: queue numbers beyond 65535, PassivePorts ranges overlapping each
 * other or a control or published port, and, with lookup_user, a User that
 * does not exist. Reports each problem; returns 0 or -EINVAL.
 */
int config_check(const struct alg_config *c, bool lookup_user, config_report_fn *report, void *ctx);

int config_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi);

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_CONTROL_PORTS 16
#define CONFIG_DEFAULT_PATH "/etc/ftp-alg/ftp-alg.conf"

struct alg_config {
	uint16_t control_ports[CONFIG_MAX_CONTROL_PORTS];
	unsigned ncontrol_ports;
	bool has_public4;
	uint8_t public4[4]; /* MasqueradeAddress */
	uint16_t passive_lo, passive_hi; /* PassivePorts; 0 = keep the server's port */
	uint16_t queue;
	uint32_t pinhole_timeout; /* seconds */
	uint16_t min_data_port;	  /* PORT/EPRT below this are refused */
	unsigned max_pinholes_per_session;
	unsigned max_sessions;
	int log_level;
	char table[32];
};

void config_defaults(struct alg_config *c);

/*
 * Parse one "Key = value" setting. Returns 0 or a negative errno and an
 * explanation in err.
 */
int config_set(struct alg_config *c, const char *key, const char *value, char *err, size_t errlen);

/*
 * Parse a file. Every bad line is reported through report(file, line, msg);
 * returns 0, the number of bad lines as -EINVAL, or -errno if unreadable.
 */
int config_load(struct alg_config *c, const char *path,
		void (*report)(void *ctx, const char *path, int line, const char *msg), void *ctx);

int config_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Any bytes: the parser and the checks must not crash, and a file they accept must hold sane values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count(void *ctx, const char *origin, int line, const char *msg)
{
	(void)origin;
	/* Every report names a line of the file, or none for a default. */
	if (line < 0 || !msg[0])
		abort();
	(*(unsigned *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alg_config c;
	unsigned n = 0;
	config_defaults(&c);
	int r = config_parse(&c, (const char *)data, size, "fuzz.conf", count, &n);
	if ((r == 0) != (n == 0))
		abort();
	r = config_check(&c, false, count, &n);
	if (r == 0 && n == 0) {
		if (c.ncontrol_ports == 0 || c.ncontrol_ports > CONFIG_MAX_CONTROL_PORTS)
			abort();
		if (c.passive_lo > c.passive_hi || (unsigned)c.queue + 2 * c.workers - 1 > 65535)
			abort();
		for (unsigned i = 0; i < c.nservers; i++)
			if (!c.servers[i].pub_port || !c.servers[i].port ||
			    (c.servers[i].has_masq && c.servers[i].masq_family != c.servers[i].family))
				abort();
		for (unsigned i = 0; i < c.nclasses; i++)
			if (c.classes[i].nfrom == 0)
				abort();
	}
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "daemon.h"

/* ftp-alg status|reload|takeover: talk to a running daemon. */
int control_client(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
	    {"control-socket", required_argument, NULL, OPT_SOCKET},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *path = CONTROL_DEFAULT_PATH;
	bool json = false, prom = false;
	int o;
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == OPT_JSON && strcmp(argv[1], "status") == 0)
			json = true;
		else if (o == OPT_PROMETHEUS && strcmp(argv[1], "status") == 0)
			prom = true;
		else if (o == OPT_SOCKET)
			path = optarg;
		else {
			options_usage(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ftp-alg %s: unexpected argument '%s'\n", argv[1], argv[optind]);
		return 2;
	}
	bool reload = strcmp(argv[1], "reload") == 0;
	char *answer = NULL;
	size_t len = 0;
	/*
	 * The daemon reads its file unprivileged; the reload client opens it with the caller's rights
	 * (root, or systemd's ExecReload= as the daemon's user) and passes it along.
	 */
	int conf = -1;
	int r = 0;
	if (reload) {
		FILE *p = open_memstream(&answer, &len);
		if (!p)
			return 1;
		r = control_request(path, "config-path", -1, p);
		fclose(p);
		if (r == 0 && answer[0] == '/') {
			answer[strcspn(answer, "\n")] = '\0';
			conf = open(answer, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		}
		free(answer);
		answer = NULL;
	}
	FILE *f = open_memstream(&answer, &len);
	if (!f) {
		if (conf >= 0)
			close(conf);
		return 1;
	}
	if (r == 0)
		r = control_request(path,
				    reload			       ? "reload"
				    : strcmp(argv[1], "takeover") == 0 ? "takeover"
				    : prom			       ? "status prometheus"
				    : json			       ? "status json"
								       : "status",
				    conf, f);
	fclose(f);
	if (conf >= 0)
		close(conf);
	if (r < 0) {
		fprintf(stderr,
			"ftp-alg %s: cannot reach the daemon at %s: %s (is ftp-alg running? --control-socket?)\n",
			argv[1], path, strerror(-r));
		free(answer);
		return 1;
	}
	fputs(answer, stdout);
	int rc = strncmp(answer, "error", 5) == 0 || strstr(answer, "\nerror") ? 1 : 0;
	free(answer);
	return rc;
}

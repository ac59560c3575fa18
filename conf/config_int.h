/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the file reader (file.c) needs of the keys' meanings (config.c). */
#include <stddef.h>

#include "config.h"

/* One key of a [server] or [class] section: 0, or -EINVAL with err set. */
int config_set_server(struct cfg_server *sv, const char *key, const char *value, int line, char *err, size_t errlen);
int config_set_class(struct cfg_class *cl, const char *key, const char *value, int line, char *err, size_t errlen);

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "sandbox.h"

#include <cap-ng.h>
#include <errno.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif

static int drop_user(const char *user, char *why, unsigned long whylen)
{
	if (geteuid() != 0) {
		/* Started unprivileged (systemd User= with ambient CAP_NET_ADMIN): keep only that. */
		capng_clear(CAPNG_SELECT_BOTH);
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN);
		if (capng_apply(CAPNG_SELECT_BOTH) < 0) {
			snprintf(why, whylen, "cannot reduce capabilities to CAP_NET_ADMIN");
			return -EPERM;
		}
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(why, whylen, "no user '%s' to run as (set User or --user)", user);
		return -ENOENT;
	}
	capng_clear(CAPNG_SELECT_BOTH);
	capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN);
	int r = capng_change_id((int)pw->pw_uid, (int)pw->pw_gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	if (r < 0) {
		snprintf(why, whylen, "cannot switch to user '%s' keeping CAP_NET_ADMIN (capng_change_id %d)", user, r);
		return -EPERM;
	}
	return 0;
}

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#ifndef SANITIZED
/* Grouped by purpose, one comment per group; kept out of clang-format's reach. */
/* clang-format off */
static const int allowed[] = {
	/* the loop: poll, netlink and the control socket */
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(accept4),
	SCMP_SYS(close), SCMP_SYS(getsockname), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(fcntl),
	/* sd_notify and syslog open short-lived Unix sockets */
	SCMP_SYS(socket), SCMP_SYS(connect),
	/* memory */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(mprotect),
	/* reload reads the configuration; shutdown removes the control socket */
	SCMP_SYS(openat), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(unlink),
	/* time, signals, exit */
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(timerfd_settime),
	SCMP_SYS(timerfd_create), SCMP_SYS(signalfd4),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(futex),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	SCMP_SYS(getrandom), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall), SCMP_SYS(tgkill),
	/* the queue workers: threads start after the privileges are dropped */
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield),
	SCMP_SYS(rt_sigaction), /* glibc sets up its thread signals at the first pthread_create */
};
/* clang-format on */
#endif

static int filter(char *why, unsigned long whylen)
{
#ifdef SANITIZED
	(void)why;
	(void)whylen;
	return 1; /* the sanitizer runtime needs calls no daemon should have */
#else
	/* Valgrind runs the daemon in its own process and needs its own calls. */
	if (RUNNING_ON_VALGRIND)
		return 2;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		snprintf(why, whylen, "seccomp_init failed");
		return -ENOMEM;
	}
	int r = 0;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0)
		snprintf(why, whylen, "cannot load the seccomp filter: %s", strerror(-r));
	return r;
#endif
}

int sandbox_enter(const char *user, char *why, unsigned long whylen)
{
	int r = drop_user(user, why, whylen);
	if (r < 0)
		return r;
	r = filter(why, whylen);
	if (r == 1)
		snprintf(why, whylen, "sanitizer build: no seccomp filter");
	else if (r == 2)
		snprintf(why, whylen, "running under valgrind: no seccomp filter");
	return r < 0 ? r : 0;
}

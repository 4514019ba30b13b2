#define _GNU_SOURCE
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsutil.h"

static void handled_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* Signals ignored when the runner started, plus SIGPIPE: what a child must
 * put back to default, since exec keeps ignored dispositions. A bit per
 * signal number, 1 to 64. */
static uint64_t ignored;

/* The kernel's struct sigaction. glibc's sigaction() refuses the signals it
 * reserves for itself (32 and 33), yet a parent can leave those ignored
 * too, and a task must not inherit that: use the system call. */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

static int raw_sigaction(int sig, const struct kernel_sigaction *act, struct kernel_sigaction *old)
{
	return (int)syscall(SYS_rt_sigaction, sig, act, old, sizeof(uint64_t));
}

int signals_setup(void)
{
	ignored = UINT64_C(1) << (SIGPIPE - 1);
	for (int sig = 1; sig <= 64; sig++) {
		struct kernel_sigaction old;
		if (raw_sigaction(sig, NULL, &old) == 0 && old.handler == SIG_IGN)
			ignored |= UINT64_C(1) << (sig - 1);
	}
	sigset_t set;
	handled_set(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	struct sigaction ign = { .sa_handler = SIG_IGN };
	if (sigaction(SIGPIPE, &ign, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int signals_read(int sigfd)
{
	struct signalfd_siginfo si;
	ssize_t n = xread(sigfd, &si, sizeof si);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	if (n != (ssize_t)sizeof si) {
		errno = EIO;
		return -1;
	}
	return (int)si.ssi_signo;
}

void signals_reset_child(void)
{
	const struct kernel_sigaction dfl = { .handler = SIG_DFL };
	for (int sig = 1; sig <= 64; sig++)
		if (ignored & (UINT64_C(1) << (sig - 1)))
			raw_sigaction(sig, &dfl, NULL);
	sigset_t empty;
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);
}

const char *signals_name(int signo)
{
	static const struct { int no; const char *name; } names[] = {
		{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" },
		{ SIGILL, "SIGILL" }, { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" },
		{ SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" },
		{ SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
		{ SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
		{ SIGSTKFLT, "SIGSTKFLT" }, { SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" },
		{ SIGSTOP, "SIGSTOP" }, { SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" },
		{ SIGTTOU, "SIGTTOU" }, { SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" },
		{ SIGXFSZ, "SIGXFSZ" }, { SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" },
		{ SIGWINCH, "SIGWINCH" }, { SIGIO, "SIGIO" }, { SIGPWR, "SIGPWR" },
		{ SIGSYS, "SIGSYS" },
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (names[i].no == signo)
			return names[i].name;
	return signo >= SIGRTMIN && signo <= SIGRTMAX ? "SIGRT" : "SIG?";
}

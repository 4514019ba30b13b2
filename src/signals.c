#define _GNU_SOURCE
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
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
 * put back to default, since exec keeps ignored dispositions. */
static sigset_t ignored;

int signals_setup(void)
{
	sigemptyset(&ignored);
	sigaddset(&ignored, SIGPIPE);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			sigaddset(&ignored, sig);
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
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&ignored, sig) == 1)
			sigaction(sig, &dfl, NULL);
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

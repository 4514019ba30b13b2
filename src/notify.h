/* notify: the systemd readiness protocol (sd_notify(3)) without libsystemd.
 *
 * Under Type=notify, systemd passes the path of a datagram socket in
 * NOTIFY_SOCKET; a message is one datagram of "KEY=VALUE" lines, e.g.
 * "READY=1\nSTATUS=3 queued, 1 running". A name starting with '@' is an
 * abstract socket (the '@' stands for the leading NUL byte).
 *
 * notify_init() reads NOTIFY_SOCKET once and removes it from the
 * environment, so tasks and hooks never see it (and cannot speak for the
 * watcher). Without it every call does nothing and succeeds. The one piece
 * of state is that address. */
#ifndef SPOOLRUN_NOTIFY_H
#define SPOOLRUN_NOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Parses a NOTIFY_SOCKET value into an address: "/path" or "@abstract".
 * -1 for an empty, relative or too long name. */
int notify_address(const char *value, struct sockaddr_un *sa, socklen_t *len);

/* Reads and unsets NOTIFY_SOCKET; false when it is not set (or invalid,
 * which is logged). */
bool notify_init(void);

/* Sends msg as one datagram; 0 when sent or when there is no socket,
 * -1 with errno when sending failed. */
int notify_send(const char *msg);

#endif

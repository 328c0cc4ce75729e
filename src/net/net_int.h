/* Declarations private to src/net (not part of the module interface):
 * the connection struct and helpers shared between the net source files.
 * Tests in this folder may include it. */
#ifndef MWL_NET_NET_INT_H
#define MWL_NET_NET_INT_H

#include <sys/socket.h>

#include "net/net.h"

struct mwl_conn {
    const mwl_conn_ops *ops;
    void *impl;
    const mwl_mem *mem;
    int fd;
    bool nonblocking;
    unsigned wants;
    int sys_errno;
    char peer[MWL_NET_ADDRSTRLEN];
};

/* Sets FD_CLOEXEC and, if `nonblocking`, O_NONBLOCK (clears it otherwise).
 * Returns 0 or -1 with errno set. */
int mwl_net_fd_setup(int fd, bool nonblocking);

/* Maps a failed socket call's errno: EPIPE/ECONNRESET -> MWL_E_CLOSED,
 * everything else MWL_E_IO. */
int mwl_net_errno_status(int err);

/* The TCP implementation of mwl_conn_ops (tcp.c); impl is unused. */
extern const mwl_conn_ops mwl_tcp_conn_ops;

#endif

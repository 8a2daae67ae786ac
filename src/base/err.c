/*
 * err.c — the error table.  PX_ERRNO_MAP in plexus/base.h is the one list;
 * this file expands it into the message and name lookups.
 */
#include <errno.h>

#include "base/px_internal.h"

const char *px_strerror(int err) {
  switch (err) {
#define PX_ERR_MSG(name, code, msg)                                            \
  case code:                                                                   \
    return msg;
    PX_ERRNO_MAP(PX_ERR_MSG)
#undef PX_ERR_MSG
  default:
    return "unknown error";
  }
}

const char *px_err_name(int err) {
  switch (err) {
#define PX_ERR_NAME(name, code, msg)                                           \
  case code:                                                                   \
    return "PX_E" #name;
    PX_ERRNO_MAP(PX_ERR_NAME)
#undef PX_ERR_NAME
  default:
    return "PX_EUNKNOWN";
  }
}

int px_err_from_errno(int e) {
  switch (e) {
  case 0:
    return PX_EOK;
  case ENOMEM:
    return PX_ENOMEM;
  case EINVAL:
    return PX_EINVAL;
  case ENOENT:
    return PX_ENOENT;
  case EEXIST:
    return PX_EEXIST;
  case EACCES:
  case EPERM:
    return PX_EPERM;
  case EFBIG:
  case E2BIG:
  case EMSGSIZE:
    return PX_ETOOBIG;
  case ETIMEDOUT:
    return PX_ETIMEOUT;
  case ECONNRESET:
  case EPIPE:
  case ENOTCONN:
    return PX_ECLOSED;
  case ECONNREFUSED:
  case EHOSTUNREACH:
  case ENETUNREACH:
  case EADDRINUSE:
  case EADDRNOTAVAIL:
    return PX_ENET;
  case EBUSY:
  case EAGAIN:
    return PX_EBUSY;
  default:
    return PX_EIO;
  }
}

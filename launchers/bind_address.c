/* Makes a process's wildcard listeners listen on one IPv4 address only.
 *
 * Reverb and Courier (Launchpad's RPC) listen on [::]:port, every interface
 * of the host, and neither lets the caller choose the address: gRPC's bind is
 * compiled into them. On a cluster their servers must be reachable on the
 * cluster network and nowhere else (they have no authentication). Loaded with
 * LD_PRELOAD, this library replaces bind(2): a bind to the wildcard address
 * (0.0.0.0, or :: on a dual-stack socket, which gRPC uses) becomes a bind to
 * the address in PAC_BIND_ADDRESS; every other bind is passed through as is.
 * Without PAC_BIND_ADDRESS it changes nothing.
 *
 * Built by `make setup` into the venv (launchers/binding.py finds it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_function)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *address, socklen_t length) {
  static bind_function real_bind = NULL;
  if (real_bind == NULL) {
    real_bind = (bind_function)dlsym(RTLD_NEXT, "bind");
    if (real_bind == NULL) {
      errno = ENOSYS;
      return -1;
    }
  }
  const char *wanted = getenv("PAC_BIND_ADDRESS");
  struct in_addr ipv4;
  if (wanted == NULL || address == NULL ||
      inet_pton(AF_INET, wanted, &ipv4) != 1) {
    return real_bind(fd, address, length);
  }
  if (address->sa_family == AF_INET &&
      length >= (socklen_t)sizeof(struct sockaddr_in)) {
    struct sockaddr_in rewritten;
    memcpy(&rewritten, address, sizeof(rewritten));
    if (rewritten.sin_addr.s_addr == htonl(INADDR_ANY)) {
      rewritten.sin_addr = ipv4;
      return real_bind(fd, (const struct sockaddr *)&rewritten,
                       sizeof(rewritten));
    }
  } else if (address->sa_family == AF_INET6 &&
             length >= (socklen_t)sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 rewritten;
    memcpy(&rewritten, address, sizeof(rewritten));
    if (IN6_IS_ADDR_UNSPECIFIED(&rewritten.sin6_addr)) {
      /* The IPv4 address as an IPv4-mapped IPv6 one, ::ffff:a.b.c.d. */
      memset(&rewritten.sin6_addr, 0, sizeof(rewritten.sin6_addr));
      rewritten.sin6_addr.s6_addr[10] = 0xff;
      rewritten.sin6_addr.s6_addr[11] = 0xff;
      memcpy(&rewritten.sin6_addr.s6_addr[12], &ipv4, sizeof(ipv4));
      return real_bind(fd, (const struct sockaddr *)&rewritten,
                       sizeof(rewritten));
    }
  }
  return real_bind(fd, address, length);
}

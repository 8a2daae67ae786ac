/*
 * plexus/node.h — the node runtime: drives the protocol cores for real.
 *
 * A node lives in a home directory (docs/config.md):
 *   DIR/config       INI-like configuration, written by `plexus init`
 *   DIR/node.key     the node's Ed25519 identity, mode 0600
 *   DIR/node.sock    control socket (unix stream; one JSON line per reply)
 *   DIR/node.lock    held (flock) while a node runs: one node per home
 *   DIR/gossip.log   one line per gossip message delivered to this node
 *
 * The runtime is a libuv loop on one thread: TCP listener and connections,
 * a tick timer, SIGINT/SIGTERM handlers and the control socket.  It feeds
 * socket events into the p2p core and performs the effects the core asks
 * for (DESIGN.md principle 1).
 *
 * Control protocol (used by `plexus status`, `plexus gossip`, tests): the
 * client connects to DIR/node.sock, writes one command line, and reads one
 * JSON object line back:
 *   status                      node id, addresses, peers, counters
 *   gossip TOPIC TEXT           broadcast TEXT; replies with its id
 *   request NODE_ID TEXT        echo request to a peer; replies with answer
 *   stop                        shut the node down cleanly
 */
#ifndef PLEXUS_NODE_H
#define PLEXUS_NODE_H

#include "plexus/base.h"
#include "plexus/p2p.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_NODE_CONFIG_FILE "config"
#define PX_NODE_KEY_FILE "node.key"
#define PX_NODE_SOCK_FILE "node.sock"
#define PX_NODE_LOCK_FILE "node.lock"
#define PX_NODE_GOSSIP_LOG "gossip.log"

/* Request methods the node answers itself. */
#define PX_NODE_METHOD_ECHO 1

typedef struct px_node px_node_t;

/* Create a home directory: key, config.  `cfg` holds the options to write
 * (p2p.listen, p2p.bootstrap, p2p.network, ...); missing ones get defaults.
 * PX_EEXIST if DIR already holds a config. */
int px_node_init_home(const char *home, const px_config_t *cfg,
                      char node_id_out[PX_NODE_ID_HEX_LEN]);

/* Open a node: read DIR/config, apply `flags` (command-line overrides, may
 * be NULL), load the key, take the lock.  On error *errmsg (if given) is a
 * one-line explanation for the user in a static or node-owned buffer. */
int px_node_open(const char *home, const px_config_t *flags, px_node_t **out,
                 char *errmsg, size_t errcap);
/* Run until stopped by a signal or a `stop` command; returns 0 on a clean
 * stop. */
int px_node_run(px_node_t *n);
/* Ask a running node to stop (thread-safe: may be called from any thread). */
void px_node_stop(px_node_t *n);
void px_node_free(px_node_t *n);

/* Hooks for programs that embed a node (benchmarks, tests, later the
 * gateway).  They run on the node's loop thread; the effect passed is
 * borrowed for the call.  Set them before px_node_run. */
typedef struct {
  void (*on_gossip)(px_node_t *n, const px_p2p_fx_t *fx, void *ud);
  void (*on_direct)(px_node_t *n, const px_p2p_fx_t *fx, void *ud);
  void (*on_peer)(px_node_t *n, const px_p2p_fx_t *fx, void *ud); /* up/down */
  void *ud;
} px_node_hooks_t;
void px_node_set_hooks(px_node_t *n, const px_node_hooks_t *h);

/* Run fn(n, p2p, ud) on the node's loop thread soon (thread-safe; calls are
 * run in order).  Effects fn causes on the core are performed after it. */
typedef void (*px_node_call_fn)(px_node_t *n, px_p2p_t *p2p, void *ud);
int px_node_call(px_node_t *n, px_node_call_fn fn, void *ud);
/* The loop's current time in ms (use from hooks and calls). */
uint64_t px_node_now(px_node_t *n);
/* Bytes queued to be written to a peer's socket, or 0 if not connected
 * (for senders that pace themselves); loop thread only. */
size_t px_node_send_queue(px_node_t *n, const uint8_t node_pk[PX_PK_LEN]);
/* Set by px_node_open; loop thread only after px_node_run starts. */
px_p2p_t *px_node_p2p(px_node_t *n);

/* Fill cfg with p2p settings from a config (used by px_node_open; exposed
 * for tests).  Unknown p2p.* keys are an error (typos are not ignored). */
int px_node_p2p_config(const px_config_t *c, px_p2p_config_t *out, char *errmsg,
                       size_t errcap);

/* Connect to a running node's control socket, send one command line and
 * read the one-line reply into *reply (heap, caller frees with px_free).
 * PX_ENOENT/PX_ENET when no node is running there. */
int px_node_control(const char *home, const char *command, char **reply,
                    uint64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_NODE_H */

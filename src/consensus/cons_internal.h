/*
 * cons_internal.h — helpers shared by the consensus sources (not public).
 */
#ifndef PX_CONS_INTERNAL_H
#define PX_CONS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/consensus.h"

/* Sign bytes are at most 2+1+4+63+8+4+4+2+32 bytes. */
#define PX_CONS_SB_MAX 160

/* Canonical sign bytes into a fixed buffer; returns their length.
 * value_hash is id(v) of the proposal's value. */
size_t px_cons_proposal_sb(const char *chain_id, const px_cons_proposal_t *p,
                           const uint8_t value_hash[PX_HASH_LEN],
                           uint8_t out[PX_CONS_SB_MAX]);
size_t px_cons_vote_sb(const char *chain_id, const px_cons_vote_t *v,
                       uint8_t out[PX_CONS_SB_MAX]);
/* Vote with the given fields as a precommit for a commit signature. */
void px_cons_commit_vote(const px_cons_commit_t *c, size_t i,
                         px_cons_vote_t *v);

#endif

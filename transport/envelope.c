/* transport/envelope.c - checks the 40-byte header at the front of every
 * frame. Bytes only: what a frame means is runtime's business. The code
 * is in envelope.h, inline for the send and receive paths; this is the
 * parser's one out-of-line copy. */
#include "transport/envelope.h"

int
tr__env_parse(const uint8_t *frame, size_t len, tr__env_t *env,
              const char **tag, size_t *taglen, const uint8_t **payload,
              size_t *plen)
{
    return tr__env_parse_inline(frame, len, env, tag, taglen, payload, plen);
}

/* transport/envelope.c - writes and checks the 40-byte header at the front
 * of every frame. Bytes only: what a frame means is runtime's business.
 * Integers go through envelope.h's tr__put64 and friends. */
#include "transport/envelope.h"

#include <string.h>


void
tr__env_write(uint8_t *hdr, const tr__env_t *env, size_t taglen)
{
    hdr[0] = TR__ENV_MAGIC;
    hdr[1] = TR__ENV_VERSION;
    hdr[2] = env->flags;
    hdr[3] = (uint8_t)taglen;
    tr__put32(hdr + 4, (uint32_t)env->code);
    tr__put64(hdr + 8, env->sender);
    tr__put64(hdr + 16, env->target);
    tr__put64(hdr + 24, env->corr);
    tr__put64(hdr + 32, env->deadline_ns);
}

int
tr__env_parse(const uint8_t *frame, size_t len, tr__env_t *env,
              const char **tag, size_t *taglen, const uint8_t **payload,
              size_t *plen)
{
    /* Magic and version come before the length check: a later version may
     * have another header size, and "wrong version" says more than
     * "malformed". */
    if (frame == NULL || len < 2 || frame[0] != TR__ENV_MAGIC)
        return TR_EPROTO;
    if (frame[1] != TR__ENV_VERSION)
        return TR_EVERSION;
    if (len < TR__ENV_MIN || (frame[2] & ~TR__F_KNOWN) != 0)
        return TR_EPROTO;

    size_t n = frame[3];
    const uint8_t *t = frame + TR__ENV_HDR;
    /* n + 1 for the NUL; len >= TR__ENV_HDR was checked above. One strnlen
     * both finds a NUL inside the tag and checks the one after it. */
    if (n == 0 || n > TR_TAG_MAX || n + 1 > len - TR__ENV_HDR ||
        strnlen((const char *)t, n + 1) != n)
        return TR_EPROTO;

    uint32_t code = tr__get32(frame + 4);
    env->flags = frame[2];
    /* Sign from bit 31 without an implementation-defined conversion. */
    env->code = code < 0x80000000u ? (int32_t)code
                                   : (int32_t)(code - 0x80000000u) + INT32_MIN;
    env->sender = tr__get64(frame + 8);
    env->target = tr__get64(frame + 16);
    env->corr = tr__get64(frame + 24);
    env->deadline_ns = tr__get64(frame + 32);
    *tag = (const char *)t;
    *taglen = n;
    *payload = t + n + 1;
    *plen = len - TR__ENV_HDR - n - 1;
    return 0;
}

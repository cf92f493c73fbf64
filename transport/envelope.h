/* transport/envelope.h - the fixed binary header at the front of every
 * troupe frame. Knows bytes only: no sockets, no actors.
 *
 * One ZeroMQ frame carries one message:
 *
 *   offset size  field
 *   0      1     magic 0x54 ('T')
 *   1      1     version (1)
 *   2      1     flags (TR__F_*)
 *   3      1     tag length n (1..TR_TAG_MAX)
 *   4      4     code, int32: system kind, or the error of an error reply
 *   8      8     sender id
 *   16     8     target id
 *   24     8     correlation id (0 = none)
 *   32     8     deadline, CLOCK_MONOTONIC nanoseconds (0 = none)
 *   40     n     tag bytes (no NUL inside)
 *   40+n   1     NUL (so the tag can be read in place as a C string)
 *   41+n   ...   payload: zero or more msgpack values
 *
 * All integers little-endian. docs/protocol.md is the reference text; keep
 * the two in step. Why binary and not msgpack: measured, a msgpack-encoded
 * header cost a third of inproc throughput, a fixed one nothing visible.
 */
#ifndef TR_TRANSPORT_ENVELOPE_H
#define TR_TRANSPORT_ENVELOPE_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "troupe.h"

#define TR__ENV_MAGIC 0x54
#define TR__ENV_VERSION 1
#define TR__ENV_HDR 40
/* The smallest valid frame: header, a one-byte tag, its NUL. */
#define TR__ENV_MIN (TR__ENV_HDR + 2)

enum {
    TR__F_REQUEST = 1 << 0, /* an ask: the sender waits for a reply */
    TR__F_REPLY = 1 << 1,   /* a reply: correlation id names the ask */
    TR__F_ERROR = 1 << 2,   /* with REPLY: the ask failed with code */
    TR__F_SYSTEM = 1 << 3,  /* a system message: code is its kind */
    TR__F_BATCH = 1 << 4,   /* to an inbox, from the same node: replies
                             * back to back, each a whole frame after
                             * its length (u32); tag "$batch", code = how
                             * many (tr__port_send_batch) */
};
#define TR__F_KNOWN 0x1f

/* Kinds of system messages (the code field when TR__F_SYSTEM is set).
 * Each carries two msgpack integers back to back, a and b. */
enum {
    TR__SYS_STOP = 1,   /* to an inbox: stop; a = reason, b = 0 */
    TR__SYS_DOWN = 2,   /* to an inbox: a watched actor ended; a = its id,
                         * b = its exit reason */
    TR__SYS_SYNC = 3,   /* to a MAILBOX: answer with SYNCED once read;
                         * a = token, b = 0 */
    TR__SYS_SYNCED = 4, /* to an inbox: every message sent to the mailbox
                         * before the SYNC was read; a = the mailbox owner's
                         * id, b = the token */
    TR__SYS_EXIT = 5,   /* to an inbox: a linked actor ended; a = its id,
                         * b = its exit reason */
    TR__SYS_EXPOSE = 6, /* to an inbox: bind your endpoints on ipc too
                         * (another process wants them); a = b = 0 */
    TR__SYS_PING = 7,   /* to an inbox: answer PONG; a = token, b = 0 */
    TR__SYS_PONG = 8,   /* to an inbox: a = the pinged id, b = the token */
    TR__SYS_RMON = 9,   /* to a node gateway's inbox: watch actor a of
                         * another node for the sender (it gets DOWN);
                         * b = 1: for the gateway itself (names cache) */
};

typedef struct tr__env {
    uint8_t flags;
    int32_t code;
    tr_id_t sender;
    tr_id_t target;
    uint64_t corr;
    uint64_t deadline_ns;
} tr__env_t;

/* Offsets of the fields a gateway rewrites in place (docs/protocol.md). */
#define TR__ENV_OFF_TARGET 16
#define TR__ENV_OFF_DEADLINE 32

/* Little-endian integers at any alignment: memcpy plus htole/letoh, a
 * single move on x86 (profiled: a byte loop cost more than the rest of a
 * send). */
static inline void
tr__put64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}

static inline uint64_t
tr__get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static inline void
tr__put32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}

static inline uint32_t
tr__get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

/* Write the 40-byte header for env and a tag of taglen bytes into hdr
 * (inline: it is on every send). */
static inline void
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

/* Parse a whole frame. On 0: *env filled, *tag points at the NUL-terminated
 * tag inside frame (length *taglen), *payload and *plen at the payload.
 * Errors: TR_EPROTO (short, bad magic, bad tag, unknown flags), TR_EVERSION.
 * Never reads outside frame[0..len). */
int tr__env_parse(const uint8_t *frame, size_t len, tr__env_t *env,
                  const char **tag, size_t *taglen, const uint8_t **payload,
                  size_t *plen);

/* tr__env_parse for the receive path, inlined. */
static inline int
tr__env_parse_inline(const uint8_t *frame, size_t len, tr__env_t *env,
                     const char **tag, size_t *taglen,
                     const uint8_t **payload, size_t *plen)
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
    /* n + 1 for the NUL; len >= TR__ENV_HDR was checked above. No NUL
     * inside the tag: a loop, as tags are short (a strnlen call cost more
     * than the rest of the parse, profiled). */
    if (n == 0 || n > TR_TAG_MAX || n + 1 > len - TR__ENV_HDR || t[n] != 0)
        return TR_EPROTO;
    for (size_t i = 0; i < n; i++)
        if (t[i] == 0)
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

#endif

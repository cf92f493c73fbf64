/* transport/error.c - texts of the TR_E* codes, from TR_ERRNO_MAP. */
#include <stdio.h>

#include "troupe.h"

const char *
tr_strerror(int rc)
{
    /* Thread-local so that unknown codes can be formatted without a race. */
    static _Thread_local char unknown[32];

    switch (rc) {
    case 0:
        return "success";
#define TR__ERRNO_TEXT(name, value, text)                                   \
    case value:                                                             \
        return text;
        TR_ERRNO_MAP(TR__ERRNO_TEXT)
#undef TR__ERRNO_TEXT
    default:
        snprintf(unknown, sizeof unknown, "Unknown error #%d", rc);
        return unknown;
    }
}

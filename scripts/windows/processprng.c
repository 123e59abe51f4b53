/* bcryptprimitives.dll for Wine 8, which lacks it: Rust's std on Windows imports
 * ProcessPrng from it and every Rust binary dies at start (0xc0000135) without it.
 * Fills the buffer from RtlGenRandom (advapi32's SystemFunction036). Test prefix only. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

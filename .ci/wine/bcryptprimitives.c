/*
 * A stand-in bcryptprimitives.dll for Wine 8, which has none.
 *
 * Rust's standard library (1.78 and later) on Windows imports ProcessPrng
 * from bcryptprimitives.dll for every HashMap seed and random number, so
 * without this DLL no Rust program starts under Wine 8. ProcessPrng here
 * fills the buffer from advapi32's SystemFunction036 (RtlGenRandom), which
 * Wine implements over the host's random source. Where Wine ships a
 * bcryptprimitives.dll of its own (later releases do), .ci/wine/run leaves
 * it in place and this file is unused.
 *
 * Built by .ci/wine/run (the cargo runner), into the Wine prefix:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *     bcryptprimitives.c bcryptprimitives.def -ladvapi32
 * and copied into the Wine prefix's system32. Test use only: it is never
 * shipped.
 */
#include <windows.h>

/* RtlGenRandom's real name; advapi32 exports it under this one only. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* SystemFunction036 takes a ULONG; fill larger buffers in pieces. */
    while (length > 0) {
        ULONG piece = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, piece))
            return FALSE;
        data += piece;
        length -= piece;
    }
    return TRUE;
}

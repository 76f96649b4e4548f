/* Stand-in for the SDK's assert.h (see README.md). */
#pragma once
#ifdef NDEBUG
#define assert(x) ((void)0)
#else
#define assert(x) ((x) ? (void)0 : __builtin_trap())
#endif

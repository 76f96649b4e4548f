/* Stand-in for the SDK's stdlib.h (see README.md): ring includes it, uses nothing. */
#pragma once
#include <stddef.h>
void abort(void);

/* The few libc declarations zstd's decoder needs, for a freestanding wasm32 build (shim.c). */
#ifndef INR_STRING_H
#define INR_STRING_H
#include <stddef.h>
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *p, int v, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif

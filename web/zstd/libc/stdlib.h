#ifndef INR_STDLIB_H
#define INR_STDLIB_H
#include <stddef.h>
void *malloc(size_t n);
void *calloc(size_t n, size_t s);
void free(void *p);
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void abort(void);
char *getenv(const char *name);
#endif

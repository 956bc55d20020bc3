#ifndef INR_STDIO_H
#define INR_STDIO_H
#include <stddef.h>
typedef struct INR_FILE FILE;
extern FILE *stderr;
int fprintf(FILE *f, const char *fmt, ...);
#endif

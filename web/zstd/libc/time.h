#ifndef INR_TIME_H
#define INR_TIME_H
typedef long clock_t;
#define CLOCKS_PER_SEC 1000000
clock_t clock(void);
#endif

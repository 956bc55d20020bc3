/* web/'s zstd decoder: the official libzstd (the very source that Python's `zstandard`
 * 0.25.0 bundles, zstd 1.5.7), built by build.sh for wasm64 (memory64: size_t and the bit
 * containers 64 bits wide, so libzstd runs the code paths of a 64-bit host, Python's) and,
 * as a fallback, wasm32; and one entry point that does
 * what inrcodec's reference decoder asks of it:
 *
 *     zstandard.ZstdDecompressor().decompress(blob, max_output_size=cap, allow_extra_data=False)
 *
 * (python-zstandard's c-ext/decompressor.c, Decompressor_decompress), step for step: the
 * frame header, then ONE ZSTD_decompressStream call with the whole input and an output
 * buffer of the frame's content size (or `cap` when the header has none), then the same
 * checks on what it returned.  A freestanding build: a bump allocator that inr_decompress
 * resets at each call, and the mem* functions. */
#define ZSTD_STATIC_LINKING_ONLY
#include "zstd.h"

extern unsigned char __heap_base;
static size_t heap_top = 0;

void *malloc(size_t n) {
  if (!heap_top) heap_top = (size_t)&__heap_base;
  size_t p = (heap_top + 15) & ~(size_t)15;
  if (n > (size_t)0x7fffffff || p + n < p) return 0;
  size_t end = p + n, have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have) {
    size_t pages = (end - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
  }
  heap_top = end;
  return (void *)p;
}
void *calloc(size_t n, size_t s) {
  if (s && n > (size_t)-1 / s) return 0;
  void *p = malloc(n * s);
  if (p) __builtin_memset(p, 0, n * s);
  return p;
}
void free(void *p) { (void)p; }
void *memcpy(void *d, const void *s, size_t n) { return __builtin_memcpy(d, s, n); }
void *memmove(void *d, const void *s, size_t n) { return __builtin_memmove(d, s, n); }
void *memset(void *p, int v, size_t n) { return __builtin_memset(p, v, n); }
int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

/* Where the input goes (inr_input), and what a call leaves for JS to read. */
static unsigned char *input;
static size_t input_cap;
static void *out_ptr;
static size_t out_len, zstd_code;

/* Space for `n` input bytes; resets the heap (every earlier pointer is dead). */
__attribute__((export_name("inr_input"))) unsigned inr_input(unsigned n) {
  heap_top = 0;
  input = malloc(n ? n : 1);
  input_cap = n;
  return (unsigned)(size_t)input;
}
__attribute__((export_name("inr_out_ptr"))) unsigned inr_out_ptr(void) { return (unsigned)(size_t)out_ptr; }
__attribute__((export_name("inr_out_len"))) unsigned inr_out_len(void) { return out_len; }
/* libzstd's error code (ZSTD_ErrorCode) after INR_ZSTD_ERROR */
__attribute__((export_name("inr_zstd_code"))) unsigned inr_zstd_code(void) { return zstd_code; }
__attribute__((export_name("inr_zstd_version"))) unsigned inr_zstd_version(void) { return ZSTD_versionNumber(); }

enum {
  INR_OK = 0,
  INR_BAD_HEADER = 1,      /* "error determining content size from frame header" */
  INR_NO_SIZE = 2,         /* "could not determine content size in frame header" */
  INR_NO_MEMORY = 3,
  INR_ZSTD_ERROR = 4,      /* "decompression error: <libzstd's error>" */
  INR_INCOMPLETE = 5,      /* "decompression error: did not decompress full frame" */
  INR_WRONG_SIZE = 6,      /* "decompression error: decompressed N bytes; expected M" */
  INR_EXTRA_DATA = 7,      /* "compressed input contains N bytes of unused data, which is disallowed" */
};

/* Decompress the `n` bytes at inr_input's buffer; cap is max_output_size (0: none). */
__attribute__((export_name("inr_decompress"))) int inr_decompress(unsigned n, unsigned cap) {
  ZSTD_frameHeader fh;
  out_ptr = 0; out_len = 0; zstd_code = 0;
  if (n > input_cap) return INR_NO_MEMORY;
#if !defined(__wasm64__)
  /* The 32-bit build (the fallback where memory64 is missing) differs from a 64-bit
   * libzstd (Python's) on some corrupt frames its entropy decoders refuse or accept
   * differently (its bit containers are 32 bits wide), and on one header: a window log of
   * 31 (ZSTD_WINDOWLOG_MAX is 31 on 64-bit hosts, 30 on 32-bit ones). That one is made 30
   * here, which changes nothing else a 64-bit libzstd would do with the frame: decoded in
   * one pass (content size known, ZSTD_decompressStream's single-pass shortcut), the
   * window only sets the largest block, min(window, 128 KiB), the same for both; decoded
   * as a stream, both windows exceed the default limit of 2^27 and are refused alike. */
  if (n >= 6 && input[0] == 0x28 && input[1] == 0xb5 && input[2] == 0x2f && input[3] == 0xfd
      && !(input[4] & 0x20) && (input[5] >> 3) == 21) input[5] -= 8;
#endif
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  if (!dctx) return INR_NO_MEMORY;
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_format, ZSTD_f_zstd1);
  if (ZSTD_getFrameHeader_advanced(&fh, input, n, ZSTD_f_zstd1) != 0) return INR_BAD_HEADER;
  unsigned long long decompressedSize = fh.frameContentSize;
  size_t destCapacity;
  if (decompressedSize == 0) {
    out_ptr = input; out_len = 0;
    return INR_OK;
  }
  if (decompressedSize == ZSTD_CONTENTSIZE_UNKNOWN) {
    if (cap == 0) return INR_NO_SIZE;
    destCapacity = cap;
    decompressedSize = 0;
  } else {
    if (decompressedSize > 0x7fffffffULL) return INR_NO_MEMORY;
    destCapacity = (size_t)decompressedSize;
  }
  void *dst = malloc(destCapacity);
  if (!dst) return INR_NO_MEMORY;
  ZSTD_outBuffer outBuffer = { dst, destCapacity, 0 };
  ZSTD_inBuffer inBuffer = { input, n, 0 };
  size_t zresult = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer);
  if (ZSTD_isError(zresult)) { zstd_code = ZSTD_getErrorCode(zresult); return INR_ZSTD_ERROR; }
  if (zresult) return INR_INCOMPLETE;
  if (decompressedSize && outBuffer.pos != decompressedSize) return INR_WRONG_SIZE;
  /* python-zstandard checks for unused input only when the output filled its buffer */
  if (!(outBuffer.pos < destCapacity) && inBuffer.pos < inBuffer.size) return INR_EXTRA_DATA;
  out_ptr = dst; out_len = outBuffer.pos;
  return INR_OK;
}

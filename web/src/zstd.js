// zstd frames, decoded by the official libzstd (1.5.7, the source Python's `zstandard`
// bundles) built to WebAssembly by web/zstd/build.sh, through web/zstd/shim.c, which calls
// it as inrcodec's reference decoder does. Instantiated synchronously on first use (Node,
// and the page's worker); nothing is fetched.
import { ZSTD_WASM } from './zstd-wasm.js';

let wasm = null;

function instance() {
  if (!wasm) {
    const bytes = typeof Buffer !== 'undefined' ? Buffer.from(ZSTD_WASM, 'base64')
      : Uint8Array.from(atob(ZSTD_WASM), (c) => c.charCodeAt(0));
    wasm = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports;
  }
  return wasm;
}

// What python-zstandard's messages say for each status of inr_decompress (shim.c).
const STATUS = [null, 'error determining content size from frame header',
  'could not determine content size in frame header', 'out of memory', null,
  'did not decompress full frame', 'decompressed the wrong number of bytes',
  'compressed input contains unused data, which is disallowed'];

// libzstd's ZSTD_ErrorCode values, for messages.
const ZSTD_ERRORS = { 1: 'Error (generic)', 10: 'Unknown frame descriptor', 12: 'Version not supported',
  14: 'Unsupported frame parameter', 16: 'Frame requires too much memory for decoding',
  20: 'Data corruption detected', 22: 'Restored data doesn\'t match checksum',
  24: 'Header of Literals\' block doesn\'t respect format specification', 30: 'Dictionary mismatch',
  32: 'Cannot use dictionary', 40: 'Unsupported parameter', 42: 'Parameter is out of bound',
  44: 'tableLog requires too much memory : unsupported', 46: 'Unsupported max Symbol Value : too large',
  48: 'Specified maxSymbolValue is too small', 62: 'Context should be init first',
  64: 'Allocation error : not enough memory', 66: 'workSpace buffer is not large enough',
  70: 'Destination buffer is too small', 72: 'Src size is incorrect', 74: 'Operation on NULL destination buffer' };

// ZstdDecompressor().decompress(blob, max_output_size=cap, allow_extra_data=False):
// the decompressed bytes (a copy), or throws an Error with libzstd's reason.
export function zstdDecompress(blob, cap) {
  const w = instance();
  const p = w.inr_input(blob.length);
  new Uint8Array(w.memory.buffer, p, blob.length).set(blob);
  const status = w.inr_decompress(blob.length, cap);
  if (status !== 0) {
    const code = w.inr_zstd_code();
    throw new Error(status === 4 ? `decompression error: ${ZSTD_ERRORS[code] || `zstd error ${code}`}`
      : `decompression error: ${STATUS[status] || `status ${status}`}`);
  }
  const ptr = w.inr_out_ptr(), len = w.inr_out_len();
  return new Uint8Array(w.memory.buffer, ptr, len).slice();
}

export function zstdVersion() {
  return instance().inr_zstd_version();
}

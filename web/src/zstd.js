// zstd frames, decoded by the official libzstd (1.5.7, the source Python's `zstandard`
// bundles) built to WebAssembly by web/zstd/build.sh, through web/zstd/shim.c, which calls
// it as inrcodec's reference decoder does. Instantiated synchronously on first use (Node,
// and the page's worker); nothing is fetched.
//
// The wasm64 build (memory64) is the exact one: libzstd then runs its 64-bit code, as the
// reference's does on a 64-bit host. A 32-bit libzstd refuses some corrupt frames a 64-bit
// one decodes and the other way round (web/fuzz/fuzz_zstd.py finds them), so the wasm32
// build is only a fallback for engines without memory64 (older browsers; Node 20 and 22
// have it behind --experimental-wasm-memory64, which this module turns on through
// node:v8; Chromium 156 here runs wasm64): zstdBuild() says which one runs.
import { ZSTD_WASM64, ZSTD_WASM32 } from './zstd-wasm.js';

const v8 = globalThis.process && process.versions && process.versions.node ? await import('node:v8') : null;

let wasm = null, build = null;

function bytesOf(b64) {
  return typeof Buffer !== 'undefined' ? Buffer.from(b64, 'base64') : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function instance() {
  if (!wasm) {
    let mod = null;
    try {
      mod = new WebAssembly.Module(bytesOf(ZSTD_WASM64));
    } catch {
      if (v8) {
        v8.setFlagsFromString('--experimental-wasm-memory64');
        try { mod = new WebAssembly.Module(bytesOf(ZSTD_WASM64)); } catch { /* the fallback */ }
      }
    }
    build = mod ? 'wasm64' : 'wasm32';
    wasm = new WebAssembly.Instance(mod || new WebAssembly.Module(bytesOf(ZSTD_WASM32)), {}).exports;
  }
  return wasm;
}

// 'wasm64' (exact) or 'wasm32' (the fallback).
export function zstdBuild() {
  instance();
  return build;
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

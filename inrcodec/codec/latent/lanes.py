"""Linear algebra over lanes for the fit's compiled kernels (synthesis_kernels.py,
rate_kernels.py): a layer's rows applied to LANES positions side by side, so the loop
over positions vectorises, several rows a pass so the loop is not bound by its stores;
and sums over positions in an order of their own.

Why the sums are written out: numba compiles a kernel's call to another cached kernel,
and a prange body, as libraries of their own, and links a copy into the caller, which
LLVM optimises again. Free to reassociate, the two copies vectorised a sum differently,
so the process that compiled the kernels and one that loaded them from numba's cache
computed other last bits (0.18's first encode after an install). So the kernels take
fast math without reassociation (FASTMATH), and every sum over positions is `_sums`'s
LLVM code: vector partial sums in registers, added in a fixed order, which no optimiser
may change (its instructions carry no fast-math flags).

numba's cache keys a kernel on its own file: after editing this one, delete the kernels'
cached builds (`__pycache__/*_kernels.*.nbi`, `.nbc`)."""
from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

FASTMATH = {"contract", "nnan", "ninf", "nsz"}  # fast math without "reassoc", "arcp", "afn"
UNROLL = 2  # vector partial sums a row: two hide the latency of a multiply-add


def _vload(builder, ptr, off, vt):
    """vt's lanes from ptr[off:]: an unaligned vector load."""
    p = builder.bitcast(builder.gep(ptr, [off]), vt.as_pointer())
    return builder.load(p, align=4 if isinstance(vt.element, ir.FloatType) else 8)


def _sums(builder, x, ys, n):
    """[sum_p x[p] y[p] for y in ys] over p < n (x None: sum_p y[p]); x, ys float or
    double pointers, n an i64. Blocks of UNROLL vectors (8 floats or 4 doubles each) go
    into UNROLL vector partial sums a row, one multiply-add each (fused where the CPU
    fuses); the positions past the last block into a scalar sum, in order. Then each
    row's vectors are added, their halves added until one lane is left, and the scalar
    sum last."""
    ft = ys[0].type.pointee
    vl = 8 if isinstance(ft, ir.FloatType) else 4  # 256 bits
    vt = ir.VectorType(ft, vl)
    i64, i32 = ir.IntType(64), ir.IntType(32)
    step = vl * UNROLL
    name = "f32" if vl == 8 else "f64"
    vfma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt] * 3),
                                          f"llvm.fmuladd.v{vl}{name}")
    sfma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ft, [ft] * 3),
                                          f"llvm.fmuladd.{name}")
    acc = [[cgutils.alloca_once_value(builder, ir.Constant(vt, [0.0] * vl))
            for _ in range(UNROLL)] for _ in ys]
    tail = [cgutils.alloca_once_value(builder, ir.Constant(ft, 0.0)) for _ in ys]
    blocks = builder.udiv(n, ir.Constant(i64, step))
    with cgutils.for_range(builder, blocks) as loop:
        base = builder.mul(loop.index, ir.Constant(i64, step))
        for u in range(UNROLL):
            off = builder.add(base, ir.Constant(i64, u * vl))
            xv = None if x is None else _vload(builder, x, off, vt)
            for r, y in enumerate(ys):
                yv = _vload(builder, y, off, vt)
                a = builder.load(acc[r][u])
                builder.store(builder.fadd(a, yv) if x is None
                              else builder.call(vfma, [xv, yv, a]), acc[r][u])
    done = builder.mul(blocks, ir.Constant(i64, step))
    with cgutils.for_range(builder, builder.sub(n, done)) as loop:
        p = builder.add(done, loop.index)
        xs = None if x is None else builder.load(builder.gep(x, [p]))
        for r, y in enumerate(ys):
            ys_ = builder.load(builder.gep(y, [p]))
            t = builder.load(tail[r])
            builder.store(builder.fadd(t, ys_) if x is None
                          else builder.call(sfma, [xs, ys_, t]), tail[r])
    out = []
    for r in range(len(ys)):
        v = builder.load(acc[r][0])
        for u in range(1, UNROLL):
            v = builder.fadd(v, builder.load(acc[r][u]))
        w = vl
        while w > 1:
            w //= 2
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, w), list(range(w))))
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, w),
                                                          list(range(w, 2 * w))))
            v = builder.fadd(lo, hi)
        s = builder.extract_element(v, ir.Constant(i32, 0))
        out.append(builder.fadd(s, builder.load(tail[r])))
    return out


def _check(*arrays):
    for a in arrays:
        if not (isinstance(a, types.Array) and a.layout == "C"
                and a.dtype in (types.float32, types.float64)):
            raise TypingError(f"lanes: a C-contiguous float array, not {a}")
    if len({a.dtype for a in arrays}) > 1:
        raise TypingError("lanes: arrays of one float type")


def _ptr(context, builder, aty, a, inds):
    ary = context.make_array(aty)(context, builder, a)
    return cgutils.get_item_pointer(context, builder, aty, ary, inds)


@intrinsic
def dot4(typingctx, x, y, row, a, n):
    """(sum_p x[p] y[row + r, a + p] for r = 0..3), p < n: x 1-D, y 2-D."""
    _check(x, y)
    sig = types.UniTuple(x.dtype, 4)(x, y, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_, y_, row_, a_, n_ = args
        xp = _ptr(context, builder, x, x_, [ir.Constant(ir.IntType(64), 0)])
        yp = [_ptr(context, builder, y, y_, [builder.add(row_, ir.Constant(row_.type, r)), a_])
              for r in range(4)]
        return context.make_tuple(builder, signature.return_type, _sums(builder, xp, yp, n_))
    return sig, codegen


@intrinsic
def dot(typingctx, x, y, a, n):
    """sum_p x[p] y[a + p], p < n: x, y 1-D."""
    _check(x, y)
    sig = x.dtype(x, y, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_, y_, a_, n_ = args
        xp = _ptr(context, builder, x, x_, [ir.Constant(ir.IntType(64), 0)])
        return _sums(builder, xp, [_ptr(context, builder, y, y_, [a_])], n_)[0]
    return sig, codegen


@intrinsic
def total(typingctx, x, n):
    """sum_p x[p], p < n: x 1-D."""
    _check(x)
    sig = x.dtype(x, types.intp)

    def codegen(context, builder, signature, args):
        x_, n_ = args
        return _sums(builder, None, [_ptr(context, builder, x, x_,
                                          [ir.Constant(ir.IntType(64), 0)])], n_)[0]
    return sig, codegen


@numba.njit(inline="always", fastmath=FASTMATH)
def affine(z, bias, w, src, a, n):
    """z[:n] = bias + sum_k w[k] x src[k, a:a + n], four rows a pass: each pass stores z
    once for four products (a store a product made the loop wait on the cache)."""
    K = w.shape[0]
    for p in range(n):
        z[p] = bias
    k = 0
    while k + 4 <= K:
        w_0, w_1, w_2, w_3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for p in range(n):
            z[p] += (w_0 * src[k, a + p] + w_1 * src[k + 1, a + p]) \
                + (w_2 * src[k + 2, a + p] + w_3 * src[k + 3, a + p])
        k += 4
    while k < K:
        w_0 = w[k]
        for p in range(n):
            z[p] += w_0 * src[k, a + p]
        k += 1


@numba.njit(inline="always", fastmath=FASTMATH)
def outer(out, g, src, a, n):
    """out[k] += sum_p g[p] x src[k, a + p] for every row k of src, four rows a pass."""
    K = out.shape[0]
    k = 0
    while k + 4 <= K:
        s0, s1, s2, s3 = dot4(g, src, k, a, n)
        out[k] += s0
        out[k + 1] += s1
        out[k + 2] += s2
        out[k + 3] += s3
        k += 4
    while k < K:
        out[k] += dot(g, src[k], a, n)
        k += 1

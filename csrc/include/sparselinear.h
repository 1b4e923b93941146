/*
 * sparselinear.h — the flat C ABI of the sparselinear kernel library.
 *
 * This header is the only contract between the TypeScript layer (ffi/) and native code.
 * Rules every entry point follows:
 *   - returns an sl_status (0 = SL_OK); on failure sl_last_error() holds a message that names
 *     the function and the offending argument, and no output has been partially written
 *     unless the function's comment says otherwise;
 *   - validates every pointer, size and index it reads, and never reads or writes out of
 *     bounds, whatever it is given;
 *   - sizes are int32_t (counts of features, rows, batch) or int64_t (products such as nnz or
 *     numel), never size_t mixed with signed;
 *   - dense arrays are row-major and contiguous; activations are [batch, features];
 *   - sparse weights are CSR by output row: row_ptr[n_out + 1], col_idx[nnz] (columns sorted
 *     within a row, no duplicates), values[nnz]; the CSC view for the input gradient is
 *     col_ptr[n_in + 1], row_idx[nnz], csc_to_csr[nnz] (where entry k of the CSC view keeps its
 *     value: values[csc_to_csr[k]]). A view is checked for ranges only (offsets, row_idx <
 *     n_out, csc_to_csr < nnz), not for agreement with the CSR pattern: it must be what
 *     sl_csr_to_csc built from that pattern (as the TS layer's always is). A view that is not
 *     gives gradients of the matrix it describes, and where csc_to_csr is not a permutation
 *     some dw entries are left as they were; checking agreement would cost each backward a
 *     second random read per connection;
 *   - no hidden global state besides the thread count, the thread-local last-error slot and,
 *     in the CPU library, the kernels' scratch cache: blocks of 1 MiB and more on 2 MiB pages,
 *     up to 4 of them and 256 MiB kept mapped between calls for reuse (sl_scratch_peak_bytes).
 *     Loading the CPU library also raises glibc's mmap threshold, trim threshold and top pad
 *     (mallopt) for the whole process, unless SL_NO_MALLOC_TUNING=1 is set.
 *
 * The CUDA library (libsparselinear_cuda.so) exports the same names and signatures, with every
 * array argument a device pointer unless its comment says "host", plus the sl_device_* family.
 */
#ifndef SPARSELINEAR_H
#define SPARSELINEAR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SL_API __declspec(dllexport)
#else
#define SL_API __attribute__((visibility("default")))
#endif

/* Bump whenever a signature or a meaning changes; the TS loader refuses a mismatch. */
#define SL_ABI_VERSION 10

typedef int32_t sl_status;
enum {
  SL_OK = 0,
  SL_E_NULL_POINTER = 1,     /* a required pointer was null */
  SL_E_INVALID_ARGUMENT = 2, /* a size, flag or option outside its allowed range */
  SL_E_INDEX_OUT_OF_RANGE = 3, /* an index array holds a value outside [0, bound) */
  SL_E_DUPLICATE = 4,        /* a sparse pattern holds the same (row, col) twice */
  SL_E_OUT_OF_MEMORY = 5,    /* scratch allocation failed */
  SL_E_OVERFLOW = 6,         /* a size product does not fit the index type */
  SL_E_DEVICE = 7,           /* a CUDA call or launch failed (CUDA library only) */
  SL_E_UNSUPPORTED = 8       /* the operation is not available in this build */
};

/* ---------------------------------------------------------------- core ---- */

/* Message of the last failed call on this thread ("" when none). Never null. */
SL_API const char *sl_last_error(void);
SL_API int32_t sl_abi_version(void);
/*
 * Threads used by parallel kernels: 1 <= n <= 4096 sets the count, n <= 0 restores the default
 * (SL_NUM_THREADS when it is a whole number in [1, 4096], read once, else all cores), n > 4096
 * -> SL_E_INVALID_ARGUMENT and the count is unchanged.
 */
SL_API sl_status sl_set_num_threads(int32_t n);
SL_API int32_t sl_get_num_threads(void);
/*
 * Precision of the CPU library's batched sparse products: sl_spmm_fwd, sl_spmm_fwd_fm,
 * sl_spmm_bwd_input, sl_spmm_bwd and sl_spmm_bwd_fm at batch > 1 (each reads rows of one operand
 * at random, 256 bytes per connection at batch 64: what bounds these kernels on a CPU).
 *   SL_PRECISION_HIGHEST (the default): float32 throughout.
 *   SL_PRECISION_MEDIUM: the gathered operand (x in the forward, dy in the backward) is rounded
 *     to bfloat16 (to nearest, ties to even; a NaN stays NaN) as the kernel lays it out, which
 *     halves the bytes gathered. Weights, the other operand, products, sums and outputs stay
 *     float32: the results are the highest-precision kernel's on the rounded operand, bit for
 *     bit.
 * sl_sddmm, batch 1 and the CUDA library's kernels ignore it (they run in float32).
 * Any other value -> SL_E_INVALID_ARGUMENT and the setting is unchanged. Process-wide.
 */
enum { SL_PRECISION_HIGHEST = 0, SL_PRECISION_MEDIUM = 1 };
SL_API sl_status sl_set_matmul_precision(int32_t precision);
SL_API int32_t sl_get_matmul_precision(void);
/* 1 when GEMM runs on a CBLAS (OpenBLAS), 0 for the portable fallback. */
SL_API int32_t sl_has_cblas(void);
/*
 * Kernel scratch (CPU library): the most bytes of working memory the kernels held at once since
 * the last reset, counted as asked for (blocks on 2 MiB pages are mapped rounded up, and up to
 * 256 MiB of them stay mapped between calls). reset != 0 then restarts the measurement from the
 * bytes held now. GEMMs run by OpenBLAS keep their own buffers, not counted here.
 */
SL_API int64_t sl_scratch_peak_bytes(int32_t reset);
/*
 * Advises the system to back the whole 2 MiB pages inside the host array [data, data + bytes)
 * with transparent huge pages (madvise MADV_HUGEPAGE), for a large array not yet written: its
 * first write then faults 2 MiB at a time instead of 4 KiB. Memory outside the array is never
 * advised, and nothing is read or written. The advice belongs to the pages, not the array: give
 * it for memory the array has to itself (the CPU backend advises only arrays that glibc maps
 * on their own, 32 MiB and more). A hint: where the system declines it (no such pages, an
 * array without a whole 2 MiB page) the call still returns SL_OK. data: host memory in both
 * libraries; bytes >= 0 (else SL_E_INVALID_ARGUMENT), data + bytes within the address space
 * (else SL_E_OVERFLOW).
 */
SL_API sl_status sl_advise_huge_pages(void *data, int64_t bytes);

/* ------------------------------------------------------- sparse format ---- */

/*
 * COO -> CSR with sort and coalesce. rows/cols: nnz entries each (int32).
 * Writes row_ptr[n_rows + 1], col_idx[*nnz_out] and, when non-null, perm[*nnz_out]: for each
 * CSR position, the index of the first COO entry that landed there (the order is stable).
 * values_in/values_out (both null or both non-null): duplicates are summed.
 * *nnz_out = number of distinct entries; *first_duplicate = COO index of the first entry that
 * repeats an earlier one, or -1 when there is none. Entries outside [0, n_rows) x [0, n_cols)
 * -> SL_E_INDEX_OUT_OF_RANGE naming the first bad entry; nothing is written then.
 * Output arrays must hold nnz entries (enough for the case without duplicates).
 */
SL_API sl_status sl_coo_to_csr(int32_t n_rows, int32_t n_cols, int64_t nnz,
                               const int32_t *rows, const int32_t *cols,
                               const float *values_in, int32_t *row_ptr,
                               int32_t *col_idx, float *values_out, int64_t *perm,
                               int64_t *nnz_out, int64_t *first_duplicate);

/* Checks a CSR pattern: row_ptr monotone from 0 to nnz, columns in range, sorted, unique. */
SL_API sl_status sl_csr_validate(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                 const int32_t *row_ptr, const int32_t *col_idx);

/* CSR -> CSC view: col_ptr[n_cols + 1], row_idx[nnz], csc_to_csr[nnz]. Rows sorted per column. */
SL_API sl_status sl_csr_to_csc(int32_t n_rows, int32_t n_cols, int64_t nnz,
                               const int32_t *row_ptr, const int32_t *col_idx,
                               int32_t *col_ptr, int32_t *row_idx, int32_t *csc_to_csr);

/* ------------------------------------------------------ sparse kernels ---- */

/*
 * Forward: y[b, o] = sum_k values[k] * x[b, col_idx[k]] + bias[o]   (k in row o).
 * x: [batch, n_in], y: [batch, n_out] (overwritten), bias: [n_out] or null.
 */
SL_API sl_status sl_spmm_fwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                             const int32_t *row_ptr, const int32_t *col_idx,
                             const float *values, const float *bias, const float *x,
                             float *y);

/*
 * Input gradient: dx[b, i] = sum_{k in column i} values[csc_to_csr[k]] * dy[b, row_idx[k]].
 * dy: [batch, n_out], dx: [batch, n_in] (overwritten).
 */
SL_API sl_status sl_spmm_bwd_input(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                   const int32_t *col_ptr, const int32_t *row_idx,
                                   const int32_t *csc_to_csr, const float *values,
                                   const float *dy, float *dx);

/*
 * The same input gradient computed from the CSR pattern: dx[b, i] = sum over entries k with
 * col_idx[k] == i of values[k] * dy[b, o] (k in row o), by scattering: on the CPU the faster
 * form at batch 1 (values stream, dx stays in cache), slower than the CSC form at larger
 * batches (a read-modify-write per connection). Columns must be in range (else
 * SL_E_INDEX_OUT_OF_RANGE) and, for batch > 1, non-decreasing within each row (else
 * SL_E_INVALID_ARGUMENT), as in any pattern sl_csr_validate accepts. dx: [batch, n_in]
 * (overwritten; untouched on failure). The CPU sums each dx in an order fixed by the thread
 * count; the CUDA library adds with float atomics, so there the last bits vary from run to run.
 */
SL_API sl_status sl_spmm_bwd_input_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                       const int32_t *row_ptr, const int32_t *col_idx,
                                       const float *values, const float *dy, float *dx);

/*
 * Both gradients from the CSR pattern alone, as sl_spmm_bwd_input_csr and sl_sddmm give them
 * (without the CSC view):
 *   dx[b, i] = sum over entries k with col_idx[k] == i of values[k] * dy[b, o]   (k in row o)
 *   dw[k]    = sum_b dy[b, o] * x[b, col_idx[k]]
 * The CPU library at batch 1 reads the pattern once for both (col_idx once instead of twice: a
 * quarter less memory traffic than the two calls; the same results bit for bit); at other
 * batches it runs sl_sddmm and then sl_spmm_bwd_input_csr, and the CUDA library
 * sl_spmm_bwd_input_csr and then sl_sddmm. Columns must be in range (else
 * SL_E_INDEX_OUT_OF_RANGE) and, for batch > 1, non-decreasing within each row (else
 * SL_E_INVALID_ARGUMENT). x: [batch, n_in], dy: [batch, n_out], dx: [batch, n_in] and dw: [nnz]
 * (overwritten). On failure dw holds unspecified values (never anything out of bounds), and the
 * CPU library leaves dx untouched; the CUDA library may have written both (its index checks run
 * on the device, and a bad column found there is reported under the inner call's name).
 */
SL_API sl_status sl_spmm_bwd_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                 const int32_t *row_ptr, const int32_t *col_idx,
                                 const float *values, const float *x, const float *dy, float *dx,
                                 float *dw);

/*
 * Both gradients of the layer in one call, for batches where both are needed:
 *   dx[b, i] = sum_{k in column i} values[csc_to_csr[k]] * dy[b, row_idx[k]]   (as sl_spmm_bwd_input)
 *   dw[csc_to_csr[k]] = sum_b dy[b, row_idx[k]] * x[b, i]                       (as sl_sddmm)
 * The pattern comes in both views (CSR row_ptr/col_idx and the CSC view sl_csr_to_csc built
 * from it; csc_to_csr must be that permutation). The CPU library makes one pass over the CSC
 * view, each gathered row of dy serving both gradients of its connection (about 15 % less time
 * than the two calls at batch 64). The CUDA library runs sl_spmm_bwd_input and sl_sddmm, except
 * at batch 1 when dx fits in a block's shared memory (n_in up to 48k floats): then one pass
 * over the CSR view, each block summing its part of dx in shared memory (the order of those
 * additions varies, so dx's last bits may differ between runs; SL_CUDA_BATCH1_BWD=csc keeps the
 * deterministic CSC path). Which view is read, and so which one's bad entries are reported,
 * therefore depends on the library and the batch. x: [batch, n_in], dy: [batch, n_out],
 * dx: [batch, n_in] and dw: [nnz] (overwritten; untouched when an index is out of range).
 * db (NULL for none): the bias gradient too, db[o] = sum_b dy[b, o], bit for bit sl_bias_grad's
 * (the CPU library sums dy as it lays it out for the gradients, sparing a pass over dy).
 */
SL_API sl_status sl_spmm_bwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                             const int32_t *row_ptr, const int32_t *col_idx,
                             const int32_t *col_ptr, const int32_t *row_idx,
                             const int32_t *csc_to_csr, const float *values, const float *x,
                             const float *dy, float *dx, float *dw, float *db);

/*
 * A layer whose values are kept in the CSC view's order (CPU library only; the CUDA library
 * does not export these two). Its backward then needs no permutation: sl_spmm_bwd gathers the
 * values into CSC order and scatters dw back to CSR order, one random access per connection
 * each (50000^2 at 99.9 %, batch 64: ~3.5 of its ~11 ms), where the forward here gathers the
 * values once instead (~1.7 ms).
 *
 * sl_spmm_fwd_permuted: sl_spmm_fwd with connection k (in CSR order) of value
 * values[csr_to_csc[k]] (csr_to_csc: the inverse of sl_csr_to_csc's csc_to_csr). Bad col_idx
 * or csr_to_csc entries are SL_E_INDEX_OUT_OF_RANGE, y untouched. The same bits as
 * sl_spmm_fwd on the values in CSR order, at every batch size.
 *
 * sl_spmm_bwd_csc: sl_spmm_bwd with values and dw in the CSC view's order (k in column i):
 *   dx[b, i] = sum_{k in column i} values[k] * dy[b, row_idx[k]]
 *   dw[k]    = sum_b dy[b, row_idx[k]] * x[b, i]
 * and db as sl_spmm_bwd's (NULL for none). The same bits as sl_spmm_bwd, dw permuted. A bad
 * row_idx is SL_E_INDEX_OUT_OF_RANGE, with dx, dw and db untouched.
 */
SL_API sl_status sl_spmm_fwd_permuted(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                      const int32_t *row_ptr, const int32_t *col_idx,
                                      const int32_t *csr_to_csc, const float *values,
                                      const float *bias, const float *x, float *y);
SL_API sl_status sl_spmm_bwd_csc(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                 const int32_t *col_ptr, const int32_t *row_idx,
                                 const float *values, const float *x, const float *dy, float *dx,
                                 float *dw, float *db);

/*
 * Feature-major forms of sl_spmm_fwd and sl_spmm_bwd, for activations stored one row per
 * feature (the layout of W x in scipy or BLAS, and the one the CPU kernels compute in):
 *   yT[o, b] = sum_k values[k] * xT[col_idx[k], b] + bias[o]               xT: [n_in, batch]
 *   dxT[i, b], dw, db as sl_spmm_bwd with x = xT^T, dy = dyT^T, dx = dxT^T  yT, dyT: [n_out, batch]
 * Same arguments, checks and results (bit for bit) as the batch-major calls on the transposed
 * arrays. The CPU kernels compute in this layout: xT and dyT are copied into their tiles
 * (2 MiB-page scratch, at most 64 batch columns) instead of transposed, and yT / dxT are
 * written without transposes. The CUDA library transposes around its batch-major kernels. At
 * batch 1 both layouts are the same array.
 */
SL_API sl_status sl_spmm_fwd_fm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                const int32_t *row_ptr, const int32_t *col_idx,
                                const float *values, const float *bias, const float *xT,
                                float *yT);
SL_API sl_status sl_spmm_bwd_fm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                const int32_t *row_ptr, const int32_t *col_idx,
                                const int32_t *col_ptr, const int32_t *row_idx,
                                const int32_t *csc_to_csr, const float *values,
                                const float *xT, const float *dyT, float *dxT, float *dw,
                                float *db);

/*
 * Weight gradient (SDDMM over the pattern): dw[k] = sum_b dy[b, o] * x[b, col_idx[k]],
 * for k in row o. dw: [nnz] (overwritten).
 * Exception to the no-partial-write rule: column indices are checked inside the kernel loop, so
 * on SL_E_INDEX_OUT_OF_RANGE dw holds unspecified values (never anything out of bounds).
 * sl_spmm_fwd and sl_spmm_bwd_input also check indices in their loops but compute into scratch,
 * so they leave y / dx untouched on failure.
 */
SL_API sl_status sl_sddmm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                          const int32_t *row_ptr, const int32_t *col_idx, const float *x,
                          const float *dy, float *dw);

/*
 * A layer whose outputs are summed in interleaved groups (output o feeds group o mod size, as
 * groupSum does) is, summed, the dense map G = P W with P the size x n_out one-hot group matrix:
 *   g[c, i] = sum of values[k] over the entries k of rows o with o mod size == c and
 *             col_idx[k] == i, added in row order                    g: [size, n_in] (overwritten)
 * and its gradient brought back to the connections:
 *   dw[k] = dg[o mod size, col_idx[k]] for k in row o                dg: [size, n_in], dw: [nnz]
 * One pass over the pattern each; size >= 1. sl_group_collapse needs each row's columns sorted
 * (non-decreasing; else SL_E_INVALID_ARGUMENT): the CPU splits G by columns between threads.
 * Exception to the no-partial-write rule, as sl_sddmm: columns are checked inside the loop, so on
 * an error about them g / dw hold unspecified values (never anything out of bounds). The CUDA
 * library adds into g with float atomics, so the order of each sum, and its last bits, vary from
 * run to run there (the CPU adds in row order, whatever the thread count).
 */
SL_API sl_status sl_group_collapse(int32_t n_in, int32_t n_out, int64_t nnz,
                                   const int32_t *row_ptr, const int32_t *col_idx,
                                   const float *values, int32_t size, float *g);
SL_API sl_status sl_group_collapse_bwd(int32_t n_in, int32_t n_out, int64_t nnz,
                                       const int32_t *row_ptr, const int32_t *col_idx,
                                       const float *dg, int32_t size, float *dw);

/* Bias gradient: db[o] = sum_b dy[b, o]. dy: [batch, n_out], db: [n_out] (overwritten). */
SL_API sl_status sl_bias_grad(int32_t batch, int32_t n_out, const float *dy, float *db);

/* -------------------------------------------------------------- vectors ---- */

/* x[i] = value for i < n. */
SL_API sl_status sl_fill(int64_t n, float value, float *x);
/* y[i] += alpha * x[i] for i < n (gradient accumulation). */
SL_API sl_status sl_axpy(int64_t n, float alpha, const float *x, float *y);
/* y[i] = x[i] for i < n. */
SL_API sl_status sl_copy(int64_t n, const float *x, float *y);

/* -------------------------------------------------- dense and elementwise ---- */
/* (owned by the tensor-ops family; see csrc/cpu/dense.c, elementwise.c and reduce.c) */

/*
 * Dense GEMM, row-major: C = alpha * op(A) @ op(B) + beta * C, where op(X) is X, or X^T when
 * trans_x != 0. op(A) is [m, k], op(B) is [k, n], C is [m, n]. A is stored with leading
 * dimension lda >= max(1, columns of A as stored) (k, or m when transposed); likewise B (n, or k
 * when transposed) and C (ldc >= max(1, n)). beta == 0 overwrites C without reading it.
 * Runs on CBLAS when the library was built with one (sl_has_cblas()), else on a blocked
 * OpenMP kernel.
 */
SL_API sl_status sl_gemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                         float alpha, const float *a, int32_t lda, const float *b,
                         int32_t ldb, float beta, float *c, int32_t ldc);

/*
 * Strided batched GEMM: for i < batch, C_i = alpha * op(A_i) @ op(B_i) + beta * C_i with
 * X_i = x + i * stride_x (strides in elements, >= 0). stride_a or stride_b == 0 reuses one
 * matrix for every batch (broadcasting); stride_c == 0 sums every batch's product into one C
 * (beta applies once, before the first). A non-zero stride_c must keep the C_i disjoint.
 */
SL_API sl_status sl_gemm_batched(int32_t trans_a, int32_t trans_b, int32_t batch, int32_t m,
                                 int32_t n, int32_t k, float alpha, const float *a,
                                 int32_t lda, int64_t stride_a, const float *b, int32_t ldb,
                                 int64_t stride_b, float beta, float *c, int32_t ldc,
                                 int64_t stride_c);

/* Most dimensions a strided (broadcasting, permuting) kernel takes. */
#define SL_MAX_DIMS 8

/* Binary element-wise operators of sl_binary / sl_binary_bwd. */
enum { SL_BINARY_ADD = 0, SL_BINARY_SUB = 1, SL_BINARY_MUL = 2, SL_BINARY_DIV = 3 };

/*
 * Broadcasting binary op: out[idx] = a[sum_d idx_d * a_strides[d]] op b[sum_d idx_d *
 * b_strides[d]] for every idx of the output shape. shape, a_strides, b_strides: host int64
 * arrays of ndim (0..SL_MAX_DIMS) entries, strides in elements and >= 0 (0 = broadcast along
 * that dimension; they may be null when ndim == 0). a_len, b_len: elements in a and b; every
 * offset read is checked against them. out: contiguous, numel(shape) elements.
 */
SL_API sl_status sl_binary(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
                           int64_t a_len, const int64_t *a_strides, const float *b,
                           int64_t b_len, const int64_t *b_strides, float *out);

/*
 * Gradients of sl_binary in the output's shape (before any reduction over broadcast
 * dimensions): da[idx] = dy[idx] * d(a op b)/da, db[idx] = dy[idx] * d(a op b)/db, with a and b
 * read as in sl_binary. dy, da, db: contiguous, numel(shape) elements; da or db may be null when
 * that gradient is not needed. a and b are not read (and may be null) for ADD and SUB.
 */
SL_API sl_status sl_binary_bwd(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
                               int64_t a_len, const int64_t *a_strides, const float *b,
                               int64_t b_len, const int64_t *b_strides, const float *dy,
                               float *da, float *db);

/* Unary element-wise operators of sl_unary / sl_unary_bwd (alpha, beta: scalar parameters). */
enum {
  SL_UNARY_NEG = 0,        /* -x */
  SL_UNARY_EXP = 1,        /* exp(x) */
  SL_UNARY_LOG = 2,        /* log(x) */
  SL_UNARY_RELU = 3,       /* max(x, 0) */
  SL_UNARY_SIGMOID = 4,    /* 1 / (1 + exp(-x)) */
  SL_UNARY_TANH = 5,       /* tanh(x) */
  SL_UNARY_ABS = 6,        /* |x| (gradient sign(x), 0 at 0) */
  SL_UNARY_SQRT = 7,       /* sqrt(x) */
  SL_UNARY_AFFINE = 8,     /* alpha * x + beta, IEEE (beta -0 for a product alone: -0 * 2 = -0) */
  SL_UNARY_RECIPROCAL = 9, /* alpha / x (scalar divided by a tensor) */
  SL_UNARY_SQUARE = 10,    /* x * x */
  SL_UNARY_POW = 11        /* x ^ alpha */
};

/* y[i] = f(x[i]) for i < n (y may equal x). */
SL_API sl_status sl_unary(int32_t op, int64_t n, float alpha, float beta, const float *x,
                          float *y);

/*
 * dx[i] = dy[i] * f'(x[i]) for i < n. x is the forward input and y = f(x) its output; both are
 * required (each operator uses whichever gives the cheaper or more accurate derivative).
 */
SL_API sl_status sl_unary_bwd(int32_t op, int64_t n, float alpha, float beta, const float *x,
                              const float *y, const float *dy, float *dx);

/*
 * Sum over the middle axis of x viewed as [outer, len, inner]: y[o, i] = alpha * sum_j
 * x[o, j, i]; y is [outer, inner] (overwritten). Accumulates in double. An empty sum (len ==
 * 0) is alpha * 0: zeros, or NaN for alpha = inf (the mean of nothing).
 */
SL_API sl_status sl_sum_axis(int64_t outer, int64_t len, int64_t inner, float alpha,
                             const float *x, float *y);

/* y[0] = alpha * sum_{i < n} x[i], accumulated in double (alpha * 0 when n == 0). */
SL_API sl_status sl_sum_all(int64_t n, float alpha, const float *x, float *y);

/*
 * Sum over several dimensions: x is contiguous with shape[ndim] (host int64, ndim <=
 * SL_MAX_DIMS); bit d of reduce_mask set sums over dimension d. y is contiguous with the shape
 * where those dimensions are 1 (overwritten): alpha times the sums. Reduces the gradient of a
 * broadcast input back to its shape in one call.
 */
SL_API sl_status sl_sum_dims(int32_t ndim, const int64_t *shape, int32_t reduce_mask,
                             float alpha, const float *x, float *y);

/*
 * Strided gather: y[idx] = alpha * x[sum_d idx_d * x_strides[d]] for every idx of shape (y
 * contiguous, numel(shape) elements). shape, x_strides: host int64, ndim <= SL_MAX_DIMS,
 * strides >= 0; every offset is checked against x_len. Stride 0 expands (broadcast, the
 * backward of a sum); permuted strides transpose/permute.
 */
SL_API sl_status sl_strided_copy(int32_t ndim, const int64_t *shape, float alpha,
                                 const float *x, int64_t x_len, const int64_t *x_strides,
                                 float *y);

/* Row-wise log-softmax of x [rows, cols]: y[r, j] = x[r, j] - log(sum_k exp(x[r, k])). */
SL_API sl_status sl_log_softmax_fwd(int64_t rows, int32_t cols, const float *x, float *y);

/* Its backward from the output y: dx[r, j] = dy[r, j] - exp(y[r, j]) * sum_k dy[r, k]. */
SL_API sl_status sl_log_softmax_bwd(int64_t rows, int32_t cols, const float *y,
                                    const float *dy, float *dx);

/* ------------------------------------------------------------ nn kernels ---- */
/* (LayerNorm, softmax / cross-entropy, K-Winners; see csrc/cpu/nn.c) */

/* Loss reductions: per element / per sample (none), their mean, or their sum. */
enum { SL_REDUCTION_NONE = 0, SL_REDUCTION_MEAN = 1, SL_REDUCTION_SUM = 2 };

/*
 * LayerNorm over the last dimension of x [rows, n] (biased variance, as PyTorch):
 * y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps), then ReLU when relu is 1
 * (fused LayerNorm + ReLU, as SL_UNARY_RELU: 0 where y <= 0, NaN kept; 0: no activation;
 * anything else: SL_E_INVALID_ARGUMENT).
 * gamma, beta: [n] or null (1 and 0). mean, rstd: [rows], written when non-null (the backward
 * pass needs them).
 */
SL_API sl_status sl_layer_norm_fwd(int64_t rows, int32_t n, float eps, const float *x,
                                   const float *gamma, const float *beta, int32_t relu, float *y,
                                   float *mean, float *rstd);
/*
 * LayerNorm backward from the forward's x, mean and rstd, and its gamma, beta and relu (with
 * relu, dy is taken as zero wherever the forward's output was cut to 0, and passes where it was
 * above 0 or NaN, as SL_UNARY_RELU's backward; the mask is recomputed bit-for-bit, not stored).
 * Each of dx [rows, n], dgamma [n] and dbeta [n] is written (overwritten) when non-null.
 */
SL_API sl_status sl_layer_norm_bwd(int64_t rows, int32_t n, const float *x, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta,
                                   int32_t relu, const float *dy, float *dx, float *dgamma,
                                   float *dbeta);

/*
 * Fused log-softmax + negative log-likelihood from logits [batch, n_classes] and labels
 * [batch] (each in [0, n_classes), else SL_E_INDEX_OUT_OF_RANGE naming the first bad label,
 * nothing written). loss: [batch] for SL_REDUCTION_NONE (null allowed for batch 0), else [1]
 * (mean over the batch: NaN for batch 0, as PyTorch). lse: [batch] log-sum-exp of each row
 * (for the backward) or null. A row whose max is +inf or -inf, or that holds a NaN, is NaN
 * throughout PyTorch's log-softmax (it subtracts the max: inf - inf): its lse and loss are NaN,
 * and so is every dlogits entry.
 */
SL_API sl_status sl_cross_entropy_fwd(int32_t batch, int32_t n_classes, const float *logits,
                                      const int32_t *labels, int32_t reduction, float *loss,
                                      float *lse);
/*
 * dlogits[b, c] = scale * dloss[b * dloss_stride] * (softmax(logits[b])[c] - (c == labels[b])).
 * dloss_stride 0: one upstream gradient for every sample (mean: scale = 1 / batch; sum:
 * scale = 1); 1: one per sample (reduction none).
 */
SL_API sl_status sl_cross_entropy_bwd(int32_t batch, int32_t n_classes, const float *logits,
                                      const int32_t *labels, const float *lse,
                                      const float *dloss, int32_t dloss_stride, float scale,
                                      float *dlogits);

/* Squared error (pred - target)^2 over n elements; loss: [n] for none (null allowed for n 0),
 * else [1]. */
SL_API sl_status sl_mse_fwd(int64_t n, const float *pred, const float *target,
                            int32_t reduction, float *loss);
/*
 * g = 2 * scale * dloss[i * dloss_stride] * (pred[i] - target[i]); dpred = g, dtarget = -g,
 * each written when non-null (not both null).
 */
SL_API sl_status sl_mse_bwd(int64_t n, const float *pred, const float *target,
                            const float *dloss, int32_t dloss_stride, float scale, float *dpred,
                            float *dtarget);

/*
 * Inverted dropout: y[i] = x[i] * s when kept, x[i] * 0 when dropped (0, or NaN for a NaN or
 * infinite x, as PyTorch; p = 1 drops everything), with s = 1 / (1 - p) computed in double and
 * rounded to float, as PyTorch (p = 0.9: s = 10). Element i is dropped when the top 32 bits of
 * the i-th splitmix64 output for `seed` are below floor((float)p * 2^32) (p rounded to float:
 * the masks of ABI 4, when p was a float; the floor matters only for p < 2^-8, where that
 * product has a fraction), so the mask is a pure function of (seed, i): the backward call with
 * the same seed and p applies the same mask to dy, and the CUDA library draws the same mask.
 */
SL_API sl_status sl_dropout_fwd(int64_t n, double p, uint64_t seed, const float *x, float *y);
SL_API sl_status sl_dropout_bwd(int64_t n, double p, uint64_t seed, const float *dy, float *dx);

/*
 * Per-feature affine map over the last dimension: y[r, j] = x[r, j] * scale[j] + shift[j];
 * scale or shift null means 1 or 0. Backward: dx = dy * scale, dscale[j] = sum_r dy * x,
 * dshift[j] = sum_r dy, each written when non-null (x may be null when dscale is).
 */
SL_API sl_status sl_scale_shift_fwd(int64_t rows, int32_t n, const float *x, const float *scale,
                                    const float *shift, float *y);
SL_API sl_status sl_scale_shift_bwd(int64_t rows, int32_t n, const float *x, const float *scale,
                                    const float *dy, float *dx, float *dscale, float *dshift);

/*
 * K-Winners over the last dimension (csrc/cpu/kwinners.c; nupic.torch KWinners semantics).
 * For each row of x [rows, n], the k units with the largest boosted value
 * x[r, j] * exp(boost_strength * (k / n - duty_cycle[j])) win (ties: the lower index wins; NaN
 * ranks above +inf, as torch.topk, so it wins and propagates); y[r, j] = x[r, j] (the raw value)
 * for winners, 0 otherwise (y overwritten).
 * winners [rows, k] (null: not written): each row's winning units, ascending (for the backward).
 * win_counts [n] (null: not written): in how many rows each unit won (rows must fit int32).
 * duty_alpha in [0, 1]: when > 0 and rows > 0, after the selection (which uses the old values)
 * duty_cycle[j] = (1 - duty_alpha) * duty_cycle[j] + duty_alpha * wins[j] / rows.
 * duty_cycle [n] may be null only when boost_strength == 0 and duty_alpha == 0.
 * Requires n >= 1, 1 <= k <= n, boost_strength finite and >= 0.
 */
SL_API sl_status sl_kwinners_fwd(int64_t rows, int32_t n, int32_t k, float boost_strength,
                                 float duty_alpha, const float *x, float *duty_cycle, float *y,
                                 int32_t *winners, int32_t *win_counts);
/*
 * K-Winners backward: dx[r, j] = dy[r, j] when j is one of winners[r, 0..k), else 0 (dx
 * overwritten). A winner outside [0, n) -> SL_E_INDEX_OUT_OF_RANGE, nothing written.
 */
SL_API sl_status sl_kwinners_bwd(int64_t rows, int32_t n, int32_t k, const int32_t *winners,
                                 const float *dy, float *dx);

/* ------------------------------------------------------------- optimizers ---- */
/* (SGD, Adam; see csrc/cpu/optim.c) */

/*
 * One SGD step over n elements, torch.optim.SGD semantics:
 *   d = grad + weight_decay * param;
 *   momentum != 0: buf = init_momentum ? d : momentum * buf + (1 - dampening) * d;
 *                  d = nesterov ? d + momentum * buf : buf;
 *   param -= lr * d.
 * momentum_buf [n] may be null when momentum is 0. nesterov needs momentum > 0, dampening 0.
 */
SL_API sl_status sl_sgd_step(int64_t n, float lr, float momentum, float dampening,
                             float weight_decay, int32_t nesterov, int32_t init_momentum,
                             float *param, const float *grad, float *momentum_buf);

/*
 * One Adam / AdamW step over n elements, torch.optim.Adam / AdamW semantics. step counts this
 * update (1 on the first). decoupled_weight_decay 0 (Adam): grad += weight_decay * param;
 * 1 (AdamW): param *= 1 - lr * weight_decay. Then m = lerp(m, grad, 1 - beta1),
 * v = beta2 * v + (1 - beta2) * grad^2, v_hat = amsgrad ? (vmax = max(vmax, v)) : v,
 * param -= lr / (1 - beta1^step) * m / (sqrt(v_hat) / sqrt(1 - beta2^step) + eps).
 * max_exp_avg_sq may be null unless amsgrad.
 */
SL_API sl_status sl_adam_step(int64_t n, float lr, float beta1, float beta2, float eps,
                              float weight_decay, int32_t decoupled_weight_decay,
                              int32_t amsgrad, int64_t step, float *param, const float *grad,
                              float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq);

/* ------------------------------------------------------ sparsity updates ---- */
/* (top-k / bottom-k, chunked dense-gradient top-k, CSR rebuild; see csrc/cpu/topk.c)
 * The kernels of RigL / SET prune-and-grow. Every selection is exact and deterministic for the
 * scores it ranks: ties are broken by lower index (lower flat position row * n_cols + col for
 * matrix positions), and results come in ascending index / row-major order, whatever the thread
 * count (sl_dense_grad_topk's scores come from sl_gemm: see there). */

/* sl_topk flags: pick the smallest instead of the largest; rank by |score| instead of score. */
enum { SL_TOPK_SMALLEST = 1, SL_TOPK_ABS = 2 };

/*
 * Indices of the k best scores (largest, or smallest with SL_TOPK_SMALLEST; by magnitude with
 * SL_TOPK_ABS), written to out_idx[k] in ascending index order. -0 and +0 tie. 0 <= k <= n,
 * n < 2^31. A NaN score -> SL_E_INVALID_ARGUMENT naming its index.
 * RigL's drop step: sl_topk(nnz, values, k, SL_TOPK_SMALLEST | SL_TOPK_ABS, drop_idx).
 */
SL_API sl_status sl_topk(int64_t n, const float *scores, int64_t k, int32_t flags,
                         int32_t *out_idx);

/*
 * RigL's growth criterion: the k positions (o, i) with the largest |G[o, i]|, where
 * G = dy^T x (G[o, i] = sum_b dy[b, o] * x[b, i], the dense weight gradient of one batch),
 * among the positions NOT in the CSR pattern (row_ptr[n_out + 1], col_idx[nnz]; sorted, unique).
 * x: [batch, n_in], dy: [batch, n_out]. G is never materialised whole: it is computed in chunks
 * of floor(max_size / n_in) rows and a running top-k is merged across chunks. Scratch:
 * at most 4 * max_size bytes for a chunk, max_size bytes for the entries of a chunk that beat the
 * running top-k, 24 bytes per k, and 4 * batch * (chunk rows + 32 * threads) bytes for the
 * gradient kernel's copies of dy's chunk columns and of x's column panels. Time: n_out * n_in *
 * batch multiply-adds plus O(n_out * n_in) selection work. max_size >= max(n_in, 1);
 * k <= n_out * n_in - nnz. Writes out_rows[k], out_cols[k] in row-major order and, when
 * out_grad is non-null, out_grad[k] = G at those positions (signed).
 * A NaN in G -> SL_E_INVALID_ARGUMENT naming the position; nothing is written then.
 * Each entry of G is one chain of fused multiply-adds over the batch in ascending order from +0,
 * G[o, i] = fma(dy[B-1, o], x[B-1, i], ... fma(dy[0, o], x[0, i], +0)), whatever the thread
 * count, max_size or vector width, and the selection is exact for it: the same inputs give the
 * same growth on every run of the CPU library. (Earlier versions took G from sl_gemm, whose last
 * bits depended on the thread count and max_size with OpenBLAS.) The CUDA library computes G
 * with its GEMM: its last bits can differ from the CPU's.
 */
SL_API sl_status sl_dense_grad_topk(int32_t batch, int32_t n_in, int32_t n_out, const float *x,
                                   const float *dy, int64_t nnz, const int32_t *row_ptr,
                                   const int32_t *col_idx, int64_t k, int64_t max_size,
                                   int32_t *out_rows, int32_t *out_cols, float *out_grad);

/*
 * SET's growth: k distinct positions drawn uniformly among the n_rows * n_cols - nnz positions
 * not in the CSR pattern, seeded (same seed and pattern -> same result on every machine).
 * O(k log k + n_rows + nnz) time and memory, no dense scratch: works at 10^6 x 10^6.
 * Writes out_rows[k], out_cols[k] in row-major order.
 */
SL_API sl_status sl_sample_absent(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                  const int32_t *row_ptr, const int32_t *col_idx, int64_t k,
                                  uint64_t seed, int32_t *out_rows, int32_t *out_cols);

/* sl_csr_drop_grow flag: a grown position that is a connection dropped in the same call keeps
 * its value and old index (RigL's default: only connections absent before the update are new). */
enum { SL_REGROW_KEEPS = 1 };

/*
 * The pattern after a drop + grow: removes the CSR entries drop_idx[n_drop] (distinct, in any
 * order) and adds the positions (grow_rows[g], grow_cols[g]) (distinct, any order, none of them
 * a kept connection -> SL_E_DUPLICATE). Writes the new CSR new_row_ptr[n_rows + 1],
 * new_col_idx[nnz - n_drop + n_grow], new_values (the old value of a kept connection, 0 for a
 * grown one; both values arrays null to skip) and, when non-null, old_index[...]: the old CSR
 * position of each new entry, or -1 for a grown one (the map remapParameterState takes).
 * Outputs must not overlap the inputs; a rejected call writes nothing.
 */
SL_API sl_status sl_csr_drop_grow(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                  const int32_t *row_ptr, const int32_t *col_idx,
                                  const float *values, int64_t n_drop, const int32_t *drop_idx,
                                  int64_t n_grow, const int32_t *grow_rows,
                                  const int32_t *grow_cols, int32_t flags, int32_t *new_row_ptr,
                                  int32_t *new_col_idx, float *new_values, int32_t *old_index);

/* ----------------------------------------------------------------- device ---- */
/* (CUDA library only: libsparselinear_cuda.so; see csrc/cuda/device.cu)
 *
 * Pointer rules of the CUDA library. Every kernel above takes device pointers for its arrays,
 * except: shape / stride arrays (sl_binary, sl_binary_bwd, sl_sum_dims, sl_strided_copy) and the
 * scalar outputs nnz_out / first_duplicate of sl_coo_to_csr, which are host pointers.
 * Scratch comes from the device's stream-ordered memory pool. Everything runs in order on the
 * legacy default stream of the current device; a kernel call returns once its work is queued.
 *
 * Index checks on the device: kernels that read an index array (sparse kernels, labels,
 * winners) check every index in the kernel, skip a bad one (never touching memory out of
 * bounds) and record the first bad position in a device-side slot. How it is reported:
 *   - deferred (the default, so that a training step does not wait on the GPU per call): the
 *     call returns SL_OK once queued; the next synchronising call (sl_device_memcpy to the
 *     host, sl_device_synchronize, or any call that reads results back) returns the
 *     recorded error: "<that call>: an earlier call failed: sl_spmm_fwd: col_idx[17] = 900 is
 *     outside [0, 784)";
 *   - synchronous (sl_device_set_sync_checks(1), or SL_CUDA_SYNC_CHECKS=1 in the environment):
 *     the call waits for its kernels and returns its own error, as the CPU library does.
 * Either way a call that found a bad index may have written its outputs (unspecified values);
 * calls that must validate before writing (sl_coo_to_csr, sl_csr_to_csc, sl_csr_drop_grow,
 * sl_topk, sl_dense_grad_topk, sl_sample_absent, sl_csr_validate) synchronise and keep the
 * CPU library's no-partial-write rule. A failed CUDA call or launch returns SL_E_DEVICE with
 * the CUDA error string; a device fault makes every later call fail with SL_E_DEVICE.
 *
 * Limits of the CUDA library's launch grids that the CPU library does not have (refused with
 * SL_E_INVALID_ARGUMENT, or SL_E_UNSUPPORTED where noted, naming the size): batch <= 2,097,120
 * (65535 x 32) for sl_spmm_fwd, sl_spmm_bwd_input, sl_spmm_bwd, sl_sddmm and the _fm forms at
 * batch > 1; n_in and n_out <= 2,097,120 for the _fm forms; m <= 4,194,240 (65535 x 64) for
 * sl_gemm and sl_gemm_batched; n_in + k < 2^31 for sl_dense_grad_topk (SL_E_UNSUPPORTED).
 */

/* Direction of sl_device_memcpy. */
enum {
  SL_MEMCPY_HOST_TO_DEVICE = 1,
  SL_MEMCPY_DEVICE_TO_HOST = 2,
  SL_MEMCPY_DEVICE_TO_DEVICE = 3
};

/* Number of CUDA devices; 0 when there is none or the driver cannot be used (sl_last_error
 * then says why). Never fails. */
SL_API int32_t sl_device_count(void);
/* Selects the device later calls from this thread run on (default 0), as cudaSetDevice. */
SL_API sl_status sl_device_set(int32_t device);
/* The selected device. */
SL_API int32_t sl_device_get(void);
/*
 * Properties of a device (host outputs, each may be null): its name (NUL-terminated, cut to
 * name_len bytes), total memory in bytes, compute capability and number of multiprocessors.
 */
SL_API sl_status sl_device_info(int32_t device, char *name, int32_t name_len,
                                int64_t *total_bytes, int32_t *cc_major, int32_t *cc_minor,
                                int32_t *multiprocessors);
/* Free and total memory of the selected device in bytes (host outputs). */
SL_API sl_status sl_device_mem_info(int64_t *free_bytes, int64_t *total_bytes);
/* *ptr (host) = bytes of device memory (null for 0 bytes), 256-byte aligned, not initialised. */
SL_API sl_status sl_device_alloc(int64_t bytes, void **ptr);
/* Frees memory from sl_device_alloc (null is a no-op). Stream-ordered: pending kernels that
 * use it finish first. */
SL_API sl_status sl_device_free(void *ptr);
/* Copies bytes between host and device memory (kind: SL_MEMCPY_*). Host <-> device copies
 * return once the host side may be reused or read: uploads of up to 1 MiB are staged through
 * pinned memory and queued (no wait for the device); device -> host copies wait for the queued
 * kernels and report deferred index errors. */
SL_API sl_status sl_device_memcpy(void *dst, const void *src, int64_t bytes, int32_t kind);
/* Sets bytes of device memory to the byte value (0..255). */
SL_API sl_status sl_device_memset(void *ptr, int32_t value, int64_t bytes);
/* Waits for every queued kernel; reports deferred index errors and device faults. */
SL_API sl_status sl_device_synchronize(void);
/* 1: every checking call waits and reports its own index errors; 0: deferred (default). */
SL_API sl_status sl_device_set_sync_checks(int32_t on);

#ifdef __cplusplus
}
#endif

#endif /* SPARSELINEAR_H */

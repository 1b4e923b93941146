/*
 * elementwise.c — broadcasting binary ops and their gradients, unary ops and their gradients,
 * the strided gather (expand / permute), and row-wise log-softmax.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "pow_special.h"
#include "strided.h"
#include "validate.h"

/* ------------------------------------------------------------ binary ops ---- */

typedef struct {
  int32_t op;
  const float *a, *b;
  int64_t sa, sb; /* innermost strides of a and b */
  const float *dy;
  float *out, *da, *db;
} binary_ctx;

/*
 * One row of out = a OP b. The three stride patterns that cover nearly every call (same
 * shape, right operand broadcast, left operand broadcast) get their own simd loops.
 */
#define BINARY_ROW(NAME, EXPR)                                                          \
  static void NAME(int64_t n, const float *a, int64_t sa, const float *b, int64_t sb,  \
                   float *o) {                                                          \
    if (sa == 1 && sb == 1) {                                                           \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                             \
        const float x = a[i], y = b[i];                                                 \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    } else if (sa == 1 && sb == 0) {                                                    \
      const float y = b[0];                                                             \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                             \
        const float x = a[i];                                                           \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    } else if (sa == 0 && sb == 1) {                                                    \
      const float x = a[0];                                                             \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                             \
        const float y = b[i];                                                           \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    } else {                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                 \
        const float x = a[i * sa], y = b[i * sb];                                       \
        o[i] = (EXPR);                                                                  \
      }                                                                                 \
    }                                                                                   \
  }

BINARY_ROW(add_row, x + y)
BINARY_ROW(sub_row, x - y)
BINARY_ROW(mul_row, x *y)
BINARY_ROW(div_row, x / y)

static void binary_row(int64_t n, int64_t off_a, int64_t off_b, int64_t off_out, void *p) {
  const binary_ctx *c = p;
  const float *a = c->a + off_a, *b = c->b + off_b;
  float *o = c->out + off_out;
  switch (c->op) {
    case SL_BINARY_ADD: add_row(n, a, c->sa, b, c->sb, o); break;
    case SL_BINARY_SUB: sub_row(n, a, c->sa, b, c->sb, o); break;
    case SL_BINARY_MUL: mul_row(n, a, c->sa, b, c->sb, o); break;
    default: div_row(n, a, c->sa, b, c->sb, o); break;
  }
}

static void binary_bwd_row(int64_t n, int64_t off_a, int64_t off_b, int64_t off_out, void *p) {
  const binary_ctx *c = p;
  const float *dy = c->dy + off_out;
  float *da = c->da != NULL ? c->da + off_out : NULL;
  float *db = c->db != NULL ? c->db + off_out : NULL;
  const int64_t sa = c->sa, sb = c->sb;
  switch (c->op) {
    case SL_BINARY_ADD:
    case SL_BINARY_SUB: {
      const float sign = c->op == SL_BINARY_ADD ? 1.0f : -1.0f;
      if (da != NULL) memcpy(da, dy, (size_t)n * sizeof(float));
      if (db != NULL) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) db[i] = sign * dy[i];
      }
      break;
    }
    case SL_BINARY_MUL: {
      const float *a = c->a + off_a, *b = c->b + off_b;
      if (da != NULL) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) da[i] = dy[i] * b[i * sb];
      }
      if (db != NULL) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) db[i] = dy[i] * a[i * sa];
      }
      break;
    }
    default: { /* DIV: d(a/b)/da = 1/b, d(a/b)/db = -(a/b)/b (as PyTorch; b*b would overflow) */
      const float *a = c->a + off_a, *b = c->b + off_b;
      if (da != NULL) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) da[i] = dy[i] / b[i * sb];
      }
      if (db != NULL) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
          const float bi = b[i * sb];
          db[i] = -dy[i] * ((a[i * sa] / bi) / bi);
        }
      }
      break;
    }
  }
}

sl_status sl_binary(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
                    int64_t a_len, const int64_t *a_strides, const float *b, int64_t b_len,
                    const int64_t *b_strides, float *out) {
  SL_ENTER();
  sl_layout l;
  int64_t numel = 0;
  sl_status st = sl_check_binary(__func__, op, ndim, shape, a, a_len, a_strides, b, b_len,
                                 b_strides, 1, &l, &numel);
  if (st != SL_OK) return st;
  if (numel == 0) return SL_OK;
  SL_CHECK_PTR(out);
  binary_ctx c = {.op = op, .a = a, .b = b, .sa = l.stride[0][l.ndim - 1],
                  .sb = l.stride[1][l.ndim - 1], .out = out};
  sl_for_each_row(&l, numel, binary_row, &c);
  return SL_OK;
}

sl_status sl_binary_bwd(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
                        int64_t a_len, const int64_t *a_strides, const float *b, int64_t b_len,
                        const int64_t *b_strides, const float *dy, float *da, float *db) {
  SL_ENTER();
  sl_layout l;
  int64_t numel = 0;
  const int reads = op == SL_BINARY_MUL || op == SL_BINARY_DIV;
  sl_status st = sl_check_binary(__func__, op, ndim, shape, a, a_len, a_strides, b, b_len,
                                 b_strides, reads, &l, &numel);
  if (st != SL_OK) return st;
  if (numel == 0 || (da == NULL && db == NULL)) return SL_OK;
  SL_CHECK_PTR(dy);
  binary_ctx c = {.op = op, .a = a, .b = b, .sa = l.stride[0][l.ndim - 1],
                  .sb = l.stride[1][l.ndim - 1], .dy = dy, .da = da, .db = db};
  sl_for_each_row(&l, numel, binary_bwd_row, &c);
  return SL_OK;
}

/* ----------------------------------------------------------- strided copy ---- */

typedef struct {
  const float *x;
  int64_t sx;
  float alpha;
  float *y;
} copy_ctx;

static void copy_row(int64_t n, int64_t off_x, int64_t unused, int64_t off_y, void *p) {
  const copy_ctx *c = p;
  const float *x = c->x + off_x;
  float *y = c->y + off_y;
  const float alpha = c->alpha;
  if (c->sx == 1) {
    if (alpha == 1.0f) {
      memcpy(y, x, (size_t)n * sizeof(float));
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i];
    }
  } else if (c->sx == 0) {
    const float v = alpha * x[0];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = v;
  } else {
    const int64_t sx = c->sx;
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i * sx];
  }
}

sl_status sl_strided_copy(int32_t ndim, const int64_t *shape, float alpha, const float *x,
                          int64_t x_len, const int64_t *x_strides, float *y) {
  SL_ENTER();
  int64_t numel = 0;
  sl_status st = sl_check_shape(__func__, ndim, shape, &numel);
  if (st != SL_OK) return st;
  st = sl_check_operand(__func__, "x", "x_strides", ndim, shape, numel, x, x_len, x_strides);
  if (st != SL_OK) return st;
  if (numel == 0) return SL_OK;
  SL_CHECK_PTR(y);
  sl_layout l;
  const int64_t *const strides[2] = {x_strides, NULL};
  sl_layout_init(&l, ndim, shape, 1, strides);
  copy_ctx c = {.x = x, .sx = l.stride[0][l.ndim - 1], .alpha = alpha, .y = y};
  sl_for_each_row(&l, numel, copy_row, &c);
  return SL_OK;
}

/* ------------------------------------------------------------- unary ops ---- */

static inline float sigmoidf(float x) {
  /* Two forms so that exp never overflows. */
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

#define UNARY_LOOP(EXPR)                                                               \
  _Pragma("omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_PARALLEL_MIN)")   \
  for (int64_t i = 0; i < n; i++) {                                                     \
    const float v = x[i];                                                               \
    y[i] = (EXPR);                                                                      \
  }

sl_status sl_unary(int32_t op, int64_t n, float alpha, float beta, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_unary(__func__, op, n, x, y));
  if (n == 0) return SL_OK;
  switch (op) {
    case SL_UNARY_NEG: UNARY_LOOP(-v) break;
    case SL_UNARY_EXP: UNARY_LOOP(expf(v)) break;
    case SL_UNARY_LOG: UNARY_LOOP(logf(v)) break;
    case SL_UNARY_RELU: UNARY_LOOP(v > 0.0f || v != v ? v : 0.0f) /* NaN propagates, as in PyTorch */ break;
    case SL_UNARY_SIGMOID: UNARY_LOOP(sigmoidf(v)) break;
    case SL_UNARY_TANH: UNARY_LOOP(tanhf(v)) break;
    case SL_UNARY_ABS: UNARY_LOOP(fabsf(v)) break;
    case SL_UNARY_SQRT: UNARY_LOOP(sqrtf(v)) break;
    /* IEEE throughout: -0 + 0 = +0, so a product alone is asked for with beta = -0. */
    case SL_UNARY_AFFINE: UNARY_LOOP(alpha * v + beta) break;
    case SL_UNARY_RECIPROCAL: UNARY_LOOP(alpha / v) break;
    case SL_UNARY_SQUARE: UNARY_LOOP(v * v) break;
    default: UNARY_LOOP(sl_pow_special(v, alpha)) break; /* POW */
  }
  return SL_OK;
}

#define UNARY_BWD_LOOP(EXPR)                                                           \
  _Pragma("omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_PARALLEL_MIN)")   \
  for (int64_t i = 0; i < n; i++) {                                                     \
    const float v = x[i], out = y[i], g = dy[i];                                        \
    (void)v;                                                                            \
    (void)out;                                                                          \
    (void)g;                                                                            \
    dx[i] = (EXPR);                                                                     \
  }

sl_status sl_unary_bwd(int32_t op, int64_t n, float alpha, float beta, const float *x,
                       const float *y, const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_unary_bwd(__func__, op, n, x, y, dy, dx));
  if (n == 0) return SL_OK;
  switch (op) {
    case SL_UNARY_NEG: UNARY_BWD_LOOP(-g) break;
    case SL_UNARY_EXP: UNARY_BWD_LOOP(g * out) break;
    case SL_UNARY_LOG: UNARY_BWD_LOOP(g / v) break;
    case SL_UNARY_RELU: UNARY_BWD_LOOP(v > 0.0f || v != v ? g : 0.0f) /* NaN passes, as PyTorch */ break;
    case SL_UNARY_SIGMOID: UNARY_BWD_LOOP(g * out * (1.0f - out)) break;
    case SL_UNARY_TANH: UNARY_BWD_LOOP(g * (1.0f - out * out)) break;
    /* g * sign(x) as a product, as PyTorch (sign(0) = sign(NaN) = 0): NaN or inf g at 0 is NaN */
    case SL_UNARY_ABS: UNARY_BWD_LOOP(g * (float)((v > 0.0f) - (v < 0.0f))) break;
    case SL_UNARY_SQRT: UNARY_BWD_LOOP(0.5f * g / out) break;
    case SL_UNARY_AFFINE: UNARY_BWD_LOOP(alpha * g) break;
    case SL_UNARY_RECIPROCAL: UNARY_BWD_LOOP(-g * ((alpha / v) / v)) /* v*v would overflow */ break;
    case SL_UNARY_SQUARE: UNARY_BWD_LOOP(2.0f * v * g) break;
    default:
      if (alpha == 0.0f) {
        UNARY_BWD_LOOP(0.0f)
      } else {
        /* PyTorch: grad * (exponent * x.pow(exponent - 1)), with pow's special exponents (so
         * x^(-0.5) at -0 is -inf, as 1 / sqrt(-0), not powf's +inf). */
        const float e = alpha - 1.0f;
        UNARY_BWD_LOOP(g * (alpha * sl_pow_special(v, e)))
      }
      break;
  }
  return SL_OK;
}

/* ----------------------------------------------------------- log-softmax ---- */

sl_status sl_log_softmax_fwd(int64_t rows, int32_t cols, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_log_softmax_fwd(__func__, rows, cols, x, y));
  if (rows == 0 || cols == 0) return SL_OK;
#pragma omp parallel for num_threads(sl_threads()) if (rows * cols > SL_PARALLEL_MIN) \
    schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float max = xr[0];
    for (int32_t j = 1; j < cols; j++) max = xr[j] > max ? xr[j] : max;
    double sum = 0.0;
    for (int32_t j = 0; j < cols; j++) sum += expf(xr[j] - max);
    /* (x - max) - log(sum), as PyTorch: max + log(sum) first would round to max's precision
     * (at logits ~1e4 and up, every output off by its ulp). */
    const float lse = (float)log(sum);
#pragma omp simd
    for (int32_t j = 0; j < cols; j++) yr[j] = (xr[j] - max) - lse;
  }
  return SL_OK;
}

sl_status sl_log_softmax_bwd(int64_t rows, int32_t cols, const float *y, const float *dy,
                             float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_log_softmax_bwd(__func__, rows, cols, y, dy, dx));
  if (rows == 0 || cols == 0) return SL_OK;
#pragma omp parallel for num_threads(sl_threads()) if (rows * cols > SL_PARALLEL_MIN) \
    schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * cols, *gr = dy + r * cols;
    float *dr = dx + r * cols;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int32_t j = 0; j < cols; j++) sum += gr[j];
    const float s = (float)sum;
    for (int32_t j = 0; j < cols; j++) dr[j] = gr[j] - expf(yr[j]) * s;
  }
  return SL_OK;
}

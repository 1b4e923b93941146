/*
 * test_optim.c — SGD and Adam/AdamW steps against a naive double-precision transcription of
 * torch.optim's algorithms, over several steps, plus argument validation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparselinear.h"

#include "expect.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

#define N 300007 /* above the parallel threshold (2^18), and not a multiple of the vector width */
#define STEPS 5

static float param[N], grad[STEPS][N], buf[N], m1[N], m2[N], vmax[N];
static double rparam[N], rbuf[N], rm1[N], rm2[N], rvmax[N];

static void init(void) {
  for (int i = 0; i < N; i++) {
    param[i] = (float)(urand() * 2 - 1);
    rparam[i] = param[i];
    buf[i] = m1[i] = m2[i] = vmax[i] = 0;
    rbuf[i] = rm1[i] = rm2[i] = rvmax[i] = 0;
  }
  for (int s = 0; s < STEPS; s++)
    for (int i = 0; i < N; i++) grad[s][i] = (float)(urand() * 2 - 1);
}

static double worst_param_err(void) {
  double worst = 0;
  for (int i = 0; i < N; i++) {
    double e = fabs(param[i] - rparam[i]) / (1e-2 + fabs(rparam[i]));
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

static void test_sgd(float lr, float momentum, float dampening, float wd, int nesterov) {
  init();
  for (int s = 0; s < STEPS; s++) {
    sl_status st = sl_sgd_step(N, lr, momentum, dampening, wd, nesterov, s == 0, param, grad[s],
                               momentum != 0 ? buf : NULL);
    EXPECT(st == SL_OK, "sgd step: %s", sl_last_error());
    for (int i = 0; i < N; i++) { /* torch.optim.SGD, single-tensor path */
      double d = grad[s][i] + wd * rparam[i];
      if (momentum != 0) {
        rbuf[i] = s == 0 ? d : momentum * rbuf[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * rbuf[i] : rbuf[i];
      }
      rparam[i] -= lr * d;
    }
  }
  double err = worst_param_err();
  EXPECT(err < 1e-5, "sgd lr=%g momentum=%g dampening=%g wd=%g nesterov=%d: err %g", lr, momentum,
         dampening, wd, nesterov, err);
}

static void test_adam(float lr, float b1, float b2, float eps, float wd, int decoupled,
                      int amsgrad) {
  init();
  for (int s = 0; s < STEPS; s++) {
    sl_status st = sl_adam_step(N, lr, b1, b2, eps, wd, decoupled, amsgrad, s + 1, param,
                                grad[s], m1, m2, amsgrad ? vmax : NULL);
    EXPECT(st == SL_OK, "adam step: %s", sl_last_error());
    int step = s + 1;
    for (int i = 0; i < N; i++) { /* torch.optim.Adam / AdamW, single-tensor path */
      double g = grad[s][i];
      if (decoupled) rparam[i] *= 1 - (double)lr * wd;
      else g += wd * rparam[i];
      rm1[i] += (1 - b1) * (g - rm1[i]);
      rm2[i] = b2 * rm2[i] + (1 - b2) * g * g;
      double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
      double v = rm2[i];
      if (amsgrad) v = rvmax[i] = fmax(rvmax[i], rm2[i]);
      double denom = sqrt(v) / sqrt(bc2) + eps;
      rparam[i] -= lr / bc1 * rm1[i] / denom;
    }
  }
  double err = worst_param_err();
  EXPECT(err < 1e-4, "adam lr=%g b=(%g,%g) wd=%g decoupled=%d amsgrad=%d: err %g", lr, b1, b2, wd,
         decoupled, amsgrad, err);
}

static void test_errors(void) {
  float p[2] = {1, 2}, g[2] = {1, 1}, b[2];
  EXPECT(sl_sgd_step(2, -1.0f, 0, 0, 0, 0, 1, p, g, NULL) == SL_E_INVALID_ARGUMENT,
         "negative lr");
  EXPECT(strstr(sl_last_error(), "sl_sgd_step: lr") != NULL, "message: %s", sl_last_error());
  EXPECT(sl_sgd_step(2, 0.1f, 0.9f, 0, 0, 0, 1, p, g, NULL) == SL_E_NULL_POINTER,
         "momentum without a buffer");
  EXPECT(sl_sgd_step(2, 0.1f, 0.0f, 0, 0, 1, 1, p, g, b) == SL_E_INVALID_ARGUMENT,
         "nesterov without momentum");
  EXPECT(sl_sgd_step(2, 0.1f, 0.9f, 0.5f, 0, 1, 1, p, g, b) == SL_E_INVALID_ARGUMENT,
         "nesterov with dampening");
  EXPECT(sl_sgd_step(-1, 0.1f, 0, 0, 0, 0, 1, p, g, NULL) == SL_E_INVALID_ARGUMENT, "negative n");
  EXPECT(p[0] == 1 && p[1] == 2, "failed calls leave the parameter untouched");
  EXPECT(sl_adam_step(2, 0.1f, 1.0f, 0.999f, 1e-8f, 0, 0, 0, 1, p, g, b, b, NULL) ==
             SL_E_INVALID_ARGUMENT,
         "beta1 = 1");
  EXPECT(sl_adam_step(2, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 0, 0, 0, p, g, b, b, NULL) ==
             SL_E_INVALID_ARGUMENT,
         "step 0");
  EXPECT(sl_adam_step(2, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 0, 1, 1, p, g, b, b, NULL) ==
             SL_E_NULL_POINTER,
         "amsgrad without max buffer");
  EXPECT(sl_sgd_step(0, 0.1f, 0, 0, 0, 0, 1, NULL, NULL, NULL) == SL_OK, "empty tensor is fine");
}

int main(void) {
  test_sgd(0.1f, 0, 0, 0, 0);
  test_sgd(0.1f, 0, 0, 1e-2f, 0);
  test_sgd(0.05f, 0.9f, 0, 0, 0);
  test_sgd(0.05f, 0.9f, 0.3f, 1e-3f, 0);
  test_sgd(0.05f, 0.9f, 0, 1e-3f, 1);
  test_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0, 0);
  test_adam(1e-2f, 0.8f, 0.99f, 1e-6f, 1e-2f, 0, 0);
  test_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f, 1, 0);
  test_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f, 1, 1);
  test_adam(1e-2f, 0.0f, 0.5f, 1e-8f, 0, 0, 1);
  test_errors();
  if (failures) {
    fprintf(stderr, "test_optim: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_optim: ok\n");
  return 0;
}

/*
 * device.cu — the sl_device_* family (device selection and info, memory, copies,
 * synchronisation) and the machinery every CUDA entry point shares: CUDA error messages,
 * per-device readiness, stream-ordered scratch, and the ring of deferred index-check records.
 */
#include <mutex>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

#define MAX_DEVICES 64

/* ------------------------------------------------------------- errors ---- */

sl_status sl_cuda_fail(const char *fn, const char *what, cudaError_t err) {
  cudaGetLastError(); /* clear a non-sticky error so that later calls can proceed */
  return sl_fail(SL_E_DEVICE, fn, "%s failed: %s (%s)", what, cudaGetErrorString(err),
                 cudaGetErrorName(err));
}

/* ----------------------------------------------------------- readiness ---- */

static std::mutex g_lock;                 /* guards the tables below */
static int g_pool_state[MAX_DEVICES];     /* 0 unknown, 1 memory pools, 2 plain cudaMalloc */
static unsigned long long *g_slots[MAX_DEVICES]; /* check slots of each device */
/* Each device's "dirty" word in mapped host memory (null when it could not be mapped): set by
 * any kernel that records a bad entry, so a synchronisation reads the slots back only then. */
static volatile unsigned int *g_dirty[MAX_DEVICES];
/* Clean slots (every kind ~0, then the dirty word's device address), copied over the device
 * slots to initialise and to clear them. */
static unsigned long long *g_clean_slots[MAX_DEVICES];
static thread_local int tl_ready_device = -1;    /* device initialised on this thread */

static int pools_of(int device) {
  return device >= 0 && device < MAX_DEVICES ? g_pool_state[device] : 2;
}

sl_status sl_cuda_ready(const char *fn) {
  int dev = -1;
  if (tl_ready_device >= 0 && cudaGetDevice(&dev) == cudaSuccess && dev == tl_ready_device)
    return SL_OK;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return sl_fail(SL_E_DEVICE, fn, "no usable CUDA device: cudaGetDeviceCount failed: %s",
                   cudaGetErrorString(err));
  }
  if (count == 0) return sl_fail(SL_E_DEVICE, fn, "no CUDA device is present");
  err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaGetDevice", err);
  if (dev >= MAX_DEVICES)
    return sl_fail(SL_E_DEVICE, fn, "device %d is beyond the %d devices this library supports",
                   dev, MAX_DEVICES);
  {
    std::lock_guard<std::mutex> guard(g_lock);
    if (g_pool_state[dev] == 0) {
      int supported = 0;
      cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, dev);
      cudaMemPool_t pool;
      if (supported && cudaDeviceGetDefaultMemPool(&pool, dev) == cudaSuccess) {
        /* Keep freed memory in the pool: allocations of a training step then cost no
         * driver call after the first step (a caching allocator). */
        uint64_t keep = UINT64_MAX;
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
        g_pool_state[dev] = 1;
      } else {
        g_pool_state[dev] = 2;
      }
      cudaGetLastError();
    }
    if (g_slots[dev] == nullptr) {
      const size_t words = (size_t)256 * SL_CHECK_STRIDE;
      unsigned long long *clean = (unsigned long long *)malloc(words * sizeof *clean);
      if (clean == nullptr) return sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate check slots");
      void *dirty = nullptr, *dirty_dev = nullptr;
      if (cudaHostAlloc(&dirty, sizeof(unsigned int), cudaHostAllocMapped) != cudaSuccess ||
          cudaHostGetDevicePointer(&dirty_dev, dirty, 0) != cudaSuccess) {
        cudaGetLastError(); /* no mapped memory: the slots are read back at every flush */
        if (dirty != nullptr) cudaFreeHost(dirty);
        dirty = dirty_dev = nullptr;
      } else {
        *(volatile unsigned int *)dirty = 0u;
      }
      for (size_t i = 0; i < words; i++)
        clean[i] = i % SL_CHECK_STRIDE == SL_CHECK_KINDS ? (unsigned long long)(uintptr_t)dirty_dev
                                                         : SL_CHECK_CLEAN;
      void *p = nullptr;
      err = cudaMalloc(&p, words * sizeof(unsigned long long));
      if (err == cudaSuccess) {
        err = cudaMemcpy(p, clean, words * sizeof(unsigned long long), cudaMemcpyHostToDevice);
        if (err != cudaSuccess) cudaFree(p);
      }
      if (err != cudaSuccess) {
        free(clean);
        if (dirty != nullptr) cudaFreeHost(dirty);
        return sl_cuda_fail(fn, "initialising the index-check slots", err);
      }
      g_slots[dev] = (unsigned long long *)p;
      g_clean_slots[dev] = clean;
      g_dirty[dev] = (volatile unsigned int *)dirty;
    }
  }
  tl_ready_device = dev;
  return SL_OK;
}

/* ----------------------------------------------------------- allocation ---- */

cudaError_t sl_dev_malloc(void **p, size_t bytes) {
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  int dev = 0;
  cudaGetDevice(&dev);
  if (pools_of(dev) == 1) return cudaMallocAsync(p, bytes, 0);
  return cudaMalloc(p, bytes);
}

cudaError_t sl_dev_free(void *p) {
  if (p == nullptr) return cudaSuccess;
  int dev = 0;
  cudaGetDevice(&dev);
  if (pools_of(dev) == 1) return cudaFreeAsync(p, 0);
  return cudaFree(p);
}

/* ------------------------------------------------------ check-record ring ---- */

#define RING 256

struct pending_check {
  const char *fn;
  sl_explain_fn explain;
  int64_t params[4];
};

static pending_check g_pending[RING];
static int g_pending_count = 0;
static int g_pending_device = -1;
static int g_sync_checks = -1; /* -1: not read from the environment yet */

static int sync_checks(void) {
  if (g_sync_checks < 0) {
    const char *env = getenv("SL_CUDA_SYNC_CHECKS");
    g_sync_checks = env != nullptr && env[0] == '1';
  }
  return g_sync_checks;
}

/* Reads and clears every pending record; caller holds g_lock. */
static sl_status flush_locked(const char *reporter) {
  const int count = g_pending_count;
  const int dev = g_pending_device;
  cudaError_t err = cudaDeviceSynchronize();
  g_pending_count = 0;
  if (err != cudaSuccess) return sl_cuda_fail(reporter, "a queued kernel", err);
  if (count == 0) return SL_OK;
  /* With a dirty word, a clean run (the usual case) costs no copy back. */
  if (g_dirty[dev] != nullptr) {
    if (*g_dirty[dev] == 0u) return SL_OK;
    *g_dirty[dev] = 0u;
  }
  unsigned long long *dev_slots = g_slots[dev];
  const size_t bytes = (size_t)count * SL_CHECK_STRIDE * sizeof(unsigned long long);
  unsigned long long host[RING * SL_CHECK_STRIDE];
  err = cudaMemcpy(host, dev_slots, bytes, cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) return sl_cuda_fail(reporter, "reading the index-check slots", err);
  int first_dirty = -1;
  for (int i = 0; i < count && first_dirty < 0; i++)
    for (int k = 0; k < SL_CHECK_KINDS; k++)
      if (host[i * SL_CHECK_STRIDE + k] != SL_CHECK_CLEAN) first_dirty = i;
  if (first_dirty < 0) return SL_OK;
  err = cudaMemcpy(dev_slots, g_clean_slots[dev], bytes, cudaMemcpyHostToDevice);
  if (err != cudaSuccess) return sl_cuda_fail(reporter, "clearing the index-check slots", err);
  sl_bad_entry kinds[SL_CHECK_KINDS];
  for (int k = 0; k < SL_CHECK_KINDS; k++)
    kinds[k] = sl_decode(host[first_dirty * SL_CHECK_STRIDE + k]);
  const pending_check *p = &g_pending[first_dirty];
  sl_status st = p->explain(p->fn, kinds, p->params);
  if (st == SL_OK) return SL_OK;
  const int own = first_dirty == count - 1 && strcmp(p->fn, reporter) == 0;
  if (own) return st;
  char why[400];
  snprintf(why, sizeof why, "%s", sl_last_error());
  return sl_fail(st, reporter, "an earlier call failed: %s", why);
}

sl_status sl_check_flush(const char *reporter) {
  std::lock_guard<std::mutex> guard(g_lock);
  if (g_pending_count == 0) {
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) return sl_cuda_fail(reporter, "a queued kernel", err);
    return SL_OK;
  }
  return flush_locked(reporter);
}

sl_status sl_check_begin(const char *fn, sl_explain_fn explain, int64_t p0, int64_t p1,
                         int64_t p2, int64_t p3, unsigned long long **slot) {
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaGetDevice", err);
  std::lock_guard<std::mutex> guard(g_lock);
  if (g_pending_count > 0 && (g_pending_count == RING || g_pending_device != dev)) {
    sl_status st = flush_locked(fn);
    if (st != SL_OK) return st;
  }
  g_pending_device = dev;
  pending_check *p = &g_pending[g_pending_count];
  p->fn = fn;
  p->explain = explain;
  p->params[0] = p0;
  p->params[1] = p1;
  p->params[2] = p2;
  p->params[3] = p3;
  *slot = g_slots[dev] + (size_t)g_pending_count * SL_CHECK_STRIDE;
  g_pending_count++;
  return SL_OK;
}

sl_status sl_check_end(const char *fn) {
  if (!sync_checks()) return SL_OK;
  std::lock_guard<std::mutex> guard(g_lock);
  return flush_locked(fn);
}

/* ------------------------------------------------- pinned staging for uploads ---- */

/*
 * A copy from pageable host memory makes CUDA wait for the stream before it starts, so an
 * upload in the middle of a training step (the labels of a loss) would stall on the queued
 * forward pass. Small uploads instead go through a ring of pinned buffers: the host data is
 * copied into a free slot and the upload is queued asynchronously, its completion marked by an
 * event that is waited for only when the slot comes round again. The host array can be reused
 * as soon as the call returns, as with cudaMemcpy.
 */
#define STAGING_SLOTS 16
#define STAGING_BYTES ((size_t)1 << 20)

struct staging_ring {
  char *host; /* STAGING_SLOTS * STAGING_BYTES pinned bytes */
  cudaEvent_t done[STAGING_SLOTS];
  int used[STAGING_SLOTS];
  int next;
  int broken; /* pinned memory or events unavailable: uploads stay synchronous */
};

static staging_ring *g_staging[MAX_DEVICES];

/* Queues an upload of bytes <= STAGING_BYTES through the ring; 0 when it was not possible
 * (the caller then copies synchronously). Caller holds g_lock. */
static int staged_upload(int dev, void *dst, const void *src, size_t bytes, cudaError_t *err) {
  *err = cudaSuccess;
  if (dev < 0 || dev >= MAX_DEVICES || bytes > STAGING_BYTES) return 0;
  staging_ring *r = g_staging[dev];
  if (r == nullptr) {
    r = (staging_ring *)calloc(1, sizeof *r);
    if (r == nullptr) return 0;
    g_staging[dev] = r;
    if (cudaHostAlloc((void **)&r->host, STAGING_SLOTS * STAGING_BYTES, cudaHostAllocDefault) !=
        cudaSuccess) {
      cudaGetLastError();
      r->broken = 1;
      return 0;
    }
    for (int i = 0; i < STAGING_SLOTS; i++) {
      if (cudaEventCreateWithFlags(&r->done[i], cudaEventDisableTiming) != cudaSuccess) {
        cudaGetLastError();
        r->broken = 1;
        return 0;
      }
    }
  }
  if (r->broken) return 0;
  const int slot = r->next;
  r->next = (slot + 1) % STAGING_SLOTS;
  if (r->used[slot]) {
    *err = cudaEventSynchronize(r->done[slot]); /* normally long finished */
    if (*err != cudaSuccess) return 1;
  }
  char *stage = r->host + (size_t)slot * STAGING_BYTES;
  memcpy(stage, src, bytes);
  *err = cudaMemcpyAsync(dst, stage, bytes, cudaMemcpyHostToDevice, 0);
  if (*err != cudaSuccess) return 1;
  *err = cudaEventRecord(r->done[slot], 0);
  r->used[slot] = 1;
  return 1;
}

/* ------------------------------------------------------------ entry points ---- */

extern "C" {

SL_API int32_t sl_device_count(void) {
  SL_ENTER();
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    sl_fail(SL_E_DEVICE, __func__, "cudaGetDeviceCount failed: %s (%s)", cudaGetErrorString(err),
            cudaGetErrorName(err));
    return 0;
  }
  if (count == 0) sl_fail(SL_E_DEVICE, __func__, "no CUDA device is present");
  return count;
}

SL_API sl_status sl_device_set(int32_t device) {
  SL_ENTER();
  int count = sl_device_count();
  if (count == 0) return sl_fail(SL_E_DEVICE, __func__, "no CUDA device is present");
  SL_CHECK_ARG(device >= 0 && device < count, "device must be in [0, %d), got %d", count,
               device);
  {
    /* Records of the old device are reported before switching. */
    std::lock_guard<std::mutex> guard(g_lock);
    if (g_pending_count > 0) SL_TRY(flush_locked(__func__));
  }
  SL_CUDA(cudaSetDevice(device));
  tl_ready_device = -1;
  return sl_cuda_ready(__func__);
}

SL_API int32_t sl_device_get(void) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return dev;
}

SL_API sl_status sl_device_info(int32_t device, char *name, int32_t name_len,
                                int64_t *total_bytes, int32_t *cc_major, int32_t *cc_minor,
                                int32_t *multiprocessors) {
  SL_ENTER();
  SL_CHECK_ARG(name == nullptr || name_len >= 1, "name_len must be >= 1 when name is given, got %d",
               name_len);
  int count = sl_device_count();
  if (count == 0) return sl_fail(SL_E_DEVICE, __func__, "no CUDA device is present");
  SL_CHECK_ARG(device >= 0 && device < count, "device must be in [0, %d), got %d", count,
               device);
  cudaDeviceProp prop;
  SL_CUDA(cudaGetDeviceProperties(&prop, device));
  if (name != nullptr) snprintf(name, (size_t)name_len, "%s", prop.name);
  if (total_bytes != nullptr) *total_bytes = (int64_t)prop.totalGlobalMem;
  if (cc_major != nullptr) *cc_major = prop.major;
  if (cc_minor != nullptr) *cc_minor = prop.minor;
  if (multiprocessors != nullptr) *multiprocessors = prop.multiProcessorCount;
  return SL_OK;
}

SL_API sl_status sl_device_mem_info(int64_t *free_bytes, int64_t *total_bytes) {
  SL_ENTER();
  SL_CUDA_READY();
  size_t f = 0, t = 0;
  SL_CUDA(cudaMemGetInfo(&f, &t));
  if (free_bytes != nullptr) *free_bytes = (int64_t)f;
  if (total_bytes != nullptr) *total_bytes = (int64_t)t;
  return SL_OK;
}

SL_API sl_status sl_device_alloc(int64_t bytes, void **ptr) {
  SL_ENTER();
  SL_CHECK_PTR(ptr);
  SL_CHECK_NONNEG(bytes);
  *ptr = nullptr;
  if (bytes == 0) return SL_OK;
  SL_CUDA_READY();
  void *p = nullptr;
  cudaError_t err = sl_dev_malloc(&p, (size_t)bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t f = 0, t = 0;
    cudaMemGetInfo(&f, &t);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__,
                   "cannot allocate %lld bytes of device memory (%lld of %lld bytes free)",
                   (long long)bytes, (long long)f, (long long)t);
  }
  if (err != cudaSuccess) return sl_cuda_fail(__func__, "the allocation", err);
  *ptr = p;
  return SL_OK;
}

SL_API sl_status sl_device_free(void *ptr) {
  SL_ENTER();
  if (ptr == nullptr) return SL_OK;
  SL_CUDA_READY();
  SL_CUDA(sl_dev_free(ptr));
  return SL_OK;
}

SL_API sl_status sl_device_memcpy(void *dst, const void *src, int64_t bytes, int32_t kind) {
  SL_ENTER();
  SL_CHECK_NONNEG(bytes);
  SL_CHECK_ARG(kind == SL_MEMCPY_HOST_TO_DEVICE || kind == SL_MEMCPY_DEVICE_TO_HOST ||
                   kind == SL_MEMCPY_DEVICE_TO_DEVICE,
               "kind must be 1 (host to device), 2 (device to host) or 3 (device to device), "
               "got %d",
               kind);
  if (bytes == 0) return SL_OK;
  SL_CHECK_PTR(dst);
  SL_CHECK_PTR(src);
  SL_CUDA_READY();
  if (kind == SL_MEMCPY_DEVICE_TO_DEVICE) {
    SL_CUDA(cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToDevice, 0));
    return SL_OK;
  }
  /* Pageable host memory: both directions return once the host buffer may be reused. */
  if (kind == SL_MEMCPY_HOST_TO_DEVICE) {
    {
      int dev = 0;
      SL_CUDA(cudaGetDevice(&dev));
      std::lock_guard<std::mutex> guard(g_lock);
      cudaError_t err;
      if (staged_upload(dev, dst, src, (size_t)bytes, &err)) {
        if (err != cudaSuccess) return sl_cuda_fail(__func__, "a staged upload", err);
        return SL_OK;
      }
    }
    SL_CUDA(cudaMemcpy(dst, src, (size_t)bytes, cudaMemcpyHostToDevice));
    return SL_OK;
  }
  SL_CUDA(cudaMemcpy(dst, src, (size_t)bytes, cudaMemcpyDeviceToHost));
  return sl_check_flush(__func__); /* the copy waited for the device: report what it found */
}

SL_API sl_status sl_device_memset(void *ptr, int32_t value, int64_t bytes) {
  SL_ENTER();
  SL_CHECK_NONNEG(bytes);
  SL_CHECK_ARG(value >= 0 && value <= 255, "value must be a byte in [0, 255], got %d", value);
  if (bytes == 0) return SL_OK;
  SL_CHECK_PTR(ptr);
  SL_CUDA_READY();
  SL_CUDA(cudaMemsetAsync(ptr, value, (size_t)bytes, 0));
  return SL_OK;
}

SL_API sl_status sl_device_synchronize(void) {
  SL_ENTER();
  SL_CUDA_READY();
  return sl_check_flush(__func__);
}

SL_API sl_status sl_device_set_sync_checks(int32_t on) {
  SL_ENTER();
  SL_CHECK_ARG(on == 0 || on == 1, "on must be 0 or 1, got %d", on);
  std::lock_guard<std::mutex> guard(g_lock);
  g_sync_checks = on;
  return SL_OK;
}

} /* extern "C" */

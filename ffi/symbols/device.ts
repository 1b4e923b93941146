/**
 * Device entry points of the CUDA library (`sl_device_*`, see the "device" section of
 * csrc/include/sparselinear.h). Only libsparselinear_cuda.so exports them, so they are not part
 * of the CPU table in ffi/symbols.ts; ffi/cuda_library.ts adds them to the CUDA table.
 * @module
 */

/** Directions of `sl_device_memcpy` (SL_MEMCPY_*). */
export const MemcpyKind = { hostToDevice: 1, deviceToHost: 2, deviceToDevice: 3 } as const;

/** Symbols of the device family. */
export const deviceSymbols = {
  // int32_t sl_device_count(void)
  sl_device_count: { parameters: [], result: "i32" },
  // sl_status sl_device_set(int32_t device)
  sl_device_set: { parameters: ["i32"], result: "i32" },
  // int32_t sl_device_get(void)
  sl_device_get: { parameters: [], result: "i32" },
  // sl_status sl_device_info(int32_t device, char *name, int32_t name_len, int64_t *total_bytes,
  //   int32_t *cc_major, int32_t *cc_minor, int32_t *multiprocessors)   (host outputs)
  sl_device_info: {
    parameters: ["i32", "pointer", "i32", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_device_mem_info(int64_t *free_bytes, int64_t *total_bytes)   (host outputs)
  sl_device_mem_info: { parameters: ["pointer", "pointer"], result: "i32" },
  // sl_status sl_device_alloc(int64_t bytes, void **ptr)   (ptr: host)
  sl_device_alloc: { parameters: ["i64", "pointer"], result: "i32" },
  // sl_status sl_device_free(void *ptr)
  sl_device_free: { parameters: ["pointer"], result: "i32" },
  // sl_status sl_device_memcpy(void *dst, const void *src, int64_t bytes, int32_t kind)
  sl_device_memcpy: { parameters: ["pointer", "pointer", "i64", "i32"], result: "i32" },
  // sl_status sl_device_memset(void *ptr, int32_t value, int64_t bytes)
  sl_device_memset: { parameters: ["pointer", "i32", "i64"], result: "i32" },
  // sl_status sl_device_synchronize(void)
  sl_device_synchronize: { parameters: [], result: "i32" },
  // sl_status sl_device_set_sync_checks(int32_t on)
  sl_device_set_sync_checks: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

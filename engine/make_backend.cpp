// make_backend (see make_backend.hpp).
#include "engine/make_backend.hpp"

#include <charconv>

#include "engine/cpu_backend.hpp"
#if TROUPE_HAVE_CUDA
#include "engine/kernels/cuda/cuda_backend.hpp"
#endif

namespace troupe::engine {

bool is_cuda_device(const std::string& device) { return device.rfind("cuda", 0) == 0; }

expected<std::unique_ptr<backend>> make_backend(const std::string& device, int threads, int rank) {
  if (device == "cpu") return make_cpu_backend(threads);
  if (!is_cuda_device(device)) return fail("--device '" + device + "': give cpu, cuda or cuda:N");
  int index = 0;
  if (device.size() > 4) {
    const char* first = device.data() + 5;
    const char* last = device.data() + device.size();
    auto [p, ec] = std::from_chars(first, last, index);
    if (device[4] != ':' || ec != std::errc() || p != last || index < 0)
      return fail("--device '" + device + "': give cpu, cuda or cuda:N");
  }
#if TROUPE_HAVE_CUDA
  auto be = make_cuda_backend(index + rank);
  if (!be) return fail("--device " + device + ": " + be.message());
  return be;
#else
  (void)rank;
  return fail("--device " + device + ": this troupe was built without CUDA (nvcc was not found at configure time)");
#endif
}

}  // namespace troupe::engine

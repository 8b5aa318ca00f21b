// make_backend (see make_backend.hpp).
#include "engine/make_backend.hpp"

#include <charconv>

#include "engine/cpu_backend.hpp"
#if TROUPE_HAVE_CUDA
#include "engine/kernels/cuda/cuda_backend.hpp"
#endif

namespace troupe::engine {

expected<device_spec> parse_device(const std::string& device) {
  const auto bad = [&device]() { return fail("--device '" + device + "': give cpu, cuda or cuda:N"); };
  if (device == "cpu") return device_spec{};
  if (device.rfind("cuda", 0) != 0) return bad();
  device_spec d{true, 0};
  if (device.size() > 4) {
    const char* first = device.data() + 5;
    const char* last = device.data() + device.size();
    auto [p, ec] = std::from_chars(first, last, d.index);
    if (device[4] != ':' || first == last || ec != std::errc() || p != last || d.index < 0) return bad();
  }
  return d;
}

std::string to_string(const device_spec& d) { return d.cuda ? "cuda:" + std::to_string(d.index) : "cpu"; }

bool is_cuda_device(const std::string& device) {
  auto d = parse_device(device);
  return d && d->cuda;
}

expected<std::unique_ptr<backend>> make_backend(const std::string& device, int threads, int rank) {
  auto d = parse_device(device);
  if (!d) return d.err();
  if (!d->cuda) return make_cpu_backend(threads);
#if TROUPE_HAVE_CUDA
  auto be = make_cuda_backend(d->index + rank);
  if (!be) return fail("--device " + device + ": " + be.message());
  return be;
#else
  (void)rank;
  return fail("--device " + device + ": this troupe was built without CUDA (nvcc was not found at configure time)");
#endif
}

}  // namespace troupe::engine

// The bounds every render stays within. A chat template comes from a model file (untrusted input),
// so a render must end, within memory and time, whatever the template does: these turn runaway
// output, loops, recursion and blow-ups (`{% set ns.s = ns.s + ns.s %}` in a loop) into errors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe::engine::chat {

struct render_limits {
  // The rendered text, and any single string a render builds.
  size_t max_output_bytes = size_t{16} << 20;
  // Loop iterations, all loops of one render together.
  uint64_t max_loop_iterations = 1'000'000;
  // Work units (costs below): about a second of CPU at most. Real templates spend a few units per
  // byte of output (Qwen2.5 over 4000 messages, 8 MB of prompt: ~50 ms), well within this.
  uint64_t max_work = 200'000'000;
  // Nesting of evaluation (expressions within expressions, blocks within blocks, macro calls):
  // bounds the C++ stack a render uses; a recursive macro stops here.
  uint32_t max_depth = 256;
};

// Work costs, calibrated so that max_work takes about a second whatever a template spends it on
// (measured on this project's VM, where fresh memory is slow): one unit per expression evaluated,
// statement run, loop step and byte produced or read, and
inline constexpr uint64_t cost_per_element = 64;     // a list element produced or read (its memory)
inline constexpr uint64_t cost_per_comparison = 8;   // a value visited by ==, <, in or a sort
inline constexpr uint64_t cost_per_macro_call = 50;  // a macro's scope, buffer and binding

// Lists and dicts may nest this deep (JSON input, or literals a template builds); printing, tojson
// and == recurse this far at most.
inline constexpr uint32_t max_value_depth = 512;

// range() yields at most this many numbers (Jinja's sandbox, which Hugging Face renders with, has
// the same MAX_RANGE).
inline constexpr int64_t max_range_length = 100'000;

}  // namespace troupe::engine::chat

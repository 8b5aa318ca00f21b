// The group protocol's encoding: a header of int32 words (magic, kind, setup fields, array
// lengths), then the batch's arrays back to back as int32s. Both sides know the payload size from
// the header, as a broadcast needs.
#include "engine/executor/step_broadcast.hpp"

#include <array>
#include <cstring>
#include <string>

namespace troupe::engine {
namespace {

constexpr int32_t magic = 0x54525047;  // "TRPG"
constexpr int64_t max_payload_words = (int64_t(64) << 20) / 4;

enum header_word { w_magic, w_kind, w_blocks, w_block_size, w_graphs, w_copies, w_tokens, w_offsets, w_tables, header_words };
using header = std::array<int32_t, header_words>;

std::span<std::byte> bytes_of(std::span<int32_t> words) {
  return {reinterpret_cast<std::byte*>(words.data()), words.size_bytes()};
}

// The arrays in wire order with their header word.
template <class Batch, class F>
void for_each_array(Batch& b, F&& f) {
  f(b.copies, w_copies);
  f(b.tokens, w_tokens);
  f(b.pos, w_tokens);
  f(b.token_seq, w_tokens);
  f(b.table_offsets, w_offsets);
  f(b.tables, w_tables);
}

// A message's header fields (`m`'s batch unused) with `batch` as its arrays.
expected<void> send(parallel::communicator& comm, const group_message& m, const step_batch& batch) {
  header h{};
  h[w_magic] = magic;
  h[w_kind] = int32_t(m.kind);
  h[w_blocks] = m.num_blocks;
  h[w_block_size] = m.block_size;
  h[w_graphs] = m.graph_max_batch;
  h[w_copies] = int32_t(batch.copies.size());
  h[w_tokens] = int32_t(batch.tokens.size());
  h[w_offsets] = int32_t(batch.table_offsets.size());
  h[w_tables] = int32_t(batch.tables.size());
  if (batch.pos.size() != batch.tokens.size() || batch.token_seq.size() != batch.tokens.size())
    return fail("group message: tokens, pos and token_seq differ in length");
  std::vector<int32_t> payload;
  for_each_array(batch, [&payload](const std::vector<int32_t>& a, int) {
    payload.insert(payload.end(), a.begin(), a.end());
  });
  if (int64_t(payload.size()) > max_payload_words) return fail("group message: a step of over 64 MiB");
  if (auto ok = comm.broadcast(bytes_of(h), 0); !ok) return ok;
  return comm.broadcast(bytes_of(payload), 0);
}

}  // namespace

expected<void> send_group_message(parallel::communicator& comm, const group_message& m) {
  return send(comm, m, m.batch);
}

expected<void> send_group_step(parallel::communicator& comm, const step_batch& batch) {
  group_message m;
  m.kind = group_message_kind::step;
  return send(comm, m, batch);
}

expected<group_message> receive_group_message(parallel::communicator& comm) {
  header h{};
  if (auto ok = comm.broadcast(bytes_of(h), 0); !ok) return ok.err();
  if (h[w_magic] != magic) return fail("group message: the header is not a Troupe step (wrong magic)");
  if (h[w_kind] < int32_t(group_message_kind::setup) || h[w_kind] > int32_t(group_message_kind::stop))
    return fail("group message: unknown kind " + std::to_string(h[w_kind]));
  int64_t words = 0;
  for (int w : {w_copies, w_tokens, w_tokens, w_tokens, w_offsets, w_tables}) {
    if (h[size_t(w)] < 0) return fail("group message: a negative array length");
    words += h[size_t(w)];
  }
  if (words > max_payload_words) return fail("group message: a step of over 64 MiB");
  std::vector<int32_t> payload(static_cast<size_t>(words));
  if (auto ok = comm.broadcast(bytes_of(payload), 0); !ok) return ok.err();
  group_message m;
  m.kind = group_message_kind(h[w_kind]);
  m.num_blocks = h[w_blocks];
  m.block_size = h[w_block_size];
  m.graph_max_batch = h[w_graphs];
  size_t at = 0;
  for_each_array(m.batch, [&payload, &at, &h](std::vector<int32_t>& a, int w) {
    const auto n = size_t(h[size_t(w)]);
    a.assign(payload.begin() + ptrdiff_t(at), payload.begin() + ptrdiff_t(at + n));
    at += n;
  });
  return m;
}

}  // namespace troupe::engine

// Wires a SessionService over a store made by a conformance factory, with a
// manual clock, an audit sink in memory and a write-counting wrapper.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "forwarding_store.hpp"
#include "store_conformance.hpp"
#include "tessera/session_service.hpp"

namespace tessera::testing {

inline std::filesystem::path make_scratch_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tessera-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

inline LookupKeyRing make_ring(std::initializer_list<std::pair<std::uint32_t, char>> versions) {
  std::vector<LookupKeyMaterial> keys;
  for (auto [v, fill] : versions) keys.push_back({v, SecretString(std::string(32, fill))});
  return *LookupKeyRing::create(std::move(keys));
}

inline KeySet make_keys() {
  KeySet keys;
  (void)keys.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()),
                 KeyState::active);
  return keys;
}

// Records every epoch move the service announces.
class RecordingEpochPublisher final : public EpochPublisher {
 public:
  void epoch_moved(std::string_view subject, std::uint64_t epoch) noexcept override {
    std::lock_guard lock(mu_);
    moves_.emplace_back(subject, epoch);
  }
  [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> moves() const {
    std::lock_guard lock(mu_);
    return moves_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::uint64_t>> moves_;
};

struct Harness {
  explicit Harness(const StoreFactory& factory, SessionPolicy p = {},
                   LookupKeyRing ring = make_ring({{1, 'a'}}))
      : dir(make_scratch_dir()),
        lookup(std::move(ring)),
        cipher(*TokenCipher::create({{1, SecretString(std::string(32, 'c'))}},
                                    CsprngRandom::instance())),
        keys(make_keys()),
        raw(factory.make(dir)),
        store(*raw),
        policy(std::move(p)) {
    auto s = SessionService::create(
        {store, lookup, cipher, keys, clock, CsprngRandom::instance(), &audit, &epochs}, policy);
    if (!s) throw std::runtime_error("service: " + s.error().detail);
    service = std::move(*s);
  }
  ~Harness() {
    service.reset();
    raw.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  // A second service over the same store with another lookup key ring.
  std::unique_ptr<SessionService> with_ring(const LookupKeyRing& ring) {
    return *SessionService::create(
        {store, ring, cipher, keys, clock, CsprngRandom::instance(), &audit}, policy);
  }

  IssuedSession issue(std::string subject = "alice", SessionMode mode = SessionMode::cookie) {
    IssueRequest r;
    r.subject = std::move(subject);
    r.mode = mode;
    auto out = service->issue(r);
    if (!out) throw std::runtime_error("issue: " + out.error().detail);
    return std::move(*out);
  }

  std::filesystem::path dir;
  ManualClock clock;
  LookupKeyRing lookup;
  TokenCipher cipher;
  SharedKeySet keys;
  MemoryAuditSink audit;
  RecordingEpochPublisher epochs;
  std::unique_ptr<SessionStore> raw;
  ForwardingStore store;
  SessionPolicy policy;
  std::unique_ptr<SessionService> service;
};

}  // namespace tessera::testing

// tessera_seed: fills a store with N cookie sessions through the library
// (SessionService::issue, not HTTP), with the key files `tessera serve
// --data-dir D` uses, so that serve then accepts the tokens. Writes an even
// sample of the session tokens (one per line) for wrk. Used by
// scripts/bench-scale.sh.
//
//   tessera_seed --data-dir D --sessions N [--store URL] [--subjects S]
//                [--sample K] [--sample-file F] [--threads T]
//
// The store defaults to sqlite://D/tessera.db; a postgresql:// URL is passed
// to the PostgreSQL store (with pool_size T). SQLite is opened with
// synchronous=OFF while seeding (SqliteSync::off: a crash of the machine may
// lose the seed, nothing else can) and T reader connections; serve reopens
// it at its own setting.
//
// Where the time goes (perf, 2 vCPUs): every issue is one job of the SQLite
// store's group commit, so many threads (default 32) make batches of many
// sessions per transaction. At the old synchronous=NORMAL the WAL
// checkpoints' fdatasync (~6 ms each here, one every few dozen sessions)
// kept the single writer waiting most of the time; at OFF the seed is CPU
// bound: the writer's inserts and commits about half, the epochs read of
// issue a fifth, token and id randomness and the group commit's hand-offs
// the rest.
#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/key_files.hpp"
#include "tessera/postgres_store.hpp"
#include "tessera/random.hpp"
#include "tessera/session_service.hpp"
#include "tessera/sqlite_store.hpp"
#include "tessera/token_cipher.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

struct Options {
  fs::path data_dir;
  std::string store;
  std::size_t sessions = 0;
  std::size_t subjects = 0;  // 0: sessions / 8, so at most 8 per subject
  std::size_t sample = 20000;
  fs::path sample_file;
  std::size_t threads = 32;
};

int usage() {
  std::cerr << "usage: tessera_seed --data-dir D --sessions N [--store URL] [--subjects S]"
               " [--sample K] [--sample-file F] [--threads T]\n";
  return 2;
}

bool parse_size(std::string_view text, std::size_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

// The key files as serve's dev-mode first start makes them (runtime.cpp
// prepare_serve): generated if missing, loaded otherwise.
Result<SecretKeys> secret_keys(const fs::path& file, Random& random) {
  if (!fs::exists(file)) {
    if (auto s = write_private_file(file, secret_keys_json(generate_secret_keys(random))); !s)
      return std::unexpected(s.error());
  }
  return load_secret_keys(file);
}

Result<KeySet> signing_keys(const fs::path& file, Random& random, const Clock& clock) {
  if (!fs::exists(file)) {
    auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
    if (!keys) return std::unexpected(keys.error());
    if (auto s = write_private_file(file, keys->private_jwks()); !s)
      return std::unexpected(s.error());
  }
  return load_signing_keys(file);
}

Result<std::unique_ptr<SessionStore>> open_store(const Options& o) {
  if (o.store.starts_with("postgresql://") || o.store.starts_with("postgres://"))
    return open_postgres_store({.url = o.store, .pool_size = o.threads});
  fs::path path = o.data_dir / "tessera.db";
  if (o.store.starts_with("sqlite://")) path = o.store.substr(9);
  if (auto s = make_private_dirs(path.parent_path()); !s) return std::unexpected(s.error());
  return open_sqlite_store(path, {.synchronous = SqliteSync::off, .readers = o.threads});
}

// Browser-like metadata: a ~70-byte user agent, an IPv4 address, a device label.
IssueRequest request_for(std::size_t i, std::size_t subjects) {
  static constexpr std::string_view kAgents[] = {
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari",
      "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148 Sa"};
  static constexpr std::string_view kDevices[] = {"Chrome on Windows", "Safari on macOS",
                                                  "Firefox on Linux", "Safari on iPhone"};
  IssueRequest r;
  r.subject = fmt::format("user-{:07}", i % subjects);
  r.mode = SessionMode::cookie;
  r.metadata.ip = fmt::format("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
  r.metadata.user_agent = std::string(kAgents[i % 4]);
  r.metadata.device = std::string(kDevices[i % 4]);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--data-dir")
      o.data_dir = value;
    else if (flag == "--store")
      o.store = value;
    else if (flag == "--sessions")
      ok = parse_size(value, o.sessions);
    else if (flag == "--subjects")
      ok = parse_size(value, o.subjects);
    else if (flag == "--sample")
      ok = parse_size(value, o.sample);
    else if (flag == "--sample-file")
      o.sample_file = value;
    else if (flag == "--threads")
      ok = parse_size(value, o.threads);
    else
      ok = false;
    if (!ok) return usage();
  }
  if (argc % 2 == 0 || o.data_dir.empty() || o.sessions == 0 || o.threads == 0) return usage();
  if (o.subjects == 0) o.subjects = std::max<std::size_t>(1, o.sessions / 8);
  if (o.sample_file.empty()) o.sample_file = o.data_dir / "tokens.txt";
  o.sample = std::min(o.sample, o.sessions);

  auto& random = CsprngRandom::instance();
  const Clock& clock = SystemClock::instance();
  auto store = open_store(o);
  if (!store) return std::cerr << "store: " << store.error() << "\n", 1;
  auto secrets = secret_keys(o.data_dir / "keys" / "secrets.json", random);
  if (!secrets) return std::cerr << "secret_keys: " << secrets.error() << "\n", 1;
  auto lookup = LookupKeyRing::create(std::move(secrets->lookup));
  auto cipher = TokenCipher::create(std::move(secrets->cipher), random);
  auto signing = signing_keys(o.data_dir / "keys" / "signing.jwks", random, clock);
  if (!lookup || !cipher || !signing) return std::cerr << "keys do not load\n", 1;
  SharedKeySet keys(std::move(*signing));

  // Every subject holds ceil(N / S) sessions at most: the cap is set to
  // that, so issue never evicts one (serve needs --max-sessions-per-subject
  // at least as high only to issue more; validate ignores the cap).
  SessionPolicy policy;
  policy.max_sessions_per_subject = (o.sessions + o.subjects - 1) / o.subjects;
  auto service = SessionService::create({.store = **store,
                                         .lookup = *lookup,
                                         .cipher = *cipher,
                                         .keys = keys,
                                         .clock = clock,
                                         .random = random},
                                        policy);
  if (!service) return std::cerr << "service: " << service.error() << "\n", 1;

  // Session i goes into the sample when it is a multiple of the stride, so
  // the sample spreads evenly over the whole set (and over its index pages).
  const std::size_t stride = o.sessions / o.sample;
  std::vector<std::string> sample(o.sample);
  std::atomic<std::size_t> next{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < o.threads; ++t) {
    workers.emplace_back([&] {
      for (;;) {
        const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= o.sessions) return;
        auto issued = (*service)->issue(request_for(i, o.subjects));
        if (!issued) {
          if (failed.fetch_add(1) == 0) std::cerr << "issue: " << issued.error() << "\n";
          continue;
        }
        if (i % stride == 0 && i / stride < o.sample)
          sample[i / stride] = std::string(issued->session_token.reveal());
        if (i > 0 && i % 1'000'000 == 0) std::cerr << fmt::format("seed: {} sessions\n", i);
      }
    });
  }
  for (auto& w : workers) w.join();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (failed > 0) return std::cerr << fmt::format("seed: {} issues failed\n", failed.load()), 1;

  std::ofstream out(o.sample_file, std::ios::trunc);
  for (const auto& token : sample) out << token << '\n';
  out.close();
  if (!out) return std::cerr << "cannot write the sample file\n", 1;
  fs::permissions(o.sample_file, fs::perms::owner_read | fs::perms::owner_write);
  std::cout << fmt::format(
      "sessions={} subjects={} threads={} elapsed_s={:.1f} sessions_per_s={:.0f}\n", o.sessions,
      o.subjects, o.threads, elapsed.count(), o.sessions / elapsed.count());
  return 0;
}

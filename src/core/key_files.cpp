#include "tessera/key_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "tessera/encoding.hpp"
#include "tessera/ulid.hpp"

namespace tessera {

namespace fs = std::filesystem;

namespace {

std::unexpected<Error> io_error(const fs::path& p, std::string_view what, int err) {
  return fail(ErrorCode::internal,
              fmt::format("{} \"{}\": {}", what, p.string(), std::strerror(err)));
}

// Closes a descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorCode::internal, std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::string new_kid(const Clock& clock, Random& random) {
  UlidGenerator ids(clock, random);
  return ids.next().to_string();
}

Result<LookupKeyMaterial> parse_material(const boost::json::value& v, std::string_view list) {
  const auto* o = v.if_object();
  const auto* version = o ? o->if_contains("version") : nullptr;
  const auto* key = o ? o->if_contains("key") : nullptr;
  if (!version || !version->is_int64() || version->as_int64() < 1 ||
      version->as_int64() > 0xffffffffLL || !key || !key->is_string())
    return fail(ErrorCode::key_invalid,
                fmt::format("{}: each entry needs a version >= 1 and a key", list));
  auto bytes = base64url_decode(key->as_string());
  if (!bytes || bytes->size() != 32)
    return fail(ErrorCode::key_invalid,
                fmt::format("{}: version {}: key must be 32 bytes of base64url", list,
                            version->as_int64()));
  LookupKeyMaterial m{static_cast<std::uint32_t>(version->as_int64()),
                      SecretString(std::string(as_chars(*bytes)))};
  std::fill(bytes->begin(), bytes->end(), std::uint8_t{0});
  return m;
}

LookupKeyMaterial random_material(std::uint32_t version, Random& random) {
  std::array<std::uint8_t, 32> bytes{};
  random.fill(bytes);
  LookupKeyMaterial m{version, SecretString(std::string(as_chars(bytes)))};
  std::fill(bytes.begin(), bytes.end(), std::uint8_t{0});
  return m;
}

}  // namespace

Status make_private_dirs(const fs::path& dir) {
  if (dir.empty()) return {};
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  if (auto parent = dir.parent_path(); !parent.empty() && parent != dir) {
    if (auto s = make_private_dirs(parent); !s) return s;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error(dir, "cannot create", errno);
  return {};
}

Status write_private_file(const fs::path& file, std::string_view content) {
  const fs::path dir = file.parent_path();
  if (auto s = make_private_dirs(dir); !s) return s;
  fs::path tmp = file;
  tmp += fmt::format(".tmp.{}", ::getpid());
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)};
    if (f.fd < 0) return io_error(tmp, "cannot create", errno);
    // O_CREAT's mode is masked by the umask and ignored for an existing file.
    if (::fchmod(f.fd, 0600) != 0) return io_error(tmp, "cannot chmod", errno);
    if (auto s = write_all(f.fd, content); !s) {
      ::unlink(tmp.c_str());
      return fail(ErrorCode::internal,
                  fmt::format("cannot write \"{}\": {}", tmp.string(), s.error().detail));
    }
    if (::fsync(f.fd) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return io_error(tmp, "cannot fsync", err);
    }
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error(file, "cannot replace", err);
  }
  // Make the rename itself durable.
  Fd d{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) (void)::fsync(d.fd);
  return {};
}

Result<std::string> read_text_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return io_error(file, "cannot read", errno);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return io_error(file, "cannot read", errno);
  return std::move(s).str();
}

std::optional<FileStamp> file_stamp(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{
      .mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
      .size = static_cast<std::uintmax_t>(st.st_size),
      .inode = static_cast<std::uintmax_t>(st.st_ino)};
}

// --- secret keys ------------------------------------------------------------

SecretKeys generate_secret_keys(Random& random) {
  SecretKeys k;
  k.lookup.push_back(random_material(1, random));
  k.cipher.push_back(random_material(1, random));
  return k;
}

std::string secret_keys_json(const SecretKeys& keys) {
  auto list = [](const std::vector<LookupKeyMaterial>& ms) {
    boost::json::array a;
    for (const auto& m : ms) {
      a.push_back(
          boost::json::object{{"version", m.version}, {"key", base64url_encode(m.key.reveal())}});
    }
    return a;
  };
  boost::json::object o{{"lookup_keys", list(keys.lookup)}, {"cipher_keys", list(keys.cipher)}};
  return boost::json::serialize(o) + "\n";
}

Result<SecretKeys> parse_secret_keys(std::string_view json) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return fail(ErrorCode::key_invalid, "secret keys: not a JSON object");
  SecretKeys keys;
  for (const auto& [name, out] : {std::pair{std::string_view("lookup_keys"), &keys.lookup},
                                  std::pair{std::string_view("cipher_keys"), &keys.cipher}}) {
    const auto* list = v.as_object().if_contains(name);
    if (!list || !list->is_array() || list->as_array().empty())
      return fail(ErrorCode::key_invalid,
                  fmt::format("secret keys: {} needs at least one key", name));
    std::set<std::uint32_t> seen;
    for (const auto& item : list->as_array()) {
      auto m = parse_material(item, name);
      if (!m) return std::unexpected(m.error());
      if (!seen.insert(m->version).second)
        return fail(ErrorCode::key_invalid,
                    fmt::format("secret keys: {}: version {} twice", name, m->version));
      out->push_back(std::move(*m));
    }
  }
  return keys;
}

Result<SecretKeys> load_secret_keys(const fs::path& file) {
  auto text = read_text_file(file);
  if (!text) return std::unexpected(text.error());
  auto keys = parse_secret_keys(*text);
  std::fill(text->begin(), text->end(), '\0');
  if (!keys)
    return fail(keys.error().code, fmt::format("{}: {}", file.string(), keys.error().detail));
  return keys;
}

void add_secret_key_versions(SecretKeys& keys, Random& random) {
  for (auto* list : {&keys.lookup, &keys.cipher}) {
    std::uint32_t top = 0;
    for (const auto& m : *list) top = std::max(top, m.version);
    list->push_back(random_material(top + 1, random));
  }
}

// --- signing keys -----------------------------------------------------------

Result<KeySet> generate_signing_keys(Algorithm alg, Random& random, const Clock& clock) {
  KeySet set;
  for (const KeyState state : {KeyState::active, KeyState::next}) {
    auto key = Key::generate(alg, new_kid(clock, random), random);
    if (!key) return std::unexpected(key.error());
    if (auto s = set.add(std::move(*key), state); !s) return std::unexpected(s.error());
  }
  return set;
}

Result<KeySet> load_signing_keys(const fs::path& file) {
  auto text = read_text_file(file);
  if (!text) return std::unexpected(text.error());
  auto set = KeySet::from_jwks(*text);
  std::fill(text->begin(), text->end(), '\0');
  if (!set)
    return fail(ErrorCode::key_invalid, fmt::format("{}: not a signing key set ({})", file.string(),
                                                    to_string(set.error().code)));
  if (set->active() == nullptr)
    return fail(ErrorCode::key_invalid, fmt::format("{}: no active signing key", file.string()));
  for (const auto& e : set->entries()) {
    if (!e.key.has_private())
      return fail(ErrorCode::key_invalid,
                  fmt::format("{}: key {} has no private half", file.string(), e.key.kid()));
  }
  return set;
}

Result<Rotation> rotate_signing_keys(const KeySet& keys, Algorithm alg, Random& random,
                                     const Clock& clock, std::chrono::seconds access_ttl) {
  Rotation r;
  r.keys = keys;
  const Key* active = r.keys.active();
  if (active) r.retired_kid = active->kid();
  for (const auto& e : r.keys.entries()) {
    if (e.state == KeyState::next) r.active_kid = e.key.kid();
  }
  if (r.active_kid.empty()) {
    // A set without a pre-published key (made elsewhere): promote a fresh one.
    auto key = Key::generate(alg, new_kid(clock, random), random);
    if (!key) return std::unexpected(key.error());
    r.active_kid = key->kid();
    if (auto s = r.keys.add(std::move(*key), KeyState::next); !s) return std::unexpected(s.error());
  }
  const UnixSeconds now = clock.now();
  if (auto s = r.keys.activate(r.active_kid, now); !s) return std::unexpected(s.error());
  auto next = Key::generate(alg, new_kid(clock, random), random);
  if (!next) return std::unexpected(next.error());
  r.next_kid = next->kid();
  if (auto s = r.keys.add(std::move(*next), KeyState::next); !s) return std::unexpected(s.error());
  r.pruned = r.keys.prune(now, access_ttl, kVerifierLeeway);
  return r;
}

Result<KeyRevocation> revoke_signing_key(const KeySet& keys, std::string_view kid, Algorithm alg,
                                         Random& random, const Clock& clock,
                                         std::chrono::seconds access_ttl) {
  const KeySet::Entry* entry = keys.find_entry(kid);
  if (entry == nullptr)
    return fail(ErrorCode::key_not_found, fmt::format("no key with kid \"{}\" in the set", kid));
  KeyRevocation r;
  r.revoked_kid = std::string(kid);
  KeySet from = keys;
  if (entry->state == KeyState::active) {
    auto rotated = rotate_signing_keys(keys, alg, random, clock, access_ttl);
    if (!rotated) return std::unexpected(rotated.error());
    from = std::move(rotated->keys);
    r.rotated = true;
  }
  bool had_next = false;
  for (const auto& e : from.entries()) {
    if (e.key.kid() == kid) continue;
    if (auto s = r.keys.add(e.key, e.state, e.retired_at); !s) return std::unexpected(s.error());
    had_next = had_next || e.state == KeyState::next;
  }
  if (!had_next) {
    auto next = Key::generate(alg, new_kid(clock, random), random);
    if (!next) return std::unexpected(next.error());
    if (auto s = r.keys.add(std::move(*next), KeyState::next); !s)
      return std::unexpected(s.error());
  }
  for (const auto& e : r.keys.entries()) {
    if (e.state == KeyState::active) r.active_kid = e.key.kid();
    if (e.state == KeyState::next) r.next_kid = e.key.kid();
  }
  return r;
}

Algorithm current_algorithm(const KeySet& keys) {
  for (const auto& e : keys.entries()) {
    if (e.state == KeyState::next) return e.key.algorithm();
  }
  if (const Key* active = keys.active()) return active->algorithm();
  return Algorithm::EdDSA;
}

std::string key_list_json(const KeySet& keys) {
  boost::json::array list;
  for (const auto& e : keys.entries()) {
    boost::json::object o{
        {"kid", e.key.kid()}, {"alg", to_string(e.key.algorithm())}, {"state", to_string(e.state)}};
    if (e.retired_at) {
      o["retired_at"] = e.retired_at->time_since_epoch().count();
    } else {
      o["retired_at"] = nullptr;
    }
    list.push_back(std::move(o));
  }
  return boost::json::serialize(boost::json::object{{"keys", std::move(list)}});
}

}  // namespace tessera

// Key material on disk, as the `tessera` command keeps it (docs/cli.md) and
// as a program embedding the engine can keep it across restarts: the signing
// key set (a private JWK set with key states, signing.jwks) and the secret
// keys (versioned lookup-key and token-cipher keys, secrets.json). Every file
// is written atomically (temp file + fsync + rename) with mode 0600, in
// directories created 0700. No function here logs or returns key material in
// an error. Every function is thread-safe (no shared state); two writers of
// the same file at once leave one of the two contents, never a mix.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/jwk.hpp"
#include "tessera/key_set.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/random.hpp"
#include "tessera/secret.hpp"

namespace tessera {

// Verifiers accept tokens this long past exp (docs/design.md §5.1); a retired key
// stays published until its last token is past that too.
inline constexpr std::chrono::seconds kVerifierLeeway{30};

// Creates `dir` and any missing parents with mode 0700.
[[nodiscard]] Status make_private_dirs(const std::filesystem::path& dir);
// Replaces `file` atomically with `content`, mode 0600; its directory is
// created (0700) if missing.
[[nodiscard]] Status write_private_file(const std::filesystem::path& file,
                                        std::string_view content);
[[nodiscard]] Result<std::string> read_text_file(const std::filesystem::path& file);

// What a poller compares to notice that a file was replaced or changed.
struct FileStamp {
  std::int64_t mtime_ns = 0;
  std::uintmax_t size = 0;
  std::uintmax_t inode = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};
[[nodiscard]] std::optional<FileStamp> file_stamp(const std::filesystem::path& file);

// --- secret keys ----------------------------------------------------------
// {"lookup_keys":[{"version":1,"key":"<base64url of 32 bytes>"}],
//  "cipher_keys":[{"version":1,"key":"..."}]}
struct SecretKeys {
  std::vector<LookupKeyMaterial> lookup;
  std::vector<LookupKeyMaterial> cipher;
};
[[nodiscard]] SecretKeys generate_secret_keys(Random& random);
[[nodiscard]] std::string secret_keys_json(const SecretKeys& keys);
// key_invalid (never echoing the content) for anything malformed.
[[nodiscard]] Result<SecretKeys> parse_secret_keys(std::string_view json);
[[nodiscard]] Result<SecretKeys> load_secret_keys(const std::filesystem::path& file);
// Adds a fresh version (highest + 1) to both lists; older versions stay, so
// tokens stored under them are still found (and re-keyed on their next
// write) and sealed successors still open.
void add_secret_key_versions(SecretKeys& keys, Random& random);

// --- signing keys ---------------------------------------------------------
// A fresh set: one active and one next key of `alg`.
[[nodiscard]] Result<KeySet> generate_signing_keys(Algorithm alg, Random& random,
                                                   const Clock& clock);
// Parses the file; key_invalid unless it holds exactly one active key.
[[nodiscard]] Result<KeySet> load_signing_keys(const std::filesystem::path& file);

struct Rotation {
  KeySet keys;
  std::string retired_kid;  // the former active key
  std::string active_kid;   // the former next key
  std::string next_kid;     // freshly generated
  std::size_t pruned = 0;   // retired keys dropped (all their tokens expired)
};
// Promotes the next key (or a fresh one if the set has none), retires the
// active one at `now`, adds a fresh next key of `alg`, and prunes retired keys
// older than access_ttl + kVerifierLeeway. Changing `alg` takes two
// rotations to reach the signing key (the first one pre-publishes it).
[[nodiscard]] Result<Rotation> rotate_signing_keys(const KeySet& keys, Algorithm alg,
                                                   Random& random, const Clock& clock,
                                                   std::chrono::seconds access_ttl);
struct KeyRevocation {
  KeySet keys;
  std::string revoked_kid;
  bool rotated = false;    // it was the active key: a rotation came first
  std::string active_kid;  // the signing key afterwards
  std::string next_kid;    // the pre-published key afterwards
};
// Removes a key from the set at once (a leaked key: `tessera keys revoke`),
// whatever its state. The active key is rotated out first (its next key
// signs from now on); a removed next key is replaced by a fresh one of
// `alg`. key_not_found for an unknown kid.
[[nodiscard]] Result<KeyRevocation> revoke_signing_key(const KeySet& keys, std::string_view kid,
                                                       Algorithm alg, Random& random,
                                                       const Clock& clock,
                                                       std::chrono::seconds access_ttl);
// The algorithm a rotation keeps when none is asked for: the next key's,
// else the active key's, else EdDSA.
[[nodiscard]] Algorithm current_algorithm(const KeySet& keys);
// {"keys":[{"kid","alg","state","retired_at"}]}: never key material.
[[nodiscard]] std::string key_list_json(const KeySet& keys);

}  // namespace tessera

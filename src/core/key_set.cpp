#include "tessera/key_set.hpp"

#include <algorithm>

#include "jose_json.hpp"

namespace tessera {

namespace json = boost::json;

std::string_view to_string(KeyState state) noexcept {
  switch (state) {
    case KeyState::next:
      return "next";
    case KeyState::active:
      return "active";
    case KeyState::retired:
      return "retired";
  }
  return "";
}

namespace {
std::optional<KeyState> key_state_from_string(std::string_view s) {
  for (KeyState st : {KeyState::next, KeyState::active, KeyState::retired}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}
}  // namespace

Status KeySet::add(Key key, KeyState state, std::optional<UnixSeconds> retired_at) {
  if (find(key.kid()) != nullptr)
    return fail(ErrorCode::invalid_request,
                fmt::format("kid '{}' is already in the key set", key.kid()));
  if (state == KeyState::active && active() != nullptr) {
    return fail(ErrorCode::invalid_request, "the key set already has an active key");
  }
  if (state == KeyState::active && !key.has_private()) {
    return fail(ErrorCode::invalid_request, "an active key must hold its private half");
  }
  entries_.push_back({std::move(key), state, retired_at});
  return {};
}

const Key* KeySet::find(std::string_view kid) const noexcept {
  for (const auto& e : entries_) {
    if (e.key.kid() == kid) return &e.key;
  }
  return nullptr;
}

const KeySet::Entry* KeySet::find_entry(std::string_view kid) const noexcept {
  for (const auto& e : entries_) {
    if (e.key.kid() == kid) return &e;
  }
  return nullptr;
}

const Key* KeySet::active() const noexcept {
  for (const auto& e : entries_) {
    if (e.state == KeyState::active) return &e.key;
  }
  return nullptr;
}

Status KeySet::activate(std::string_view kid, UnixSeconds now) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& e) { return e.key.kid() == kid; });
  if (it == entries_.end()) return fail(ErrorCode::key_not_found, fmt::format("no key '{}'", kid));
  if (it->state != KeyState::next)
    return fail(ErrorCode::invalid_request, fmt::format("key '{}' is not in state next", kid));
  if (!it->key.has_private())
    return fail(ErrorCode::invalid_request, "an active key must hold its private half");
  for (auto& e : entries_) {
    if (e.state == KeyState::active) {
      e.state = KeyState::retired;
      e.retired_at = now;
    }
  }
  it->state = KeyState::active;
  return {};
}

std::size_t KeySet::prune(UnixSeconds now, std::chrono::seconds max_token_lifetime,
                          std::chrono::seconds leeway) {
  const auto before = entries_.size();
  std::erase_if(entries_, [&](const Entry& e) {
    return e.state == KeyState::retired && e.retired_at &&
           *e.retired_at + max_token_lifetime + leeway <= now;
  });
  return before - entries_.size();
}

std::string KeySet::public_jwks() const {
  json::array keys;
  for (const auto& e : entries_) {
    auto jwk = e.key.public_jwk();
    if (!jwk) continue;
    json::value v = json::parse(*jwk);
    if (e.state == KeyState::retired && e.retired_at)
      v.as_object()["tessera_retired_at"] = e.retired_at->time_since_epoch().count();
    keys.push_back(std::move(v));
  }
  json::object set;
  set["keys"] = std::move(keys);
  return json::serialize(set);
}

std::string KeySet::private_jwks() const {
  json::array keys;
  for (const auto& e : entries_) {
    json::value v = json::parse(e.key.private_jwk());
    v.as_object()["tessera_state"] = to_string(e.state);
    if (e.retired_at)
      v.as_object()["tessera_retired_at"] = e.retired_at->time_since_epoch().count();
    keys.push_back(std::move(v));
  }
  json::object set;
  set["keys"] = std::move(keys);
  return json::serialize(set);
}

Result<KeySet> KeySet::from_jwks(std::string_view text) {
  auto parsed = detail::parse_json_object(text, ErrorCode::key_invalid, "JWK set");
  if (!parsed) return std::unexpected(parsed.error());
  const json::value* keys = parsed->if_contains("keys");
  if (keys == nullptr || !keys->is_array())
    return fail(ErrorCode::key_invalid, "JWK set lacks a \"keys\" array");
  KeySet set;
  for (const json::value& v : keys->get_array()) {
    if (!v.is_object()) return fail(ErrorCode::key_invalid, "JWK set member is not an object");
    const json::object& o = v.get_object();
    const json::value* kty = o.if_contains("kty");
    const json::value* crv = o.if_contains("crv");
    const bool supported =
        kty && kty->is_string() &&
        (kty->get_string() == "oct" || kty->get_string() == "RSA" ||
         (kty->get_string() == "OKP" && crv && crv->is_string() &&
          crv->get_string() == "Ed25519") ||
         (kty->get_string() == "EC" && crv && crv->is_string() && crv->get_string() == "P-256"));
    if (!supported) continue;  // RFC 7517 §5: ignore keys we do not understand
    if (const auto* use = o.if_contains("use");
        use && use->is_string() && use->get_string() == "enc")
      continue;
    auto key = Key::from_jwk(json::serialize(o));
    if (!key) return std::unexpected(key.error());
    KeyState state = KeyState::next;
    std::optional<UnixSeconds> retired_at;
    if (const auto* st = o.if_contains("tessera_state")) {
      auto s = st->is_string() ? key_state_from_string(st->get_string()) : std::nullopt;
      if (!s) return fail(ErrorCode::key_invalid, "bad tessera_state");
      state = *s;
    }
    if (const auto* ra = o.if_contains("tessera_retired_at")) {
      if (!ra->is_int64()) return fail(ErrorCode::key_invalid, "bad tessera_retired_at");
      retired_at = UnixSeconds{std::chrono::seconds{ra->get_int64()}};
    }
    if (auto st = set.add(std::move(*key), state, retired_at); !st) {
      return fail(ErrorCode::key_invalid, st.error().detail);
    }
  }
  return set;
}

}  // namespace tessera

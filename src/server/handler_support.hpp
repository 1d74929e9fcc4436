// What every handler shares: the context it runs in and the strict readers
// of JSON request bodies. Internal to src/server; Boost.JSON is allowed here
// and in the handler files, never in routes.hpp.
#pragma once

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/handlers.hpp"
#include "server/routes.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

// Scratch memory for one handler's JSON: the parsed request body and the
// answer are built in a buffer on the stack (the heap only past it) and the
// answer is serialized before the handler returns, so nothing made with it
// may outlive it. A validation's JSON then costs no allocation at all.
class JsonScratch {
 public:
  JsonScratch() = default;
  JsonScratch(const JsonScratch&) = delete;
  JsonScratch& operator=(const JsonScratch&) = delete;
  // Non-owning: valid while this object lives.
  [[nodiscard]] boost::json::storage_ptr storage() noexcept { return &resource_; }

 private:
  alignas(std::max_align_t) unsigned char buffer_[4096];
  boost::json::monotonic_resource resource_{buffer_, sizeof buffer_};
};

// 200/201... with a JSON body (serialized here: nothing is copied).
[[nodiscard]] HttpResponse json_response(unsigned status, const boost::json::object& body);
// The problem response for an engine error (status from its code).
[[nodiscard]] HttpResponse from_error(const Error& error);

// Set-Cookie for the session cookie with `value`; without max_age, the one
// that clears it (with the attributes it was set with: a __Host- cookie is
// only replaced by a Secure one).
[[nodiscard]] std::string cookie_header(const CookieOptions& cookie, std::string_view value,
                                        std::optional<std::int64_t> max_age);

// The cookie called `name`: absent, or its one value. Several of that name
// are refused with invalid_request (cookie tossing from a sibling
// subdomain: answering with the first would let it pick the session).
[[nodiscard]] Result<std::optional<std::string>> single_cookie(const Headers& headers,
                                                               std::string_view name);

// A JSON request body: an object nested at most 32 deep, or
// invalid_request. An empty body reads as {} when `empty_ok`. The tree is
// made with `storage` (a JsonScratch's, or the heap by default).
[[nodiscard]] Result<boost::json::object> read_object(const HttpRequest& request,
                                                      bool empty_ok = false,
                                                      boost::json::storage_ptr storage = {});
// An optional string member: nullopt when absent (or null),
// invalid_request when present with another type.
[[nodiscard]] Result<std::optional<std::string>> opt_string(const boost::json::object& o,
                                                            std::string_view name);
// A required string member: invalid_request when absent, null or not a string.
[[nodiscard]] Result<std::string> req_string(const boost::json::object& o, std::string_view name);
// An optional object member, as its serialized text.
[[nodiscard]] Result<std::optional<std::string>> opt_object_text(const boost::json::object& o,
                                                                 std::string_view name);

// The DPoP proof of a request to the endpoint at `path` (RFC 9449 §4.3):
// the one DPoP header (nullopt: none; several are dpop_proof_invalid), and
// the endpoint's public URL, public_base + path, as the htu it must name
// ("" when no public URL is known: a bound session then cannot renew).
struct DpopInput {
  std::optional<std::string> proof;
  std::string url;
  [[nodiscard]] DpopPresented presented(std::string_view method) const {
    return {.proof = proof, .method = method, .url = url};
  }
};
[[nodiscard]] Result<DpopInput> dpop_input(const HandlerContext& ctx, const HttpRequest& req,
                                           std::string_view path);
// The request's one DPoP header: nullopt when none, dpop_proof_invalid when
// several (dpop_input's proof; forward-auth, whose htu is the original URL).
[[nodiscard]] Result<std::optional<std::string>> dpop_header(const HttpRequest& req);
// With dpop_nonce on, the nonce the next proof must carry (RFC 9449 §8), on
// every answer of the endpoints that check proofs.
void add_dpop_nonce(const HandlerContext& ctx, HttpResponse& response);

}  // namespace tessera::server

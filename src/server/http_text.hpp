// The text of HTTP: header and cookie lookup, form and query decoding,
// percent-decoding of path segments, Allow lists, reason phrases. Pure
// functions over std types (Boost.URL stays in http_text.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::server {

using Headers = std::vector<std::pair<std::string, std::string>>;
using FormFields = std::vector<std::pair<std::string, std::string>>;

// ASCII case-insensitive equality (header names, auth schemes).
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;
// The percent-encoding of a query parameter's value (RFC 3986 unreserved
// characters kept).
[[nodiscard]] std::string query_escape(std::string_view s);
// ASCII lower case.
[[nodiscard]] std::string lower(std::string_view s);
// "host:port" without the port ("[::1]:8080" → "[::1]"; "[::1]" and a bare
// "::1" have none).
[[nodiscard]] std::string_view without_port(std::string_view host);
// A host ("app.example.com" or "app.example.com:8443") against an allowed
// entry, case-insensitively: the same host (the port compared only when the
// entry names one), or, for ".example.com", any host below it.
[[nodiscard]] bool host_matches(std::string_view host, std::string_view entry);
// Without leading and trailing spaces and tabs (optional whitespace, RFC 9110 §5.6.3).
[[nodiscard]] std::string_view trim(std::string_view s) noexcept;
// The next item of a comma-separated list ("a, b,,c"), trimmed, with `list`
// moved past it; empty items are skipped; false once nothing is left. The
// one walk over header lists (Allow, Transfer-Encoding, X-Forwarded-For,
// Access-Control-Request-Headers) and the scope lists of API keys:
//   std::string_view item;
//   while (next_list_item(list, item)) ...
[[nodiscard]] bool next_list_item(std::string_view& list, std::string_view& item) noexcept;

// The first header of that name, case-insensitively.
[[nodiscard]] std::optional<std::string_view> find_header(const Headers& headers,
                                                          std::string_view name);

// Every cookie called `name` in any Cookie header, in the order sent (RFC
// 6265 §5.4; a value in double quotes loses them). More than one is a sign
// of cookie tossing (a sibling subdomain setting its own): the handlers
// refuse it (single_cookie in handler_support.hpp).
[[nodiscard]] std::vector<std::string> cookie_values(const Headers& headers, std::string_view name);

// application/x-www-form-urlencoded (also a query string): every name and
// value percent-decoded, `+` read as a space, empty parts skipped. nullopt
// on a broken escape anywhere.
[[nodiscard]] std::optional<FormFields> parse_form(std::string_view text);
// The first value of `name`.
[[nodiscard]] std::optional<std::string> form_value(const FormFields& form, std::string_view name);

// RFC 3986 percent-decoding of one path segment (`+` stays `+`). nullopt on
// a broken escape.
[[nodiscard]] std::optional<std::string> decode_path_segment(std::string_view segment);

// A method that only reads: GET, or HEAD (answered as GET is, without the
// body). Every route that takes GET takes HEAD (RFC 9110 §9.3.2).
[[nodiscard]] constexpr bool reads_only(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD";
}

// Whether `method` is one of a comma-separated Allow list ("GET, POST");
// "*" allows every method (Envoy's ext_authz forwards the original one).
[[nodiscard]] bool method_allowed(std::string_view allow, std::string_view method) noexcept;

// The Server header of every answer: "tessera/<kVersion>" (the version the
// binary reports and /healthz answers).
[[nodiscard]] std::string_view server_header();

// The reason phrase of the statuses the authority answers with.
[[nodiscard]] std::string_view reason_phrase(unsigned status) noexcept;

}  // namespace tessera::server

// The framing checks Beast's parser does not make (request smuggling,
// RFC 9112), over its parsed header: shared by the connection
// (connection.cpp) and the HTTP fuzz target, the only includers, so that
// Beast's HTTP stays in few translation units.
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "server/http_text.hpp"

namespace tessera::server {

// RFC 9112: a Transfer-Encoding whose final coding is not chunked, or one
// beside a Content-Length (§6.1, §6.3); an HTTP/1.1 request without a Host,
// or with more than one (§3.2). nullopt: the framing is sound.
inline std::optional<std::string> framing_error(const boost::beast::http::request_header<>& h) {
  namespace http = boost::beast::http;
  std::size_t hosts = 0, encodings = 0;
  std::string codings;
  for (const auto& f : h) {
    if (f.name() == http::field::host) ++hosts;
    if (f.name() == http::field::transfer_encoding) {
      ++encodings;
      if (!codings.empty()) codings += ',';
      codings += f.value();
    }
  }
  if (h.version() >= 11 && hosts == 0) return "an HTTP/1.1 request needs a Host header";
  if (hosts > 1) return "more than one Host header";
  if (encodings == 0) return std::nullopt;
  if (h.count(http::field::content_length) > 0)
    return "Transfer-Encoding and Content-Length together";
  // The codings, last one first: it must be chunked, and chunked only once.
  std::size_t chunked = 0;
  std::string_view last, c;
  std::string_view rest = codings;
  while (next_list_item(rest, c)) {
    last = c;
    if (boost::beast::iequals(c, "chunked")) ++chunked;
  }
  if (!boost::beast::iequals(last, "chunked") || chunked != 1)
    return "Transfer-Encoding must end in chunked, once";
  return std::nullopt;
}

// A raw request head (up to its last CRLF) with a line that starts with a
// space or a tab: obs-fold (RFC 9112 §5.2), or whitespace before the first
// field (§2.2). Either is refused with 400: a proxy in front may read the
// line as a field of its own.
inline bool has_obs_fold(std::string_view head) noexcept {
  for (auto at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    if (at + 2 < head.size() && (head[at + 2] == ' ' || head[at + 2] == '\t')) return true;
  }
  return false;
}

}  // namespace tessera::server

// Boost.JSON helpers shared by the JOSE translation units (and only them:
// Boost headers stay out of the public API and out of most of the build).
#pragma once

#include <fmt/format.h>

#include <boost/json.hpp>

#include "tessera/error.hpp"

namespace tessera::detail {

// Parses `text` as one JSON object; `code` and `what` name the failure.
// Duplicate member names keep the lexically last one, as RFC 7519 §4
// allows (and as PyJWT and jose do).
inline Result<boost::json::object> parse_json_object(std::string_view text, ErrorCode code,
                                                     std::string_view what,
                                                     boost::json::storage_ptr sp = {}) {
  boost::json::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 16;
  boost::json::value v = boost::json::parse(text, ec, std::move(sp), opts);
  if (ec) return fail(code, fmt::format("{} is not valid JSON", what));
  if (!v.is_object()) return fail(code, fmt::format("{} is not a JSON object", what));
  return std::move(v.get_object());
}

// As parse_json_object, for the verification hot path: the parser (and its
// internal stack) is kept per thread and reused, and the value lives in
// `mr`, so a small token parses without touching the heap.
inline Result<boost::json::object> parse_json_object_fast(std::string_view text, ErrorCode code,
                                                          std::string_view what,
                                                          boost::json::monotonic_resource& mr) {
  thread_local boost::json::parser parser = [] {
    boost::json::parse_options opts;
    opts.max_depth = 16;
    return boost::json::parser(boost::json::storage_ptr(), opts);
  }();
  parser.reset(&mr);
  boost::json::error_code ec;
  parser.write(text.data(), text.size(), ec);
  if (ec) {
    parser.reset();
    return fail(code, fmt::format("{} is not valid JSON", what));
  }
  boost::json::value v = parser.release();
  if (!v.is_object()) return fail(code, fmt::format("{} is not a JSON object", what));
  return std::move(v.get_object());
}

}  // namespace tessera::detail

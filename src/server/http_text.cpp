// Percent-decoding is Boost.URL's: make_pct_string_view() refuses a broken
// escape ('%' not followed by two hex digits) and accepts every other byte,
// which is what a lenient server wants (a raw space in a form body is still
// read), so only the splitting on '&' and '=' is ours.
#include "server/http_text.hpp"

#include <algorithm>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>
#include <cctype>

#include "tessera/version.hpp"

namespace tessera::server {

namespace {

std::optional<std::string> pct_decode(std::string_view s, bool plus_is_space) {
  const auto pct = boost::urls::make_pct_string_view(s);
  if (!pct) return std::nullopt;
  boost::urls::encoding_opts opts;
  opts.space_as_plus = plus_is_space;
  return pct->decode(opts);
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string> cookie_values(const Headers& headers, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      out.emplace_back(value);
    }
  }
  return out;
}

std::optional<FormFields> parse_form(std::string_view s) {
  FormFields out;
  while (!s.empty()) {
    const auto amp = s.find('&');
    const std::string_view part = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view{} : s.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto name = pct_decode(part.substr(0, eq), true);
    auto value = pct_decode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::optional<std::string> form_value(const FormFields& form, std::string_view name) {
  for (const auto& [k, v] : form) {
    if (k == name) return v;
  }
  return std::nullopt;
}

std::optional<std::string> decode_path_segment(std::string_view segment) {
  return pct_decode(segment, false);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view without_port(std::string_view h) {
  const auto colon = h.rfind(':');
  if (colon == std::string_view::npos) return h;
  const auto bracket = h.rfind(']');
  if (bracket != std::string_view::npos ? bracket > colon : h.find(':') != colon) return h;
  return h.substr(0, colon);
}

bool host_matches(std::string_view host, std::string_view entry) {
  const std::string h = lower(host), e = lower(entry);
  const std::string_view name =
      without_port(e).size() != e.size() ? std::string_view(h) : without_port(h);
  if (!e.empty() && e.front() == '.') return name.size() > e.size() && name.ends_with(e);
  return name == e;
}

std::string query_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool next_list_item(std::string_view& list, std::string_view& item) noexcept {
  while (!list.empty()) {
    const auto comma = list.find(',');
    item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (!item.empty()) return true;
  }
  return false;
}

bool method_allowed(std::string_view allow, std::string_view method) noexcept {
  if (allow == "*") return true;
  std::string_view m;
  while (next_list_item(allow, m)) {
    if (m == method) return true;
  }
  return false;
}

std::string_view server_header() {
  static const std::string value = std::string("tessera/").append(kVersion);
  return value;
}

std::string_view reason_phrase(unsigned status) noexcept {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

}  // namespace tessera::server

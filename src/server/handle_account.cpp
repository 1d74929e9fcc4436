// The account page (docs/api.md §3.13): GET /account lists the live
// sessions of the cookie's subject — a device label, the IP, when each began
// and was last seen, this device marked — with a form per session to sign
// it out and one to sign out every other. Server-rendered HTML: no script,
// a strict Content-Security-Policy (the one inline style allowed by its
// hash), readable on a phone.
//
// The forms are state changes authenticated by the cookie, so they carry
// both CSRF defences: a trusted Origin (cookie_write_allowed) and a
// double-submit token (a random value in a SameSite=Strict cookie and in a
// hidden field; they must match). Stateless, so any instance behind a load
// balancer accepts a form another one served.
#include <fmt/format.h>

#include <array>
#include <ctime>
#include <string>
#include <string_view>

#include "server/cors.hpp"
#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/random.hpp"

namespace tessera::server {

namespace {

constexpr std::string_view kStyle =
    "body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem}"
    "ul{list-style:none;padding:0}li{border:1px solid #ccc;border-radius:.5rem;"
    "margin:.5rem 0;padding:.75rem}.here{border-color:#2a7}.tag{color:#2a7;font-weight:600}"
    "small{color:#555;display:block}form{display:inline}button{font:inherit;margin-top:.5rem;"
    "padding:.3rem .8rem}";

// The CSP names the inline style by its hash: nothing else may run or load.
const std::string& content_security_policy() {
  static const std::string csp = [] {
    const auto digest = sha256(kStyle);
    std::string b64 = base64url_encode(std::span<const std::uint8_t>(digest));
    // CSP hashes are standard base64, padded: from base64url.
    for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (b64.size() % 4 != 0) b64 += '=';
    return fmt::format(
        "default-src 'none'; style-src 'sha256-{}'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
        b64);
  }();
  return csp;
}

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string utc(UnixSeconds t) {
  const std::time_t secs = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 32> buf{};
  const auto n = std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M UTC", &tm);
  return std::string(buf.data(), n);
}

// "Firefox on Linux" from a User-Agent; the recorded device name wins.
std::string device_label(const Session& s) {
  if (!s.metadata.device.empty()) return s.metadata.device;
  const std::string_view ua = s.metadata.user_agent;
  if (ua.empty()) return "Unknown device";
  const auto has = [&](std::string_view w) { return ua.find(w) != std::string_view::npos; };
  std::string_view browser = "A browser";
  if (has("Edg/"))
    browser = "Edge";
  else if (has("Firefox/"))
    browser = "Firefox";
  else if (has("Chrome/") || has("Chromium/"))
    browser = "Chrome";
  else if (has("Safari/"))
    browser = "Safari";
  else if (has("curl/"))
    browser = "curl";
  else if (!has("Mozilla/"))
    browser = ua.substr(0, ua.find_first_of(" /"));
  std::string_view os;
  if (has("Android"))
    os = "Android";
  else if (has("iPhone") || has("iPad"))
    os = "iOS";
  else if (has("Windows"))
    os = "Windows";
  else if (has("Mac OS X") || has("Macintosh"))
    os = "macOS";
  else if (has("Linux") || has("X11"))
    os = "Linux";
  return os.empty() ? std::string(browser) : fmt::format("{} on {}", browser, os);
}

std::string csrf_cookie_name(const CookieOptions& c) {
  return c.name.starts_with("__Host-") ? "__Host-tessera_csrf" : "tessera_csrf";
}

HttpResponse html(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("Content-Security-Policy", content_security_policy());
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

std::string page(std::string_view title, std::string_view content) {
  return fmt::format(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{}</title><style>{}</style></head><body>{}</body></html>",
      escape(title), kStyle, content);
}

// Where a request without a live session goes: the login page with this
// page as `rd` (public_url's), or a 401 page without one.
HttpResponse not_signed_in(const HandlerContext& ctx) {
  const auto& o = ctx.options;
  if (o.authz.login_url.empty())
    return html(401, page("Sign in",
                          "<h1>Sign in first</h1><p>There is no live session "
                          "in this browser.</p>"));
  std::string location = o.authz.login_url;
  if (!o.public_host.empty()) {
    location += location.find('?') == std::string::npos ? "?rd=" : "&rd=";
    location += query_escape(fmt::format("{}://{}/account", o.public_scheme, o.public_host));
  }
  HttpResponse r = html(303, page("Sign in", "<h1>Sign in first</h1>"));
  r.headers.emplace_back("Location", location);
  return r;
}

}  // namespace

HttpResponse account_page(const HandlerContext& ctx, const HttpRequest& req) {
  const CookieOptions& cookie = ctx.options.cookie;
  auto token = single_cookie(req.headers, cookie.name);
  if (!token) return from_error(token.error());
  if (!*token) return not_signed_in(ctx);
  auto current = ctx.deps.service.validate(**token);
  if (!current) {
    if (current.error().code == ErrorCode::store_unavailable) return from_error(current.error());
    return not_signed_in(ctx);
  }

  if (req.method == "POST") {
    if (!cookie_write_allowed(ctx.options, req))
      return problem(ErrorCode::origin_not_allowed,
                     "the account page's forms are accepted from its own origin only");
    auto form = parse_form(req.body);
    if (!form) return problem(ErrorCode::invalid_request, "a malformed form");
    const auto sent = form_value(*form, "csrf");
    const auto kept = single_cookie(req.headers, csrf_cookie_name(cookie));
    if (!sent || !kept || !*kept || sent->empty() || !constant_time_equal(*sent, **kept))
      return problem(ErrorCode::origin_not_allowed,
                     "the form's csrf token does not match its cookie; reload the page");
    const auto action = form_value(*form, "action").value_or("");
    HttpResponse r = html(303, page("Account", "<h1>Done</h1>"));
    if (action == "sign_out_others") {
      auto n = ctx.deps.service.revoke_all(current->subject, current->id);
      if (!n) return from_error(n.error());
    } else if (action == "sign_out") {
      const auto id = form_value(*form, "session").value_or("");
      auto n = ctx.deps.service.revoke(current->subject, id);
      if (!n && n.error().code != ErrorCode::session_not_found) return from_error(n.error());
      if (id == current->id) {  // this device: its cookie goes too
        r.headers.emplace_back("Set-Cookie", cookie_header(cookie, "", std::nullopt));
      }
    } else {
      return problem(ErrorCode::invalid_request, "action must be sign_out or sign_out_others");
    }
    r.headers.emplace_back("Location", "/account");  // post, redirect, get
    return r;
  }

  auto sessions = ctx.deps.service.list(current->subject);
  if (!sessions) return from_error(sessions.error());
  std::array<std::uint8_t, 24> raw{};
  CsprngRandom::instance().fill(raw);
  const std::string csrf = base64url_encode(std::span<const std::uint8_t>(raw));
  std::string items;
  for (const Session& s : *sessions) {
    const bool here = s.id == current->id;
    items += fmt::format(
        "<li{}><strong>{}</strong>{}<small>IP {} · signed in {} · last seen {}</small>"
        "<form method=\"post\" action=\"/account\"><input type=\"hidden\" name=\"csrf\" "
        "value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"sign_out\">"
        "<input type=\"hidden\" name=\"session\" value=\"{}\"><button>{}</button></form></li>",
        here ? " class=\"here\"" : "", escape(device_label(s)),
        here ? " <span class=\"tag\">this device</span>" : "",
        escape(s.metadata.ip.empty() ? "unknown" : s.metadata.ip), utc(s.created_at),
        utc(s.last_seen_at), csrf, escape(s.id), here ? "Sign out this device" : "Sign out");
  }
  std::string body = fmt::format(
      "<h1>Your devices</h1><p>Signed in as <strong>{}</strong>. Each entry is a browser or "
      "app signed in to your account.</p><ul>{}</ul>"
      "<form method=\"post\" action=\"/account\"><input type=\"hidden\" name=\"csrf\" "
      "value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"sign_out_others\">"
      "<button>Sign out everywhere else</button></form>",
      escape(current->subject), items, csrf);
  HttpResponse r = html(200, page("Your devices", body));
  r.headers.emplace_back(
      "Set-Cookie", fmt::format("{}={}; Path=/; {}HttpOnly; SameSite=Strict",
                                csrf_cookie_name(cookie), csrf, cookie.secure ? "Secure; " : ""));
  return r;
}

}  // namespace tessera::server

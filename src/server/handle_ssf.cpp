// The Shared Signals Framework transmitter's HTTP side (docs/events.md
// "SSF"): its configuration metadata (SSF 1.0 §7) and the stream
// configuration (§8.1.1: create, read, delete), for receivers holding an
// API key with the `ssf` scope. Delivery is the outbox's SsfPushConsumer.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"

namespace tessera::server {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxStreams = 64;

HttpResponse ssf_off() {
  return problem(404, ErrorCode::invalid_request, "the SSF transmitter is not enabled");
}

// `stream_id` of the query, "" when absent.
std::string stream_id_of(std::string_view query) {
  std::string id;
  if (auto form = parse_form(query)) {
    if (auto v = form_value(*form, "stream_id")) id = std::move(*v);
  }
  return id;
}

bool http_url(std::string_view u) {
  const bool scheme = u.starts_with("https://") || u.starts_with("http://");
  return scheme && u.size() <= 2048 && u.find("://") + 3 < u.size() &&
         std::none_of(u.begin(), u.end(),
                      [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; });
}

Result<std::vector<std::string>> strings_of(const json::object& o, std::string_view name,
                                            std::size_t max) {
  std::vector<std::string> out;
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return out;
  if (v->is_string()) {
    if (v->as_string().size() > 512)
      return fail(ErrorCode::invalid_request, fmt::format("{} is too long", name));
    out.emplace_back(v->as_string());
  } else if (v->is_array()) {
    for (const auto& x : v->as_array()) {
      if (!x.is_string() || x.as_string().size() > 512)
        return fail(ErrorCode::invalid_request, fmt::format("{} must be strings", name));
      out.emplace_back(x.as_string());
    }
  } else {
    return fail(ErrorCode::invalid_request, fmt::format("{} must be a list of strings", name));
  }
  if (out.size() > max)
    return fail(ErrorCode::invalid_request, fmt::format("{}: at most {}", name, max));
  return out;
}

HttpResponse stream_answer(unsigned status, const SsfStream& s, std::string_view issuer) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = ssf_stream_json(s, issuer);
  return r;
}

}  // namespace

HttpResponse ssf_configuration(const HandlerContext& ctx, const HttpRequest& req) {
  if (ctx.deps.ssf == nullptr) return ssf_off();
  const auto base = public_base(ctx.options, req);
  if (!base) return problem(404, ErrorCode::invalid_request, "no public_url is configured");
  json::object o;
  o["spec_version"] = "1_0";
  o["issuer"] = *base;
  o["jwks_uri"] = *base + "/.well-known/jwks.json";
  o["delivery_methods_supported"] = json::array{kSsfPushDelivery};
  o["configuration_endpoint"] = *base + "/ssf/streams";
  o["authorization_schemes"] = json::array{json::object{{"spec_urn", "urn:ietf:rfc:6750"}}};
  o["default_subjects"] = "ALL";
  HttpResponse r = json_response(200, o);
  r.headers.emplace_back("Cache-Control", "public, max-age=3600");
  return r;
}

HttpResponse ssf_streams(const HandlerContext& ctx, const HttpRequest& req,
                         std::string_view query) {
  SsfStreamStore* store = ctx.deps.ssf;
  if (store == nullptr) return ssf_off();
  const auto base = public_base(ctx.options, req);
  if (!base) return problem(404, ErrorCode::invalid_request, "no public_url is configured");
  const std::string id = stream_id_of(query);

  if (req.method == "GET" || req.method == "HEAD") {
    const auto streams = store->list();
    if (!id.empty()) {
      for (const auto& s : *streams) {
        if (s.id == id) return stream_answer(200, s, *base);
      }
      return problem(404, ErrorCode::invalid_request, "no such stream");
    }
    std::string body = "[";
    for (const auto& s : *streams) {
      if (body.size() > 1) body += ',';
      body += ssf_stream_json(s, *base);
    }
    body += ']';
    HttpResponse r;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
  }

  if (req.method == "DELETE") {
    if (id.empty()) return problem(ErrorCode::invalid_request, "stream_id is required");
    auto removed = store->remove(id);
    if (!removed) return from_error(removed.error());
    if (!*removed) return problem(404, ErrorCode::invalid_request, "no such stream");
    HttpResponse r;
    r.status = 204;
    return r;
  }

  // POST: create a stream (SSF 1.0 §8.1.1.1).
  JsonScratch scratch;
  auto body = read_object(req, false, scratch.storage());
  if (!body) return from_error(body.error());
  if (store->list()->size() >= kMaxStreams)
    return problem(ErrorCode::invalid_request, fmt::format("at most {} streams", kMaxStreams));
  const auto* delivery = body->if_contains("delivery");
  if (delivery == nullptr || !delivery->is_object())
    return problem(ErrorCode::invalid_request, "delivery is required (push, RFC 8935)");
  const auto& d = delivery->as_object();
  auto method = opt_string(d, "method");
  if (!method || !*method || **method != kSsfPushDelivery)
    return problem(ErrorCode::invalid_request,
                   fmt::format("delivery.method must be {} (push)", kSsfPushDelivery));
  auto endpoint = opt_string(d, "endpoint_url");
  if (!endpoint || !*endpoint || !http_url(**endpoint))
    return problem(ErrorCode::invalid_request, "delivery.endpoint_url must be an http(s) URL");
  auto authorization = opt_string(d, "authorization_header");
  if (!authorization || (*authorization && (*authorization)->size() > 4096))
    return problem(ErrorCode::invalid_request,
                   "delivery.authorization_header must be a string of at most 4096 bytes");
  auto events = strings_of(*body, "events_requested", 16);
  if (!events) return from_error(events.error());
  auto aud = strings_of(*body, "aud", 8);
  if (!aud) return from_error(aud.error());
  auto description = opt_string(*body, "description");
  if (!description || (*description && (*description)->size() > 256))
    return problem(ErrorCode::invalid_request, "description must be at most 256 bytes");

  SsfStream s;
  s.endpoint_url = **endpoint;
  s.events_requested = std::move(*events);
  s.audience = aud->empty() ? std::vector<std::string>{s.endpoint_url} : std::move(*aud);
  if (*description) s.description = std::move(**description);
  if (*authorization) s.authorization = SecretString(std::move(**authorization));
  auto created = store->create(std::move(s));
  if (!created) return from_error(created.error());
  return stream_answer(201, *created, *base);
}

}  // namespace tessera::server

// The well-known key set and the operational endpoints: health, readiness,
// metrics. None of them is cached as "no-store" (the router decides that).
#include <fmt/format.h>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/metrics.hpp"
#include "tessera/version.hpp"

namespace tessera::server {

namespace json = boost::json;

HttpResponse JwksHandler::handle(const HandlerContext& ctx) {
  auto keys = ctx.deps.keys.get();
  std::string body;
  {
    std::lock_guard lock(mu_);
    if (keys_ != keys) {
      body_ = keys->public_jwks();
      keys_ = keys;
    }
    body = body_;
  }
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control",
                         fmt::format("public, max-age={}", ctx.options.jwks_max_age.count()));
  return r;
}

// `version` is the build's (tessera/version.hpp), so a deployment can tell
// which build answers without a shell on the host.
HttpResponse healthz() {
  return json_response(200, json::object{{"status", "ok"}, {"version", kVersion}});
}

HttpResponse readyz(const HandlerContext& ctx, const WriteHealth& writes) {
  if (auto e = ctx.deps.store.epoch(""); !e) {
    return problem(ErrorCode::store_unavailable, "the session store does not answer");
  }
  if (writes.failing(ctx.deps.clock.now_ms())) {
    return problem(ErrorCode::store_unavailable,
                   "the session store answers reads but its last write failed");
  }
  return json_response(200, json::object{{"status", "ready"}});
}

HttpResponse metrics_text(const HandlerContext& ctx) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = ctx.deps.metrics.render();
  return r;
}

}  // namespace tessera::server

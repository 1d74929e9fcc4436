// The subjects resource (a subject's sessions and its epoch) and the global
// epoch. Every route here is a service route (the router checked the API
// key).
#include <boost/json/array.hpp>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/json_views.hpp"

namespace tessera::server {

namespace json = boost::json;

HttpResponse subject_sessions(const HandlerContext& ctx, const HttpRequest& req,
                              std::string_view subject, std::string_view query) {
  if (reads_only(req.method)) {
    auto list = ctx.deps.service.list(subject);
    if (!list) return from_error(list.error());
    json::array a;
    for (const auto& s : *list) a.push_back(session_json(s));
    json::object o;
    o["sessions"] = std::move(a);
    return json_response(200, o);
  }
  auto form = parse_form(query);
  if (!form) return problem(ErrorCode::invalid_request, "bad percent-encoding in the query");
  auto except = form_value(*form, "except");
  std::optional<std::string_view> ex;
  if (except) ex = *except;
  auto n = ctx.deps.service.revoke_all(subject, ex);
  if (!n) return from_error(n.error());
  json::object o;
  o["revoked"] = *n;
  return json_response(200, o);
}

HttpResponse subject_session(const HandlerContext& ctx, std::string_view subject,
                             std::string_view id) {
  auto n = ctx.deps.service.revoke(subject, id);
  if (!n) return from_error(n.error());
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse subject_epoch(const HandlerContext& ctx, const HttpRequest& req,
                           std::string_view subject) {
  auto e = reads_only(req.method) ? ctx.deps.service.epoch(subject)
                                  : ctx.deps.service.bump_epoch(subject);
  if (!e) return from_error(e.error());
  json::object o;
  o["epoch"] = *e;
  return json_response(200, o);
}

HttpResponse global_epoch(const HandlerContext& ctx, const HttpRequest& req) {
  // Bumping moves every subject's effective epoch (max of global and own)
  // to at least the new value: access tokens minted before stop verifying
  // wherever epochs are checked. No session is revoked by it.
  auto e = reads_only(req.method) ? ctx.deps.service.global_epoch()
                                  : ctx.deps.service.bump_global_epoch();
  if (!e) return from_error(e.error());
  json::object o;
  o["epoch"] = *e;
  return json_response(200, o);
}

}  // namespace tessera::server

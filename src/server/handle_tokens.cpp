// The tokens resource: renewal (the algorithm is the engine's,
// SessionService::renew; this only reads the request, with its DPoP proof,
// and writes the pair).
#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/json_views.hpp"

namespace tessera::server {

namespace {

HttpResponse refresh(const HandlerContext& ctx, const HttpRequest& req) {
  JsonScratch scratch;
  auto body = read_object(req, false, scratch.storage());
  if (!body) return from_error(body.error());
  auto token = req_string(*body, "refresh_token");
  if (!token) return from_error(token.error());
  auto dpop = dpop_input(ctx, req, "/v1/tokens/refresh");
  if (!dpop) return from_error(dpop.error());
  const DpopPresented presented = dpop->presented(req.method);
  auto r = ctx.deps.service.renew(*token, &presented);
  if (!r) return from_error(r.error());
  // A public answer: the session without its metadata and data.
  return json_response(
      200, token_pair_json(r->session, r->tokens, scratch.storage(), SessionView::client));
}

}  // namespace

HttpResponse refresh_tokens(const HandlerContext& ctx, const HttpRequest& req) {
  HttpResponse r = refresh(ctx, req);
  add_dpop_nonce(ctx, r);
  return r;
}

}  // namespace tessera::server

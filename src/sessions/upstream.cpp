#include "tessera/upstream.hpp"

#include "tessera/session_service.hpp"

namespace tessera {

std::string_view to_string(UpstreamAnswer answer) noexcept {
  switch (answer) {
    case UpstreamAnswer::fresh:
      return "fresh";
    case UpstreamAnswer::revoked:
      return "revoked";
    case UpstreamAnswer::transient:
      return "transient";
  }
  return "transient";
}

UpstreamRefresher::UpstreamRefresher(SessionStore& store, const TokenCipher& cipher,
                                     UpstreamTokenEndpoint& endpoint, const Clock& clock,
                                     UpstreamRefreshOptions options)
    : store_(store), cipher_(cipher), endpoint_(endpoint), clock_(clock), options_(options) {}

UpstreamReport UpstreamRefresher::run_once() {
  UpstreamReport report;
  const UnixSeconds now = clock_.now();
  auto due = store_.upstream_due(now, options_.batch, options_.lease);
  if (!due) {
    report.error = due.error();
    return report;
  }
  auto end = [&](const std::string& id) {
    auto r = store_.revoke_session(id, RevokeReason::upstream_revoked, clock_.now());
    if (!r) {
      report.error = r.error();
      return;
    }
    for (auto& ended : r->session_ids) report.ended.push_back(std::move(ended));
  };
  for (const UpstreamDue& d : *due) {
    UpstreamRefresh answer;
    const std::string aad = upstream_aad(d.family_id);
    if (auto token = cipher_.open(*d.link.refresh_token, aad); token) {
      answer = endpoint_.refresh(d.link.issuer, *token);
    } else {
      // A token no key of ours opens (its key was removed): it cannot be
      // checked, which is the provider being unreachable, for as long.
      answer = {.answer = UpstreamAnswer::transient,
                .detail = "the sealed upstream refresh token cannot be opened"};
    }
    const UnixSeconds at = clock_.now();
    switch (answer.answer) {
      case UpstreamAnswer::fresh: {
        std::optional<SealedToken> sealed;
        if (answer.rotated) {
          auto s = cipher_.seal(*answer.rotated, aad);
          if (!s) {
            report.error = s.error();
            continue;
          }
          sealed = std::move(*s);
        }
        if (auto s =
                store_.upstream_checked(d.session_id, sealed, at + options_.interval, std::nullopt);
            !s)
          report.error = s.error();
        ++report.fresh;
        break;
      }
      case UpstreamAnswer::revoked:
        ++report.revoked;
        end(d.session_id);
        break;
      case UpstreamAnswer::transient: {
        const UnixSeconds since = d.link.failing_since.value_or(at);
        if (at - since >= options_.max_failure) {
          ++report.failed_closed;
          end(d.session_id);
          break;
        }
        if (auto s =
                store_.upstream_checked(d.session_id, std::nullopt, at + options_.retry, since);
            !s)
          report.error = s.error();
        ++report.transient;
        break;
      }
    }
  }
  return report;
}

}  // namespace tessera

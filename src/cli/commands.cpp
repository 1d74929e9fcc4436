#include "cli/commands.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>

#include "cli/key_files.hpp"
#include "cli/runtime.hpp"
#include "cli/ssf_streams.hpp"
#include "server/json_views.hpp"
#include "tessera/clock.hpp"
#include "tessera/random.hpp"
#include "tessera/redis_epochs.hpp"
#include "tessera/sqlite_store.hpp"
#include "tessera/version.hpp"
#include "tessera/webhooks.hpp"

namespace tessera::cli {

namespace fs = std::filesystem;

namespace {

// A command's failure: what to print and how to exit.
struct Failure {
  Error error;
  int exit_code;
};
using Outcome = std::expected<void, Failure>;

std::unexpected<Failure> failed(Error e) {
  const int code = exit_code_for(e.code);
  return std::unexpected(Failure{std::move(e), code});
}

void print_json(const boost::json::value& v) {
  std::cout << boost::json::serialize(v) << '\n' << std::flush;
}

void setup_logging(const Config& config) {
  // Not registered by name: run() may be called more than once in a process.
  auto logger = std::make_shared<spdlog::logger>("tessera",
                                                 std::make_shared<spdlog::sinks::stdout_sink_mt>());
  logger->set_formatter(json_line_formatter());
  logger->set_level(spdlog::level::from_str(config.log_level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

// What the admin commands (sessions, epoch, cleanup) run against: the
// configured store and audit sink, and a SessionService whose keys are
// ephemeral. These commands never mint or look up a token, so they need no
// access to the key files.
struct Admin {
  std::unique_ptr<SessionStore> store;
  std::unique_ptr<AuditSink> audit;
  // With redis_url, in front of `audit`, as in serve: an epoch bump made
  // here reaches the resource services that read epochs from Redis.
  std::unique_ptr<RedisEpochPublisher> publisher;
  std::optional<LookupKeyRing> lookup;
  std::optional<TokenCipher> cipher;
  std::optional<SharedKeySet> keys;
  std::unique_ptr<SessionService> service;
};

Result<std::unique_ptr<Admin>> open_admin(const Config& config) {
  auto admin = std::make_unique<Admin>();
  auto& random = CsprngRandom::instance();
  auto store = open_store(config);
  if (!store) return std::unexpected(store.error());
  admin->store = std::move(*store);
  auto audit = open_audit_sink(config, true);
  if (!audit) return std::unexpected(audit.error());
  admin->audit = std::move(*audit);
  if (config.redis) admin->publisher = std::make_unique<RedisEpochPublisher>(*config.redis);
  SecretKeys ephemeral = generate_secret_keys(random);
  auto lookup = LookupKeyRing::create(std::move(ephemeral.lookup));
  if (!lookup) return std::unexpected(lookup.error());
  admin->lookup.emplace(std::move(*lookup));
  auto cipher = TokenCipher::create(std::move(ephemeral.cipher), random);
  if (!cipher) return std::unexpected(cipher.error());
  admin->cipher.emplace(std::move(*cipher));
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, SystemClock::instance());
  if (!keys) return std::unexpected(keys.error());
  admin->keys.emplace(std::move(*keys));
  auto service = SessionService::create({.store = *admin->store,
                                         .lookup = *admin->lookup,
                                         .cipher = *admin->cipher,
                                         .keys = *admin->keys,
                                         .clock = SystemClock::instance(),
                                         .random = random,
                                         .audit = admin->audit.get(),
                                         .epochs = admin->publisher.get()},
                                        config.policy);
  if (!service) return std::unexpected(service.error());
  admin->service = std::move(*service);
  return admin;
}

// --- keys --------------------------------------------------------------------

Outcome keys_generate(const Config& config, bool force) {
  std::error_code ec;
  const bool have_signing = fs::exists(config.signing_keys, ec);
  const bool have_secrets = fs::exists(config.secret_keys, ec);
  if (have_signing && have_secrets && !force)
    return std::unexpected(Failure{
        Error{ErrorCode::invalid_request,
              fmt::format("signing_keys, secret_keys: \"{}\" and \"{}\" exist; --force replaces "
                          "them (and logs every session out)",
                          config.signing_keys.string(), config.secret_keys.string())},
        kExitRefused});
  auto& random = CsprngRandom::instance();
  boost::json::array created;
  boost::json::array kept;
  if (!have_signing || force) {
    auto keys = generate_signing_keys(config.signing_alg, random, SystemClock::instance());
    if (!keys) return failed(keys.error());
    if (auto s = write_private_file(config.signing_keys, keys->private_jwks()); !s)
      return failed(s.error());
    created.emplace_back(config.signing_keys.string());
  } else {
    kept.emplace_back(config.signing_keys.string());
  }
  if (!have_secrets || force) {
    if (auto s =
            write_private_file(config.secret_keys, secret_keys_json(generate_secret_keys(random)));
        !s)
      return failed(s.error());
    created.emplace_back(config.secret_keys.string());
  } else {
    kept.emplace_back(config.secret_keys.string());
  }
  print_json(boost::json::object{{"created", std::move(created)}, {"kept", std::move(kept)}});
  return {};
}

Result<KeySet> load_existing_signing_keys(const Config& config) {
  std::error_code ec;
  if (!fs::exists(config.signing_keys, ec))
    return fail(ErrorCode::config_invalid,
                fmt::format("signing_keys: \"{}\" does not exist (run `tessera keys generate`)",
                            config.signing_keys.string()));
  return load_signing_keys(config.signing_keys);
}

// Writes a changed signing key set and appends its key_rotated audit event
// (`reason`: the active kid; `count`: the keys that went).
Status store_changed_keys(const Config& config, const KeySet& keys, const std::string& active_kid,
                          std::size_t gone, const Clock& clock) {
  if (auto s = write_private_file(config.signing_keys, keys.private_jwks()); !s) return s;
  auto audit = open_audit_sink(config, true);
  if (audit && *audit) {
    (*audit)->emit(AuditEvent{.type = AuditEventType::key_rotated,
                              .at = clock.now(),
                              .actor = Actor::system,
                              .kid = active_kid,
                              .count = gone});
  }
  return {};
}

Outcome keys_rotate(const Config& config) {
  auto keys = load_existing_signing_keys(config);
  if (!keys) return failed(keys.error());
  const auto& clock = SystemClock::instance();
  const Algorithm alg = config.signing_alg_given ? config.signing_alg : current_algorithm(*keys);
  auto r =
      rotate_signing_keys(*keys, alg, CsprngRandom::instance(), clock, config.policy.access_ttl);
  if (!r) return failed(r.error());
  if (auto s = store_changed_keys(config, r->keys, r->active_kid, r->pruned, clock); !s)
    return failed(s.error());
  print_json(boost::json::object{{"retired", r->retired_kid},
                                 {"active", r->active_kid},
                                 {"next", r->next_kid},
                                 {"pruned", r->pruned}});
  return {};
}

// A leaked signing key, out of the set at once (docs/cli.md "keys revoke").
Outcome keys_revoke(const Config& config, const std::string& kid) {
  auto keys = load_existing_signing_keys(config);
  if (!keys) return failed(keys.error());
  const auto& clock = SystemClock::instance();
  const Algorithm alg = config.signing_alg_given ? config.signing_alg : current_algorithm(*keys);
  auto r = revoke_signing_key(*keys, kid, alg, CsprngRandom::instance(), clock,
                              config.policy.access_ttl);
  if (!r) return failed(r.error());
  if (auto s = store_changed_keys(config, r->keys, r->active_kid, 1, clock); !s)
    return failed(s.error());
  print_json(boost::json::object{{"revoked", r->revoked_kid},
                                 {"rotated", r->rotated},
                                 {"active", r->active_kid},
                                 {"next", r->next_kid}});
  return {};
}

Outcome keys_rotate_secrets(const Config& config) {
  std::error_code ec;
  if (!fs::exists(config.secret_keys, ec))
    return failed(
        Error{ErrorCode::config_invalid,
              fmt::format("secret_keys: \"{}\" does not exist (run `tessera keys generate`)",
                          config.secret_keys.string())});
  auto keys = load_secret_keys(config.secret_keys);
  if (!keys) return failed(keys.error());
  add_secret_key_versions(*keys, CsprngRandom::instance());
  if (auto s = write_private_file(config.secret_keys, secret_keys_json(*keys)); !s)
    return failed(s.error());
  print_json(boost::json::object{{"lookup_key_version", keys->lookup.back().version},
                                 {"cipher_key_version", keys->cipher.back().version}});
  return {};
}

Outcome keys_list(const Config& config) {
  auto keys = load_existing_signing_keys(config);
  if (!keys) return failed(keys.error());
  std::cout << key_list_json(*keys) << '\n' << std::flush;
  return {};
}

// --- API keys (docs/api.md "API keys and scopes") -----------------------------

struct ApiKeyArgs {
  std::string name;
  std::string scopes;
};

boost::json::object api_key_json(const server::ApiKeyEntry& k) {
  boost::json::array scopes;
  for (auto& n : server::scope_names(k.scopes)) scopes.emplace_back(n);
  const auto text_or_null = [](const std::string& t) {
    return t.empty() ? boost::json::value(nullptr) : boost::json::value(t);
  };
  return boost::json::object{{"name", text_or_null(k.name)},
                             {"scopes", std::move(scopes)},
                             // Tells the keys apart; too short to guess a key by.
                             {"hash", key_hash_text(k.hash).substr(0, 7 + 12)},
                             {"created_at", text_or_null(k.created_at)}};
}

// Adds a key to the api_keys file and prints it, the one time it is shown.
// A running serve picks it up within key_reload_interval.
Outcome api_keys_create(const Config& config, const ApiKeyArgs& args) {
  if (!server::valid_api_key_name(args.name))
    return failed(Error{ErrorCode::invalid_request, "--name: 1..64 of A-Z a-z 0-9 . _ -"});
  auto scopes = server::parse_scopes(args.scopes);
  if (!scopes)
    return failed(Error{ErrorCode::invalid_request, "--scopes: " + scopes.error().detail});
  auto lock = ApiKeysLock::acquire(config.api_keys_file());
  if (!lock) return failed(lock.error());
  auto keys = load_api_keys(config.api_keys_file());
  if (!keys) return failed(keys.error());
  for (const auto& k : *keys) {
    if (k.name == args.name)
      return std::unexpected(
          Failure{Error{ErrorCode::invalid_request,
                        fmt::format("an API key named \"{}\" exists (revoke it first)", args.name)},
                  kExitRefused});
  }
  const ApiKey key = generate_api_key(CsprngRandom::instance());
  keys->push_back({.hash = key.hash,
                   .name = args.name,
                   .scopes = *scopes,
                   .created_at = rfc3339(SystemClock::instance().now())});
  if (auto s = write_api_keys(config.api_keys_file(), *keys); !s) return failed(s.error());
  boost::json::object o = api_key_json(keys->back());
  o["key"] = key.key.reveal();  // the one place this key is ever printed
  print_json(o);
  return {};
}

Outcome api_keys_list(const Config& config) {
  auto keys = load_api_keys(config.api_keys_file());
  if (!keys) return failed(keys.error());
  boost::json::array out;
  for (const auto& k : *keys) out.push_back(api_key_json(k));
  print_json(boost::json::object{{"api_keys", std::move(out)}});
  return {};
}

Outcome api_keys_revoke(const Config& config, const ApiKeyArgs& args) {
  auto lock = ApiKeysLock::acquire(config.api_keys_file());
  if (!lock) return failed(lock.error());
  auto keys = load_api_keys(config.api_keys_file());
  if (!keys) return failed(keys.error());
  const auto n = std::erase_if(*keys, [&](const auto& k) { return k.name == args.name; });
  if (n == 0)
    return std::unexpected(
        Failure{Error{ErrorCode::invalid_request,
                      fmt::format("no API key named \"{}\" (tessera api-keys list)", args.name)},
                kExitNotFound});
  if (auto s = write_api_keys(config.api_keys_file(), *keys); !s) return failed(s.error());
  print_json(boost::json::object{{"revoked", args.name}});
  return {};
}

// --- SSF streams ----------------------------------------------------------------

struct SsfArgs {
  std::string endpoint;
  std::vector<std::string> audience;
  std::string authorization;
  std::string description;
  std::string id;
};

Outcome ssf_create(const Config& config, const SsfArgs& args) {
  SsfStreams live;
  auto store = FileSsfStreamStore::open(config.ssf_streams_file(), live, SystemClock::instance(),
                                        CsprngRandom::instance());
  if (!store) return failed(store.error());
  if (!(args.endpoint.starts_with("https://") || args.endpoint.starts_with("http://")))
    return failed(Error{ErrorCode::invalid_request, "--endpoint must be an http(s) URL"});
  SsfStream s;
  s.endpoint_url = args.endpoint;
  s.audience = args.audience.empty() ? std::vector<std::string>{args.endpoint} : args.audience;
  s.events_requested = {std::string(kCaepSessionRevoked)};
  s.description = args.description;
  s.authorization = SecretString(args.authorization);
  auto created = (*store)->create(std::move(s));
  if (!created) return failed(created.error());
  std::cout << ssf_stream_json(*created, config.public_url) << '\n';
  return {};
}

Outcome ssf_list(const Config& config) {
  auto streams = load_ssf_streams(config.ssf_streams_file());
  if (!streams) return failed(streams.error());
  std::string out = "{\"streams\":[";
  for (std::size_t i = 0; i < streams->size(); ++i) {
    if (i > 0) out += ',';
    out += ssf_stream_json((*streams)[i], config.public_url);
  }
  std::cout << out << "]}\n";
  return {};
}

Outcome ssf_delete(const Config& config, const SsfArgs& args) {
  SsfStreams live;
  auto store = FileSsfStreamStore::open(config.ssf_streams_file(), live, SystemClock::instance(),
                                        CsprngRandom::instance());
  if (!store) return failed(store.error());
  auto removed = (*store)->remove(args.id);
  if (!removed) return failed(removed.error());
  if (!*removed)
    return std::unexpected(
        Failure{Error{ErrorCode::invalid_request,
                      fmt::format("no stream \"{}\" (tessera ssf list)", args.id)},
                kExitNotFound});
  print_json(boost::json::object{{"deleted", args.id}});
  return {};
}

// --- store commands -----------------------------------------------------------

Outcome migrate(const Config& config) {
  auto store = open_store(config);
  if (!store) return failed(store.error());
  boost::json::object o{{"store", config.store_url_for_logs()}};
  if (config.store_kind == StoreKind::sqlite) {
    o["schema_version"] = kSqliteSchemaVersion;
  } else {
    o["schema_version"] = nullptr;  // nothing persists, nothing to migrate
  }
  print_json(o);
  return {};
}

struct SessionArgs {
  std::string subject;
  std::string id;
  std::string except;
};

Outcome sessions_list(const Config& config, const SessionArgs& args) {
  auto admin = open_admin(config);
  if (!admin) return failed(admin.error());
  auto list = (*admin)->service->list(args.subject);
  if (!list) return failed(list.error());
  boost::json::array sessions;
  // The HTTP answers' session object: one shape everywhere.
  for (const auto& s : *list) sessions.push_back(server::session_json(s));
  print_json(boost::json::object{{"sessions", std::move(sessions)}});
  return {};
}

Outcome sessions_revoke(const Config& config, const SessionArgs& args) {
  auto admin = open_admin(config);
  if (!admin) return failed(admin.error());
  auto& service = *(*admin)->service;
  auto n = !args.id.empty() ? service.revoke(args.subject, args.id)
                            : service.revoke_all(
                                  args.subject, args.except.empty()
                                                    ? std::nullopt
                                                    : std::optional<std::string_view>(args.except));
  if (!n) return failed(n.error());
  print_json(boost::json::object{{"revoked", *n}});
  return {};
}

// `epoch get|bump` takes either SUBJECT or --global.
struct EpochArgs {
  std::string subject;
  bool subject_given = false;  // possibly as ""
  bool global = false;
};

Outcome epoch(const Config& config, const EpochArgs& args, bool bump) {
  if (args.subject_given == args.global)
    return failed(Error{ErrorCode::invalid_request,
                        "epoch: give either SUBJECT or --global (see tessera epoch --help)"});
  if (args.subject_given && args.subject.empty())
    return failed(Error{ErrorCode::invalid_request,
                        "epoch: SUBJECT must not be empty (--global is the global epoch)"});
  auto admin = open_admin(config);
  if (!admin) return failed(admin.error());
  auto& service = *(*admin)->service;
  if (args.global) {
    auto n = bump ? service.bump_global_epoch() : service.global_epoch();
    if (!n) return failed(n.error());
    print_json(boost::json::object{{"global", true}, {"epoch", *n}});
  } else {
    auto n = bump ? service.bump_epoch(args.subject) : service.epoch(args.subject);
    if (!n) return failed(n.error());
    print_json(boost::json::object{{"subject", args.subject}, {"epoch", *n}});
  }
  // The store holds the bump (printed above), but a verifier reading Redis
  // keeps the old epoch until it is written there: not a success.
  if ((*admin)->publisher && (*admin)->publisher->failures() > 0)
    return failed(Error{ErrorCode::epoch_unavailable,
                        "redis_url: the bump is stored but could not be written to Redis, so "
                        "resource services reading epochs from it do not see it; bump again "
                        "once Redis answers"});
  return {};
}

Outcome cleanup(const Config& config) {
  auto admin = open_admin(config);
  if (!admin) return failed(admin.error());
  auto n = (*admin)->service->cleanup();
  if (!n) return failed(n.error());
  print_json(boost::json::object{{"deleted", *n}});
  return {};
}

Outcome serve_command(Config config, ServeFunction serve) {
  auto key = prepare_serve(config, CsprngRandom::instance(), SystemClock::instance());
  if (!key) return failed(key.error());
  if (auto s = serve(config, std::move(*key)); !s) return failed(s.error());
  return {};
}

constexpr const char* kFooter =
    "Settings (the Settings group of `tessera --help`, docs/configuration.md) may be given\n"
    "before or after the subcommand; a file (--config) < TESSERA_* variables < flags.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error,\n"
    "3 session not found, 4 refused to overwrite keys. Errors: one line on stderr,\n"
    "`tessera: <code>: <detail>`. Lists print one JSON document on stdout.";

// CLI11's layout with the subcommands right after the usage line: they are
// what a reader of `tessera --help` looks for first, and the Settings group
// is long. The headings stay "Subcommands:", "Options:", "Settings:"
// (scripts/make-manpage.py reads them).
class SubcommandsFirst final : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    return make_description(app) + make_usage(app, std::move(name)) + make_subcommands(app, mode) +
           make_positionals(app) + make_groups(app, mode) + '\n' + make_footer(app);
  }
};

// The deepest subcommand the parse reached (the root if none).
const CLI::App* deepest_parsed(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) {
    if (!sub->get_name().empty()) return deepest_parsed(*sub);
  }
  return &app;
}

// What to say about a parse error. CLI11 says "A subcommand is required"
// for `tessera frobnicate` (the word is left over, not named): name it.
std::string parse_error_detail(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App* at = deepest_parsed(app);
  const bool wants_subcommand =
      at->get_require_subcommand_min() > 0 && at->get_subcommands().empty();
  if (wants_subcommand) {
    for (const std::string& word : app.remaining(true)) {
      if (word.empty() || word.starts_with('-')) continue;
      if (at == &app) return fmt::format("unknown subcommand \"{}\" (see tessera --help)", word);
      return fmt::format("unknown subcommand \"{}\" of {} (see tessera {} --help)", word,
                         at->get_name(), at->get_name());
    }
  }
  return fmt::format("{} (see tessera --help)", e.what());
}

}  // namespace

int exit_code_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_request:
    case ErrorCode::config_invalid:
    case ErrorCode::key_invalid:
      return kExitUsage;
    case ErrorCode::session_not_found:
    case ErrorCode::key_not_found:
      return kExitNotFound;
    default:
      return kExitFailure;
  }
}

void print_error(const Error& error) {
  std::string detail = error.detail;
  std::replace(detail.begin(), detail.end(), '\n', ' ');
  std::fprintf(stderr, "tessera: %s: %s\n", std::string(to_string(error.code)).c_str(),
               detail.c_str());
}

namespace {

int run_command(int argc, char** argv, ServeFunction serve) {
  CLI::App app{
      "tessera: session lifecycle engine. The authority server (serve) and its\n"
      "operator commands: keys, api-keys, sessions, epochs, migrations, cleanup.",
      "tessera"};
  app.formatter(std::make_shared<SubcommandsFirst>());  // before the subcommands: they inherit it
  app.fallthrough();  // settings given after a subcommand reach the root
  app.require_subcommand(1);
  app.footer(kFooter);
  app.set_version_flag("--version", fmt::format("tessera {}", kVersion));
  SettingsBinder binder(app);

  auto* serve_cmd = app.add_subcommand("serve",
                                       "Run the HTTP authority until SIGTERM/SIGINT (SIGHUP "
                                       "reloads the signing keys and API keys).");

  auto* keys = app.add_subcommand("keys", "Manage the signing and secret key files.");
  keys->require_subcommand(1);
  bool force = false;
  auto* keys_generate_cmd = keys->add_subcommand(
      "generate",
      "Create the signing key set (one active, one next key) and the secret keys, "
      "where missing.");
  keys_generate_cmd->add_flag("--force", force,
                              "replace existing key files (logs every session out)");
  auto* keys_rotate_cmd = keys->add_subcommand(
      "rotate",
      "Promote the next signing key to active, retire the old one, add a new next key, "
      "prune expired retired keys. Safe while serve runs.");
  auto* keys_rotate_secrets_cmd =
      keys->add_subcommand("rotate-secrets",
                           "Add a new version of the lookup and token-cipher keys (older versions "
                           "stay readable: nobody is logged out). serve reads it on restart.");
  auto* keys_list_cmd =
      keys->add_subcommand("list", "Print the signing keys (kid, alg, state, retired_at) as JSON.");
  std::string revoke_kid;
  auto* keys_revoke_cmd = keys->add_subcommand(
      "revoke",
      "Remove the signing key KID at once (a leaked key): the active key is rotated out "
      "first. serve drops it within key_reload_interval (or on SIGHUP); resource services "
      "within jwks_max_age.");
  keys_revoke_cmd->add_option("kid", revoke_kid, "the key's kid (tessera keys list)")->required();

  ApiKeyArgs api_key_args;
  auto* api_keys = app.add_subcommand(
      "api-keys", "Create, list or revoke the scoped API keys of <data_dir>/api_keys.");
  api_keys->require_subcommand(1);
  auto* api_keys_create_cmd = api_keys->add_subcommand(
      "create", "Create a key with --name and --scopes; print it (the only time it is shown).");
  api_keys_create_cmd->add_option("--name", api_key_args.name, "a unique name")->required();
  api_keys_create_cmd
      ->add_option("--scopes", api_key_args.scopes,
                   "comma-separated: sessions:issue, sessions:read, sessions:revoke, "
                   "epochs:read, epochs:write, introspect, metrics, authz, ssf, or admin (all)")
      ->required();
  auto* api_keys_list_cmd =
      api_keys->add_subcommand("list", "Print the keys (name, scopes, created_at) as JSON.");
  auto* api_keys_revoke_cmd = api_keys->add_subcommand(
      "revoke", "Remove the key NAME; a running serve refuses it within key_reload_interval.");
  api_keys_revoke_cmd->add_option("name", api_key_args.name, "the key's name")->required();

  SessionArgs session_args;
  auto* sessions = app.add_subcommand("sessions", "List or revoke a subject's sessions.");
  sessions->require_subcommand(1);
  auto* sessions_list_cmd =
      sessions->add_subcommand("list", "Print the live sessions of SUBJECT as JSON.");
  sessions_list_cmd->add_option("subject", session_args.subject, "the subject")->required();
  auto* sessions_revoke_cmd = sessions->add_subcommand(
      "revoke", "Revoke the session ID of SUBJECT, or every session of SUBJECT (but --except).");
  sessions_revoke_cmd->add_option("subject", session_args.subject, "the subject")->required();
  auto* id_opt = sessions_revoke_cmd->add_option("id", session_args.id, "one session id");
  sessions_revoke_cmd
      ->add_option("--except", session_args.except, "keep this session when revoking all")
      ->excludes(id_opt);

  EpochArgs epoch_args;
  auto* epoch_cmd =
      app.add_subcommand("epoch", "Read or bump a subject's epoch, or the global epoch.");
  epoch_cmd->require_subcommand(1);
  auto* epoch_get_cmd = epoch_cmd->add_subcommand(
      "get", "Print SUBJECT's effective epoch (max of its own and the global), or --global.");
  auto* epoch_bump_cmd = epoch_cmd->add_subcommand(
      "bump",
      "Bump SUBJECT's epoch (its access tokens minted before stop verifying), or with "
      "--global the global epoch (everyone's).");
  for (auto* cmd : {epoch_get_cmd, epoch_bump_cmd}) {
    // Both fill the same EpochArgs (only one is ever parsed); epoch() says
    // when neither or both of SUBJECT and --global were given.
    cmd->add_option("subject", epoch_args.subject, "the subject");
    cmd->add_flag("--global", epoch_args.global, "the global epoch instead of a subject's");
  }

  auto* webhooks = app.add_subcommand("webhooks", "Webhook signing secrets.");
  webhooks->require_subcommand(1);
  auto* webhooks_secret_cmd = webhooks->add_subcommand(
      "new-secret",
      "Print a new Standard Webhooks secret (whsec_...) for webhook_secret; give it to the "
      "receivers too. Nothing is stored.");

  SsfArgs ssf_args;
  auto* ssf = app.add_subcommand(
      "ssf", "The SSF transmitter's streams (<data_dir>/ssf_streams.json; serve: ssf = true).");
  ssf->require_subcommand(1);
  auto* ssf_create_cmd = ssf->add_subcommand(
      "create",
      "Add a push stream (RFC 8935) of CAEP session-revoked SETs to --endpoint; print it. A "
      "running serve takes it within key_reload_interval.");
  ssf_create_cmd->add_option("--endpoint", ssf_args.endpoint, "the receiver's push URL")
      ->required();
  ssf_create_cmd->add_option("--aud", ssf_args.audience,
                             "the aud of its SETs (repeatable); default: the endpoint");
  ssf_create_cmd->add_option("--authorization", ssf_args.authorization,
                             "sent as the Authorization header of each push (a secret)");
  ssf_create_cmd->add_option("--description", ssf_args.description, "free text");
  auto* ssf_list_cmd = ssf->add_subcommand("list", "Print the streams as JSON (never a secret).");
  auto* ssf_delete_cmd = ssf->add_subcommand("delete", "Remove the stream ID.");
  ssf_delete_cmd->add_option("id", ssf_args.id, "the stream_id")->required();

  auto* migrate_cmd =
      app.add_subcommand("migrate", "Open the store, apply schema migrations, print the version.");
  auto* cleanup_cmd = app.add_subcommand(
      "cleanup", "Delete sessions ended more than cleanup_retention ago; print the count.");
  auto* version_cmd = app.add_subcommand("version", "Print the version.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    print_error(Error{ErrorCode::invalid_request, parse_error_detail(app, e)});
    return kExitUsage;
  }

  if (version_cmd->parsed()) {
    std::cout << "tessera " << kVersion << '\n';
    return kExitOk;
  }
  if (webhooks_secret_cmd->parsed()) {
    // Needs no settings: printed for the operator to place, as api-keys
    // create prints its key.
    std::cout << WebhookSecret::generate(CsprngRandom::instance()).text().reveal() << '\n';
    return kExitOk;
  }

  for (const auto& name : SettingsBinder::unknown_environment()) {
    std::fprintf(stderr, "tessera: warning: %s names no setting; ignored\n", name.c_str());
  }
  auto raw = binder.resolve();
  if (!raw) {
    print_error(raw.error());
    return kExitUsage;
  }
  auto config = build_config(*raw);
  if (!config) {
    print_error(config.error());
    return kExitUsage;
  }
  setup_logging(*config);

  Outcome outcome;
  if (serve_cmd->parsed()) {
    outcome = serve_command(*config, serve);
  } else if (keys_generate_cmd->parsed()) {
    outcome = keys_generate(*config, force);
  } else if (keys_rotate_cmd->parsed()) {
    outcome = keys_rotate(*config);
  } else if (keys_rotate_secrets_cmd->parsed()) {
    outcome = keys_rotate_secrets(*config);
  } else if (keys_list_cmd->parsed()) {
    outcome = keys_list(*config);
  } else if (keys_revoke_cmd->parsed()) {
    outcome = keys_revoke(*config, revoke_kid);
  } else if (api_keys_create_cmd->parsed()) {
    outcome = api_keys_create(*config, api_key_args);
  } else if (api_keys_list_cmd->parsed()) {
    outcome = api_keys_list(*config);
  } else if (api_keys_revoke_cmd->parsed()) {
    outcome = api_keys_revoke(*config, api_key_args);
  } else if (sessions_list_cmd->parsed()) {
    outcome = sessions_list(*config, session_args);
  } else if (sessions_revoke_cmd->parsed()) {
    outcome = sessions_revoke(*config, session_args);
  } else if (epoch_get_cmd->parsed() || epoch_bump_cmd->parsed()) {
    const auto* cmd = epoch_bump_cmd->parsed() ? epoch_bump_cmd : epoch_get_cmd;
    epoch_args.subject_given = cmd->get_option("subject")->count() > 0;
    outcome = epoch(*config, epoch_args, epoch_bump_cmd->parsed());
  } else if (ssf_create_cmd->parsed()) {
    outcome = ssf_create(*config, ssf_args);
  } else if (ssf_list_cmd->parsed()) {
    outcome = ssf_list(*config);
  } else if (ssf_delete_cmd->parsed()) {
    outcome = ssf_delete(*config, ssf_args);
  } else if (migrate_cmd->parsed()) {
    outcome = migrate(*config);
  } else if (cleanup_cmd->parsed()) {
    outcome = cleanup(*config);
  }
  if (!outcome) {
    print_error(outcome.error().error);
    return outcome.error().exit_code;
  }
  return kExitOk;
}

}  // namespace

int run(int argc, char** argv, ServeFunction serve) {
  try {
    return run_command(argc, argv, serve);
  } catch (const std::exception& e) {
    // Our bug, or the system out of resources: still one line and exit 1.
    print_error(Error{ErrorCode::internal, e.what()});
    return kExitFailure;
  }
}

}  // namespace tessera::cli

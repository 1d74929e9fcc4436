#include "cli/ssf_streams.hpp"

#include <fmt/format.h>

#include "cli/key_files.hpp"
#include "cli/runtime.hpp"

namespace tessera::cli {

namespace fs = std::filesystem;

Result<std::vector<SsfStream>> load_ssf_streams(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::vector<SsfStream>{};
  auto text = read_text_file(file);
  if (!text) return std::unexpected(text.error());
  auto streams = parse_ssf_streams(*text);
  if (!streams)
    return fail(ErrorCode::config_invalid,
                fmt::format("{}: {}", file.string(), streams.error().detail));
  return streams;
}

Result<std::unique_ptr<FileSsfStreamStore>> FileSsfStreamStore::open(fs::path file,
                                                                     SsfStreams& live,
                                                                     const Clock& clock,
                                                                     Random& random) {
  std::unique_ptr<FileSsfStreamStore> s(
      new FileSsfStreamStore(std::move(file), live, clock, random));
  s->stamp_ = file_stamp(s->file_);
  auto streams = load_ssf_streams(s->file_);
  if (!streams) return std::unexpected(streams.error());
  live.set(std::move(*streams));
  return s;
}

Result<SsfStream> FileSsfStreamStore::create(SsfStream stream) {
  std::lock_guard lock(mu_);
  auto file_lock = ApiKeysLock::acquire(file_);
  if (!file_lock) return std::unexpected(file_lock.error());
  auto streams = load_ssf_streams(file_);
  if (!streams) return std::unexpected(streams.error());
  stream.id = "ssf_" + ids_.next().to_string();
  stream.created_at = clock_.now();
  streams->push_back(stream);
  if (auto s = write_private_file(file_, ssf_streams_text(*streams)); !s)
    return std::unexpected(s.error());
  stamp_ = file_stamp(file_);
  live_.set(std::move(*streams));
  return stream;
}

Result<bool> FileSsfStreamStore::remove(std::string_view stream_id) {
  std::lock_guard lock(mu_);
  auto file_lock = ApiKeysLock::acquire(file_);
  if (!file_lock) return std::unexpected(file_lock.error());
  auto streams = load_ssf_streams(file_);
  if (!streams) return std::unexpected(streams.error());
  const auto before = streams->size();
  std::erase_if(*streams, [&](const SsfStream& s) { return s.id == stream_id; });
  if (streams->size() == before) return false;
  if (auto s = write_private_file(file_, ssf_streams_text(*streams)); !s)
    return std::unexpected(s.error());
  stamp_ = file_stamp(file_);
  live_.set(std::move(*streams));
  return true;
}

void FileSsfStreamStore::reload_if_changed() {
  std::lock_guard lock(mu_);
  const auto stamp = file_stamp(file_);
  if (stamp == stamp_) return;
  auto streams = load_ssf_streams(file_);
  if (!streams) {
    log_event(spdlog::level::warn, "ssf_streams_reload_failed",
              {{"code", to_string(streams.error().code)}});
    return;  // keep the streams in force; look again next time
  }
  stamp_ = stamp;
  live_.set(std::move(*streams));
  log_event(spdlog::level::info, "ssf_streams_reloaded", {{"streams", live_.get()->size()}});
}

}  // namespace tessera::cli
